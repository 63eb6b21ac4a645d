/**
 * The filesystem blob store: one file per key under a root directory (the key's segments are its
 * path). A put writes a temporary file in the key's own directory, fsyncs it, renames it over the
 * key and fsyncs the directory, so a reader sees the old or the new blob and a crash leaves at most
 * a temporary file, which the next `open` removes.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, opendir, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { addAbortSignal, Readable } from 'node:stream';
import type { Logger } from '../../logger.js';
import {
  BlobStoreError,
  InvalidBlobKeyError,
  RESERVED_SEGMENT_PREFIX,
  validateBlobKey,
  validateBlobPrefix,
  validateBlobRange,
  type BlobGetOptions,
  type BlobHead,
  type BlobPutOptions,
  type BlobStore,
} from './blob-store.js';

/** Options of the filesystem driver. */
export interface FsBlobStoreOptions {
  /** The directory that holds the blobs (created if missing), e.g. `$MAGS_DATA_DIR/blobs`. */
  root: string;
  /**
   * A temporary file older than this is removed at open even when the process that wrote it still
   * seems alive (its pid may have been reused). Default one day.
   */
  staleTempMs?: number;
  log?: Logger;
}

const DAY_MS = 24 * 60 * 60 * 1000;

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Temporary files are `.blobtmp.<pid>.<random>`: the pid tells the sweep whose put it was. */
function tempName(): string {
  return `${RESERVED_SEGMENT_PREFIX}${process.pid}.${randomBytes(8).toString('hex')}`;
}

function tempOwner(name: string): number | undefined {
  const pid = Number(name.slice(RESERVED_SEGMENT_PREFIX.length).split('.')[0]);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errno(err) === 'EPERM';
  }
}

async function writeAll(fh: FileHandle, buf: Uint8Array): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done);
    done += bytesWritten;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A `BlobStore` on a local directory. Create it with `FsBlobStore.open`. */
export class FsBlobStore implements BlobStore {
  readonly driver = 'fs';
  /** How many leftover temporary files `open` removed. */
  sweptTempFiles = 0;

  private constructor(
    readonly root: string,
    private readonly log: Logger | undefined,
  ) {}

  /** Creates the root if needed and removes temporary files of puts that crashed. */
  static async open(opts: FsBlobStoreOptions): Promise<FsBlobStore> {
    await mkdir(opts.root, { recursive: true, mode: 0o700 });
    const store = new FsBlobStore(opts.root, opts.log);
    await store.sweepTemps(opts.staleTempMs ?? DAY_MS);
    return store;
  }

  private file(key: string): string {
    return join(this.root, ...key.split('/'));
  }

  async put(key: string, data: Readable | Uint8Array, opts: BlobPutOptions = {}): Promise<void> {
    validateBlobKey(key);
    opts.signal?.throwIfAborted();
    const file = this.file(key);
    const dir = dirname(file);
    const tmp = join(dir, tempName());
    const { fh, createdDir } = await this.createTemp(key, dir, tmp);
    let closed = false;
    let renamed = false;
    try {
      let written = 0;
      if (data instanceof Uint8Array) {
        await writeAll(fh, data);
        written = data.length;
      } else {
        if (opts.signal) addAbortSignal(opts.signal, data);
        for await (const chunk of data) {
          const buf: Uint8Array = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          await writeAll(fh, buf);
          written += buf.length;
        }
      }
      opts.signal?.throwIfAborted();
      if (opts.size !== undefined && written !== opts.size) {
        throw new Error(`the body has ${written} bytes but the caller said ${opts.size}`);
      }
      await fh.sync();
      closed = true;
      await fh.close();
      await rename(tmp, file).catch((err: unknown) => {
        if (errno(err) === 'EISDIR' || errno(err) === 'ENOTEMPTY') {
          throw new InvalidBlobKeyError(key, 'other keys already live under it as a directory');
        }
        throw err;
      });
      renamed = true;
      await fsyncDir(dir);
      // Directories the put created are new entries of their parents: make those durable too.
      if (createdDir !== undefined) {
        for (let d = dir; d !== dirname(createdDir); ) {
          d = dirname(d);
          await fsyncDir(d);
        }
      }
    } catch (err) {
      if (opts.signal?.aborted || err instanceof InvalidBlobKeyError) throw err;
      throw new BlobStoreError(this.driver, 'put', key, err);
    } finally {
      if (!closed) await fh.close();
      if (!renamed) await rm(tmp, { force: true });
    }
  }

