/**
 * The HTTP layer under `Mags`: one place that adds the token, applies timeouts and abort signals,
 * turns error answers into typed errors and checks the fields of answers the SDK relies on.
 */
import { mismatch, type AnswerCheck } from './api/answers.js';
import {
  ConnectionError,
  MagsError,
  TimeoutError,
  connectionError,
  errorFromResponse,
  invalidUrlError,
  missingTokenError,
} from './errors.js';
import { apiUrlProblem, normalizeApiUrl } from './config.js';

/** Options every SDK call accepts. */
export interface CallOptions {
  /** Aborts the call; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Limit for this call in milliseconds (default: the client's `timeout`). */
  timeoutMs?: number;
}

export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

export interface HttpClientOptions {
  apiUrl: string;
  apiToken: string | undefined;
  timeoutMs: number;
  fetch: FetchLike;
  userAgent: string;
  /** Retries of an idempotent call (GET, PUT, DELETE) after 429, 503 or a reset connection (default 3). */
  maxRetries?: number;
  /** Longest wait before one retry in ms, also for a longer `Retry-After` (default 30000). */
  maxRetryDelayMs?: number;
  /** How to wait between retries (tests record the delays). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Methods that may be sent again: repeating them has the effect of sending them once. */
const IDEMPOTENT = new Set(['GET', 'PUT', 'DELETE']);
/** Statuses that say "try again later". */
const RETRY_STATUSES = new Set([429, 503]);
/** Error codes of a connection the server or network dropped mid-call. */
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'ECONNABORTED']);
const RETRY_BASE_MS = 250;

export interface RequestSpec<T> {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** A multipart body sent as is (its own content type with the boundary); instead of `body`. */
  form?: FormData;
  /** Raw bytes sent as is (`application/octet-stream`), streamed when a stream; instead of `body`; never retried. */
  bytes?: ReadableStream<Uint8Array> | Uint8Array;
  answer: AnswerCheck<T>;
  auth?: boolean;
  call?: CallOptions;
}

export class HttpClient {
  readonly apiUrl: string;
  readonly apiToken: string | undefined;
  readonly timeoutMs: number;
  private readonly fetchImpl: FetchLike;
  private readonly userAgent: string;
  readonly maxRetries: number;
  private readonly maxRetryDelayMs: number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly urlProblem: string | undefined;

  constructor(opts: HttpClientOptions) {
    this.apiUrl = normalizeApiUrl(opts.apiUrl);
    this.urlProblem = apiUrlProblem(this.apiUrl);
    this.apiToken = opts.apiToken;
    this.timeoutMs = opts.timeoutMs;
    this.fetchImpl = opts.fetch;
    this.userAgent = opts.userAgent;
    this.maxRetries = Math.max(0, Math.floor(opts.maxRetries ?? 3));
    this.maxRetryDelayMs = opts.maxRetryDelayMs ?? 30_000;
    this.sleep = opts.sleep ?? abortableSleep;
  }

