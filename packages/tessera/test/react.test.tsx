// @vitest-environment happy-dom
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react'
import { useState } from 'react'
import { hydrateRoot } from 'react-dom/client'
import { renderToString } from 'react-dom/server'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { AuthProvider, Authenticated, useAuth, useAuthAction, useSession } from '../src/bindings/react.js'
import type { AuthSnapshot, AuthStatus } from '../src/index.js'
import { holdLogins, setup, slowStorage } from './fakes.js'

type User = { id: string; name: string }
const creds = { user: 'ada', password: 'pw' }

afterEach(cleanup)

/** The protected child records the engine status at each of its renders. */
function protectedProbe(auth: { getSnapshot(): AuthSnapshot }) {
  const renders: AuthStatus[] = []
  function Secret() {
    renders.push(auth.getSnapshot().status)
    return <p>secret</p>
  }
  return { renders, Secret }
}

describe('<Authenticated>', () => {
  it('renders nothing protected while initializing, the fallback without a session, the children once logged in', async () => {
    const { storage, open } = slowStorage()
    const { auth } = setup({ storage })
    const { renders, Secret } = protectedProbe(auth)
    render(
      <AuthProvider auth={auth}>
        <Authenticated loading={<p>loading</p>} fallback={<p>please log in</p>}>
          <Secret />
        </Authenticated>
      </AuthProvider>,
    )
    expect(screen.getByText('loading')).toBeTruthy()
    await act(async () => {
      await Promise.resolve()
    })
    expect(auth.getSnapshot().status).toBe('initializing')
    expect(screen.queryByText('secret')).toBeNull()
    await act(async () => {
      open()
      await auth.ready()
    })
    expect(screen.getByText('please log in')).toBeTruthy()
    expect(renders).toEqual([])
    await act(() => auth.login(creds))
    expect(screen.getByText('secret')).toBeTruthy()
    expect(renders.length).toBeGreaterThan(0)
    expect(renders.every((s) => s === 'authenticated')).toBe(true)
  })

  it('a restored session shows loading first and never the fallback or protected content before restore', async () => {
    const first = setup()
    await first.auth.ready()
    await first.auth.login(creds)
    const { storage, open } = slowStorage(first.storage)
    const { auth } = setup({ storage })
    const { renders, Secret } = protectedProbe(auth)
    const seen: string[] = []
    auth.subscribe(() => seen.push(`${auth.getSnapshot().status}:${document.body.textContent}`))
    render(
      <Authenticated auth={auth} loading={<p>loading</p>} fallback={<p>please log in</p>}>
        <Secret />
      </Authenticated>,
    )
    expect(document.body.textContent).toBe('loading')
    await act(async () => {
      open()
      await auth.ready()
    })
    expect(screen.getByText('secret')).toBeTruthy()
    expect(renders.every((s) => s === 'authenticated')).toBe(true)
    // While the engine still said initializing, the DOM held only the loading state.
    expect(seen.filter((x) => x.startsWith('initializing')).every((x) => x === 'initializing:loading')).toBe(true)
    expect(seen.join()).not.toContain('please log in')
  })

  it('calls onUnauthenticated with redirectTo when the session ends, and hides the protected content', async () => {
    const { auth } = setup()
    await auth.ready()
    await auth.login(creds)
    const onUnauthenticated = vi.fn()
    render(
      <Authenticated auth={auth} fallback={<p>bye</p>} redirectTo="/login" onUnauthenticated={onUnauthenticated}>
        <p>secret</p>
      </Authenticated>,
    )
    expect(screen.getByText('secret')).toBeTruthy()
    expect(onUnauthenticated).not.toHaveBeenCalled()
    await act(() => auth.logout())
    expect(screen.queryByText('secret')).toBeNull()
    expect(screen.getByText('bye')).toBeTruthy()
    expect(onUnauthenticated).toHaveBeenCalledTimes(1)
    expect(onUnauthenticated).toHaveBeenCalledWith('/login', 'unauthenticated')
  })
})

describe('login form', () => {
  function LoginForm() {
    const { login } = useAuth<User, typeof creds>()
    const { isPending, error, reset } = useAuthAction('login')
    const [password, setPassword] = useState('')
    return (
      <form
        onSubmit={(e) => {
          e.preventDefault()
          login({ user: 'ada', password }).catch(() => {})
        }}
      >
        <input aria-label="password" value={password} onChange={(e) => setPassword(e.target.value)} />
        <button disabled={isPending}>{isPending ? 'signing in…' : 'sign in'}</button>
        {error && (
          <p role="alert" onClick={reset}>
            {error.message}
          </p>
        )}
      </form>
    )
  }

  it('shows pending, then the error for bad credentials, and stays mounted meanwhile; nothing protected renders', async () => {
    const { auth, server } = setup()
    await auth.ready()
    const { release } = holdLogins(server)
    const { renders, Secret } = protectedProbe(auth)
    render(
      <AuthProvider auth={auth}>
        <Authenticated loading={<p>loading</p>} fallback={<LoginForm />}>
          <Secret />
        </Authenticated>
      </AuthProvider>,
    )
    fireEvent.change(screen.getByLabelText('password'), { target: { value: 'nope' } })
    fireEvent.submit(screen.getByRole('button'))
    expect(screen.getByRole('button').textContent).toBe('signing in…')
    expect((screen.getByRole('button') as HTMLButtonElement).disabled).toBe(true)
    expect(auth.getSnapshot().status).toBe('authenticating')
    await act(async () => {
      release()
      await auth.ready()
      await new Promise((r) => setTimeout(r, 0))
    })
    expect(screen.getByRole('alert').textContent).toBe('Wrong email or password')
    expect(screen.getByRole('button').textContent).toBe('sign in')
    expect((screen.getByLabelText('password') as HTMLInputElement).value).toBe('nope') // the form was not remounted
    expect(renders).toEqual([])
    act(() => fireEvent.click(screen.getByRole('alert')))
    expect(screen.queryByRole('alert')).toBeNull()
    expect(auth.getSnapshot().actions.login.status).toBe('idle')
  })
})