  /**
   * Creates the key's directory and its temporary file. A concurrent delete may remove the
   * directory between the two steps (it prunes empty directories), so that is retried.
   */
  private async createTemp(key: string, dir: string, tmp: string): Promise<{ fh: FileHandle; createdDir?: string }> {
    for (let attempt = 0; ; attempt++) {
      try {
        const createdDir = await mkdir(dir, { recursive: true, mode: 0o700 });
        return { fh: await open(tmp, 'wx', 0o600), createdDir };
      } catch (err) {
        if (errno(err) === 'ENOENT' && attempt < 5) continue;
        if (errno(err) === 'ENOTDIR' || errno(err) === 'EEXIST') {
          throw new InvalidBlobKeyError(key, 'one of its parent paths is already a blob');
        }
        throw new BlobStoreError(this.driver, 'put', key, err);
      }
    }
  }

  async get(key: string, opts: BlobGetOptions = {}): Promise<Readable | undefined> {
    validateBlobKey(key);
    const range = opts.range && validateBlobRange(opts.range);
    let fh: FileHandle;
    try {
      fh = await open(this.file(key), 'r');
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
      throw new BlobStoreError(this.driver, 'get', key, err);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) {
        await fh.close();
        return undefined;
      }
      if (range?.length === 0 || (range && range.offset >= st.size)) {
        await fh.close();
        return Readable.from([]);
      }
      const end = range?.length === undefined ? undefined : range.offset + range.length - 1;
      return fh.createReadStream({ start: range?.offset, end, autoClose: true });
    } catch (err) {
      await fh.close();
      throw new BlobStoreError(this.driver, 'get', key, err);
    }
  }

  async head(key: string): Promise<BlobHead | undefined> {
    validateBlobKey(key);
    try {
      const st = await stat(this.file(key));
      return st.isFile() ? { size: st.size, lastModified: st.mtime } : undefined;
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
      throw new BlobStoreError(this.driver, 'head', key, err);
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    validateBlobPrefix(prefix);
    const cut = prefix.lastIndexOf('/');
    const dirKey = cut < 0 ? '' : prefix.slice(0, cut);
    yield* this.walk(dirKey, prefix);
  }

  /** Keys under the directory of `dirKey` that start with `prefix`, depth first, skipping temp files. */
  private async *walk(dirKey: string, prefix: string): AsyncGenerator<string> {
    let dir;
    try {
      dir = await opendir(dirKey === '' ? this.root : this.file(dirKey));
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return;
      throw new BlobStoreError(this.driver, 'list', prefix, err);
    }
    for await (const entry of dir) {
      if (entry.name.startsWith(RESERVED_SEGMENT_PREFIX)) continue;
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      if (entry.isDirectory()) {
        // Descend only where keys can still start with the prefix.
        const asDir = `${key}/`;
        if (asDir.startsWith(prefix) || prefix.startsWith(asDir)) yield* this.walk(key, prefix);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        yield key;
      }
    }
  }

  async delete(key: string): Promise<void> {
    validateBlobKey(key);
    try {
      await unlink(this.file(key));
    } catch (err) {
      const code = errno(err);
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return;
      throw new BlobStoreError(this.driver, 'delete', key, err);
    }
    await this.pruneEmptyDirs(key);
  }

  /** Removes the key's parent directories that the delete left empty, up to the root. */
  private async pruneEmptyDirs(key: string): Promise<void> {
    const segments = key.split('/').slice(0, -1);
    while (segments.length > 0) {
      try {
        await rmdir(join(this.root, ...segments));
      } catch (err) {
        const code = errno(err);
        if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOENT') return;
        throw new BlobStoreError(this.driver, 'delete', key, err);
      }
      segments.pop();
    }
  }

  /**
   * Removes temporary files whose put can no longer finish: the writing process is gone, or the
   * file is older than `staleMs`. Files of this process are kept (another store on the same root in
   * this process may be writing them).
   */
  private async sweepTemps(staleMs: number): Promise<void> {
    const visit = async (path: string): Promise<void> => {
      for await (const entry of await opendir(path)) {
        const child = join(path, entry.name);
        if (entry.isDirectory()) {
          await visit(child);
        } else if (entry.name.startsWith(RESERVED_SEGMENT_PREFIX)) {
          const pid = tempOwner(entry.name);
          if (pid === process.pid) continue;
          const st = await stat(child).catch((err: unknown) => {
            if (errno(err) === 'ENOENT') return undefined;
            throw err;
          });
          if (st === undefined) continue;
          if (pid === undefined || Date.now() - st.mtimeMs > staleMs || !processAlive(pid)) {
            await rm(child, { force: true });
            this.sweptTempFiles++;
          }
        }
      }
    };
    await visit(this.root);
    if (this.sweptTempFiles > 0) this.log?.info({ root: this.root, removed: this.sweptTempFiles }, 'removed temporary files of interrupted blob puts');
  }

  async close(): Promise<void> {
    // Nothing stays open between calls.
  }
}
