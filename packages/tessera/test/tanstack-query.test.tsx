// @vitest-environment happy-dom
import { QueryClient, QueryClientProvider, useQuery } from '@tanstack/react-query'
import { act, cleanup, render, screen, waitFor } from '@testing-library/react'
import { afterEach, describe, expect, it } from 'vitest'
import { Authenticated } from '../src/bindings/react.js'
import { connectQueryClient, sessionQueryKey, sessionQueryOptions } from '../src/bindings/tanstack-query.js'
import { flush, setup, tabs } from './fakes.js'

afterEach(cleanup)

/** An engine whose server knows several people: the profile is the one who logged in. */
async function twoUsers() {
  const t = setup()
  const login = t.server.authority.login
  const owner = new Map<string, string>()
  t.server.authority.login = async (c) => {
    const body = await login(c)
    owner.set(body.access_token, c.user)
    return body
  }
  t.server.authority.fetchUser = async (token) => ({ id: owner.get(token)!, name: owner.get(token)! })
  /** A private resource: whoever the request's token belongs to, as the server sees it. */
  const todos = async () => {
    const { token } = (await (await t.auth.fetch('/api/todos')).json()) as { token: string }
    return `todos of ${owner.get(token)}`
  }
  await t.auth.ready()
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false } } })
  const disconnect = connectQueryClient(t.auth, queryClient)
  return { ...t, queryClient, disconnect, todos }
}

describe('connectQueryClient', () => {
  it("A's cached data is gone before B's first render (logout, then login as B)", async () => {
    const { auth, queryClient, todos } = await twoUsers()
    const rendered: string[] = []
    function Todos() {
      const { data } = useQuery({ queryKey: ['todos'], queryFn: todos })
      rendered.push(data ?? '(loading)')
      return <p>{data}</p>
    }
    render(
      <QueryClientProvider client={queryClient}>
        <Authenticated auth={auth} fallback={<p>login</p>}>
          <Todos />
        </Authenticated>
      </QueryClientProvider>,
    )
    await act(() => auth.login({ user: 'alice', password: 'pw' }))
    await waitFor(() => expect(screen.getByText('todos of alice')).toBeTruthy())
    expect(queryClient.getQueryData(['todos'])).toBe('todos of alice')

    await act(() => auth.logout())
    expect(queryClient.getQueryData(['todos'])).toBeUndefined()
    expect(queryClient.getQueryCache().findAll({ queryKey: ['todos'] })).toHaveLength(0)

    rendered.length = 0
    const seenByB: unknown[] = []
    auth.subscribe(() => seenByB.push(queryClient.getQueryData(['todos'])))
    await act(() => auth.login({ user: 'bob', password: 'pw' }))
    await waitFor(() => expect(screen.getByText('todos of bob')).toBeTruthy())
    expect(rendered[0]).toBe('(loading)')
    expect(rendered).not.toContain('todos of alice')
    expect(seenByB).not.toContain('todos of alice')
  })

  it('a login as B straight over A (no logout) removes A’s data as the new login starts', async () => {
    const { auth, queryClient } = await twoUsers()
    await auth.login({ user: 'alice', password: 'pw' })
    queryClient.setQueryData(['orders'], ['alice-1'])
    const during: unknown[] = []
    auth.subscribe(() => during.push(queryClient.getQueryData(['orders'])))
    await auth.login({ user: 'bob', password: 'pw' })
    expect(during.every((x) => x === undefined)).toBe(true)
    expect(queryClient.getQueryData(['orders'])).toBeUndefined()
    expect(auth.getSnapshot().user).toEqual({ id: 'bob', name: 'bob' })
  })

  it('keeps public queries (meta.public or the isPublic option) and removes private ones when the session expires', async () => {
    const t = setup()
    await t.auth.ready()
    await t.auth.login({ user: 'ada', password: 'pw' })
    const queryClient = new QueryClient()
    connectQueryClient(t.auth, queryClient, { isPublic: (q) => q.queryKey[0] === 'catalog' })
    await queryClient.fetchQuery({ queryKey: ['config'], queryFn: () => 'cfg', meta: { public: true } })
    queryClient.setQueryData(['catalog', 1], 'item')
    queryClient.setQueryData(['inbox'], ['secret mail'])
    t.server.next = ['reject']
    await t.auth.refresh().catch(() => {})
    expect(t.auth.getSnapshot().status).toBe('expired')
    expect(queryClient.getQueryData(['inbox'])).toBeUndefined()
    expect(queryClient.getQueryData(['config'])).toBe('cfg')
    expect(queryClient.getQueryData(['catalog', 1])).toBe('item')
  })

  it('a login invalidates and refetches the active queries, even those that never go stale', async () => {
    const { auth, queryClient, todos } = await twoUsers()
    let calls = 0
    function Home() {
      const { data } = useQuery({
        queryKey: ['home'],
        queryFn: () => (++calls, auth.getSnapshot().isAuthenticated ? todos() : Promise.resolve('guest view')),
        staleTime: Infinity,
        meta: { public: true },
      })
      return <p>{data}</p>
    }
    render(
      <QueryClientProvider client={queryClient}>
        <Home />
      </QueryClientProvider>,
    )
    await waitFor(() => expect(screen.getByText('guest view')).toBeTruthy())
    expect(calls).toBe(1)
    await act(() => auth.login({ user: 'alice', password: 'pw' }))
    await waitFor(() => expect(screen.getByText('todos of alice')).toBeTruthy())
    expect(calls).toBe(2)
  })

  it('a tab whose session is replaced by another tab’s login as B drops A’s data at once (user change)', async () => {
    const t = tabs(2)
    const owner = new Map<string, string>()
    const login = t.server.authority.login
    t.server.authority.login = async (c) => {
      const body = await login(c)
      owner.set(body.access_token, c.user)
      return body
    }
    t.server.authority.fetchUser = async (token) => ({ id: owner.get(token)!, name: owner.get(token)! })
    await t.clock.advance(200)
    const [here, there] = t.all as [(typeof t.all)[0], (typeof t.all)[0]]
    await Promise.all([here.ready(), there.ready()])
    await here.login({ user: 'alice', password: 'pw' })
    await flush()
    const queryClient = new QueryClient()
    connectQueryClient(here, queryClient)
    queryClient.setQueryData(['inbox'], ['alice mail'])
    const seen: [unknown, unknown][] = []
    here.subscribe(() => seen.push([here.getSnapshot().user, queryClient.getQueryData(['inbox'])]))
    await there.login({ user: 'bob', password: 'pw' })
    await flush()
    expect(here.getSnapshot().user).toEqual({ id: 'bob', name: 'bob' })
    expect(queryClient.getQueryData(['inbox'])).toBeUndefined()
    // At no change that showed bob in this tab was alice's data still cached.
    expect(seen.filter(([user]) => (user as { name?: string } | null)?.name === 'bob').every(([, inbox]) => inbox === undefined)).toBe(true)
  })

  it('disconnect stops the purge', async () => {
    const { auth, queryClient, disconnect } = await twoUsers()
    await auth.login({ user: 'alice', password: 'pw' })
    queryClient.setQueryData(['todos'], 'kept')
    disconnect()
    await auth.logout()
    expect(queryClient.getQueryData(['todos'])).toBe('kept')
  })
})

