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
  missingTokenError,
} from './errors.js';

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
}

export interface RequestSpec<T> {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** A multipart body sent as is (its own content type with the boundary); instead of `body`. */
  form?: FormData;
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

  constructor(opts: HttpClientOptions) {
    this.apiUrl = opts.apiUrl.replace(/\/+$/, '');
    this.apiToken = opts.apiToken;
    this.timeoutMs = opts.timeoutMs;
    this.fetchImpl = opts.fetch;
    this.userAgent = opts.userAgent;
  }

  url(path: string, query?: RequestSpec<unknown>['query']): string {
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

  /** Sends one request and returns the parsed, checked JSON answer. */
  async request<T>(spec: RequestSpec<T>): Promise<T> {
    const headers = this.headers(spec.auth ?? true, spec.body !== undefined ? { 'content-type': 'application/json' } : undefined);
    const url = this.url(spec.path, spec.query);
    const { signal, timeoutSignal, timeoutMs } = this.signals(spec.call);
    const what = `${spec.method} ${spec.path}`;
    let res: Response;
    let text: string;
    try {
      res = await this.fetchImpl(url, {
        method: spec.method,
        headers,
        body: spec.form ?? (spec.body !== undefined ? JSON.stringify(spec.body) : undefined),
        signal,
      });
      text = await res.text();
    } catch (err) {
      throw this.transportError(err, spec.call?.signal, { signal: timeoutSignal, ms: timeoutMs }, what);
    }
    const body = parseJson(text);
    if (!res.ok) throw errorFromResponse(res.status, body, text.slice(0, 300));
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
   * Opens a streaming GET (Server-Sent Events). The timeout covers only the wait for the answer's
   * headers; the caller's signal covers the whole stream. Non-2xx answers become typed errors.
   */
  async openStream(path: string, query: RequestSpec<unknown>['query'], call?: CallOptions): Promise<Response> {
    const headers = this.headers(true, { accept: 'text/event-stream' });
    const url = this.url(path, query);
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(call?.signal?.reason);
    if (call?.signal?.aborted) throw call.signal.reason;
    call?.signal?.addEventListener('abort', onAbort, { once: true });
    const timeoutMs = call?.timeoutMs ?? this.timeoutMs;
    let timedOut = false;
    const timer = timeoutMs > 0 ? setTimeout(() => { timedOut = true; controller.abort(); }, timeoutMs) : undefined;
    try {
      const res = await this.fetchImpl(url, { method: 'GET', headers, signal: controller.signal });
      if (!res.ok) {
        const text = await res.text();
        throw errorFromResponse(res.status, parseJson(text), text.slice(0, 300));
      }
      return res;
    } catch (err) {
      call?.signal?.removeEventListener('abort', onAbort);
      if (err instanceof MagsError) throw err;
      if (timedOut) throw timeoutError(`GET ${path}`, timeoutMs);
      throw this.transportError(err, call?.signal, { ms: timeoutMs }, `GET ${path}`);
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
