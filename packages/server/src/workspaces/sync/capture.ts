/**
 * The capture walk: reads a layer directory the sandbox controls (hostile input) into manifest
 * entries, reusing the previous version's chunks for files whose stat is unchanged and uploading
 * only chunks the store lacks. Every directory is opened with O_NOFOLLOW|O_DIRECTORY and its
 * children are reached through `/proc/self/fd/<dirfd>/<name>` (openat without openat), so a path
 * component swapped for a symlink mid-walk is never followed; files are opened with O_NOFOLLOW and
 * re-checked with fstat before a byte is read.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, read, readdirSync, readlinkSync, readSync, type BigIntStats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Logger } from '../../logger.js';
import { BlobStoreError, type BlobStore } from '../../storage/blobs/index.js';
import { WorkspaceSyncError } from './errors.js';
import { showPath, type Chunk, type Entry } from './manifest.js';
import { Limiter } from './limiter.js';
import { dataRanges, OpaqueProbe } from './special.js';

const { O_RDONLY, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK, O_NOCTTY } = constants;
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
const FILE_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
/** Deeper trees are cut (with a log line): each level holds one directory fd open. */
export const MAX_DEPTH = 256;
/** Reads up to this size use synchronous syscalls (cheaper than a thread-pool round trip). */
const SYNC_READ_BYTES = 256 * 1024;
/** Chunk uploads in flight at once (each holds a copy of its chunk: at most 8 x 4 MiB). */
const UPLOAD_CONCURRENCY = 8;
const readFd = promisify(read);
const readAsync = async (fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> => (await readFd(fd, buf, off, len, pos)).bytesRead;

/** The blob key of a chunk hash. */
export function blobKey(hash: string): string {
  return `blobs/sha256/${hash.slice(0, 2)}/${hash}`;
}

/** Wraps a blob store failure as a retryable STORE_UNAVAILABLE; passes typed errors through. */
export function storeError(err: unknown, what: string): Error {
  if (err instanceof WorkspaceSyncError) return err;
  if (err instanceof BlobStoreError) return new WorkspaceSyncError('STORE_UNAVAILABLE', `blob store unavailable while ${what}: ${err.message}`, { cause: err });
  return err as Error;
}

/** Counters of one capture. */
export interface CaptureStats {
  files: number;
  bytes: number;
  readBytes: number;
  uploadedBytes: number;
  uploadedBlobs: number;
  skipped: number;
}

export interface CaptureOptions {
  blobs: BlobStore;
  log: Logger;
  chunkBytes: number;
  idShift: number;
  /** Previous entries by path (latin1 key of the path bytes); matched entries are removed. */
  prev: Map<string, Entry>;
  /** Whether `prev`'s stat cache (ino/ctime) belongs to this layer directory. */
  statCacheValid: boolean;
  /** Chunk hashes known to be in the store. Grows as chunks are uploaded. */
  known: Set<string>;
  emit: (e: Entry, prev: Entry | undefined) => Promise<void>;
  signal?: AbortSignal;
  /** Test hook: runs right before a regular file is opened for reading. */
  beforeOpen?: (path: Buffer) => void | Promise<void>;
}

let zeros: Buffer | undefined;
/** Whether every byte of `buf` is zero (a memcmp against a zero buffer). */
export function isZero(buf: Buffer): boolean {
  if (!zeros || zeros.length < buf.length) zeros = Buffer.alloc(buf.length);
  return buf.equals(zeros.subarray(0, buf.length));
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function join(dir: Buffer, name: Buffer): Buffer {
  return dir.length === 0 ? name : Buffer.concat([dir, Buffer.from('/'), name]);
}

/** Walks one layer directory; create one per sync. */
export class Capture {
  readonly stats: CaptureStats = { files: 0, bytes: 0, readBytes: 0, uploadedBytes: 0, uploadedBlobs: 0, skipped: 0 };
  private buf: Buffer;
  private badIds = 0;
  private ops = 0;
  private readonly probe = new OpaqueProbe();
  /** Chunk uploads run concurrently (object stores are latency-bound); the manifest waits for all. */
  private readonly uploads = new Limiter(UPLOAD_CONCURRENCY);

  constructor(private readonly o: CaptureOptions) {
    this.buf = Buffer.allocUnsafe(o.chunkBytes);
  }

  /** Walks the directory open as `root` (already checked to be a real directory). */
  async run(root: FileHandle): Promise<void> {
    try {
      await this.walkDir(root.fd, Buffer.alloc(0), 0);
    } finally {
      this.probe.close();
      await this.uploads.drain();
    }
    if (this.badIds > 0) this.o.log.warn({ count: this.badIds }, 'workspace sync: ids outside the sandbox range stored as 65534');
  }

  private skip(path: Buffer, why: string): void {
    this.stats.skipped++;
    this.o.log.warn({ path: showPath(path), why }, 'workspace sync: skipped a path');
  }

  private sandboxId(hostId: number): number {
    if (this.o.idShift === 0) return hostId;
    const id = hostId - this.o.idShift;
    if (id >= 0 && id <= 0xffff) return id;
    this.badIds++;
    return 65534;
  }

  private base(path: Buffer, t: Entry['t'], st: BigIntStats): Entry {
    return {
      path, t,
      m: Number(st.mode) & 0o7777 & ~0o6000,
      u: this.sandboxId(Number(st.uid)),
      g: this.sandboxId(Number(st.gid)),
      s: 0,
      mt: Math.round(Number(st.mtimeNs) / 1e6),
      i: String(st.ino),
      ct: String(st.ctimeNs),
    };
  }

  /** Lets timers and requests run during a long walk (the walk itself uses synchronous syscalls). */
  private async breathe(): Promise<void> {
    if (++this.ops % 256 === 0) await new Promise((r) => setImmediate(r));
  }

  private async walkDir(dirFd: number, rel: Buffer, depth: number): Promise<void> {
    this.o.signal?.throwIfAborted();
    const names = readdirSync(`/proc/self/fd/${dirFd}`, { encoding: 'buffer' });
    names.sort(Buffer.compare);
    const prefix = Buffer.from(`/proc/self/fd/${dirFd}/`);
    for (const name of names) {
      await this.breathe();
      await this.visit(Buffer.concat([prefix, name]), join(rel, name), depth, 0);
    }
  }

  /** One child: `at` is its /proc/self/fd path, `path` its layer-relative path. */
  private async visit(at: Buffer, path: Buffer, depth: number, retry: number): Promise<void> {
    const st = lstatSync(at, { bigint: true, throwIfNoEntry: false });
    if (!st) return; // deleted while we walk: absent from this version
    const again = async (why: string) => {
      if (retry < 2) return this.visit(at, path, depth, retry + 1);
      this.skip(path, why);
    };
    if (st.isDirectory()) {
      if (depth >= MAX_DEPTH) return this.skip(path, `deeper than ${MAX_DEPTH} levels`);
      let fd: number;
      try {
        fd = openSync(at, DIR_FLAGS);
      } catch (err) {
        if (errno(err) === 'ENOENT') return;
        if (errno(err) === 'ELOOP' || errno(err) === 'ENOTDIR') return again('changed type during the sync');
        throw err;
      }
      try {
        const now = fstatSync(fd, { bigint: true });
        if (!now.isDirectory() || now.ino !== st.ino || now.dev !== st.dev) return await again('replaced during the sync');
        const e = this.base(path, 'd', now);
        const prev = this.o.prev.get(path.toString('latin1'));
        e.o = prev?.t === 'd' && this.o.statCacheValid && prev.i === e.i && prev.ct === e.ct ? !!prev.o : await this.probe.isOpaque(fd);
        await this.emit(e);
        await this.walkDir(fd, path, depth + 1);
      } finally {
        closeSync(fd);
      }
      return;
    }
    if (st.isSymbolicLink()) {
      let link: Buffer;
      try {
        link = readlinkSync(at, { encoding: 'buffer' });
      } catch (err) {
        if (errno(err) === 'ENOENT') return;
        if (errno(err) === 'EINVAL') return again('changed type during the sync');
        throw err;
      }
      const e = this.base(path, 'l', st);
      e.m = 0o777;
      e.link = link;
      return this.emit(e);
    }
    if (st.isCharacterDevice() && st.rdev === 0n) return this.emit(this.base(path, 'w', st));
    if (st.isFile()) return this.file(at, path, st, depth, retry);
    this.skip(path, st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : 'a device node');
  }

  private async file(at: Buffer, path: Buffer, st: BigIntStats, depth: number, retry: number): Promise<void> {
    const e = this.base(path, 'f', st);
    e.s = Number(st.size);
    const prev = this.o.prev.get(path.toString('latin1'));
    if (prev?.t === 'f' && this.o.statCacheValid && prev.i === e.i && prev.ct === e.ct && prev.s === e.s && prev.mt === e.mt) {
      e.c = prev.c;
      return this.emit(e);
    }
    await this.o.beforeOpen?.(path);
    let fd: number;
    try {
      fd = openSync(at, FILE_FLAGS);
    } catch (err) {
      const code = errno(err);
      if (code === 'ENOENT') return;
      // ELOOP: it is a symlink now; ENXIO: a socket; anything else that is no longer a file: look again.
      if (code === 'ELOOP' || code === 'ENXIO' || code === 'EISDIR' || code === 'ENOTDIR') {
        if (retry < 2) return this.visit(at, path, depth, retry + 1);
        return this.skip(path, 'changed type during the sync');
      }
      throw err;
    }
    try {
      const now = fstatSync(fd, { bigint: true });
      if (!now.isFile() || now.ino !== st.ino || now.dev !== st.dev) {
        if (retry < 2) return await this.visit(at, path, depth, retry + 1);
        return this.skip(path, 'replaced during the sync');
      }
      const fresh = this.base(path, 'f', now);
      const size = Number(now.size);
      // A file with fewer allocated blocks than its size has holes: ask where its data is.
      const ranges = size > this.o.chunkBytes && Number(now.blocks) * 512 < size ? await dataRanges(fd) : undefined;
      fresh.c = await this.chunks(fd, size, ranges);
      fresh.s = fresh.c.reduce((n, c) => n + c[1], 0);
      await this.emit(fresh);
    } finally {
      closeSync(fd);
    }
  }

  /** Reads `len` bytes at `pos` into the chunk buffer (fewer at EOF); small reads stay synchronous. */
  private async readAt(fd: number, len: number, pos: number): Promise<number> {
    let n = 0;
    while (n < len) {
      const got = len <= SYNC_READ_BYTES ? readSync(fd, this.buf, n, len - n, pos + n) : await readAsync(fd, this.buf, n, len - n, pos + n);
      if (got === 0) break;
      n += got;
    }
    return n;
  }

  /**
   * Chunks of the first `size` bytes (the size when opened: a file growing during the read is cut
   * there). Chunks that lie wholly in a hole (per `ranges`) are recorded as zeros without a read.
   */
  private async chunks(fd: number, size: number, ranges: [number, number][] | undefined): Promise<Chunk[]> {
    const out: Chunk[] = [];
    for (let pos = 0; pos < size; ) {
      this.o.signal?.throwIfAborted();
      const want = Math.min(this.o.chunkBytes, size - pos);
      if (ranges && !ranges.some(([a, b]) => a < pos + want && b > pos)) {
        out.push([null, want]);
        pos += want;
        continue;
      }
      const n = await this.readAt(fd, want, pos);
      if (n === 0) break;
      this.stats.readBytes += n;
      const data = this.buf.subarray(0, n);
      if (isZero(data)) {
        out.push([null, n]);
      } else {
        const hash = createHash('sha256').update(data).digest('hex');
        await this.ensureBlob(hash, data);
        out.push([hash, n]);
      }
      pos += n;
      if (n < want) break;
    }
    return out;
  }

  private async ensureBlob(hash: string, chunk: Buffer): Promise<void> {
    if (this.o.known.has(hash)) return;
    this.o.known.add(hash);
    const data = Buffer.from(chunk); // the read buffer is reused while this upload runs
    await this.uploads.run(() => this.upload(hash, data));
  }

  private async upload(hash: string, data: Buffer): Promise<void> {
    const key = blobKey(hash);
    try {
      if (!(await this.o.blobs.head(key))) {
        await this.o.blobs.put(key, data, { size: data.length, signal: this.o.signal });
        this.stats.uploadedBytes += data.length;
        this.stats.uploadedBlobs++;
      }
    } catch (err) {
      if (this.o.signal?.aborted) throw new WorkspaceSyncError('ABORTED', 'workspace sync aborted', { cause: err });
      throw storeError(err, `uploading chunk ${hash.slice(0, 12)}`);
    }
  }

  private async emit(e: Entry): Promise<void> {
    const key = e.path.toString('latin1');
    const prev = this.o.prev.get(key);
    this.o.prev.delete(key);
    if (e.t === 'f') {
      this.stats.files++;
      this.stats.bytes += e.s;
    }
    await this.o.emit(e, prev);
  }
}
