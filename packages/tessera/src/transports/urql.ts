import { makeErrorResult, makeOperation, type Exchange, type Operation, type OperationResult } from '@urql/core'
import { makeFetchBody, makeFetchURL } from '@urql/core/internal'
import { filter, makeSubject, merge, pipe } from 'wonka'
import type { AuthTransportApi, Grant } from '../index.js'

/**
 * Options of {@link authExchange}.
 * @example
 * ```ts
 * authExchange(auth, { isAuthError: (result) => result.error?.graphQLErrors.some((e) => e.extensions?.code === 'FORBIDDEN_TOKEN') ?? false })
 * ```
 */
export interface UrqlAuthOptions {
  /**
   * Whether a result is an auth error that deserves a refresh and one re-execution.
   * @defaultValue HTTP 401, or a GraphQL error with `extensions.code === 'UNAUTHENTICATED'`
   */
  isAuthError?: (result: OperationResult) => boolean
}

const defaultIsAuthError = ({ error }: OperationResult) =>
  !!error && (error.response?.status === 401 || error.graphQLErrors.some((e) => e.extensions?.code === 'UNAUTHENTICATED'))

/**
 * An urql exchange that sends the session's token with every operation and survives expiry.
 * Put it before `fetchExchange` (after `cacheExchange`).
 *
 * - Each operation waits for a token valid now (held while a refresh runs); the token is read
 *   when the operation is forwarded (P7) and added to `fetchOptions.headers`, and the operation
 *   is stamped with the token's generation (P2). Operations with `context.tessera === 'none'` and
 *   clients whose `url` is not on the allow-list are forwarded untouched (I5).
 * - An auth error joins the one refresh of the session, or, when the token it carried was already
 *   replaced, re-executes at once without refreshing (P1, P2). Each operation is re-executed at
 *   most once; a second auth error is delivered as is (P5).
 * - With a proof port (DPoP), each forwarded operation is proven for its method (GET or POST, as
 *   the fetchExchange will send it) and URL; a server asking for its nonce gets the operation once
 *   more, which is not an auth error: no refresh, and the replay is kept.
 * - When the session ends, every held operation gets an error result whose `networkError` is the
 *   engine's {@link TesseraError} (`SESSION_EXPIRED`, `LOGGED_OUT`, …) (P3); a teardown drops a
 *   held operation.
 *
 * @example
 * ```ts
 * import { Client, cacheExchange, fetchExchange } from '@urql/core'
 * import { authExchange } from 'tessera/urql'
 *
 * const client = new Client({ url: '/graphql', exchanges: [cacheExchange, authExchange(auth), fetchExchange] })
 * client.query(PublicQuery, {}, { tessera: 'none' }) // a visitor operation
 * ```
 */
export function authExchange(auth: AuthTransportApi, options: UrqlAuthOptions = {}): Exchange {
  const isAuthError = options.isAuthError ?? defaultIsAuthError
  return ({ forward }) =>
    (operations$) => {
      const ready = makeSubject<Operation>()
      const failed = makeSubject<OperationResult>()
      // The operations waiting for a token, by key: a teardown (or a newer wait) drops the entry, and
      // the wait's outcome is then ignored. A flag, not an AbortController: no event target per operation.
      const held = new Map<number, object>()

      // Waits for a token (or, after an auth error, for the replacement of `generation`), then forwards with `marks`.
      function hold(operation: Operation, generation?: number, marks: Marks = FRESH) {
        const ticket = {}
        held.set(operation.key, ticket)
        // What a proof (DPoP) signs; the method is worked out only if a proof asks for it.
        const request = { url: operation.context.url, get method() { return methodOf(operation) } }
        const wait = generation === undefined ? auth.getGrant(request) : auth.handleUnauthorized(generation, request)
        wait.then(
          (grant) => take(operation, ticket) && ready.next(withToken(operation, grant, marks)),
          (error: unknown) => take(operation, ticket) && failed.next(makeErrorResult(operation, error as Error)),
        )
      }
      /** Whether this wait is still the operation's (no teardown, no newer wait); if so it is done. */
      const take = (operation: Operation, ticket: object) => held.get(operation.key) === ticket && held.delete(operation.key)

      const sent$ = pipe(
        operations$,
        filter((operation) => {
          if (operation.kind === 'teardown') {
            held.delete(operation.key)
            return true
          }
          if (operation.context.tessera === 'none' || !auth.isAllowedUrl(operation.context.url)) return true
          hold(operation)
          return false
        }),
      )

      const results$ = pipe(
        forward(merge([sent$, ready.source])),
        filter((result) => {
          const { tesseraGrant, tesseraReplay, tesseraNonce } = result.operation.context
          const grant = tesseraGrant as Grant | undefined
          const response = result.error?.response as Response | undefined
          if (!grant) return true
          // A server asking for its DPoP nonce gets the operation once more: not a 401 (no refresh, the replay kept).
          // Asked twice, it is the server's answer: delivered, no refresh.
          if (response && grant.retry?.(response)) {
            if (tesseraNonce) return true
            hold(result.operation, undefined, { tesseraReplay, tesseraNonce: true })
          } else if (!tesseraReplay && isAuthError(result)) hold(result.operation, grant.generation, { tesseraReplay: true, tesseraNonce })
          else return true
          return false
        }),
      )
      return merge([results$, failed.source])
    }
}

/** What an operation has had: its one replay after an auth error, its one DPoP nonce retry. */
interface Marks {
  tesseraReplay: boolean
  tesseraNonce: boolean
}
const FRESH: Marks = { tesseraReplay: false, tesseraNonce: false }

/** The method urql's fetchExchange sends `operation` with: GET for a query that `preferGetMethod` allows and whose URL fits. */
function methodOf(operation: Operation): string {
  if (operation.kind !== 'query' || !operation.context.preferGetMethod) return 'POST'
  const copy = makeOperation(operation.kind, operation, { ...operation.context })
  makeFetchURL(copy, makeFetchBody(copy)) // turns preferGetMethod off when the URL would be too long, as the fetchExchange does
  return copy.context.preferGetMethod ? 'GET' : 'POST'
}

function withToken(operation: Operation, grant: Grant, marks: Marks): Operation {
  const { fetchOptions } = operation.context
  const init = (typeof fetchOptions === 'function' ? fetchOptions() : fetchOptions) ?? {}
  // Plain objects, arrays and `Headers` alike (no Headers object made when there are none); the token read now, at forward time (P7).
  const headers: Record<string, string> = init.headers ? Object.fromEntries(new Headers(init.headers)) : {}
  for (const name in grant.headers) headers[name.toLowerCase()] = grant.headers[name]!
  return makeOperation(operation.kind, operation, {
    ...operation.context,
    fetchOptions: { ...init, headers },
    tesseraGrant: grant,
    ...marks,
  })
}
