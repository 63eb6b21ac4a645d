import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { FsServePool } from '../files/fs-serve.js';
import { GuestFs, type OpenedFile, type ReadInfo, type WatchEvent } from '../files/guest-fs.js';
import { SnapshotFs } from '../files/snapshot-fs.js';
import type { WorkspaceSnapshot } from '../workspaces/sync/index.js';
import { FsError, type FileEntry } from '../files/types.js';
import type { LiveSandboxes } from '../sandboxes/live.js';
import { AppError } from './errors.js';
import type { Job, User } from './types.js';

/** Largest number of bytes one read or write may move (MAGS_FILES_MAX_BYTES default: 1 GiB). */
export const DEFAULT_FILES_MAX_BYTES = 1024 * 1024 * 1024;
/** Longest path in bytes, and longest name in it (Linux PATH_MAX and NAME_MAX). */
export const MAX_PATH_BYTES = 4096;
export const MAX_NAME_BYTES = 255;
/** Deepest listing. */
export const MAX_LIST_DEPTH = 64;

export interface SandboxFilesOptions {
  jobs: { get(user: User, ref: string): Promise<Job> };
  /** Stored workspace versions (reads of sleeping jobs and of workspaces by id). */
  workspaces: { snapshot(userId: string, name: string): Promise<WorkspaceSnapshot | undefined> };
  /** Persistent sandboxes; absent: the files API answers 501 FEATURE_NOT_AVAILABLE. */
  live?: LiveSandboxes;
  maxBytes: number;
  log: Logger;
}

/** A byte range of a read: `offset` < 0 means the last -offset bytes; `length` undefined = to the end. */
export interface ReadRange {
  offset: number;
  length?: number;
}

/**
 * Checks a path of the files API and makes it absolute: a relative path is under /root (the
 * sandbox's home directory). The path is otherwise passed as given: `..` and symlinks resolve
 * inside the sandbox, never here.
 */
export function sandboxPath(field: string, path: string | undefined): string {
  if (path === undefined || path === '') throw new AppError('VALIDATION_ERROR', `${field}: Required (a path inside the sandbox, e.g. /root/app.py)`);
  if (path.includes('\u0000')) throw new AppError('VALIDATION_ERROR', `${field}: must not contain NUL characters`);
  const abs = path.startsWith('/') ? path : `/root/${path}`;
  if (Buffer.byteLength(abs) > MAX_PATH_BYTES) throw new AppError('VALIDATION_ERROR', `${field}: longer than ${MAX_PATH_BYTES} bytes`);
  for (const name of abs.split('/')) {
    if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new AppError('VALIDATION_ERROR', `${field}: a name in it is longer than ${MAX_NAME_BYTES} bytes`);
  }
  return abs;
}

/** The registry error for a failed file operation on `path`. */
export function fsAppError(err: unknown, path: string, limits?: { diskGb?: number }): unknown {
  if (!(err instanceof FsError)) return err;
  const p = JSON.stringify(path.slice(0, 512));
  switch (err.kind) {
    case 'ENOENT':
      return new AppError('PATH_NOT_FOUND', `No such file or directory in the sandbox: ${p}`, 'List the directory with GET .../files/list?path=');
    case 'ENOTDIR':
      return new AppError('NOT_A_DIRECTORY', `A component of ${p} is not a directory`);
    case 'EISDIR':
      return new AppError('IS_A_DIRECTORY', `${p} is a directory`, 'List it with GET .../files/list, or remove it with recursive=1.');
    case 'ENOTREG':
      return new AppError('NOT_A_REGULAR_FILE', `${p} is not a regular file (a FIFO, socket or device); only regular files are read or replaced`);
    case 'EEXIST':
      return new AppError('PATH_EXISTS', `${p} already exists`, 'Pass overwrite: true to replace it.');
    case 'ENOTEMPTY':
      return new AppError('DIRECTORY_NOT_EMPTY', `${p} is a directory that is not empty`, 'Pass recursive=1 to remove it with its contents.');
    case 'ENOSPC':
      return new AppError(
        'DISK_FULL',
        `The sandbox's disk is full${limits?.diskGb ? ` (disk_gb ${limits.diskGb} GB)` : ''} while writing ${p}`,
        'Free space in the sandbox, or run the job with a larger disk_gb.',
      );
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new AppError('FORBIDDEN', `The sandbox does not allow this on ${p}: ${err.message}`);
    case 'ELOOP':
    case 'ENAMETOOLONG':
    case 'EINVAL':
    case 'EXDEV':
    case 'EBUSY':
      return new AppError('VALIDATION_ERROR', `path ${p}: ${err.message}`);
    case 'ESHORT':
      return new AppError('VALIDATION_ERROR', `path ${p}: ${err.message} (the body was shorter than its Content-Length, or the file changed during the read)`);
    default:
      return new AppError('INTERNAL_ERROR', `File operation on ${p} failed: ${err.message}`);
  }
}