describe('sessionQueryOptions', () => {
  it('has the key, never goes stale, is public, and follows the session', async () => {
    const { auth, queryClient } = await twoUsers()
    const options = sessionQueryOptions(auth)
    expect(options.queryKey).toEqual(['tessera', 'session'])
    expect(options.queryKey).toEqual(sessionQueryKey)
    expect(options.staleTime).toBe(Infinity)
    expect(options.meta).toEqual({ public: true })
    const seen: string[] = []
    function Who() {
      const { data } = useQuery(sessionQueryOptions(auth))
      seen.push(data ? `${data.status}:${data.user?.name ?? '-'}` : '(loading)')
      return <p>{data?.user?.name ?? data?.status}</p>
    }
    render(
      <QueryClientProvider client={queryClient}>
        <Who />
      </QueryClientProvider>,
    )
    await waitFor(() => expect(screen.getByText('unauthenticated')).toBeTruthy())
    await act(() => auth.login({ user: 'alice', password: 'pw' }))
    await waitFor(() => expect(screen.getByText('alice')).toBeTruthy())
    await act(() => auth.logout())
    await waitFor(() => expect(screen.getByText('unauthenticated')).toBeTruthy())
    expect(queryClient.getQueryData(sessionQueryKey)).toEqual({ status: 'unauthenticated', user: null })
    expect(seen).toContain('authenticated:alice')
  })

  it('a fetch that was in flight during a login cannot bring the old session back into the cache', async () => {
    const { auth, queryClient } = await twoUsers()
    const options = sessionQueryOptions(auth)
    await queryClient.fetchQuery(options)
    let release!: () => void
    const late = queryClient.fetchQuery({
      ...options,
      staleTime: 0,
      queryFn: async () => {
        const before = { status: auth.getSnapshot().status, user: auth.getSnapshot().user }
        await new Promise<void>((r) => (release = r))
        return before
      },
    })
    await auth.login({ user: 'alice', password: 'pw' })
    const alice = { status: 'authenticated', user: { id: 'alice', name: 'alice' } }
    expect(queryClient.getQueryData(sessionQueryKey)).toEqual(alice)
    release()
    await late
    expect(queryClient.getQueryData(sessionQueryKey)).toEqual(alice)
  })

  it('the query waits for the restore instead of reporting initializing', async () => {
    const t = setup()
    const queryClient = new QueryClient()
    expect(t.auth.getSnapshot().status).toBe('initializing')
    await expect(queryClient.fetchQuery(sessionQueryOptions(t.auth))).resolves.toEqual({ status: 'unauthenticated', user: null })
  })
})
