import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** An error that becomes `{ error, error_description }` with `status`. Thrown by request parsing. */
export class HttpError extends Error {
  readonly status: ContentfulStatusCode;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(status: ContentfulStatusCode, code: string, description: string, headers: Record<string, string> = {}) {
    super(description);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** The JSON error body every endpoint uses. */
export function errorResponse(c: Context, status: ContentfulStatusCode, code: string, description: string, headers: Record<string, string> = {}): Response {
  for (const [name, value] of Object.entries(headers)) c.header(name, value);
  return c.json({ error: code, error_description: description }, status);
}

export const BEARER_CHALLENGE = 'Bearer error="invalid_token"';

/** 401 invalid_token with the RFC 6750 challenge. */
export function invalidToken(c: Context, description = 'The access token is missing, malformed, expired or not signed by this server.'): Response {
  return errorResponse(c, 401, 'invalid_token', description, { 'WWW-Authenticate': BEARER_CHALLENGE });
}
