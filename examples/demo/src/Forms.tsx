/** Login, register, forgot-password and reset-password: labelled fields, pending and error states. */
import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { useAuthAction } from 'tessera/react';
import { auth, authority, describeError } from './engine.ts';

export type FormName = 'login' | 'register' | 'forgot' | 'reset';

const TABS: { name: FormName; label: string }[] = [
  { name: 'login', label: 'Sign in' },
  { name: 'register', label: 'Register' },
  { name: 'forgot', label: 'Forgot password' },
  { name: 'reset', label: 'Reset password' },
];

function Field(props: {
  label: string;
  name: string;
  type?: string;
  autoComplete?: string;
  value: string;
  onChange: (v: string) => void;
  required?: boolean;
  minLength?: number;
  inputRef?: React.Ref<HTMLInputElement>;
  describedBy?: string;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <input
        id={id}
        ref={props.inputRef}
        name={props.name}
        type={props.type ?? 'text'}
        autoComplete={props.autoComplete}
        value={props.value}
        required={props.required ?? true}
        minLength={props.minLength}
        aria-describedby={props.describedBy}
        onChange={(e) => props.onChange(e.target.value)}
      />
    </div>
  );
}

/**
 * A pending/error/done state for verbs the engine does not track (register, forgot, reset).
 * `submit(task)` is a form's submit handler that runs `task`; what `task` resolves is the notice.
 */
function useTask() {
  const [state, setState] = useState<{ status: 'idle' | 'pending' | 'done' | 'failed'; message: string | null }>({ status: 'idle', message: null });
  const run = async (task: () => Promise<string | null>) => {
    setState({ status: 'pending', message: null });
    try {
      setState({ status: 'done', message: await task() });
    } catch (error) {
      setState({ status: 'failed', message: describeError(error) });
    }
  };
  const submit = (task: () => Promise<string | null>) => (e: FormEvent) => {
    e.preventDefault();
    void run(task);
  };
  return {
    ...state,
    isPending: state.status === 'pending',
    error: state.status === 'failed' ? state.message : null,
    notice: state.status === 'done' ? state.message : null,
    submit,
    reset: () => setState({ status: 'idle', message: null }),
  };
}

/** The field to focus when the form was chosen, and the id of the error line its fields point at. */
function useFormFocus(focus: boolean) {
  const ref = useRef<HTMLInputElement>(null);
  const errorId = useId();
  useEffect(() => {
    if (focus) ref.current?.focus();
  }, [focus]);
  return { ref, errorId };
}

/** A form: its fields, the submit button (busy while `pending`), then the error line and the notice. */
function FormShell({ title, onSubmit, children, error, notice, errorId, pending, submitLabel, pendingLabel }: { title: string; onSubmit: (e: FormEvent) => void; children: ReactNode; error: string | null; notice?: string | null; errorId: string; pending: boolean; submitLabel: string; pendingLabel: string }) {
  return (
    <form onSubmit={onSubmit} aria-label={title} noValidate={false}>
      {children}
      <button type="submit" className="primary" disabled={pending} aria-busy={pending}>
        {pending ? pendingLabel : submitLabel}
      </button>
      <p id={errorId} className="error" role="alert">
        {error}
      </p>
      {notice ? (
        <p className="notice" role="status">
          {notice}
        </p>
      ) : null}
    </form>
  );
}

function LoginForm({ focus }: { focus: boolean }) {
  const { isPending, error, reset } = useAuthAction('login');
  const [email, setEmail] = useState('demo@tessera.dev');
  const [password, setPassword] = useState('');
  const { ref, errorId } = useFormFocus(focus);
  useEffect(() => () => reset(), [reset]);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    auth.login({ email, password }).catch(() => {}); // the error is in the action state
  };
  return (
    <FormShell title="Sign in" onSubmit={submit} error={error ? error.message : null} errorId={errorId} pending={isPending} submitLabel="Sign in" pendingLabel="Signing in…">
      <Field label="E-mail" name="email" type="email" autoComplete="username" value={email} onChange={setEmail} describedBy={errorId} />
      <Field label="Password" name="password" type="password" autoComplete="current-password" value={password} onChange={setPassword} inputRef={ref} describedBy={errorId} />
      <p className="hint">
        Demo account: <code>demo@tessera.dev</code> / <code>tessera-demo</code>
      </p>
    </FormShell>
  );
}