/** One use of a job's running sandbox. */
interface Use {
  fs: GuestFs;
  job: Job;
  release(): void;
}

/**
 * Files of persistent jobs' sandboxes: every operation runs inside the job's sandbox
 * (files/guest-fs.ts; small ones through the sandbox's serve process, files/fs-serve.ts), which is attached through LiveSandboxes (woken when frozen or sleeping, held
 * while the operation runs).
 */
export class SandboxFilesService {
  /** Each sandbox's `mags-guest fs serve` process (small operations in one round trip). */
  private readonly serves = new FsServePool();

  constructor(private readonly o: SandboxFilesOptions) {}

  get maxBytes(): number {
    return this.o.maxBytes;
  }

  private async use(user: User, ref: string | Job, signal?: AbortSignal): Promise<Use> {
    const job = typeof ref === 'string' ? await this.o.jobs.get(user, ref) : ref;
    if (!this.o.live) {
      throw new AppError('FEATURE_NOT_AVAILABLE', 'This server has no persistent sandboxes, so their files cannot be reached', 'Run the server with persistent sandboxes enabled.');
    }
    if (!job.persistent) {
      throw new AppError('INVALID_STATE', `Job ${job.request_id} is not persistent: its sandbox ends with its script`, 'Submit the job with persistent: true to reach its files.');
    }
    const attachment = await this.o.live.attach(job, 'files', { signal });
    return { fs: new GuestFs(attachment.sandbox, this.serves.get(attachment.sandbox)), job, release: () => attachment.release() };
  }

  private async run<T>(user: User, ref: string | Job, path: string, fn: (fs: GuestFs) => Promise<T>): Promise<T> {
    const u = await this.use(user, ref);
    try {
      return await fn(u.fs);
    } catch (err) {
      throw fsAppError(err, path, { diskGb: u.job.disk_gb });
    } finally {
      u.release();
    }
  }

  /**
   * Opens a file for reading. The sandbox stays attached until `body` ends or is destroyed. A read
   * of more than maxBytes is refused (413) before any byte is sent.
   */
  async read(user: User, ref: string, path: string, range: ReadRange | undefined, signal?: AbortSignal): Promise<OpenedFile> {
    const max = this.o.maxBytes;
    if ((range?.length ?? 0) > max || (range && range.offset < 0 && -range.offset > max)) throw tooLarge(max, 'The requested range');
    const job = await this.o.jobs.get(user, ref);
    const sleeping = await this.sleepingSnapshot(job);
    if (sleeping) return this.readSnapshot(sleeping, path, range);
    const u = await this.use(user, job, signal);
    let opened: OpenedFile;
    try {
      // An open-ended read asks for one byte more than allowed, so a file over the limit is noticed.
      const length = range?.length ?? (range && range.offset >= 0 ? max : range ? undefined : max + 1);
      opened = await u.fs.read(path, range?.offset ?? 0, length);
    } catch (err) {
      u.release();
      throw fsAppError(err, path);
    }
    opened.body.once('close', () => u.release());
    if (!range && opened.info.size > max) {
      opened.body.destroy();
      throw tooLarge(max, `The file (${opened.info.size} bytes)`);
    }
    return opened;
  }

  /** Reads a file of a stored workspace (by id), from its newest synced version. */
  async readWorkspace(user: User, workspace: string, path: string, range: ReadRange | undefined): Promise<{ info: ReadInfo; body: Readable }> {
    const max = this.o.maxBytes;
    if ((range?.length ?? 0) > max || (range && range.offset < 0 && -range.offset > max)) throw tooLarge(max, 'The requested range');
    return this.readSnapshot(new SnapshotFs(await this.o.workspaces.snapshot(user.id, workspace)), path, range);
  }

