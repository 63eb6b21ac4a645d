/**
 * Read-only views of a stored workspace version: the entries of its manifest and the bytes of a
 * file from its chunks, for the files API of a sleeping job or a stored workspace (no sandbox is
 * started). The manifest holds the workspace's own layer (what its jobs created or changed), not
 * the base image below it. Paths are looked up as given: symlinks are listed, never followed.
 */
import { Readable } from 'node:stream';
import type { BlobStore } from '../../storage/blobs/blob-store.js';
import { blobKey, storeError } from './capture.js';
import { WorkspaceSyncError } from './errors.js';
import { readManifest, type Entry } from './manifest.js';

/** One entry as the files API shows it; `path` is relative to the layer root, without a leading slash. */
export interface SnapshotEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  size: number;
  mode: number;
  mtimeMs: number;
  target?: string;
  /** Chunks of a file: [sha256 or null for zeros, length]. */
  chunks?: Array<[string | null, number]>;
}

function toSnapshot(e: Entry): SnapshotEntry | undefined {
  if (e.t === 'w') return undefined;
  const type = e.t === 'f' ? 'file' : e.t === 'd' ? 'dir' : 'symlink';
  return {
    path: e.path.toString('utf8'),
    type,
    size: type === 'symlink' ? (e.link?.length ?? 0) : e.s,
    mode: e.m & 0o7777,
    mtimeMs: e.mt,
    ...(e.link ? { target: e.link.toString('utf8') } : {}),
    ...(e.c ? { chunks: e.c } : {}),
  };
}

/** Streams a manifest and collects what `want` keeps (one pass, nothing else held). */
export async function scanManifest(source: Readable, want: (e: SnapshotEntry) => boolean): Promise<SnapshotEntry[]> {
  const out: SnapshotEntry[] = [];
  await readManifest(source, (e) => {
    const s = toSnapshot(e);
    if (s && want(s)) out.push(s);
  }, { trusted: true });
  return out;
}

/**
 * The bytes `[offset, offset + length)` of a file entry, streamed chunk by chunk from the blob
 * store (runs of zeros are generated), never the whole file in memory.
 */
export function readChunks(blobs: BlobStore, entry: SnapshotEntry, offset: number, length: number): Readable {
  const chunks = entry.chunks ?? [];
  async function* bytes(): AsyncGenerator<Buffer> {
    let pos = 0;
    let left = length;
    for (const [hash, len] of chunks) {
      if (left <= 0) return;
      const start = pos;
      pos += len;
      if (pos <= offset) continue;
      const from = Math.max(0, offset - start);
      const take = Math.min(len - from, left);
      if (hash === null) {
        for (let done = 0; done < take; done += 1024 * 1024) yield Buffer.alloc(Math.min(1024 * 1024, take - done));
      } else {
        let body;
        try {
          body = await blobs.get(blobKey(hash));
        } catch (err) {
          throw storeError(err, `reading chunk ${hash.slice(0, 12)} of ${entry.path}`);
        }
        if (!body) throw new WorkspaceSyncError('MISSING_BLOB', `blob ${hash} of ${JSON.stringify(entry.path)} is missing from the store`, { path: entry.path });
        let at = 0;
        for await (const c of body as AsyncIterable<Buffer>) {
          const lo = Math.max(from - at, 0);
          const hi = Math.min(from + take - at, c.length);
          if (hi > lo) yield c.subarray(lo, hi);
          at += c.length;
          if (at >= from + take) break;
        }
        (body as Readable).destroy?.();
      }
      left -= take;
    }
  }
  return Readable.from(bytes(), { objectMode: false });
}