  /** Throws a `ConnectionError` naming the URL when it cannot be a server URL. */
  url(path: string, query?: RequestSpec<unknown>['query']): string {
    if (this.urlProblem) throw invalidUrlError(this.apiUrl, this.urlProblem);
    const u = new URL(this.apiUrl + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  headers(auth: boolean, extra?: Record<string, string>): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', 'user-agent': this.userAgent, ...extra };
    if (auth) {
      if (!this.apiToken) throw missingTokenError();
      h.authorization = `Bearer ${this.apiToken}`;
    }
    return h;
  }

  /**
   * Sends one request and returns the parsed, checked JSON answer. An idempotent call (GET, PUT,
   * DELETE) is sent again after 429, 503 or a reset connection, up to `maxRetries` times, waiting
   * with exponential backoff and jitter or as long as `Retry-After` says (capped); when the last try
   * fails too, its error is thrown.
   */
  async request<T>(spec: RequestSpec<T>): Promise<T> {
    const retries = IDEMPOTENT.has(spec.method) && !spec.form && !spec.bytes ? this.maxRetries : 0;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.requestOnce(spec);
      } catch (err) {
        const retry = attempt < retries ? retryDelay(err, attempt, this.maxRetryDelayMs) : undefined;
        if (retry === undefined) throw err;
        await this.sleep(retry, spec.call?.signal);
      }
    }
  }

  private async requestOnce<T>(spec: RequestSpec<T>): Promise<T> {
    const type = spec.bytes !== undefined ? 'application/octet-stream' : spec.body !== undefined ? 'application/json' : undefined;
    const headers = this.headers(spec.auth ?? true, type ? { 'content-type': type } : undefined);
    const url = this.url(spec.path, spec.query);
    const { signal, timeoutSignal, timeoutMs } = this.signals(spec.call);
    const what = `${spec.method} ${spec.path}`;
    let res: Response;
    let text: string;
    try {
      res = await this.fetchImpl(url, {
        method: spec.method,
        headers,
        body: spec.bytes ?? spec.form ?? (spec.body !== undefined ? JSON.stringify(spec.body) : undefined),
        signal,
        // A streamed body needs half-duplex fetch (Node's fetch refuses a stream without it).
        ...(spec.bytes instanceof ReadableStream ? { duplex: 'half' } : {}),
      } as RequestInit);
      text = await res.text();
    } catch (err) {
      throw this.transportError(err, spec.call?.signal, { signal: timeoutSignal, ms: timeoutMs }, what);
    }
    const body = parseJson(text);
    if (!res.ok) {
      const err = errorFromResponse(res.status, body, text.slice(0, 300));
      const after = res.headers.get('retry-after');
      if (after !== null) retryAfterOf.set(err, after);
      throw err;
    }
    if (body === undefined) {
      throw new MagsError(`The server answered ${what} with something that is not JSON`, {
        code: 'INVALID_RESPONSE',
        status: res.status,
        hint: `Check that ${this.apiUrl} is a Mags server (MAGS_API_URL).`,
      });
    }
    return parseAnswer(spec.answer, body, what, res.status);
  }

  /**
   * Opens a streaming answer (by default a GET of Server-Sent Events; `req` for a POST with a JSON
   * body, e.g. NDJSON exec output). The timeout covers only the wait for the answer's headers; the
   * caller's signal covers the whole stream. Non-2xx answers become typed errors.
   */
  async openStream(path: string, query: RequestSpec<unknown>['query'], call?: CallOptions, req: { method?: 'GET' | 'POST'; body?: unknown; accept?: string } = {}): Promise<Response> {
    const method = req.method ?? 'GET';
    const headers = this.headers(true, { accept: req.accept ?? 'text/event-stream', ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}) });
    const url = this.url(path, query);
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(call?.signal?.reason);
    if (call?.signal?.aborted) throw call.signal.reason;
    call?.signal?.addEventListener('abort', onAbort, { once: true });
    const timeoutMs = call?.timeoutMs ?? this.timeoutMs;
    let timedOut = false;
    const timer = timeoutMs > 0 ? setTimeout(() => { timedOut = true; controller.abort(); }, timeoutMs) : undefined;
    try {
      const res = await this.fetchImpl(url, { method, headers, body: req.body !== undefined ? JSON.stringify(req.body) : undefined, signal: controller.signal });
      if (!res.ok) {
        const text = await res.text();
        throw errorFromResponse(res.status, parseJson(text), text.slice(0, 300));
      }
      return res;
    } catch (err) {
      call?.signal?.removeEventListener('abort', onAbort);
      if (err instanceof MagsError) throw err;
      if (timedOut) throw timeoutError(`${method} ${path}`, timeoutMs);
      throw this.transportError(err, call?.signal, { ms: timeoutMs }, `${method} ${path}`);
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /**
   * Sends a request with a raw body (bytes, a stream) and returns the answer unread, for byte
   * transfers. The timeout covers only the wait for the answer's headers; the caller's signal covers
   * the whole transfer. Non-2xx answers become typed errors. Never retried (a stream body cannot be
   * sent twice).
   */
  async openRaw(
    method: 'GET' | 'PUT',
    path: string,
    query: RequestSpec<unknown>['query'],
    opts: { body?: RequestInit['body']; headers?: Record<string, string>; call?: CallOptions } = {},
  ): Promise<Response> {
    const headers = this.headers(true, { accept: '*/*', ...opts.headers });
    const url = this.url(path, query);
    const call = opts.call;
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(call?.signal?.reason);
    if (call?.signal?.aborted) throw call.signal.reason;
    call?.signal?.addEventListener('abort', onAbort, { once: true });
    const timeoutMs = call?.timeoutMs ?? this.timeoutMs;
    let timedOut = false;
    const timer = timeoutMs > 0 ? setTimeout(() => { timedOut = true; controller.abort(); }, timeoutMs) : undefined;
    const streamed = opts.body instanceof ReadableStream;
    try {
      const init: RequestInit & { duplex?: 'half' } = { method, headers, body: opts.body, signal: controller.signal, ...(streamed ? { duplex: 'half' } : {}) };
      const res = await this.fetchImpl(url, init);
      if (!res.ok) {
        const text = await res.text();
        throw errorFromResponse(res.status, parseJson(text), text.slice(0, 300));
      }
      return res;
    } catch (err) {
      call?.signal?.removeEventListener('abort', onAbort);
      if (err instanceof MagsError) throw err;
      if (timedOut) throw timeoutError(`${method} ${path}`, timeoutMs);
      throw this.transportError(err, call?.signal, { ms: timeoutMs }, `${method} ${path}`);
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /** Combines the caller's signal with the per-call timeout. */
  private signals(call?: CallOptions): { signal?: AbortSignal; timeoutSignal?: AbortSignal; timeoutMs: number } {
    const timeoutMs = call?.timeoutMs ?? this.timeoutMs;
    const timeoutSignal = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined;
    const parts = [timeoutSignal, call?.signal].filter((s): s is AbortSignal => s !== undefined);
    const signal = parts.length > 1 ? AbortSignal.any(parts) : parts[0];
    return { signal, timeoutSignal, timeoutMs };
  }

  private transportError(
    err: unknown,
    userSignal: AbortSignal | undefined,
    timeout: { signal?: AbortSignal; ms: number },
    what: string,
  ): unknown {
    if (err instanceof MagsError) return err;
    if (userSignal?.aborted) return userSignal.reason;
    if (timeout.signal?.aborted) return timeoutError(what, timeout.ms);
    if (isAbortLike(err)) return err;
    return connectionError(this.apiUrl, err);
  }
}

export function timeoutError(what: string, ms: number): TimeoutError {
  return new TimeoutError(`${what} took longer than ${formatMs(ms)}`, {
    code: 'TIMEOUT',
    hint: 'Raise the limit with the `timeout` client option or the call\'s `timeoutMs`.',
  });
}

export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/** The `Retry-After` header of the answer an error was made from. */
const retryAfterOf = new WeakMap<object, string>();

/** How long to wait before retrying after `err`, or undefined when `err` is not worth a retry. */
export function retryDelay(err: unknown, attempt: number, capMs: number, now = Date.now()): number | undefined {
  if (!(err instanceof MagsError)) return undefined;
  const reset = err instanceof ConnectionError && isConnectionReset(err);
  if (!reset && !RETRY_STATUSES.has(err.status)) return undefined;
  const header = retryAfterOf.get(err);
  const asked = header === undefined ? undefined : parseRetryAfter(header, now);
  if (asked !== undefined) return Math.min(asked, capMs);
  const backoff = RETRY_BASE_MS * 2 ** attempt;
  return Math.min(capMs, backoff / 2 + Math.random() * (backoff / 2));
}

/** `Retry-After` in ms: delta seconds or an HTTP date; undefined when unreadable. */
export function parseRetryAfter(value: string, now = Date.now()): number | undefined {
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Whether an error (or one of its causes) is a connection the server or network dropped mid-call
 * (ECONNRESET, EPIPE, ...), as opposed to one that never opened (refused, unknown host).
 */
export function isConnectionReset(err: unknown): boolean {
  let c: unknown = err;
  for (let i = 0; i < 5 && c; i++) {
    const e = c as { code?: unknown; cause?: unknown };
    if (typeof e.code === 'string' && RESET_CODES.has(e.code)) return true;
    c = e.cause;
  }
  return false;
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function isAbortLike(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError') && !(err instanceof ConnectionError);
}

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Checks an answer's fields the SDK relies on; a mismatch names the field. */
export function parseAnswer<T>(check: AnswerCheck<T>, body: unknown, what: string, status = 200): T {
  const bad = mismatch(check.fields, body);
  if (bad === undefined) return body as T;
  throw new MagsError(`Unexpected answer to ${what}: field ${bad}`, {
    code: 'INVALID_RESPONSE',
    status,
    hint: 'The server may be a different version than this client.',
  });
}
