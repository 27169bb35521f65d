import { Client, fetchExchange, gql, mapExchange, type OperationResult } from '@urql/core'
import { pipe, subscribe } from 'wonka'
import { describe, expect, it } from 'vitest'
import { isTesseraError, type Auth } from '../src/index.js'
import { authExchange, type UrqlAuthOptions } from '../src/transports/urql.js'
import { flush } from './fakes.js'
import { fresh, freshOverHttp, until, useResourceServer } from './resource-server.js'

const server = useResourceServer()
const other = useResourceServer()

const Me = gql`
  query Me($n: Int) {
    me {
      token
      n
    }
  }
`
type MeData = { me: { token: string; n: number | null } }

function clientFor(auth: Auth, path = '/graphql', options?: UrqlAuthOptions, url = server.url) {
  return new Client({ url: url + path, exchanges: [authExchange(auth, options), fetchExchange], requestPolicy: 'network-only' })
}
const query = (client: Client, n: number, context?: Record<string, unknown>) => client.query<MeData>(Me, { n }, context).toPromise()
const many = (client: Client, count: number) => Promise.all(Array.from({ length: count }, (_, n) => query(client, n)))
const tokens = (path = '/graphql') => server.hits.filter((h) => h.path === path).map((h) => h.auth)

describe('urql: attaching the token', () => {
  it('adds the current token to fetchOptions headers, keeping the user’s own headers', async () => {
    const { auth, fake } = await fresh(server)
    const client = clientFor(auth)
    const result = await query(client, 1, { fetchOptions: () => ({ headers: { 'x-app': 'demo' } }) })
    expect(result.data?.me).toEqual({ token: fake.current, n: 1 })
    expect(tokens()).toEqual([`Bearer ${fake.current}`])
    expect(server.hits[0]!.headers['x-app']).toBe('demo')
  })

  it('visitor operations (context.tessera: none) are forwarded untouched', async () => {
    const { auth, fake } = await fresh(server)
    const result = await query(clientFor(auth), 1, { tessera: 'none' })
    expect(result.error?.response?.status).toBe(401)
    expect(tokens()).toEqual([null])
    expect(fake.refreshCalls).toBe(0)
  })

  it('I5: a client whose url is another origin sends no token and never refreshes', async () => {
    const { auth, fake } = await fresh(server)
    other.use(fake)
    const result = await query(clientFor(auth, '/graphql', undefined, other.url), 1)
    expect(result.error?.response?.status).toBe(401)
    expect(other.hits.map((h) => h.auth)).toEqual([null])
    expect(fake.refreshCalls).toBe(0)
  })
})

describe('urql: refresh and re-execute', () => {
  it('P1/I1: 30 concurrent operations with an expired token are held for exactly one refresh', async () => {
    const { auth, fake, clock } = await fresh(server)
    clock.jump(301_000)
    const results = await many(clientFor(auth), 30)
    expect(results.every((r) => r.data?.me.token === 'at-2')).toBe(true)
    expect(fake.refreshCalls).toBe(1)
    expect(tokens()).toHaveLength(30)
  })

  it('P1/I1/P7: 401s already in flight join one refresh and each is re-executed once with the new token', async () => {
    const { auth, fake } = await fresh(server)
    fake.revokeAccess()
    const release = server.gate('/graphql')
    const pending = many(clientFor(auth), 30)
    await until(() => server.count('/graphql') === 30)
    release()
    const results = await pending
    expect(results.map((r) => r.data?.me.n)).toEqual(Array.from({ length: 30 }, (_, n) => n))
    expect(results.every((r) => r.data?.me.token === 'at-2' && !r.error)).toBe(true)
    expect(fake.refreshCalls).toBe(1)
    expect(tokens().filter((t) => t === 'Bearer at-1')).toHaveLength(30)
    expect(tokens().filter((t) => t === 'Bearer at-2')).toHaveLength(30)
  })

  it('recognises a GraphQL error with extensions.code UNAUTHENTICATED', async () => {
    const { auth, fake } = await fresh(server)
    fake.revokeAccess()
    const result = await query(clientFor(auth, '/graphql-ext'), 7)
    expect(result.data?.me).toEqual({ token: 'at-2', n: 7 })
    expect(fake.refreshCalls).toBe(1)
  })

  it('P2/I3: a late 401 for an already-replaced token re-executes at once, without a second refresh', async () => {
    const { auth, fake } = await fresh(server)
    const release = server.gate('/graphql')
    const pending = query(clientFor(auth), 1)
    await until(() => server.count('/graphql') === 1)
    await auth.refresh()
    fake.live.delete('at-1')
    release()
    expect((await pending).data?.me.token).toBe('at-2')
    expect(fake.refreshCalls).toBe(1)
    expect(tokens()).toEqual(['Bearer at-1', 'Bearer at-2'])
  })

  it('P5/I3: an auth error right after a successful refresh is delivered as is, after one re-execution', async () => {
    const { auth, fake } = await fresh(server)
    const result = await query(clientFor(auth, '/graphql-401'), 1)
    expect(result.error?.response?.status).toBe(401)
    expect(server.count('/graphql-401')).toBe(2)
    expect(fake.refreshCalls).toBe(1)
  })

  it('network failures during the refresh are retried and the operations then succeed (I6)', async () => {
    const { auth, fake } = await fresh(server, { clock: undefined, retry: { baseDelay: 5, attempts: 3 } })
    fake.next = ['network', 'network']
    fake.revokeAccess()
    const results = await many(clientFor(auth), 10)
    expect(results.every((r) => r.data?.me.token === 'at-2')).toBe(true)
    expect(fake.refreshCalls).toBe(3)
  })
})

