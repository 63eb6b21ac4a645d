/**
 * File operations on a running sandbox, run inside it (native/guest-fs.c), so paths resolve in the
 * sandbox's own root and mount namespace. Small operations go to the sandbox's long-lived
 * `mags-guest fs serve` process (files/fs-serve.ts: one round trip each); large reads and writes,
 * listings past the serve process's limit, and watches are each a `mags-guest fs ...` process
 * started with Sandbox.spawn. Those reads are paced by credits (the reader sends a window of bytes
 * per byte of stdin) and writes by acks (the writer reports each MiB on disk), so neither direction
 * holds a file in memory.
 */
import { Readable } from 'node:stream';
import type { OutputStream, Sandbox, SandboxProcess } from '../runtime/driver.js';
import { GUEST_AGENT_PATH, type FsServe } from './fs-serve.js';
import { FsError, type FileEntry, type FsErrorKind } from './types.js';

/** Bytes the reader sends per credit. */
const READ_WINDOW = 256 * 1024;
/** Credits outstanding at most (so at most 1 MiB in flight per read). */
const READ_CREDITS = 4;
/** Bytes a write may run ahead of the writer's last ack. */
const WRITE_AHEAD = 4 * 1024 * 1024;
/** Largest stdout of a listing, stat, mkdir or move (a listing past it is cut and marked truncated). */
const MAX_LISTING_BYTES = 64 * 1024 * 1024;
/** Reads and writes up to this many bytes, and listings up to this size, go through the serve process. */
export const INLINE_BYTES = 256 * 1024;
const LIST_INLINE_BYTES = 1024 * 1024;
const SIGTERM = 15;
const SIGKILL = 9;

