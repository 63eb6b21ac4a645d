/**
 * Typed errors of the SDK. The server answers errors as `{"error", "code", "hint"?}`; the SDK turns
 * them into these classes so callers can `instanceof`-check instead of parsing messages. The Python
 * SDK uses the same class names.
 */

import type { ServerErrorCode } from './api/types.js';

/** Codes the SDK raises itself, for failures that never reached the server or an unusable answer. */
export type ClientErrorCode =
  | 'AUTH_REQUIRED'
  | 'CONNECTION_FAILED'
  | 'TIMEOUT'
  | 'INVALID_RESPONSE'
  | 'HTTP_ERROR'
  | 'JOB_FAILED';

/**
 * Every `code` a `MagsError` can carry: the server's codes (the spec's enum, from the server's error
 * registry) and the SDK's own. A newer server's unknown code is passed through as sent.
 */
export type MagsErrorCode = ServerErrorCode | ClientErrorCode;

export interface MagsErrorOptions {
  code: MagsErrorCode;
  status?: number;
  hint?: string;
  cause?: unknown;
}

/** Base class of every error the SDK throws: `code` is stable, `status` is the HTTP status (0 when no answer). */
export class MagsError extends Error {
  readonly code: MagsErrorCode;
  readonly status: number;
  readonly hint: string | undefined;

  constructor(message: string, opts: MagsErrorOptions) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = opts.code;
    this.status = opts.status ?? 0;
    this.hint = opts.hint;
  }

  toJSON(): { error: string; code: MagsErrorCode; status: number; hint?: string } {
    return { error: this.message, code: this.code, status: this.status, ...(this.hint ? { hint: this.hint } : {}) };
  }
}

/** No token, or the server refused it (401). */
export class AuthenticationError extends MagsError {}
/** The job, token, workspace or path does not exist (404). */
export class NotFoundError extends MagsError {}
/** The request was malformed (400, 413, 415). */
export class ValidationError extends MagsError {}
/** The call (or the wait for a job) took longer than allowed. */
export class TimeoutError extends MagsError {}
/** The server could not be reached at all. */
export class ConnectionError extends MagsError {}

const VALIDATION_CODES = new Set<MagsErrorCode>(['VALIDATION_ERROR', 'INVALID_JSON', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE']);

/** Builds the typed error for a non-2xx answer with the server's JSON body (or a non-JSON body). */
export function errorFromResponse(status: number, body: unknown, fallbackText: string): MagsError {
  const obj = body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const message =
    typeof obj.error === 'string' && obj.error
      ? obj.error
      : typeof obj.message === 'string' && obj.message
        ? obj.message
        : fallbackText || `HTTP ${status}`;
  const code = typeof obj.code === 'string' && obj.code ? (obj.code as MagsErrorCode) : defaultCode(status);
  const hint = typeof obj.hint === 'string' && obj.hint ? obj.hint : undefined;
  const opts = { code, status, hint };
  if (status === 401) return new AuthenticationError(message, { ...opts, hint: hint ?? AUTH_HINT });
  if (status === 404) return new NotFoundError(message, opts);
  if (VALIDATION_CODES.has(code) || status === 400) return new ValidationError(message, opts);
  return new MagsError(message, opts);
}

function defaultCode(status: number): MagsErrorCode {
  switch (status) {
    case 400: return 'VALIDATION_ERROR';
    case 401: return 'INVALID_TOKEN';
    case 403: return 'FORBIDDEN';
    case 404: return 'NOT_FOUND';
    case 409: return 'CONFLICT';
    case 429: return 'RATE_LIMITED';
    case 503: return 'SERVICE_UNAVAILABLE';
    default: return status >= 500 ? 'INTERNAL_ERROR' : 'HTTP_ERROR';
  }
}

/** How to get a token, shown with every authentication error. */
export const AUTH_HINT =
  'Get a token from the server host ($MAGS_DATA_DIR/admin-token) or create one with `mags token create`, ' +
  'then set MAGS_API_TOKEN or run `mags login`.';

export function missingTokenError(): AuthenticationError {
  return new AuthenticationError('API token required: set MAGS_API_TOKEN or run `mags login`', {
    code: 'AUTH_REQUIRED',
    status: 0,
    hint: AUTH_HINT,
  });
}

export function connectionError(url: string, cause: unknown): ConnectionError {
  const reason = describeCause(cause);
  return new ConnectionError(`Cannot reach the Mags server at ${url}${reason ? ` (${reason})` : ''}`, {
    code: 'CONNECTION_FAILED',
    hint: 'Is the server running (`mags server`)? Point clients at it with MAGS_API_URL or `mags login --url <url>`.',
    cause,
  });
}

/** The configured server URL is unusable (`MAGS_API_URL=not a url`, `ftp://x`, `http://`). */
export function invalidUrlError(url: string, problem: string): ConnectionError {
  return new ConnectionError(`Invalid Mags server URL ${JSON.stringify(url)} (${problem})`, {
    code: 'CONNECTION_FAILED',
    hint: 'Use an http:// or https:// address such as http://127.0.0.1:8090 (option `apiUrl`, MAGS_API_URL or `mags login --url <url>`).',
  });
}

function describeCause(cause: unknown): string {
  let c: unknown = cause;
  let message = '';
  for (let i = 0; i < 4 && c; i++) {
    const e = c as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof e.code === 'string' && /^E[A-Z]+/.test(e.code)) return e.code;
    if (typeof e.message === 'string' && e.message) message = e.message;
    c = e.cause;
  }
  return message;
}