function RegisterForm({ focus }: { focus: boolean }) {
  const task = useTask();
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const { ref, errorId } = useFormFocus(focus);
  const submit = task.submit(async () => {
    await authority.register({ email, password, name });
    await auth.login({ email, password });
    return null;
  });
  return (
    <FormShell title="Register" onSubmit={submit} error={task.error} errorId={errorId} pending={task.isPending} submitLabel="Create account and sign in" pendingLabel="Creating the account…">
      <Field label="Name" name="name" autoComplete="name" value={name} onChange={setName} required={false} inputRef={ref} />
      <Field label="E-mail" name="email" type="email" autoComplete="email" value={email} onChange={setEmail} describedBy={errorId} />
      <Field label="Password (8 characters or more)" name="password" type="password" autoComplete="new-password" minLength={8} value={password} onChange={setPassword} describedBy={errorId} />
    </FormShell>
  );
}

function ForgotForm({ focus }: { focus: boolean }) {
  const task = useTask();
  const [email, setEmail] = useState('');
  const { ref, errorId } = useFormFocus(focus);
  const submit = task.submit(async () => {
    await authority.forgotPassword(email);
    return `If an account exists for ${email}, a reset link is on its way. The demo server prints it in the terminal where npm start runs.`;
  });
  return (
    <FormShell title="Forgot password" onSubmit={submit} error={task.error} notice={task.notice} errorId={errorId} pending={task.isPending} submitLabel="Send a reset link" pendingLabel="Sending…">
      <Field label="E-mail" name="email" type="email" autoComplete="email" value={email} onChange={setEmail} inputRef={ref} describedBy={errorId} />
    </FormShell>
  );
}

function ResetForm({ focus, onDone }: { focus: boolean; onDone: () => void }) {
  const task = useTask();
  const [token, setToken] = useState(() => new URLSearchParams(location.search).get('token') ?? '');
  const [password, setPassword] = useState('');
  const { ref, errorId } = useFormFocus(focus);
  const submit = task.submit(async () => {
    await authority.resetPassword(token, password);
    // The token is single-use: take it out of the address bar.
    if (location.search) history.replaceState(null, '', '/');
    setTimeout(onDone, 1_500);
    return 'Password changed, and every session of the account ended. Sign in with the new password.';
  });
  return (
    <FormShell title="Reset password" onSubmit={submit} error={task.error} notice={task.notice} errorId={errorId} pending={task.isPending} submitLabel="Set the new password" pendingLabel="Saving…">
      <Field label="Reset token (from the link)" name="token" autoComplete="off" value={token} onChange={setToken} inputRef={token ? undefined : ref} describedBy={errorId} />
      <Field label="New password (8 characters or more)" name="password" type="password" autoComplete="new-password" minLength={8} value={password} onChange={setPassword} inputRef={token ? ref : undefined} describedBy={errorId} />
    </FormShell>
  );
}

/** The four forms behind one tab strip; the reset form first when the page was opened from a reset link. */
export function AccountForms() {
  const [form, setForm] = useState<FormName>(() => (location.pathname.startsWith('/reset-password') || new URLSearchParams(location.search).has('token') ? 'reset' : 'login'));
  const [moved, setMoved] = useState(false);
  const choose = (name: FormName) => {
    setForm(name);
    setMoved(true);
  };
  return (
    <section className="card" aria-labelledby="account-title">
      <h2 id="account-title">Account</h2>
      <div className="tabs" role="group" aria-label="Choose a form">
        {TABS.map((t) => (
          <button key={t.name} type="button" aria-pressed={form === t.name} onClick={() => choose(t.name)}>
            {t.label}
          </button>
        ))}
      </div>
      {form === 'login' ? <LoginForm focus={moved} /> : null}
      {form === 'register' ? <RegisterForm focus={moved} /> : null}
      {form === 'forgot' ? <ForgotForm focus={moved} /> : null}
      {form === 'reset' ? <ResetForm focus={moved || form === 'reset'} onDone={() => choose('login')} /> : null}
    </section>
  );
}