  /** Lists a stored workspace (by id), from its newest synced version. */
  async listWorkspace(user: User, workspace: string, path: string, depth: number): Promise<{ entries: FileEntry[]; truncated: boolean }> {
    const fs = new SnapshotFs(await this.o.workspaces.snapshot(user.id, workspace));
    const listed = await fs.list(path, Math.min(Math.max(depth, 1), MAX_LIST_DEPTH)).catch((err: unknown) => Promise.reject(fsAppError(err, path)));
    listed.entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return listed;
  }

  /**
   * The stored workspace of a persistent job that sleeps now: its reads and listings are served
   * from there, so the job stays asleep. Undefined when the job is awake (or has no workspace).
   */
  private async sleepingSnapshot(job: Job): Promise<SnapshotFs | undefined> {
    if (!this.o.live || !job.persistent || !job.workspace_id || this.o.live.state(job.request_id) !== 'sleeping') return undefined;
    return new SnapshotFs(await this.o.workspaces.snapshot(job.user_id, job.workspace_id));
  }

  private async readSnapshot(fs: SnapshotFs, path: string, range: ReadRange | undefined): Promise<{ info: ReadInfo; body: Readable }> {
    const max = this.o.maxBytes;
    const length = range?.length ?? (range && range.offset >= 0 ? max : range ? undefined : max + 1);
    const opened = await fs.read(path, range?.offset ?? 0, length).catch((err: unknown) => Promise.reject(fsAppError(err, path)));
    if (!range && opened.info.size > max) {
      opened.body.destroy();
      throw tooLarge(max, `The file (${opened.info.size} bytes)`);
    }
    return opened;
  }

  /** Replaces (or creates) a file with the bytes of `body`; parents are created with `parents`. */
  async write(user: User, ref: string, path: string, body: AsyncIterable<Buffer | Uint8Array>, opts: { mode?: number; parents: boolean; size?: number }): Promise<FileEntry> {
    const max = this.o.maxBytes;
    if (opts.size !== undefined && opts.size > max) throw tooLarge(max, `The body (${opts.size} bytes)`);
    return this.run(user, ref, path, (fs) => fs.write(path, body, { ...opts, maxBytes: max, tooLarge: () => tooLarge(max, 'The body') }));
  }

  async list(user: User, ref: string, path: string, depth: number): Promise<{ entries: FileEntry[]; truncated: boolean }> {
    const d = Math.min(Math.max(depth, 1), MAX_LIST_DEPTH);
    const job = await this.o.jobs.get(user, ref);
    const sleeping = await this.sleepingSnapshot(job);
    const listed = sleeping
      ? await sleeping.list(path, d).catch((err: unknown) => Promise.reject(fsAppError(err, path)))
      : await this.run(user, job, path, (fs) => fs.list(path, d));
    listed.entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return listed;
  }

  async stat(user: User, ref: string, path: string): Promise<FileEntry> {
    return this.run(user, ref, path, (fs) => fs.stat(path));
  }

  async remove(user: User, ref: string, path: string, recursive: boolean): Promise<void> {
    if (path === '/') throw new AppError('VALIDATION_ERROR', 'path: "/" cannot be removed');
    await this.run(user, ref, path, (fs) => fs.remove(path, recursive));
  }

  async mkdir(user: User, ref: string, path: string, parents: boolean, mode?: number): Promise<FileEntry> {
    return this.run(user, ref, path, (fs) => fs.mkdir(path, parents, mode));
  }

  async move(user: User, ref: string, from: string, to: string, overwrite: boolean): Promise<FileEntry> {
    return this.run(user, ref, to, (fs) => fs.move(from, to, overwrite));
  }

  /**
   * Watches a directory; `onEvent` gets each change. The sandbox stays attached (awake) until
   * `stop()`; `ended` resolves when the watch ended (stopped, or the sandbox went away).
   */
  async watch(user: User, ref: string, path: string, recursive: boolean, onEvent: (e: WatchEvent) => void): Promise<{ stop(): void; ended: Promise<void> }> {
    const u = await this.use(user, ref);
    try {
      const w = await u.fs.watch(path, recursive, onEvent);
      void w.ended.then(() => u.release());
      return w;
    } catch (err) {
      u.release();
      throw fsAppError(err, path);
    }
  }
}

function tooLarge(max: number, what: string): AppError {
  return new AppError('PAYLOAD_TOO_LARGE', `${what} is larger than this server moves in one request (${max} bytes)`, 'Read it in parts with a Range header, or ask the operator to raise MAGS_FILES_MAX_BYTES.');
}
