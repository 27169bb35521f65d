import { useEffect, useState, useSyncExternalStore, type ReactNode } from 'react';
import { Authenticated, useAuth, useAuthAction, useSession } from 'tessera/react';
import { Diagram } from './Diagram.tsx';
import { AccountForms } from './Forms.tsx';
import {
  auth,
  burst,
  describeError,
  getFaults,
  loadData,
  setFaults,
  timeline,
  type BurstResult,
  type CallResult,
  type FaultSettings,
  type User,
} from './engine.ts';

function StatusLine() {
  const status = useSession((s) => s.status);
  const refreshing = useSession((s) => s.refreshing);
  const generation = useSession((s) => s.generation);
  return (
    <p className="status-line" aria-live="polite">
      Session:{' '}
      <strong id="status" className={`pill ${status}`} data-status={status}>
        {status}
      </strong>
      {refreshing ? <span className="badge refreshing">refreshing…</span> : null}
      <span className="muted"> · token generation {generation}</span>
    </p>
  );
}

function Countdown() {
  const expiresAt = useSession((s) => s.expiresAt);
  const generation = useSession((s) => s.generation);
  const [now, setNow] = useState(() => Date.now());
  const [span, setSpan] = useState<{ generation: number; total: number } | null>(null);
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 200);
    return () => clearInterval(t);
  }, []);
  useEffect(() => {
    if (expiresAt !== null) setSpan({ generation, total: Math.max(1, expiresAt - Date.now()) });
  }, [expiresAt, generation]);
  if (expiresAt === null) {
    return (
      <p className="countdown" id="countdown">
        No access token.
      </p>
    );
  }
  const left = Math.max(0, expiresAt - now);
  const total = span?.total ?? left;
  return (
    <div className="countdown">
      <p id="countdown">
        Access token expires in <strong data-testid="countdown-seconds">{(left / 1000).toFixed(1)} s</strong>
      </p>
      <meter min={0} max={total} value={left} low={total * 0.25} optimum={total} aria-label="Access token lifetime left" />
      <p className="hint">Tessera refreshes it before it runs out (a quarter of its lifetime early, at most a minute).</p>
    </div>
  );
}

