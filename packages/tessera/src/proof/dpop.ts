import { TesseraError, type Grant, type ProofPort } from '../index.js'

/** Options of {@link createDpop}; the defaults are the browser's. */
export interface DpopOptions {
  /** The key's name in IndexedDB: engines (and tabs) with the same name share one key. @defaultValue `'tessera'` */
  name?: string
  /** @defaultValue `globalThis.indexedDB`, read when the handle is made */
  indexedDB?: IDBFactory
  /** @defaultValue `globalThis.crypto`, read when the handle is made */
  crypto?: Crypto
}

/**
 * A DPoP key and its proofs (RFC 9449). Give it to the engine (`proof`) and to the authority
 * (`dpop`); see {@link createDpop}.
 */
export interface Dpop extends ProofPort {
  /** The key pair: a P-256 key whose private half cannot be exported, shared by every tab of the origin through IndexedDB. */
  keyPair(): Promise<CryptoKeyPair>
  /** The JWK SHA-256 thumbprint of the public key (RFC 7638), what servers bind tokens to (`cnf.jkt`). */
  thumbprint(): Promise<string>
  /**
   * A proof for one request: `htm` (the method, upper-cased), `htu` (the URL without query and
   * fragment), `iat`, a random `jti`, `ath` when an access token goes with the request, and the
   * latest `nonce` the URL's origin gave.
   */
  proof(method: string, url: string, accessToken?: string): Promise<string>
  /**
   * `fetch` (yours, else the global one at call time) with a proof on every request: `ath` for a
   * request that carries `Authorization: DPoP <token>`. A server asking for its nonce (a 400 with
   * `error: "use_dpop_nonce"`, or a 401 with `WWW-Authenticate: DPoP error="use_dpop_nonce"`) gets
   * the request once more. What `httpAuthority({ dpop })` sends its calls with.
   */
  fetch(fetchImpl?: typeof fetch): typeof fetch
  /** Forgets the key: the stored one is deleted if it is still this one, and the next proof uses a new key (the engine's `logout` does this). */
  reset(): Promise<void>
}

interface Stored {
  id: string
  pair: CryptoKeyPair
}
interface Key extends Stored {
  /** The proof header, encoded: `typ`, `alg`, `jwk`. */
  head: string
  jwk: JsonWebKey
}

const utf8 = (text: string) => new TextEncoder().encode(text)
const b64u = (bytes: ArrayBuffer | Uint8Array) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
const part = (json: object) => b64u(utf8(JSON.stringify(json)))
/** A header of a fetch `Response`, of axios' headers, or of a plain record. */
const header = (headers: unknown, name: string) =>
  String((typeof (headers as Headers)?.get === 'function' ? (headers as Headers).get(name) : (headers as Record<string, unknown> | undefined)?.[name]) ?? '')
const originOf = (url: string) => new URL(url, globalThis.location?.href).origin
/** Anything in IndexedDB may have been written by other code on the origin: only a P-256 pair is a key. */
const isStored = (x: unknown): x is Stored => {
  const s = x as Stored | undefined
  return typeof s?.id === 'string' && s.pair?.publicKey?.type === 'public' && s.pair.privateKey?.type === 'private' && (s.pair.privateKey.algorithm as EcKeyAlgorithm).namedCurve === 'P-256'
}
const unavailable = (what: string, cause?: unknown) =>
  new TesseraError('DPOP_UNAVAILABLE', `DPoP needs ${what}; no token is sent without its proof`, { cause })

/**
 * Binds the session's tokens to a key held by the page (DPoP, RFC 9449): a token copied out of the
 * page, a log or an extension is useless without the key, whose private half WebCrypto never lets
 * out. One key per origin and `name`, kept in IndexedDB: every tab uses it and a reload keeps it;
 * tabs that make it at the same moment end with one (added in one transaction only if absent).
 *
 * - `createAuth({ proof })`: every request a transport sends with the token (fetch, axios, urql,
 *   alova) carries `Authorization: DPoP <token>` (whatever `placement` says) and a `DPoP` proof
 *   with `ath`; a resource server's `use_dpop_nonce` 401 is answered by one retry with its nonce,
 *   never by a refresh.
 * - `httpAuthority({ dpop })`, `oidcAuthority({ dpop })`: the token endpoint gets proofs too.
 * - After the engine's `logout` (in this tab or another) the key is dropped: the next session gets a
 *   new one. The logout call the engine makes in that same turn still proves with the old key.
 * - Server nonces (`DPoP-Nonce`) are kept per origin, the latest one.
 *
 * @throws {@link TesseraError} `DPOP_UNAVAILABLE` at once where IndexedDB or WebCrypto is missing (an
 * old webview, a page that is not a secure context, a server render): never a silent fallback to
 * Bearer. An IndexedDB that fails later rejects requests with the same code.
 * @remarks A script running in the page can still use the key to make proofs: DPoP protects tokens
 * that leave the page, not a page that is compromised.
 * @see RFC 9449, RFC 7638
 * @example
 * ```ts
 * import { createDpop } from 'tessera/dpop'
 * const dpop = createDpop()
 * const auth = createAuth({ authority: httpAuthority({ baseUrl: '/auth', dpop }), proof: dpop })
 * ```
 */