describe('useSession', () => {
  it('re-renders only when the selected value changes', async () => {
    const { auth } = setup()
    await auth.ready()
    await auth.login(creds)
    let nameRenders = 0
    let statusRenders = 0
    let objectRenders = 0
    function Name() {
      nameRenders++
      return <span>{useSession((s: AuthSnapshot<User>) => s.user?.name ?? 'nobody')}</span>
    }
    function Status() {
      statusRenders++
      return <span>{useSession((s) => s.status)}</span>
    }
    const shallow = (a: { name?: string }, b: { name?: string }) => a.name === b.name
    function Obj() {
      objectRenders++
      // A selector that builds a new object each time, steadied by `isEqual`.
      const v = useSession((s: AuthSnapshot<User>) => ({ name: s.user?.name }), shallow)
      return <span>{v.name}</span>
    }
    render(
      <AuthProvider auth={auth}>
        <Name />
        <Status />
        <Obj />
      </AuthProvider>,
    )
    expect([nameRenders, statusRenders, objectRenders]).toEqual([1, 1, 1])
    let changes = 0
    auth.subscribe(() => changes++)
    await act(() => auth.refresh()) // refreshing, generation, expiresAt and actions.refresh all change
    expect(changes).toBeGreaterThanOrEqual(3)
    expect([nameRenders, statusRenders, objectRenders]).toEqual([1, 1, 1])
    await act(() => auth.logout())
    expect(statusRenders).toBe(2)
    expect(nameRenders).toBe(2)
    expect(objectRenders).toBe(2)
    expect(document.body.textContent).toBe('nobodyunauthenticated')
  })

  it('works without a provider when given the engine, and throws a TypeError with neither', async () => {
    const { auth } = setup()
    function Status() {
      return <span>{useSession((s) => s.status, undefined, auth)}</span>
    }
    render(<Status />)
    expect(document.body.textContent).toBe('initializing')
    await act(() => auth.ready())
    expect(document.body.textContent).toBe('unauthenticated')
    function Orphan() {
      useAuth()
      return null
    }
    vi.spyOn(console, 'error').mockImplementation(() => {})
    expect(() => render(<Orphan />)).toThrow(TypeError)
    vi.restoreAllMocks()
  })

  it('useAuth exposes the derived fields and the verbs', async () => {
    const { auth } = setup()
    await auth.ready()
    let result!: ReturnType<typeof useAuth<User, typeof creds>>
    function Probe() {
      result = useAuth<User, typeof creds>()
      return null
    }
    render(
      <AuthProvider auth={auth}>
        <Probe />
      </AuthProvider>,
    )
    expect(result).toMatchObject({ status: 'unauthenticated', isAuthenticated: false, user: null, auth })
    await act(() => result.login(creds))
    expect(result).toMatchObject({ status: 'authenticated', isAuthenticated: true, user: { name: 'Ada' } })
    await expect(result.getAccessToken()).resolves.toMatch(/^at-/)
  })
})

describe('server rendering', () => {
  const tree = (auth: ReturnType<typeof setup>['auth'], Secret: () => React.ReactNode) => (
    <AuthProvider auth={auth}>
      <Authenticated loading={<p>loading</p>} fallback={<p>please log in</p>}>
        <Secret />
      </Authenticated>
    </AuthProvider>
  )

  it('SSR: renderToString renders the loading state and no protected content', async () => {
    const { auth } = setup()
    const { renders, Secret } = protectedProbe(auth)
    const html = renderToString(tree(auth, Secret))
    expect(html).toContain('loading')
    expect(html).not.toContain('secret')
    expect(html).not.toContain('please log in')
    expect(renders).toEqual([])
  })

  it('SSR: even an engine that is already authenticated renders only the loading state on the server', async () => {
    const { auth } = setup()
    await auth.ready()
    await auth.login(creds)
    const { renders, Secret } = protectedProbe(auth)
    const html = renderToString(tree(auth, Secret))
    expect(html).toContain('loading')
    expect(html).not.toContain('secret')
    expect(renders).toEqual([])
  })

  it('hydrating server markup with an already-restored engine causes no mismatch, then shows the content', async () => {
    const server = setup()
    const html = renderToString(tree(server.auth, protectedProbe(server.auth).Secret))
    const { auth } = setup()
    await auth.ready()
    await auth.login(creds)
    const { Secret } = protectedProbe(auth)
    const container = document.createElement('div')
    container.innerHTML = html
    document.body.appendChild(container)
    const onRecoverableError = vi.fn()
    await act(async () => {
      hydrateRoot(container, tree(auth, Secret), { onRecoverableError })
    })
    expect(onRecoverableError).not.toHaveBeenCalled()
    expect(container.textContent).toBe('secret')
    container.remove()
  })
})