describe('urql: failures settle and surface', () => {
  it('P3/I2: a rejected refresh gives every held and failed operation an error result with SESSION_EXPIRED', async () => {
    const { auth, fake } = await fresh(server)
    fake.revokeAccess()
    fake.next = ['reject']
    const client = clientFor(auth)
    const results = await many(client, 20)
    expect(results.every((r) => isTesseraError(r.error?.networkError, 'SESSION_EXPIRED') && !r.data)).toBe(true)
    expect(fake.refreshCalls).toBe(1)
    const late = await query(client, 99)
    expect(isTesseraError(late.error?.networkError, 'SESSION_EXPIRED')).toBe(true)
  })

  it('I4: operations held during a refresh get LOGGED_OUT on logout and never send the old token', async () => {
    const { auth, fake, clock } = await fresh(server)
    fake.next = ['hang']
    clock.jump(301_000)
    const pending = many(clientFor(auth), 5)
    await flush()
    await auth.logout()
    const results = await pending
    expect(results.every((r) => isTesseraError(r.error?.networkError, 'LOGGED_OUT'))).toBe(true)
    expect(server.count('/graphql')).toBe(0)
  })

  it('a teardown drops a held operation: it is never sent', async () => {
    const { auth, fake, clock } = await fresh(server)
    const refresh = fake.authority.refresh
    let finish!: () => void
    const started = new Promise<void>((r) => (finish = r))
    fake.authority.refresh = (rt, signal) => started.then(() => refresh(rt, signal))
    clock.jump(301_000)
    const client = clientFor(auth)
    const dropped: OperationResult[] = []
    const { unsubscribe } = pipe(client.query<MeData>(Me, { n: 1 }), subscribe((r) => dropped.push(r)))
    const kept = query(client, 2)
    await flush()
    unsubscribe()
    finish()
    expect((await kept).data?.me).toEqual({ token: 'at-2', n: 2 })
    expect(server.hits.map((h) => new URL(h.url, server.url).searchParams.get('variables'))).toEqual(['{"n":2}'])
    expect(dropped).toEqual([])
  })

  it('P4: non-auth errors are delivered unchanged and refresh nothing', async () => {
    const { auth, fake } = await fresh(server)
    const result = await query(clientFor(auth, '/api/error'), 1)
    expect(result.error?.response?.status).toBe(500)
    expect(server.count('/api/error')).toBe(1)
    expect(fake.refreshCalls).toBe(0)
  })
})

describe('urql: the refresh bypasses the exchange pipeline (P6)', () => {
  it('P6: with an HTTP authority on the same origin, the exchanges only ever see GraphQL operations', async () => {
    const { fake, auth } = await freshOverHttp(server)
    const seen: string[] = []
    const record = mapExchange({ onOperation: (op) => void seen.push(`${op.kind} ${op.context.url}`) })
    const client = new Client({ url: `${server.url}/graphql`, exchanges: [authExchange(auth), record, fetchExchange], requestPolicy: 'network-only' })
    fake.revokeAccess()
    const results = await many(client, 10)
    expect(results.every((r) => r.data?.me.token === 'at-2')).toBe(true)
    expect(server.count('/auth/refresh')).toBe(1)
    expect(seen.filter((s) => s.startsWith('query'))).toHaveLength(20)
    expect(seen.every((s) => s.endsWith('/graphql'))).toBe(true)
    auth.dispose()
  })
})