export function createDpop(options: DpopOptions = {}): Dpop {
  const idb = options.indexedDB ?? globalThis.indexedDB
  const crypto = options.crypto ?? globalThis.crypto
  if (!idb) throw unavailable('IndexedDB')
  if (!crypto?.subtle) throw unavailable('WebCrypto (a secure context)')
  const { subtle } = crypto
  const name = options.name ?? 'tessera'
  const nonces = new Map<string, string>()
  let db: Promise<IDBDatabase> | null = null
  let current: Promise<Key> | null = null
  let ath: [string, Promise<string>] | null = null

  const open = () =>
    (db ??= new Promise<IDBDatabase>((resolve, reject) => {
      const req = idb.open('tessera-dpop', 1)
      req.onupgradeneeded = () => req.result.createObjectStore('keys')
      req.onsuccess = () => {
        // Another page deleting or upgrading the database: let go, open again on the next use.
        req.result.onversionchange = () => (req.result.close(), (db = null))
        resolve(req.result)
      }
      req.onerror = () => reject(req.error)
    }).catch((cause) => {
      db = null
      throw unavailable('a working IndexedDB', cause)
    }))

  /** One readwrite transaction on the key's record: `step` reads it and may write; resolves what `step` returned once committed. */
  const transact = <T>(step: (record: unknown, store: IDBObjectStore) => T) =>
    open().then(
      (d) =>
        new Promise<T>((resolve, reject) => {
          const tx = d.transaction('keys', 'readwrite')
          const store = tx.objectStore('keys')
          const req = store.get(name)
          let out: T
          req.onsuccess = () => (out = step(req.result, store))
          tx.oncomplete = () => resolve(out)
          tx.onerror = tx.onabort = () => reject(unavailable('a working IndexedDB', tx.error))
        }),
    )

  async function load(): Promise<Key> {
    let stored: unknown = await transact((record) => record)
    if (!isStored(stored)) {
      const pair = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
      const mine: Stored = { id: crypto.randomUUID(), pair }
      // Added only if absent, in one transaction: tabs racing to make the first key all end with the first one stored.
      stored = await transact((record, store) => (isStored(record) ? record : (store.put(mine, name), mine)))
    }
    const { id, pair } = stored as Stored
    const { kty, crv, x, y } = await subtle.exportKey('jwk', pair.publicKey)
    const jwk = { kty, crv, x, y }
    return { id, pair, jwk, head: part({ typ: 'dpop+jwt', alg: 'ES256', jwk }) }
  }
  const key = () =>
    (current ??= load().catch((e) => {
      current = null
      throw e
    }))

  const hash = async (text: string) => b64u(await subtle.digest('SHA-256', utf8(text)))
  /** `ath`: one digest per access token, not per request. */
  const athOf = (token: string) => (ath?.[0] === token ? ath : (ath = [token, hash(token)]))[1]

  async function proof(method: string, url: string, accessToken?: string): Promise<string> {
    const { head, pair } = await key() // taken at once: a proof started before a reset keeps its key
    const target = new URL(url, globalThis.location?.href)
    const claims = {
      htm: method.toUpperCase(),
      htu: target.origin + target.pathname,
      iat: Math.floor(Date.now() / 1000),
      jti: crypto.randomUUID(),
      ath: accessToken && (await athOf(accessToken)),
      nonce: nonces.get(target.origin),
    }
    const input = `${head}.${part(claims)}`
    return `${input}.${b64u(await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, utf8(input)))}`
  }

  /** Keeps the server's new nonce; true when the answer asks for the request again with it. */
  function asked(url: string, status: number, headers: unknown, error?: unknown): boolean {
    const nonce = header(headers, 'dpop-nonce')
    if (!nonce || nonce.length > 1024) return false
    nonces.set(originOf(url), nonce)
    return status === 401 ? /use_dpop_nonce/.test(header(headers, 'www-authenticate')) : status === 400 && error === 'use_dpop_nonce'
  }

  const dpop: Dpop = {
    keyPair: () => key().then((k) => k.pair),
    thumbprint: () => key().then(({ jwk: { crv, kty, x, y } }) => hash(JSON.stringify({ crv, kty, x, y }))),
    proof,
    fetch: (fetchImpl) => async (input, init = {}) => {
      const request = input instanceof Request ? input : null
      const url = request ? request.url : String(input)
      const headers = new Headers(init.headers ?? request?.headers)
      const token = /^DPoP (.+)$/i.exec(headers.get('authorization') ?? '')?.[1]
      for (let retried = false; ; retried = true) {
        headers.set('DPoP', await proof(init.method ?? request?.method ?? 'GET', url, token))
        const res = await (fetchImpl ?? globalThis.fetch)(request ? request.clone() : input, { ...init, headers })
        const error = res.status === 400 && res.headers.has('dpop-nonce') && ((await res.clone().json().catch(() => null)) as { error?: unknown } | null)?.error
        if (retried || !asked(url, res.status, res.headers, error)) return res
        await res.body?.cancel().catch(() => {})
      }
    },
    async reset() {
      const was = current
      current = null
      const k = await was?.catch(() => null)
      if (k) await transact((record, store) => (record as Stored | undefined)?.id === k.id && store.delete(name))
    },
    attach(auth) {
      // After the turn of the logout, so that the logout call the engine starts in it proves with the session's key.
      auth.on('logout', () => queueMicrotask(() => void dpop.reset().catch(() => {})))
      return async (grant: Grant, request) => {
        const { url } = request
        if (!url) return grant
        const { token, generation } = grant
        return {
          token,
          generation,
          headers: { Authorization: `DPoP ${token}`, DPoP: await proof(request.method ?? 'GET', url, token) },
          retry: (response) => asked(url, response.status, response.headers),
        }
      }
    },
  }
  return dpop
}
