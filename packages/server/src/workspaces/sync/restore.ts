/**
 * Materialises manifest entries into an empty layer directory. The manifest is untrusted: every
 * path was checked by `decodeEntry`, and here an entry's parent must be a directory this restore
 * created (never a symlink or file it wrote), files are created with O_CREAT|O_EXCL|O_NOFOLLOW,
 * and every blob is verified by sha256 and length before its bytes count as restored.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, fchownSync, ftruncateSync, futimesSync, openSync, writeSync } from 'node:fs';
import { chmod, lchown, lutimes, mkdir, open, rename, symlink } from 'node:fs/promises';
import type { BlobStore } from '../../storage/blobs/index.js';
import { blobKey, isZero, storeError } from './capture.js';
import { WorkspaceSyncError } from './errors.js';
import { showPath, splitPath, type Entry } from './manifest.js';
import { Limiter, Semaphore } from './limiter.js';
import { makeWhiteout, setOpaqueDir } from './special.js';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY } = constants;
const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;

/** Counters of one restore. */
export interface RestoreStats {
  files: number;
  bytes: number;
  downloadedBytes: number;
}

interface DirFix {
  path: Buffer;
  e: Entry;
}

function writeAll(fd: number, buf: Buffer, pos: number): void {
  for (let done = 0; done < buf.length; ) done += writeSync(fd, buf, done, buf.length - done, pos + done);
}

function dupError(e: Entry, cause: unknown): WorkspaceSyncError {
  return new WorkspaceSyncError('UNSAFE_MANIFEST', `manifest rejected: ${JSON.stringify(showPath(e.path))} appears twice`, { path: showPath(e.path), cause });
}

/** Restores entries one at a time into `root` (an absolute path of an empty directory). */
export class Restorer {
  readonly stats: RestoreStats = { files: 0, bytes: 0, downloadedBytes: 0 };
  /** Directories created so far (latin1 keys of their relative paths). */
  private dirs = new Set<string>(['']);
  /** Directory metadata is set last: adding children would change a directory's mtime. */
  private fixes: DirFix[] = [];
  /** Files are written concurrently; directories and links in manifest order. */
  private readonly writes = new Limiter(8);
  private readonly chunkSlots = new Semaphore(8);

  constructor(
    private readonly root: Buffer,
    private readonly blobs: BlobStore,
    private readonly idShift: number,
  ) {}

  private abs(path: Buffer): Buffer {
    return Buffer.concat([this.root, Buffer.from('/'), path]);
  }

  async add(e: Entry): Promise<void> {
    const segs = splitPath(e.path);
    const parent = e.path.subarray(0, Math.max(0, e.path.length - segs[segs.length - 1]!.length - 1));
    if (!this.dirs.has(parent.toString('latin1'))) {
      throw new WorkspaceSyncError('UNSAFE_MANIFEST', `manifest rejected: ${JSON.stringify(showPath(e.path))} comes before its directory or lies under a non-directory`, { path: showPath(e.path) });
    }
    const abs = this.abs(e.path);
    const uid = e.u + this.idShift;
    const gid = e.g + this.idShift;
    try {
      switch (e.t) {
        case 'd':
          await mkdir(abs, { mode: 0o700 });
          this.dirs.add(e.path.toString('latin1'));
          this.fixes.push({ path: abs, e });
          return;
        case 'l':
          await symlink(e.link!, abs);
          await lchown(abs, uid, gid);
          await lutimes(abs, e.mt / 1000, e.mt / 1000);
          return;
        case 'w':
          await this.whiteout(e, parent);
          return;
        case 'f':
          await this.writes.run(() => this.file(e, abs, uid, gid).catch((err: unknown) => {
            throw (err as NodeJS.ErrnoException).code === 'EEXIST' ? dupError(e, err) : err;
          }));
          return;
      }
    } catch (err) {
      if (err instanceof WorkspaceSyncError) throw err;
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw dupError(e, err);
      throw err;
    }
  }

