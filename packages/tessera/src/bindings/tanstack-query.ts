import { queryOptions, type Query, type QueryClient } from '@tanstack/react-query'
import type { Auth, AuthSnapshot, AuthStatus } from '../index.js'

/**
 * The data of the session query. Holds no token.
 * @example `const { data } = useQuery(sessionQueryOptions(auth)) // data: SessionData<User> | undefined`
 */
export interface SessionData<User = unknown> {
  status: AuthStatus
  user: User | null
}

/**
 * The key of the session query.
 * @example `queryClient.getQueryData(sessionQueryKey)`
 */
export const sessionQueryKey = ['tessera', 'session'] as const

const toData = <User>(s: AuthSnapshot<User>): SessionData<User> => ({ status: s.status, user: s.user })

/**
 * Query options for the session itself (`['tessera', 'session']`): the data is `{ status, user }`,
 * never stale, marked `meta.public` so {@link connectQueryClient} keeps it, and pushed into the cache
 * on every change by {@link connectQueryClient}. Data written to it is always the session as it is
 * at that moment, so a refetch that was in flight during a change cannot bring back an old user.
 *
 * @example
 * ```tsx
 * const { data } = useQuery(sessionQueryOptions(auth))
 * return data?.user ? <Avatar user={data.user} /> : null
 * ```
 */
export function sessionQueryOptions<User>(auth: Auth<User, never>) {
  return queryOptions({
    queryKey: sessionQueryKey,
    queryFn: () => auth.ready().then(() => toData(auth.getSnapshot())),
    // Whatever a fetch started earlier resolves with, the cache gets the session as it is now:
    // a late refetch never overwrites a newer login, user or logout.
    structuralSharing: (old: unknown) => {
      const now = toData(auth.getSnapshot())
      const was = old as SessionData<User> | undefined
      return was && was.status === now.status && was.user === now.user ? was : now
    },
    staleTime: Infinity,
    meta: { public: true },
  })
}

/**
 * Options of {@link connectQueryClient}.
 * @example `connectQueryClient(auth, queryClient, { isPublic: (q) => q.queryKey[0] === 'catalog' })`
 */
export interface ConnectQueryClientOptions {
  /** Queries kept when the session ends or changes hands, besides those with `meta.public === true`. */
  isPublic?: (query: Query) => boolean
}

/**
 * Ties a `QueryClient` to the session: when the session ends (logout, expiry), when a new login
 * starts, and when the user changes, every private query is removed (everything except
 * `meta.public === true` and `isPublic`), so nothing of one user is ever shown to the next. When a
 * session begins, queries are invalidated and active ones refetched. The session query
 * ({@link sessionQueryOptions}) is kept up to date. Returns the function that disconnects.
 *
 * @remarks Removal runs synchronously inside the engine's change notification, before React
 * renders the new session.
 * @example
 * ```ts
 * const queryClient = new QueryClient()
 * const disconnect = connectQueryClient(auth, queryClient)
 * ```
 */
export function connectQueryClient<User>(auth: Auth<User, never>, queryClient: QueryClient, options: ConnectQueryClientOptions = {}): () => void {
  let prev = auth.getSnapshot()
  return auth.subscribe(() => {
    const s = auth.getSnapshot()
    const was = prev
    prev = s
    const left = was.isAuthenticated && !s.isAuthenticated
    if (left || (was.user !== null && s.user !== was.user))
      queryClient.removeQueries({ predicate: (q) => q.meta?.public !== true && !options.isPublic?.(q) })
    if ((s.status !== was.status || s.user !== was.user) && queryClient.getQueryData(sessionQueryKey))
      queryClient.setQueryData(sessionQueryKey, toData(s))
    if (s.isAuthenticated && !was.isAuthenticated) void queryClient.invalidateQueries()
  })
}
