/**
 * Workspace sync: captures an overlayfs upper directory as a content-addressed version in a blob
 * store and restores it on any host. Store layout:
 *   blobs/sha256/<2 hex>/<sha256>               chunk bytes (shared by every workspace)
 *   workspaces/<ws>/manifests/<version>.jsonl.gz one version (written last; newest sorts last)
 * See docs/workspaces.md for the format, the chunking choice and the hostile-tree rules.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import { constants } from 'node:fs';
import { createGzip, gzipSync } from 'node:zlib';
import type { Logger } from '../../logger.js';
import type { BlobStore } from '../../storage/blobs/index.js';
import { Capture, storeError } from './capture.js';
import { WorkspaceSyncError } from './errors.js';
import { concatStreams, encodeEntry, MANIFEST_FORMAT, readManifest, sameEntry, showPath, LineWriter, type Entry, type ManifestHeader } from './manifest.js';
import { Restorer } from './restore.js';
import { Gc, RwLock } from './gc.js';

export { WorkspaceSyncError, type WorkspaceSyncErrorCode } from './errors.js';
export { syncWithRetry, type SyncRetryOptions } from './retry.js';

/** Default chunk size: fixed 4 MiB chunks (see docs/workspaces.md for why not content-defined). */
export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;
/** Longest change list kept per kind in a SyncResult; the counts stay exact. */
export const MAX_LISTED_CHANGES = 1000;

export interface WorkspaceSyncOptions {
  /** Told how each sync ended and how long it took (metrics). */
  onSyncDone?: (outcome: 'ok' | 'failed', seconds: number) => void;
  blobs: BlobStore;
  log: Logger;
  /** Versions kept per workspace (MAGS_WORKSPACE_HISTORY), default 20. */
  historyLimit?: number;
  /** Host uid/gid = sandbox id + idShift (ID_BASE of runtime/image.ts); manifests store sandbox ids. Default 0. */
  idShift?: number;
  /** Local directory for the last manifest of each workspace (saves a download and keeps the stat cache). */
  cacheDir?: string;
  /** Chunk size in bytes, default 4 MiB. */
  chunkBytes?: number;
  /** Blobs younger than this are never collected (covers syncs on other hosts), default one hour. */
  gcGraceMs?: number;
  /** Test hook: runs right before a regular file is opened for reading. */
  beforeOpen?: (path: Buffer) => void | Promise<void>;
}

/** One changed path. */
export interface ChangedPath {
  path: string;
  size: number;
}

/** What a sync did. `version` is undefined when nothing changed (no new version). */
export interface SyncResult {
  version: string | undefined;
  files: number;
  bytes: number;
  changedFiles: number;
  changedBytes: number;
  readBytes: number;
  uploadedBytes: number;
  uploadedBlobs: number;
  skipped: number;
  ms: number;
  changes: { added: ChangedPath[]; modified: ChangedPath[]; deleted: ChangedPath[]; truncated: boolean };
}

/** What a restore did. */
export interface RestoreResult {
  version: string;
  files: number;
  bytes: number;
  downloadedBytes: number;
  ms: number;
}

/** One stored version. */
export interface VersionInfo {
  version: string;
  created_at: string;
  files: number;
  bytes: number;
  image_version?: string;
}

const WS_KEY = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const MANIFEST_SUFFIX = '.jsonl.gz';

function checkWs(ws: string): string {
  if (typeof ws !== 'string' || !WS_KEY.test(ws)) {
    throw new WorkspaceSyncError('INVALID_ARGUMENT', `invalid workspace key ${JSON.stringify(ws)}: use 1-128 letters, digits, "_", "-" or "." (not first)`);
  }
  return ws;
}

function manifestPrefix(ws: string): string {
  return `workspaces/${ws}/manifests/`;
}

/** Sync, restore, history and delete of workspace layers on one blob store. */
export class WorkspaceSync {
  private readonly historyLimit: number;
  private readonly idShift: number;
  private readonly chunkBytes: number;
  private readonly wsLocks = new Map<string, Promise<unknown>>();
  /** Syncs share it, garbage collection takes it alone. */
  private readonly gcLock = new RwLock();

  constructor(private readonly o: WorkspaceSyncOptions) {
    this.historyLimit = Math.max(1, o.historyLimit ?? 20);
    this.idShift = o.idShift ?? 0;
    this.chunkBytes = o.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  }

