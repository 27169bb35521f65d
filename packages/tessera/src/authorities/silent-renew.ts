import { TesseraError } from '../index.js'

/** The name of the renewal frame: the page loaded in it knows it is one (`window.name`). */
const FRAME_NAME = 'tessera-silent-renew'
/** What the page at the silent redirect URI posts to its parent. */
const MESSAGE = 'tessera:silent-renew'
/** Marks the renewal handle that stands in for a refresh token the provider did not give. */
const HANDLE = 'silent:'
/** Once the frame loaded a page, how long the answer may take before the frame counts as blocked, in ms. */
const GRACE = 2_000

/**
 * What a {@link SilentFrame} is asked to do: load an authorization request with `prompt=none`
 * out of sight and hand back the provider's answer.
 *
 * @example `{ url: 'https://id.example.com/auth?prompt=none&…', redirectUri: 'https://app.example.com/silent', signal }`
 */
export interface SilentFrameRequest {
  /** The authorization request to load. */
  url: string
  /** The silent redirect URI: where the provider sends the answer. */
  redirectUri: string
  /** Aborted by the engine's per-attempt timeout (`retry.timeout`), a logout or `dispose()`: stop and reject with its reason. */
  signal: AbortSignal
}

/**
 * Loads a silent authorization request and resolves the provider's answer as a URL at the silent
 * redirect URI (`?code=…&state=…` or `?error=login_required&state=…`). The default is a hidden
 * iframe; tests inject one that follows the provider's redirects with a cookie jar.
 *
 * @throws whatever it likes: a {@link TesseraError} is passed on, anything else becomes `NETWORK_ERROR`.
 * @example
 * ```ts
 * const frame: SilentFrame = async ({ url, redirectUri }) => {
 *   const res = await fetch(url, { redirect: 'manual' }) // a provider that answers with one redirect
 *   return new URL(res.headers.get('location')!, url).href
 * }
 * ```
 */
export type SilentFrame = (request: SilentFrameRequest) => Promise<string>

/**
 * Options of silent renew in `oidcAuthority({ silentRenew })`.
 *
 * @example `{ redirectUri: `${location.origin}/silent.html` }`
 */
export interface SilentRenewOptions {
  /**
   * Where the provider sends the silent answer (registered at the provider). The page there must
   * hand it to the parent: call {@link handleSilentCallback}, or run the app's engine, whose
   * `restore()` does it. Not used when the provider advertises `response_mode=web_message`.
   * @defaultValue the authority's `redirectUri`
   */
  redirectUri?: string
  /** @defaultValue a hidden iframe (needs `document`) */
  frame?: SilentFrame
}

/** Whether this page is loaded in a renewal frame of its parent. Reads globals at call time only. */
export function inSilentFrame(): boolean {
  const w = globalThis as { name?: unknown; parent?: unknown }
  return w.name === FRAME_NAME && w.parent != null && w.parent !== globalThis
}

/** Hands `url` to the parent page, and to nobody else: the message is for the page's own origin only. */
export function handOver(url: string): void {
  globalThis.parent.postMessage({ type: MESSAGE, url }, globalThis.location.origin)
}

/**
 * For the page at the silent redirect URI: when this page is loaded in Tessera's renewal frame,
 * hands the provider's answer (this page's URL) to the parent page and returns `true` — then start
 * nothing else here (no engine, no login, no router). Returns `false` anywhere else.
 *
 * @remarks The message goes to the parent only if it has this page's origin; the parent accepts it
 * only from its own origin and from the frame it made. An app whose engine loads in the frame does
 * not need this: `restore()` detects the frame and hands the answer over (the engine then stays
 * `unauthenticated` there), but the app must still not call `login()` in it.
 * @example
 * ```ts
 * // silent.html: <script type="module">import { handleSilentCallback } from 'tessera/oidc'; handleSilentCallback()</script>
 * import { handleSilentCallback } from 'tessera/oidc'
 * if (!handleSilentCallback()) startApp()
 * ```
 */