const KINDS = new Set<FsErrorKind>(['ENOENT', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ENOTEMPTY', 'ENOSPC', 'EACCES', 'EPERM', 'EROFS', 'ELOOP', 'ENAMETOOLONG', 'EXDEV', 'EINVAL', 'EBUSY', 'EMFILE', 'ENOTREG', 'ESHORT', 'EIO']);

/** The error a `mags-guest fs` process reported (`ERR <CODE> <message>` on stderr, exit 2), or EIO. */
function processError(code: number | null, stderr: string, what: string): FsError {
  const m = /^ERR (\S+) (.*)$/m.exec(stderr);
  if (m && KINDS.has(m[1] as FsErrorKind)) return new FsError(m[1] as FsErrorKind, m[2]!);
  const detail = stderr.trim().slice(0, 500) || (code === null ? 'the sandbox went away' : `exit code ${code}`);
  return new FsError('EIO', `${what} failed inside the sandbox: ${detail}`);
}

interface WireEntry {
  name: string;
  path: string;
  type: FileEntry['type'];
  size: number;
  mode: number;
  mtime: number;
  target?: string;
}

function toEntry(w: WireEntry): FileEntry {
  return { name: w.name, path: w.path, type: w.type, size: w.size, mode: w.mode, mtime: new Date(w.mtime).toISOString(), ...(w.target !== undefined ? { target: w.target } : {}) };
}

/** What a read answers before its bytes. */
export interface ReadInfo {
  /** Size of the whole file. */
  size: number;
  mode: number;
  mtime: string;
  /** Bytes the stream carries (the range, clipped to the file). */
  length: number;
}

/** An opened read: what it answered before its bytes, and the bytes as a stream. */
export interface OpenedFile {
  info: ReadInfo;
  body: Readable;
  /** All the bytes at once, when they came in one answer (`body` carries the same bytes). */
  bytes?: Buffer;
}

/** File operations inside one running sandbox. */
export class GuestFs {
  /** `serve`: the sandbox's serve process for small operations (absent: every operation is a process of its own). */
  constructor(
    private readonly sandbox: Sandbox,
    private readonly serve?: FsServe,
  ) {}

  /** The serve process's output for `op`, or undefined when the one-shot operation must run. */
  private async served(op: Parameters<FsServe['request']>[0], args: string[], data?: Buffer): Promise<Buffer | undefined> {
    if (!this.serve) return undefined;
    const a = await this.serve.request(op, args, data);
    return a.oneShot ? undefined : a.payload;
  }

  private static entryOf(payload: Buffer): FileEntry {
    return toEntry(JSON.parse(payload.toString('utf8').split('\n')[0]!) as WireEntry);
  }

  private start(args: string[], stdin: boolean, onData: (stream: OutputStream, data: Buffer) => void): SandboxProcess {
    if (!this.sandbox.spawn) throw new FsError('EIO', 'this runtime cannot run processes in a sandbox (no spawn)');
    return this.sandbox.spawn({ argv: [GUEST_AGENT_PATH, 'fs', ...args], cwd: '/root', stdin }, onData);
  }

  /** Runs a short operation and returns its stdout lines (at most MAX_LISTING_BYTES; `truncated` beyond). */
  private async lines(args: string[]): Promise<{ lines: string[]; truncated: boolean }> {
    const out: Buffer[] = [];
    let outBytes = 0;
    let stderr = '';
    let truncated = false;
    const proc = this.start(args, false, (stream, data) => {
      if (stream === 'stderr') {
        if (stderr.length < 4096) stderr += data.toString('utf8');
        return;
      }
      if (truncated) return;
      outBytes += data.length;
      if (outBytes > MAX_LISTING_BYTES) {
        truncated = true;
        proc.kill(SIGKILL);
        return;
      }
      out.push(data);
    });
    const exit = await proc.exited;
    if (!truncated && exit.code !== 0) throw processError(exit.code, stderr, args[0]!);
    const text = Buffer.concat(out).toString('utf8');
    const lines = text.split('\n');
    lines.pop(); // the part after the last newline: empty, or a line cut by truncation
    return { lines, truncated };
  }

  async stat(path: string): Promise<FileEntry> {
    const served = await this.served('stat', [path]);
    if (served) return GuestFs.entryOf(served);
    const { lines } = await this.lines(['stat', path]);
    return toEntry(JSON.parse(lines[0]!) as WireEntry);
  }

  /** Entries under `path` down to `depth` levels (the entry itself when it is not a directory). */
  async list(path: string, depth: number): Promise<{ entries: FileEntry[]; truncated: boolean }> {
    const served = await this.served('list', [path, String(depth), String(LIST_INLINE_BYTES)]);
    if (served) {
      const lines = served.toString('utf8').split('\n');
      lines.pop();
      return { entries: lines.map((l) => toEntry(JSON.parse(l) as WireEntry)), truncated: false };
    }
    const { lines, truncated } = await this.lines(['list', path, String(depth)]);
    return { entries: lines.map((l) => toEntry(JSON.parse(l) as WireEntry)), truncated };
  }

  async remove(path: string, recursive: boolean): Promise<void> {
    if (await this.served('rm', [path, recursive ? '1' : '0'])) return;
    await this.lines(['rm', path, recursive ? '1' : '0']);
  }

  async mkdir(path: string, parents: boolean, mode?: number): Promise<FileEntry> {
    const args = [path, parents ? '1' : '0', mode === undefined ? '-1' : mode.toString(8)];
    const served = await this.served('mkdir', args);
    if (served) return GuestFs.entryOf(served);
    const { lines } = await this.lines(['mkdir', ...args]);
    return toEntry(JSON.parse(lines[0]!) as WireEntry);
  }

  async move(from: string, to: string, overwrite: boolean): Promise<FileEntry> {
    const served = await this.served('mv', [from, to, overwrite ? '1' : '0']);
    if (served) return GuestFs.entryOf(served);
    const { lines } = await this.lines(['mv', from, to, overwrite ? '1' : '0']);
    return toEntry(JSON.parse(lines[0]!) as WireEntry);
  }

  /**
   * Opens `path` for reading `length` bytes (undefined: to the end) from `offset`. Resolves once the
   * file is open (or rejects with its error); the stream then carries exactly `info.length` bytes,
   * or errors when the file shrank or the sandbox went away. Destroying it stops the reader.
   */
  async read(path: string, offset: number, length: number | undefined): Promise<OpenedFile> {
    const served = await this.served('read', [path, String(offset), String(length ?? -1), String(INLINE_BYTES)]);
    if (served) {
      const nl = served.indexOf(0x0a);
      const h = JSON.parse(served.subarray(0, nl).toString('utf8')) as { size: number; mode: number; mtime: number; length: number };
      const bytes = served.subarray(nl + 1);
      if (bytes.length !== h.length) throw new FsError('EIO', `the files helper sent ${bytes.length} bytes for a ${h.length}-byte read`);
      const info = { size: h.size, mode: h.mode, mtime: new Date(h.mtime).toISOString(), length: h.length };
      return { info, body: Readable.from(bytes.length ? [bytes] : []), bytes };
    }
    return this.readStream(path, offset, length);
  }

  /** A read streamed by a `mags-guest fs read` process of its own, paced by credits. */
  private readStream(path: string, offset: number, length: number | undefined): Promise<{ info: ReadInfo; body: Readable }> {
    let info: ReadInfo | undefined;
    let head = Buffer.alloc(0);
    let received = 0;
    let credited = 0;
    let stderr = '';
    let finished = false;
    const body = new Readable({
      highWaterMark: READ_WINDOW,
      read: () => grant(),
      destroy: (err, cb) => {
        if (!finished) {
          proc.kill(SIGTERM);
          proc.closeStdin();
        }
        cb(err);
      },
    });
    const grant = () => {
      if (!info || finished) return;
      while (credited < info.length && credited - received < READ_WINDOW * READ_CREDITS) {
        proc.write('\n');
        credited += READ_WINDOW;
      }
    };
    let resolveOpen!: (v: { info: ReadInfo; body: Readable }) => void;
    let rejectOpen!: (err: Error) => void;
    const opened = new Promise<{ info: ReadInfo; body: Readable }>((ok, fail) => ((resolveOpen = ok), (rejectOpen = fail)));
    const proc = this.start(['read', path, String(offset), String(length ?? -1), String(READ_WINDOW)], true, (stream, data) => {
      if (stream === 'stderr') {
        if (stderr.length < 4096) stderr += data.toString('utf8');
        return;
      }
      if (!info) {
        head = Buffer.concat([head, data]);
        const nl = head.indexOf(0x0a);
        if (nl < 0) return;
        const h = JSON.parse(head.subarray(0, nl).toString('utf8')) as { size: number; mode: number; mtime: number; length: number };
        info = { size: h.size, mode: h.mode, mtime: new Date(h.mtime).toISOString(), length: h.length };
        data = head.subarray(nl + 1);
        head = Buffer.alloc(0);
        resolveOpen({ info, body });
        grant();
        if (data.length === 0) return;
      }
      received += data.length;
      if (!body.destroyed && body.push(data)) grant();
    });
    // The first credits go with the start, so small files need no extra round trip.
    proc.write('\n'.repeat(READ_CREDITS));
    credited = READ_WINDOW * READ_CREDITS;
    void proc.exited.then((exit) => {
      finished = true;
      if (!info) return rejectOpen(processError(exit.code, stderr, 'read'));
      if (exit.code === 0 && received === info.length) body.push(null);
      else if (!body.destroyed) body.destroy(processError(exit.code, stderr, 'read'));
    });
    return opened;
  }

  /**
   * Writes `source` to `path` through a temporary file renamed over it at the end, so a failed or
   * cut-off write leaves the old file (or nothing). `size` (when known) must match the bytes sent.
   * Stops reading `source` past `maxBytes` and rejects with `tooLarge()`'s error.
   */
  async write(path: string, source: AsyncIterable<Buffer | Uint8Array>, opts: WriteOptions): Promise<FileEntry> {
    if (!this.serve || (opts.size !== undefined && opts.size > INLINE_BYTES)) return this.writeStream(path, source, opts);
    // Up to INLINE_BYTES of the body are gathered; a body that ends there is one serve request.
    const it = source[Symbol.asyncIterator]();
    const head: Buffer[] = [];
    let total = 0;
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      total += chunk.length;
      if (total > opts.maxBytes) {
        await it.return?.();
        throw opts.tooLarge();
      }
      head.push(chunk);
      if (total > INLINE_BYTES) return this.writeStream(path, joined(head, it), opts);
    }
    const body = Buffer.concat(head, total);
    const served = await this.served('write', [path, opts.mode === undefined ? '-1' : opts.mode.toString(8), opts.parents ? '1' : '0', String(opts.size ?? -1)], body);
    if (served) return GuestFs.entryOf(served);
    return this.writeStream(path, [body], opts);
  }

  /** A write streamed to a `mags-guest fs write` process of its own, paced by acks. */
  private async writeStream(path: string, source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer>, opts: WriteOptions): Promise<FileEntry> {
    let acked = 0;
    let stdout = '';
    let stderr = '';
    let exited = false;
    let wake: (() => void) | undefined;
    const proc = this.start(['write', path, opts.mode === undefined ? '-1' : opts.mode.toString(8), opts.parents ? '1' : '0', String(opts.size ?? -1)], true, (stream, data) => {
      if (stream === 'stderr') {
        if (stderr.length < 4096) stderr += data.toString('utf8');
        return;
      }
      stdout += data.toString('utf8');
      let nl: number;
      while ((nl = stdout.indexOf('\n')) >= 0 && stdout.startsWith('a ')) {
        acked = Number(stdout.slice(2, nl));
        stdout = stdout.slice(nl + 1);
        wake?.();
      }
    });
    const done = proc.exited.then((exit) => {
      exited = true;
      wake?.();
      return exit;
    });
    let sent = 0;
    try {
      for await (const chunk of source) {
        sent += chunk.length;
        if (sent > opts.maxBytes) throw opts.tooLarge();
        // The writer failed (e.g. disk full): the rest of the body is read and dropped, so the
        // client gets the answer instead of a reset connection.
        if (exited) continue;
        proc.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        while (!exited && sent - acked > WRITE_AHEAD) await new Promise<void>((ok) => (wake = ok));
      }
    } catch (err) {
      // The client went away or sent too much: the writer removes its temporary file on SIGTERM.
      proc.kill(SIGTERM);
      proc.closeStdin();
      await done;
      throw err;
    }
    proc.closeStdin();
    const exit = await done;
    if (exit.code !== 0) throw processError(exit.code, stderr, 'write');
    const last = stdout.trim().split('\n').pop() ?? '';
    return toEntry(JSON.parse(last) as WireEntry);
  }

  /**
   * Watches `path` (a directory) with inotify inside the sandbox; `onEvent` gets each event. Resolves
   * once the watch is set up; `stop()` ends it. `ended` resolves when the watcher exited.
   */
  async watch(path: string, recursive: boolean, onEvent: (e: WatchEvent) => void): Promise<{ stop(): void; ended: Promise<void> }> {
    let buf = '';
    let stderr = '';
    let ready!: () => void;
    const isReady = new Promise<void>((ok) => (ready = ok));
    let moveFrom: { path: string; cookie: number; dir: boolean } | undefined;
    const proc = this.start(['watch', path, recursive ? '1' : '0'], false, (stream, data) => {
      if (stream === 'stderr') {
        if (stderr.length < 4096) stderr += data.toString('utf8');
        return;
      }
      buf += data.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const w = JSON.parse(line) as { type: string; path?: string; dir?: boolean; cookie?: number };
        if (w.type === 'ready') ready();
        else if (w.type === 'overflow') onEvent({ type: 'overflow' });
        else if (w.type === 'move_from') {
          if (moveFrom) onEvent({ type: 'delete', path: moveFrom.path, dir: moveFrom.dir });
          moveFrom = { path: w.path!, cookie: w.cookie ?? 0, dir: !!w.dir };
        } else if (w.type === 'move_to') {
          if (moveFrom && moveFrom.cookie === w.cookie) onEvent({ type: 'move', from: moveFrom.path, path: w.path!, dir: !!w.dir });
          else onEvent({ type: 'create', path: w.path!, dir: !!w.dir });
          moveFrom = undefined;
        } else {
          if (moveFrom) onEvent({ type: 'delete', path: moveFrom.path, dir: moveFrom.dir });
          moveFrom = undefined;
          onEvent({ type: w.type as 'create' | 'modify' | 'delete', path: w.path!, dir: !!w.dir });
        }
      }
    });
    const ended = proc.exited.then(() => undefined);
    const exit = await Promise.race([isReady.then(() => null), proc.exited]);
    if (exit) throw processError(exit.code, stderr, 'watch');
    return {
      stop: () => proc.kill(SIGKILL),
      ended,
    };
  }
}

export interface WriteOptions {
  mode?: number;
  parents: boolean;
  /** The body's announced length (Content-Length), when known. */
  size?: number;
  maxBytes: number;
  tooLarge: () => Error;
}

/** `head`'s chunks, then the rest of `rest`. */
async function* joined(head: Buffer[], rest: AsyncIterator<Buffer | Uint8Array>): AsyncGenerator<Buffer | Uint8Array> {
  try {
    yield* head;
    for (;;) {
      const r = await rest.next();
      if (r.done) return;
      yield r.value;
    }
  } finally {
    await rest.return?.();
  }
}

/** One change seen by a watch. `move` carries `from`; `overflow` means events were lost. */
export type WatchEvent =
  | { type: 'create' | 'modify' | 'delete'; path: string; dir: boolean }
  | { type: 'move'; from: string; path: string; dir: boolean }
  | { type: 'overflow' };