  /** Runs `fn` after every earlier call for the same workspace finished. */
  private serial<T>(ws: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.wsLocks.get(ws) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.then(() => undefined, () => undefined);
    this.wsLocks.set(ws, tail);
    void tail.then(() => {
      if (this.wsLocks.get(ws) === tail) this.wsLocks.delete(ws);
    });
    return next;
  }

  /** Version ids, oldest first. */
  private async versions(ws: string): Promise<string[]> {
    const out: string[] = [];
    try {
      for await (const key of this.o.blobs.list(manifestPrefix(ws))) {
        const name = key.slice(manifestPrefix(ws).length);
        if (name.endsWith(MANIFEST_SUFFIX) && !name.includes('/')) out.push(name.slice(0, -MANIFEST_SUFFIX.length));
      }
    } catch (err) {
      throw storeError(err, `listing versions of ${ws}`);
    }
    return out.sort();
  }

  private cachePath(ws: string): string | undefined {
    return this.o.cacheDir && join(this.o.cacheDir, `${ws}${MANIFEST_SUFFIX}`);
  }

  /** Streams a version's manifest: from the local cache when it holds that version, else from the store. */
  private async openManifest(ws: string, version: string, preferCache: boolean) {
    const cache = this.cachePath(ws);
    if (preferCache && cache) {
      const header = await readManifest(createReadStream(cache)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') this.o.log.warn({ ws, err: err.message }, 'workspace sync: ignoring an unreadable manifest cache');
        return undefined;
      });
      if (header?.version === version) return { source: () => createReadStream(cache), cached: true };
    }
    const key = `${manifestPrefix(ws)}${version}${MANIFEST_SUFFIX}`;
    const source = async () => {
      const body = await this.o.blobs.get(key).catch((err: unknown) => {
        throw storeError(err, `reading manifest ${version} of ${ws}`);
      });
      if (!body) throw new WorkspaceSyncError('VERSION_NOT_FOUND', `workspace ${ws} has no version ${version}`);
      return body;
    };
    return { source, cached: false };
  }

  /** Captures `layerDir` as a new version of `ws` (none when nothing changed). */
  async sync(ws: string, layerDir: string, opts: { signal?: AbortSignal; imageVersion?: string } = {}): Promise<SyncResult> {
    checkWs(ws);
    return this.serial(ws, async () => {
      const started = performance.now();
      try {
        const r = await this.gcLock.shared(() => this.syncNow(ws, layerDir, opts));
        this.o.onSyncDone?.('ok', (performance.now() - started) / 1000);
        return r;
      } catch (err) {
        this.o.onSyncDone?.('failed', (performance.now() - started) / 1000);
        throw err;
      }
    });
  }

  private async syncNow(ws: string, layerDir: string, opts: { signal?: AbortSignal; imageVersion?: string }): Promise<SyncResult> {
    const started = performance.now();
    if (opts.signal?.aborted) throw new WorkspaceSyncError('ABORTED', 'workspace sync aborted before it started');
    const root = await openLayer(layerDir);
    const work = this.o.cacheDir ?? (await mkdtemp(join(tmpdir(), 'mags-wsync-')));
    await mkdir(work, { recursive: true });
    const bodyFile = join(work, `.${ws}.${process.pid}.${randomBytes(6).toString('hex')}.body`);
    try {
      const layerSt = await root.stat({ bigint: true });
      const layerId = `${layerSt.dev}:${layerSt.ino}`;
      const versions = await this.versions(ws);
      const prevVersion = versions.at(-1);
      const prev = new Map<string, Entry>();
      const known = new Set<string>();
      let statCacheValid = false;
      if (prevVersion) {
        const m = await this.openManifest(ws, prevVersion, true);
        const header = await readManifest(await m.source(), (e) => {
          prev.set(e.path.toString('latin1'), e);
          for (const [h] of e.c ?? []) if (h) known.add(h);
        }, { trusted: m.cached });
        statCacheValid = m.cached && header.layer === layerId;
      }
      const result: SyncResult = {
        version: undefined, files: 0, bytes: 0, changedFiles: 0, changedBytes: 0, readBytes: 0, uploadedBytes: 0, uploadedBlobs: 0, skipped: 0, ms: 0,
        changes: { added: [], modified: [], deleted: [], truncated: false },
      };
      const note = (list: ChangedPath[], e: Entry) => {
        if (list.length < MAX_LISTED_CHANGES) list.push({ path: showPath(e.path), size: e.s });
        else result.changes.truncated = true;
      };
      let changed = 0;
      const gz = createGzip({ level: 1 });
      const lines = new LineWriter(gz);
      const out = createWriteStream(bodyFile, { mode: 0o600 });
      gz.pipe(out);
      const capture = new Capture({
        blobs: this.o.blobs, log: this.o.log, chunkBytes: this.chunkBytes, idShift: this.idShift, prev, statCacheValid, known, signal: opts.signal,
        beforeOpen: this.o.beforeOpen,
        emit: async (e, before) => {
          await lines.add(encodeEntry(e));
          if (before && sameEntry(before, e)) return;
          changed++;
          if (e.t === 'f') {
            result.changedFiles++;
            result.changedBytes += e.s;
          }
          note(before ? result.changes.modified : result.changes.added, e);
        },
      });
      try {
        await capture.run(root);
      } catch (err) {
        gz.destroy();
        if (opts.signal?.aborted && !(err instanceof WorkspaceSyncError)) throw new WorkspaceSyncError('ABORTED', 'workspace sync aborted', { cause: err });
        throw err;
      }
      await lines.flush();
      gz.end();
      await finished(out);
      for (const e of prev.values()) {
        changed++;
        note(result.changes.deleted, e);
      }
      Object.assign(result, {
        files: capture.stats.files, bytes: capture.stats.bytes, readBytes: capture.stats.readBytes,
        uploadedBytes: capture.stats.uploadedBytes, uploadedBlobs: capture.stats.uploadedBlobs, skipped: capture.stats.skipped,
      });
      if (changed > 0 || !prevVersion) {
        if (opts.signal?.aborted) throw new WorkspaceSyncError('ABORTED', 'workspace sync aborted before its manifest was written');
        const version = newVersionId(prevVersion);
        const header: ManifestHeader = {
          v: MANIFEST_FORMAT, ws, version, created_at: new Date().toISOString(), image_version: opts.imageVersion,
          files: result.files, bytes: result.bytes, chunk_bytes: this.chunkBytes, layer: layerId,
        };
        const head = gzipSync(`${JSON.stringify(header)}\n`);
        const size = head.length + (await stat(bodyFile)).size;
        try {
          await this.o.blobs.put(`${manifestPrefix(ws)}${version}${MANIFEST_SUFFIX}`, concatStreams(head, createReadStream(bodyFile)), { size, signal: opts.signal });
        } catch (err) {
          if (opts.signal?.aborted) throw new WorkspaceSyncError('ABORTED', 'workspace sync aborted', { cause: err });
          throw storeError(err, `writing manifest ${version} of ${ws}`);
        }
        result.version = version;
        await this.writeCache(ws, head, bodyFile);
        await this.prune(ws, [...versions, version]);
      } else if (!statCacheValid && this.o.cacheDir) {
        // Same content, but the stat cache was another layer's (or missing): keep this layer's.
        const h = await readManifest(await (await this.openManifest(ws, prevVersion, false)).source());
        await this.writeCache(ws, gzipSync(`${JSON.stringify({ ...h, layer: layerId })}\n`), bodyFile);
      }
      result.ms = performance.now() - started;
      this.o.log.debug({ ws, version: result.version, changed, uploadedBytes: result.uploadedBytes, ms: result.ms }, 'workspace synced');
      return result;
    } finally {
      await root.close();
      await rm(bodyFile, { force: true });
      if (!this.o.cacheDir) await rm(work, { recursive: true, force: true });
    }
  }

  private async writeCache(ws: string, head: Buffer, bodyFile: string): Promise<void> {
    const cache = this.cachePath(ws);
    if (!cache) return;
    const tmp = `${cache}.${process.pid}.tmp`;
    const out = createWriteStream(tmp, { mode: 0o600 });
    concatStreams(head, createReadStream(bodyFile)).pipe(out);
    await finished(out);
    await rename(tmp, cache);
  }

  /** Deletes manifests beyond the history limit (blobs go with the next `gc`). */
  private async prune(ws: string, versions: string[]): Promise<void> {
    for (const v of versions.slice(0, Math.max(0, versions.length - this.historyLimit))) {
      await this.o.blobs.delete(`${manifestPrefix(ws)}${v}${MANIFEST_SUFFIX}`).catch((err: unknown) => {
        this.o.log.warn({ ws, version: v, err: (err as Error).message }, 'workspace sync: could not prune an old version; the next sync retries');
      });
    }
  }

  /** Materialises a version (default the latest) into an empty (or missing) `layerDir`. */
  async restore(ws: string, layerDir: string, opts: { version?: string } = {}): Promise<RestoreResult> {
    checkWs(ws);
    return this.serial(ws, () => this.gcLock.shared(() => this.restoreNow(ws, layerDir, opts)));
  }

  private async restoreNow(ws: string, layerDir: string, opts: { version?: string }): Promise<RestoreResult> {
    const started = performance.now();
    if (opts.version !== undefined && !/^[0-9a-z-]{1,64}$/.test(opts.version)) {
      throw new WorkspaceSyncError('INVALID_ARGUMENT', `invalid version id ${JSON.stringify(opts.version)}`);
    }
    await mkdir(layerDir, { recursive: true, mode: 0o755 });
    const root = await openLayer(layerDir);
    try {
      if ((await readdir(`/proc/self/fd/${root.fd}`)).length > 0) {
        throw new WorkspaceSyncError('INVALID_LAYER', `restore target ${layerDir} is not empty: restore into a new directory`);
      }
    } finally {
      await root.close();
    }
    const version = opts.version ?? (await this.versions(ws)).at(-1);
    if (!version) throw new WorkspaceSyncError('VERSION_NOT_FOUND', `workspace ${ws} has no synced version to restore`);
    const restorer = new Restorer(Buffer.from(resolve(layerDir)), this.o.blobs, this.idShift);
    const m = await this.openManifest(ws, version, true);
    try {
      await readManifest(await m.source(), (e) => restorer.add(e));
    } catch (err) {
      await restorer.settle();
      throw err;
    }
    await restorer.finish();
    return { version, ...restorer.stats, ms: performance.now() - started };
  }

  /** Stored versions, newest first. */
  async history(ws: string): Promise<VersionInfo[]> {
    checkWs(ws);
    const out: VersionInfo[] = [];
    for (const v of (await this.versions(ws)).reverse()) {
      const m = await this.openManifest(ws, v, false);
      let h: ManifestHeader;
      try {
        h = await readManifest(await m.source());
      } catch (err) {
        if (err instanceof WorkspaceSyncError && err.code === 'VERSION_NOT_FOUND') continue; // pruned meanwhile
        throw err;
      }
      out.push({ version: h.version, created_at: h.created_at, files: h.files, bytes: h.bytes, image_version: h.image_version });
    }
    return out;
  }

  /** The newest version, or undefined when the workspace was never synced. */
  async latest(ws: string): Promise<VersionInfo | undefined> {
    checkWs(ws);
    const v = (await this.versions(ws)).at(-1);
    if (!v) return undefined;
    const h = await readManifest(await (await this.openManifest(ws, v, true)).source());
    return { version: h.version, created_at: h.created_at, files: h.files, bytes: h.bytes, image_version: h.image_version };
  }

  /** Deletes every version of `ws`, its local cache, and the blobs no other workspace's version uses. */
  async delete(ws: string): Promise<void> {
    checkWs(ws);
    return this.serial(ws, async () => {
      for (const v of await this.versions(ws)) {
        await this.o.blobs.delete(`${manifestPrefix(ws)}${v}${MANIFEST_SUFFIX}`).catch((err: unknown) => {
          throw storeError(err, `deleting version ${v} of ${ws}`);
        });
      }
      const cache = this.cachePath(ws);
      if (cache) await rm(cache, { force: true });
      await this.gc();
    });
  }

  /** Removes blobs that no kept version of any workspace references (and that are older than the grace period). */
  gc(): Promise<{ deletedBlobs: number }> {
    return this.gcLock.exclusive(() => new Gc(this.o.blobs, this.o.log, this.o.gcGraceMs ?? 3600_000).run(MANIFEST_SUFFIX));
  }
}

/** Opens the layer root refusing symlinks; INVALID_LAYER when it is missing or no directory. */
async function openLayer(layerDir: string) {
  try {
    return await open(layerDir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    throw new WorkspaceSyncError('INVALID_LAYER', `layer directory ${layerDir} cannot be opened as a directory (${(err as NodeJS.ErrnoException).code}); it must exist and not be a symlink`, { cause: err });
  }
}

/** Sortable version ids: 15-digit ms time (strictly after `prev`) plus a random suffix. */
function newVersionId(prev: string | undefined): string {
  let ms = Date.now();
  const prevMs = prev ? Number(prev.split('-')[0]) : 0;
  if (ms <= prevMs) ms = prevMs + 1;
  return `${String(ms).padStart(15, '0')}-${randomBytes(3).toString('hex')}`;
}