export function handleSilentCallback(): boolean {
  if (!inSilentFrame()) return false
  handOver(globalThis.location.href)
  return true
}

/** The renewal handle of a session of subject `sub`: kept by the engine where a refresh token would be. */
export const toHandle = (sub: string) => HANDLE + encodeURIComponent(sub)
export const isHandle = (token: string | undefined): boolean => !!token?.startsWith(HANDLE)
/** The subject a renewal handle names; `undefined` for a refresh token or a handle that is not one. */
export function subjectOf(handle: string | undefined): string | undefined {
  try {
    return isHandle(handle) ? decodeURIComponent(handle!.slice(HANDLE.length)) || undefined : undefined
  } catch {
    return undefined
  }
}

/** Same origin and path: the query and fragment may differ. */
export const samePage = (a: URL, b: string) => {
  const u = new URL(b)
  return a.origin === u.origin && a.pathname === u.pathname
}

/**
 * The default {@link SilentFrame}: a hidden iframe named for `inSilentFrame()`. It resolves the URL
 * the page at the silent redirect URI posts (from this origin, from this frame only), or the
 * provider's own `web_message` answer (from the provider's origin, from this frame only). A frame
 * that loads a page and sends nothing within 2 s is blocked: `NETWORK_ERROR`, never a hang.
 */
export const hiddenFrame: SilentFrame = ({ url, redirectUri, signal }) =>
  new Promise<string>((resolve, reject) => {
    const doc = globalThis.document
    if (!doc) return reject(new TesseraError('INVALID_GRANT', 'No refresh token, and no document for silent renew', { field: 'refresh_token' }))
    if (signal.aborted) return reject(signal.reason)
    const provider = new URL(url).origin
    const frame = doc.createElement('iframe')
    let grace: ReturnType<typeof setTimeout> | undefined
    const finish = (error: unknown, answer?: string) => {
      clearTimeout(grace)
      signal.removeEventListener('abort', onAbort)
      globalThis.removeEventListener('message', onMessage)
      frame.remove()
      if (answer === undefined) reject(error)
      else resolve(answer)
    }
    const onAbort = () => finish(signal.reason)
    const onMessage = (event: MessageEvent) => {
      const data = event.data as { type?: unknown; url?: unknown; response?: unknown } | null
      if (event.source !== frame.contentWindow || typeof data !== 'object' || data === null) return
      if (event.origin === globalThis.location.origin && data.type === MESSAGE && typeof data.url === 'string') return finish(null, data.url)
      if (event.origin === provider && data.type === 'authorization_response' && typeof data.response === 'object' && data.response) {
        const answer = new URL(redirectUri)
        for (const [k, v] of Object.entries(data.response)) if (typeof v === 'string') answer.searchParams.set(k, v)
        finish(null, answer.href)
      }
    }
    const onLoad = () => {
      clearTimeout(grace)
      grace = setTimeout(() => {
        let here: string | undefined
        try {
          here = frame.contentWindow?.location.href // readable only on this origin
        } catch {}
        const ours = here !== undefined && samePage(new URL(here), redirectUri)
        finish(
          new TesseraError(
            'NETWORK_ERROR',
            ours
              ? `The silent renew page ${redirectUri} did not call handleSilentCallback()`
              : 'The silent renew frame was blocked (X-Frame-Options, CSP frame-ancestors, or a page that needs the user)',
          ),
        )
      }, GRACE)
    }
    frame.name = FRAME_NAME
    frame.title = 'Session renewal'
    frame.tabIndex = -1
    frame.setAttribute('aria-hidden', 'true')
    frame.style.cssText = 'position:absolute;width:0;height:0;border:0;visibility:hidden'
    frame.addEventListener('load', onLoad)
    signal.addEventListener('abort', onAbort, { once: true })
    globalThis.addEventListener('message', onMessage)
    frame.src = url
    ;(doc.body ?? doc.documentElement).appendChild(frame)
  })
