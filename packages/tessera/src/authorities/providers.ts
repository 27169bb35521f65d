import { TesseraError, sessionStorageStore, type Authority, type StoragePort, type TokenSet } from '../index.js'
import type { OidcAuthority } from './oidc.js'

/**
 * What `auth.login()` takes to sign in through a named provider of {@link withProviders} (refine's
 * `login({ providerName })` sends it).
 * @example `auth.login({ provider: 'google', params: { prompt: 'select_account' } })`
 */
export interface ProviderLogin {
  /** The name the provider was registered under. */
  provider: string
  /** Extra authorization request parameters (`prompt`, `login_hint`, …). */
  params?: Record<string, string>
}

/** Options of {@link withProviders}. */
export interface WithProvidersOptions {
  /** Remembers, in this tab, which provider the login in progress (then the session) belongs to. @defaultValue `sessionStorageStore()` */
  storage?: StoragePort
  /** @defaultValue `'tessera.provider'` */
  key?: string
}

/** An {@link Authority} that signs in with credentials or through a named OpenID provider. */
export type ProvidersAuthority<User, Credentials> = Authority<User, Credentials | ProviderLogin> &
  Required<Pick<Authority<User, Credentials | ProviderLogin>, 'logout' | 'fetchUser' | 'restore' | 'hasCallback'>>

const NAME = /^[\w-]+$/
const TAG = '~'

/**
 * One session, several ways in: `primary` for credentials (e.g. an `httpAuthority`), and each
 * OpenID provider under a name, for "Sign in with …" buttons (refine's `providerName`).
 *
 * - `login({ provider, params })` starts that provider's redirect; credentials go to `primary`.
 * - On the page load of the callback, `restore()` hands it to the provider whose login this tab
 *   started (several may share one `redirectUri`); without a callback, to `primary.restore`.
 * - The session remembers its provider in its refresh token (`name~token`, a prefix only this
 *   authority reads), so refreshes and logout reach the provider that issued it, in every tab and
 *   after reloads. The profile comes from the provider of the latest login or refresh seen here.
 *
 * @throws TypeError at once when a name is not made of letters, digits, `_` and `-`.
 * @example
 * ```ts
 * const password = httpAuthority({ baseUrl: '/auth' })
 * const authority = withProviders(password, {
 *   work: oidcAuthority({ issuer: 'https://login.microsoftonline.com/<tenant>/v2.0', clientId, redirectUri }),
 * })
 * const auth = createAuth({ authority, storage: localStorageStore() })
 * auth.login({ provider: 'work' }) // or auth.login({ email, password })
 * ```
 */
export function withProviders<User, Credentials>(
  primary: Authority<User, Credentials> | null,
  providers: Record<string, OidcAuthority<User>>,
  options: WithProvidersOptions = {},
): ProvidersAuthority<User, Credentials> {
  for (const name of Object.keys(providers)) if (!NAME.test(name)) throw new TypeError(`withProviders: "${name}" is not a valid provider name`)
  const { storage = sessionStorageStore(), key = 'tessera.provider' } = options
  // The provider of the session in hand as this tab last saw it; null: primary; undefined: not seen yet (a reload).
  let owner: string | null | undefined

  const named = (name: unknown) => (typeof name === 'string' && Object.hasOwn(providers, name) ? providers[name] : undefined)
  function credentials(): Authority<User, Credentials> {
    if (!primary) throw new TesseraError('LOGIN_FAILED', 'Sign in through a provider: no authority takes credentials here', { field: 'provider' })
    return primary
  }
  /** The provider a refresh token belongs to, and the token as that provider knows it. */
  function split(refreshToken: string | undefined): [string | null, string | undefined] {
    const i = refreshToken?.indexOf(TAG) ?? -1
    const name = i > 0 ? refreshToken!.slice(0, i) : null
    return named(name) ? [name, refreshToken!.slice(i + 1)] : [null, refreshToken]
  }
  /** A token answer of `name` (null: primary): remembered as the session's provider, its refresh token tagged. */
  function tag(name: string | null, body: unknown): unknown {
    if (body == null) return body
    owner = name
    const rt = (body as { refresh_token?: unknown }).refresh_token
    return name && typeof rt === 'string' ? { ...(body as object), refresh_token: name + TAG + rt } : body
  }
  /** The provider this tab last signed in with (the login in progress, then its session). Storage may fail (P20). */
  async function remembered() {
    try {
      return (await storage.get(key)) ?? null
    } catch {
      return null
    }
  }
  async function forget() {
    try {
      await storage.remove(key)
    } catch {}
  }

  return {
    async login(request, signal) {
      const name = (request as ProviderLogin | null)?.provider
      if (name === undefined) {
        await forget()
        return tag(null, await credentials().login(request as Credentials, signal))
      }
      const provider = named(name)
      if (!provider) throw new TesseraError('LOGIN_FAILED', `No provider named "${String(name)}"`, { field: 'provider' })
      try {
        await storage.set(key, name) // the callback page load needs to know whose login this is
      } catch (cause) {
        throw new TesseraError('LOGIN_FAILED', 'Could not remember the provider across the redirect (storage refused)', { cause })
      }
      return provider.login({ params: (request as ProviderLogin).params }, signal)
    },

    hasCallback: () => Object.values(providers).some((p) => p.hasCallback()) || !!primary?.hasCallback?.(),

    async restore(signal) {
      const started = await remembered()
      // The provider whose login this tab started; else any that sees a callback (it says why it is not its own).
      const name = named(started)?.hasCallback() ? started! : Object.keys(providers).find((n) => providers[n]!.hasCallback())
      if (name) return tag(name, await providers[name]!.restore(signal))
      return primary?.restore ? tag(null, await primary.restore(signal)) : null
    },

    async refresh(refreshToken, signal, request) {
      const [name, token] = split(refreshToken)
      // A token per audience is asked of the provider that holds the session.
      return tag(name, await (named(name) ?? credentials()).refresh(token, signal, request))
    },

    async logout(tokens: TokenSet, signal) {
      const [name, token] = split(tokens.refreshToken)
      const by = named(name ?? (tokens.refreshToken ? null : owner)) ?? primary
      await forget()
      await by?.logout?.({ ...tokens, refreshToken: token }, signal)
    },

    async fetchUser(accessToken, signal) {
      const by = named(owner === undefined ? await remembered() : owner) ?? primary
      // An authority without a profile endpoint: the session has no user beyond what the login gave.
      return by?.fetchUser ? by.fetchUser(accessToken, signal) : (null as User)
    },
  }
}
