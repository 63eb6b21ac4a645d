import type { components } from '../../sdk/src/api/schema.gen';

/** Wire types of the REST API, generated from spec/openapi.json. */
export type Job = components['schemas']['JobStatus'];
export type JobList = components['schemas']['JobList'];
export type Workspace = components['schemas']['Workspace'];
export type WorkspaceVersion = components['schemas']['WorkspaceVersion'];
export type TokenInfo = components['schemas']['TokenInfo'];
export type CreatedToken = components['schemas']['CreatedToken'];
export type LogEntry = components['schemas']['LogEntry'];
export type Session = components['schemas']['Session'];
export type PoolStatus = components['schemas']['PoolStatus'];

/** An error answer of the API: the registry code, the message and the hint. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }

  /** The server does not have this feature (yet): the page says so instead of showing data. */
  get unavailable(): boolean {
    return this.status === 501 || this.code === 'FEATURE_NOT_AVAILABLE' || this.code === 'NOT_FOUND';
  }
}

let csrfToken = '';
const signedOutListeners = new Set<() => void>();

/** Remembers the session's CSRF token; cookie-authenticated writes echo it in X-CSRF-Token. */
export function setCsrfToken(token: string): void {
  csrfToken = token;
}

/** Called when an answer says the session has ended. */
export function onSignedOut(fn: () => void): () => void {
  signedOutListeners.add(fn);
  return () => signedOutListeners.delete(fn);
}

/** Calls the REST API with the session cookie; throws ApiError for error answers. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD') headers['x-csrf-token'] = csrfToken;
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  } catch (err) {
    throw new ApiError(0, 'CONNECTION_FAILED', `Cannot reach the server: ${(err as Error).message}`, 'Check that the Mags server is running, then retry.');
  }
  const text = await res.text();
  let data: unknown = undefined;
  if (text !== '') {
    try {
      data = JSON.parse(text);
    } catch {
      throw new ApiError(res.status, 'INVALID_RESPONSE', `The server answered ${res.status} with something that is not JSON`, 'Is a proxy in front of the server rewriting answers?');
    }
  }
  if (!res.ok) {
    const e = (data ?? {}) as { error?: string; code?: string; hint?: string };
    const err = new ApiError(res.status, e.code ?? 'HTTP_ERROR', e.error ?? `HTTP ${res.status}`, e.hint);
    if (res.status === 401 && !path.startsWith('/api/v1/auth/login')) signedOutListeners.forEach((fn) => fn());
    throw err;
  }
  return data as T;
}

/** Formats bytes as KiB/MiB/GiB. */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** "3 min ago" style time, with the exact time in a title by the caller. */
export function ago(iso: string | null | undefined): string {
  if (!iso) return '-';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
