import type { Context } from 'hono';
import { HttpError } from './http-errors.ts';

const JSON_TYPE = /^application\/json\s*(;.*)?$/i;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether the request announces or carries a body. */
export function hasBody(c: Context): boolean {
  const length = c.req.header('content-length');
  if (length !== undefined) return length.trim() !== '0';
  return c.req.header('transfer-encoding') !== undefined;
}

/**
 * Refuses a request whose body is left unread: the connection closes after the answer, and says
 * so, so that no client sends its next request on a socket the server is about to drop.
 */
function unread(c: Context, error: HttpError): HttpError {
  c.header('connection', 'close');
  return error;
}

async function readLimited(c: Context, limit: number): Promise<Uint8Array> {
  const declared = Number(c.req.header('content-length') ?? '0');
  const tooLarge = () => unread(c, new HttpError(413, 'payload_too_large', `The request body exceeds ${limit} bytes.`));
  if (declared > limit) throw tooLarge();
  const stream = c.req.raw.body;
  if (!stream) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/**
 * Reads a JSON request body: checks Content-Type (415), size (413), UTF-8 and syntax (400).
 * @param shape 'object' requires a JSON object; 'any' accepts any JSON value.
 * @throws HttpError
 */
export async function readJson(c: Context, limit: number, shape: 'object' | 'any' = 'object'): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  if (!JSON_TYPE.test(type)) {
    throw unread(c, new HttpError(415, 'unsupported_media_type', 'Send the body as application/json.'));
  }
  const bytes = await readLimited(c, limit);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, 'invalid_request', 'body: not valid UTF-8.');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_request', 'body: malformed JSON.');
  }
  if (shape === 'object' && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new HttpError(400, 'invalid_request', 'body: expected a JSON object.');
  }
  return value;
}

/** Field rules for {@link field}. */
export interface StringRule {
  optional?: boolean;
  max: number;
  /** Allow the empty string. @default false */
  allowEmpty?: boolean;
}

/**
 * Reads a string field of a parsed body, rejecting wrong types, NUL bytes, unpaired surrogates and
 * over-long values with 400 invalid_request naming the field.
 */
export function field(body: unknown, name: string, rule: StringRule & { optional: true }): string | undefined;
export function field(body: unknown, name: string, rule: StringRule): string;
export function field(body: unknown, name: string, rule: StringRule): string | undefined {
  const value = (body as Record<string, unknown>)[name];
  const bad = (why: string) => new HttpError(400, 'invalid_request', `${name}: ${why}.`);
  if (value === undefined || value === null) {
    if (rule.optional) return undefined;
    throw bad('is required');
  }
  if (typeof value !== 'string') throw bad(`expected a string, got ${Array.isArray(value) ? 'array' : typeof value}`);
  if (!rule.allowEmpty && value.length === 0) throw bad('must not be empty');
  if (value.length > rule.max) throw bad(`at most ${rule.max} characters`);
  if (value.includes('\u0000')) throw bad('must not contain NUL characters');
  if (LONE_SURROGATE.test(value)) throw bad('contains an unpaired UTF-16 surrogate');
  return value;
}