  private async whiteout(e: Entry, parent: Buffer): Promise<void> {
    const dir = await open(parent.length ? this.abs(parent) : this.root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    try {
      const temp = `.mags-whiteout-${randomBytes(8).toString('hex')}`;
      await makeWhiteout(dir.fd, temp);
      const tempAbs = Buffer.concat([parent.length ? this.abs(parent) : this.root, Buffer.from(`/${temp}`)]);
      await rename(tempAbs, this.abs(e.path));
      const abs = this.abs(e.path);
      await lchown(abs, e.u + this.idShift, e.g + this.idShift);
      await chmod(abs, e.m);
      await lutimes(abs, e.mt / 1000, e.mt / 1000);
    } finally {
      await dir.close();
    }
  }

  private async file(e: Entry, abs: Buffer, uid: number, gid: number): Promise<void> {
    // Synchronous syscalls: measured faster here than thread-pool round trips for these small calls
    // (the blob reads between them stay asynchronous).
    const fd = openSync(abs, CREATE_FLAGS, 0o600);
    try {
      // Chunks are fetched concurrently; all of them settle before the fd is closed.
      const writes: Promise<void>[] = [];
      let pos = 0;
      for (const [hash, len] of e.c ?? []) {
        const at = pos;
        if (hash !== null) writes.push(this.chunkSlots.use(() => this.writeBlob(fd, e, hash, len, at)));
        pos += len;
      }
      const failed = (await Promise.allSettled(writes)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      ftruncateSync(fd, e.s);
      fchownSync(fd, uid, gid);
      fchmodSync(fd, e.m);
      futimesSync(fd, e.mt / 1000, e.mt / 1000);
    } finally {
      closeSync(fd);
    }
    this.stats.files++;
    this.stats.bytes += e.s;
  }

  private async writeBlob(fd: number, e: Entry, hash: string, len: number, pos: number): Promise<void> {
    const where = { path: showPath(e.path) };
    let body;
    try {
      body = await this.blobs.get(blobKey(hash));
    } catch (err) {
      throw storeError(err, `reading chunk ${hash.slice(0, 12)} of ${where.path}`);
    }
    if (!body) throw new WorkspaceSyncError('MISSING_BLOB', `blob ${hash} of ${JSON.stringify(where.path)} is missing from the store`, where);
    const h = createHash('sha256');
    let n = 0;
    try {
      for await (const chunk of body) {
        const buf = chunk as Buffer;
        if (n + buf.length > len) break;
        h.update(buf);
        // Zero runs stay holes: the file is new, so unwritten ranges read as zeros.
        if (!isZero(buf)) writeAll(fd, buf, pos + n);
        n += buf.length;
      }
    } catch (err) {
      throw storeError(err, `reading chunk ${hash.slice(0, 12)} of ${where.path}`);
    } finally {
      body.destroy();
    }
    this.stats.downloadedBytes += n;
    if (n !== len || h.digest('hex') !== hash) {
      throw new WorkspaceSyncError('CORRUPT_BLOB', `blob ${hash} of ${JSON.stringify(where.path)} is corrupt: its bytes do not match their hash`, where);
    }
  }

  /** After a failure: waits until no write is running (their own errors are moot then). */
  async settle(): Promise<void> {
    await this.writes.drain().catch((err: unknown) => err);
  }

  /** Waits for file writes, then sets directory modes, owners, times and opaque marks, deepest first. */
  async finish(): Promise<void> {
    await this.writes.drain();
    for (const { path, e } of this.fixes.reverse()) {
      const fh = await open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      try {
        if (e.o) await setOpaqueDir(fh.fd);
        await fh.chown(e.u + this.idShift, e.g + this.idShift);
        await fh.chmod(e.m);
        await fh.utimes(e.mt / 1000, e.mt / 1000);
      } finally {
        await fh.close();
      }
    }
  }
}
