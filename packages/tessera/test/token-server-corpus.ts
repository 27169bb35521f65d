import type { ServerResponse } from 'node:http'

/**
 * Issue 13 finding 4: token servers that bend the spec. Raw answers as real providers and
 * hand-rolled backends put them on the wire (status, exact headers, exact bytes), shared by the
 * OIDC and the JSON-authority tests so both authorities face the same corpus.
 */
export interface RawAnswer {
  status: number
  /** Exactly these headers: none means no `content-type` at all. */
  headers: Record<string, string>
  body: string
}

const html = '<!doctype html><html><head><title>Error</title></head><body><h1>Something went wrong</h1></body></html>'

/** A refresh the server refused, whatever it wrote: each must end the session (`SESSION_EXPIRED`). */
export const refusedRefresh: Record<string, RawAnswer> = {
  'empty 400, no content-type': { status: 400, headers: {}, body: '' },
  'text/plain 401': { status: 401, headers: { 'content-type': 'text/plain' }, body: 'Unauthorized' },
  'HTML 403': { status: 403, headers: { 'content-type': 'text/html; charset=utf-8' }, body: html },
  'invalid_code (JSON) on 403': { status: 403, headers: { 'content-type': 'application/json' }, body: '{"error":"invalid_code","error_description":"code expired"}' },
  '401 with only a WWW-Authenticate challenge': { status: 401, headers: { 'www-authenticate': 'Basic realm="api", error="invalid_client"' }, body: '' },
  'JSON 400 sent as text/plain': { status: 400, headers: { 'content-type': 'text/plain' }, body: '{"error":"invalid_grant"}' },
}

/** A 2xx that is not a token response: `INVALID_TOKEN_RESPONSE`, the session kept. */
export const notATokenResponse: Record<string, RawAnswer> = {
  '200 with HTML': { status: 200, headers: { 'content-type': 'text/html' }, body: html },
  '200 with text': { status: 200, headers: { 'content-type': 'text/plain' }, body: 'OK' },
}

/** A revocation the server refused with nothing to say. */
export const refusedRevocation: RawAnswer = { status: 401, headers: {}, body: '' }

/** Writes `answer` byte for byte: Node adds no `content-type` of its own. */
export function writeRaw(res: ServerResponse, answer: RawAnswer) {
  res.writeHead(answer.status, { ...answer.headers, 'content-length': String(Buffer.byteLength(answer.body)) })
  res.end(answer.body)
}
