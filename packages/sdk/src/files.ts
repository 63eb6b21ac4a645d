/**
 * Files of a persistent job's sandbox (`mags.files`): read, write, list, remove, mkdir, move and
 * watch, through `/api/v1/mags-jobs/{id}/files...` (docs/files.md). Paths are absolute or relative
 * to /root and resolve inside the sandbox. Bytes travel as `Uint8Array` or streams, never altered.
 */
import { MagsError } from './errors.js';
import type { HttpClient, CallOptions } from './http.js';
import { answer } from './api/answers.js';
import { readSse } from './sse.js';
import type { FileEntry, FileList } from './api/types.js';

/** One change a watch saw. `move` carries `from`; `overflow` means events were lost. */
export type WatchEvent =
  | { type: 'create' | 'modify' | 'delete'; path: string; dir: boolean }
  | { type: 'move'; from: string; path: string; dir: boolean }
  | { type: 'overflow' };

/** What `write` accepts: bytes, text (written as UTF-8), a Blob, or a stream of bytes. */
export type WriteData = Uint8Array | string | Blob | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

const ENTRY = answer<FileEntry>({ path: 'string', type: 'string', size: 'number' });
const LIST = answer<FileList>({ path: 'string', truncated: 'boolean' });
const REMOVED = answer<{ success: boolean; path: string }>({ success: 'boolean' });

function jobPath(job: string, op = ''): string {
  if (!job) throw new MagsError('A job name or request id is required', { code: 'VALIDATION_ERROR' });
  return `/api/v1/mags-jobs/${encodeURIComponent(job)}/files${op}`;
}

function rangeHeader(offset?: number, length?: number): Record<string, string> | undefined {
  if (offset === undefined && length === undefined) return undefined;
  const from = offset ?? 0;
  return { range: length === undefined ? `bytes=${from}-` : `bytes=${from}-${from + length - 1}` };
}

function toBody(data: WriteData): RequestInit['body'] {
  if (typeof data === 'string') return new TextEncoder().encode(data);
  if (data instanceof Uint8Array || data instanceof Blob || data instanceof ReadableStream) return data as RequestInit['body'];
  const it = data[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await it.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel() {
      await it.return?.();
    },
  });
}

/** The files API of the SDK. Every method takes the job (name or request id) first. */
export class SandboxFiles {
  constructor(private readonly http: HttpClient) {}

  /** A file's bytes (whole, or `length` bytes from `offset`). Large files: use `readStream`. */
  async read(job: string, path: string, opts: { offset?: number; length?: number } & CallOptions = {}): Promise<Uint8Array> {
    const res = await this.http.openRaw('GET', jobPath(job), { path }, { headers: rangeHeader(opts.offset, opts.length), call: opts });
    return new Uint8Array(await res.arrayBuffer());
  }

  /** A file's bytes as a stream (nothing held in memory). */
  async readStream(job: string, path: string, opts: { offset?: number; length?: number } & CallOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const res = await this.http.openRaw('GET', jobPath(job), { path }, { headers: rangeHeader(opts.offset, opts.length), call: opts });
    if (!res.body) return new ReadableStream({ start: (c) => c.close() });
    return res.body;
  }

  /** A file as text (UTF-8). */
  async readText(job: string, path: string, call: CallOptions = {}): Promise<string> {
    return new TextDecoder().decode(await this.read(job, path, call));
  }

  /**
   * Replaces (or creates) a file with `data`; missing parent directories are created unless
   * `parents: false`. `mode` sets the permission bits (e.g. 0o755).
   */
  async write(job: string, path: string, data: WriteData, opts: { mode?: number; parents?: boolean } & CallOptions = {}): Promise<FileEntry> {
    const query = { path, mode: opts.mode === undefined ? undefined : opts.mode.toString(8), parents: opts.parents === false ? '0' : undefined };
    const res = await this.http.openRaw('PUT', jobPath(job), query, { body: toBody(data), headers: { 'content-type': 'application/octet-stream' }, call: opts });
    return (await res.json()) as FileEntry;
  }

  /** Writes text as UTF-8. */
  writeText(job: string, path: string, text: string, opts: { mode?: number; parents?: boolean } & CallOptions = {}): Promise<FileEntry> {
    return this.write(job, path, text, opts);
  }

  /** Entries below `path` down to `depth` levels (default 1); a file lists itself. */
  list(job: string, path: string, opts: { depth?: number } & CallOptions = {}): Promise<FileList> {
    return this.http.request({ method: 'GET', path: jobPath(job, '/list'), query: { path, depth: opts.depth }, answer: LIST, call: opts });
  }

  /** Removes a file, symlink or empty directory; `recursive` removes a tree. */
  async remove(job: string, path: string, opts: { recursive?: boolean } & CallOptions = {}): Promise<void> {
    await this.http.request({ method: 'DELETE', path: jobPath(job), query: { path, recursive: opts.recursive ? '1' : undefined }, answer: REMOVED, call: opts });
  }

  /** Creates a directory; `parents` creates missing parents and accepts an existing directory. */
  mkdir(job: string, path: string, opts: { parents?: boolean; mode?: number } & CallOptions = {}): Promise<FileEntry> {
    const body = { path, parents: opts.parents ?? false, ...(opts.mode === undefined ? {} : { mode: opts.mode.toString(8) }) };
    return this.http.request({ method: 'POST', path: jobPath(job, '/mkdir'), body, answer: ENTRY, call: opts });
  }

  /** Moves or renames; an existing target is replaced only with `overwrite`. */
  move(job: string, from: string, to: string, opts: { overwrite?: boolean } & CallOptions = {}): Promise<FileEntry> {
    return this.http.request({ method: 'POST', path: jobPath(job, '/move'), body: { from, to, overwrite: opts.overwrite ?? false }, answer: ENTRY, call: opts });
  }

  /** A file of a stored workspace (by id), from its newest synced version (read-only). */
  async readWorkspace(workspace: string, path: string, opts: { offset?: number; length?: number } & CallOptions = {}): Promise<Uint8Array> {
    const res = await this.http.openRaw('GET', `/api/v1/workspaces/${encodeURIComponent(workspace)}/files`, { path }, { headers: rangeHeader(opts.offset, opts.length), call: opts });
    return new Uint8Array(await res.arrayBuffer());
  }

  /** Lists a stored workspace (by id), from its newest synced version. */
  listWorkspace(workspace: string, path: string, opts: { depth?: number } & CallOptions = {}): Promise<FileList> {
    return this.http.request({ method: 'GET', path: `/api/v1/workspaces/${encodeURIComponent(workspace)}/files/list`, query: { path, depth: opts.depth }, answer: LIST, call: opts });
  }

  /**
   * Watches a directory (inotify in the sandbox) and yields its changes until `signal` aborts or the
   * loop breaks. `onReady` is called once the watch is set up in the sandbox: changes from then on
   * are reported, earlier ones are not.
   */
  async *watch(job: string, path: string, opts: { recursive?: boolean; signal?: AbortSignal; timeoutMs?: number; onReady?: () => void } = {}): AsyncGenerator<WatchEvent> {
    const res = await this.http.openStream(jobPath(job, '/watch'), { path, recursive: opts.recursive ? '1' : undefined }, opts);
    if (!res.body) return;
    for await (const ev of readSse(res.body)) {
      if (ev.event === 'end') return;
      const data = JSON.parse(ev.data) as WatchEvent | { type: 'ready' };
      if (data.type === 'ready') opts.onReady?.();
      else yield data;
    }
  }
}