function Dashboard() {
  const { user, logout } = useAuth<User>();
  const { isPending, error } = useAuthAction('logout');
  const [data, setData] = useState<CallResult | null>(null);
  const [loading, setLoading] = useState(false);
  const load = async () => {
    setLoading(true);
    setData(await loadData());
    setLoading(false);
  };
  return (
    <section className="card" aria-labelledby="protected-title">
      <h2 id="protected-title">Protected area</h2>
      <p data-testid="welcome">
        Signed in as <strong>{user?.name ?? user?.email ?? '…'}</strong>
        {user?.name ? <span className="muted"> ({user.email})</span> : null}
      </p>
      <div className="row">
        <button type="button" onClick={load} disabled={loading} aria-busy={loading}>
          {loading ? 'Loading…' : 'Load my data (GET /api/data)'}
        </button>
        <button type="button" className="danger" onClick={() => logout().catch(() => {})} disabled={isPending} aria-busy={isPending}>
          {isPending ? 'Signing out…' : 'Sign out'}
        </button>
      </div>
      {error ? (
        <p className="error" role="alert">
          The server could not be told: {error.message} (this tab's session is over anyway)
        </p>
      ) : null}
      {data ? (
        <pre className="data" aria-label="Response">
          {data.ok ? JSON.stringify((data.body as { items?: unknown })?.items ?? data.body) : `failed: ${data.error}`}
          {data.held ? '\n(held while a refresh ran)' : ''}
          {data.replayed ? '\n(got 401, replayed once)' : ''}
        </pre>
      ) : null}
    </section>
  );
}

/** How many requests the burst fires. */
const BURST = 50;

const FAULTS: { label: string; settings: Partial<FaultSettings> }[] = [
  { label: 'Slow refreshes (3 s)', settings: { latencyMs: 3_000 } },
  { label: 'Refreshes fail (500)', settings: { failureRate: 1 } },
  { label: 'Half fail, slowly', settings: { failureRate: 0.5, latencyMs: 1_000 } },
  { label: 'Back to normal', settings: {} },
];

/** One figure of a burst's result; `testId` marks the ones the e2e test reads. */
function Figure({ label, testId, wide, children }: { label: string; testId?: string; wide?: boolean; children: ReactNode }) {
  return (
    <div className={wide ? 'wide' : undefined}>
      <dt>{label}</dt>
      <dd data-testid={testId}>{children}</dd>
    </div>
  );
}

function Playground() {
  const isAuthenticated = useSession((s) => s.isAuthenticated);
  const refresh = useAuthAction('refresh');
  const [spoil, setSpoil] = useState(true);
  const [running, setRunning] = useState(false);
  const [result, setResult] = useState<BurstResult | null>(null);
  const [faults, setFaultState] = useState<FaultSettings | null | undefined>(undefined);
  const [faultError, setFaultError] = useState<string | null>(null);
  useEffect(() => {
    void getFaults().then(setFaultState);
  }, []);

  const fire = async () => {
    setRunning(true);
    try {
      setResult(await burst(BURST, spoil));
    } finally {
      setRunning(false);
    }
  };
  const applyFaults = async (settings: Partial<FaultSettings>) => {
    setFaultError(null);
    try {
      setFaultState(await setFaults(settings));
    } catch (error) {
      setFaultError(describeError(error));
    }
  };
  const faultsOn = !!faults && (faults.failureRate > 0 || faults.latencyMs > 0);

  return (
    <section className="card" aria-labelledby="play-title">
      <h2 id="play-title">Try it</h2>
      <StatusLine />
      <Countdown />

      <h3>Requests</h3>
      <div className="row">
        <button type="button" className="primary" onClick={fire} disabled={running || !isAuthenticated} aria-busy={running} data-testid="burst">
          {running ? 'Firing…' : `Fire ${BURST} concurrent requests`}
        </button>
        <button type="button" onClick={() => auth.refresh().catch(() => {})} disabled={!isAuthenticated || refresh.isPending}>
          {refresh.isPending ? 'Refreshing…' : 'Refresh now'}
        </button>
      </div>
      <label className="check">
        <input type="checkbox" checked={spoil} onChange={(e) => setSpoil(e.target.checked)} />
        Send each first attempt with a spoiled token, as if it had expired (the server answers 401)
      </label>
      {!isAuthenticated ? <p className="hint">Sign in first: requests need a session.</p> : null}
      {spoil ? (
        <p className="hint" data-testid="burst-console-hint">
          In the browser's console and network panel, the burst shows {BURST} red <code>401 (Unauthorized)</code> lines and
          as many first attempts marked <code>(canceled)</code> / <code>ERR_ABORTED</code>: those are the spoiled first
          attempts, answered 401 on purpose; Tessera drops their bodies and replays them with the new token. The browser logs
          every 4xx it sees; the figures below say what the page got.
        </p>
      ) : null}
      {result ? (
        <dl className="burst" data-testid="burst-result" aria-live="polite">
          <Figure label="ok" testId="burst-ok">
            {result.ok}
          </Figure>
          <Figure label="failed" testId="burst-failed">
            {result.failed}
          </Figure>
          <Figure label="held">{result.held}</Figure>
          <Figure label="replayed">{result.replayed}</Figure>
          <Figure label="refreshes" testId="burst-refreshes">
            {result.refreshes}
          </Figure>
          <Figure label="server saw">{result.serverRefreshes === null ? '–' : `${result.serverRefreshes} refresh call${result.serverRefreshes === 1 ? '' : 's'}`}</Figure>
          {Object.keys(result.errors).length ? (
            <Figure label="errors" wide>
              {Object.entries(result.errors)
                .map(([k, v]) => `${k} ×${v}`)
                .join(', ')}
            </Figure>
          ) : null}
        </dl>
      ) : null}

      <h3>The token server</h3>
      {faults === null ? (
        <p className="hint">Fault injection is off on this server (the CLI, `npm start`, turns it on).</p>
      ) : (
        <>
          <div className="row wrap">
            {FAULTS.map((f) => (
              <button key={f.label} type="button" onClick={() => applyFaults(f.settings)} disabled={faults === undefined}>
                {f.label}
              </button>
            ))}
          </div>
          <p className="hint" aria-live="polite">
            {faults === undefined
              ? 'Asking the server…'
              : faultsOn
                ? `Refreshes now ${faults.failureRate ? `fail ${Math.round(faults.failureRate * 100)}% of the time` : 'succeed'}${faults.latencyMs ? ` after ${faults.latencyMs / 1000} s` : ''}: watch the timeline and the diagram.`
                : 'Refreshes answer normally.'}
          </p>
          {faultError ? (
            <p className="error" role="alert">
              {faultError}
            </p>
          ) : null}
        </>
      )}

      <h3>Tabs</h3>
      <div className="row">
        <button type="button" onClick={() => window.open(location.href, '_blank')}>
          Open another tab
        </button>
      </div>
      <p className="hint">Sign in or out in one tab and watch the others follow; only one tab refreshes at a time.</p>
    </section>
  );
}

const TIME = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });

function Timeline() {
  const entries = useSyncExternalStore(timeline.subscribe, timeline.get);
  return (
    <section className="card timeline" aria-labelledby="timeline-title">
      <div className="row spread">
        <h2 id="timeline-title">Timeline</h2>
        <button type="button" onClick={() => timeline.clear()} disabled={!entries.length}>
          Clear
        </button>
      </div>
      <p className="hint">Every event of <code>auth.on(…)</code>, messages from other tabs, and what happened to requests. Newest first.</p>
      {entries.length === 0 ? <p className="muted">Nothing yet: sign in.</p> : null}
      <ol id="timeline" data-testid="timeline">
        {entries.map((e) => (
          <li key={e.id} className={`tone-${e.tone}`} data-kind={e.kind}>
            <time dateTime={new Date(e.at).toISOString()}>
              {TIME.format(e.at)}.{String(e.at % 1000).padStart(3, '0')}
            </time>
            <span className="kind">{e.kind}</span>
            <span className="text">
              {e.text}
              {e.count > 1 ? <span className="count"> ×{e.count}</span> : null}
            </span>
          </li>
        ))}
      </ol>
    </section>
  );
}

export function App() {
  return (
    <>
      <a className="skip" href="#main">
        Skip to the demo
      </a>
      <header>
        <h1>Tessera</h1>
        <p>
          One session engine keeps this page logged in: it refreshes the access token once however many requests need it, holds and
          replays them, and keeps tabs in step. Everything below is the engine's own state and events.
        </p>
      </header>
      <main id="main">
        <div className="col">
          <Authenticated loading={<p className="card">Restoring the session…</p>} fallback={<AccountForms />}>
            <Dashboard />
          </Authenticated>
          <Playground />
        </div>
        <div className="col">
          <Diagram />
          <Timeline />
        </div>
      </main>
      <footer>
        <p className="muted">
          The reference token server serves this page; <code>/auth/*</code> issues tokens, <code>/api/data</code> needs one, <code>/__faults</code>{' '}
          and <code>/__stats</code> exist in demo mode only.
        </p>
      </footer>
    </>
  );
}
