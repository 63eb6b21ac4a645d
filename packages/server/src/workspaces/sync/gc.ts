/**
 * Garbage collection of chunk blobs: mark every chunk that a kept manifest of any workspace
 * references, then delete the other blobs, except those written within the grace period (a sync
 * on another host may have uploaded them for a manifest it has not written yet). Within one
 * process, syncs hold the shared side of an RwLock and gc the exclusive side, so a blob a running
 * sync relies on is never swept under it.
 */
import type { Logger } from '../../logger.js';
import type { BlobStore } from '../../storage/blobs/index.js';
import { storeError } from './capture.js';
import { readManifest } from './manifest.js';

/** A readers-writer lock on promises: many `shared` holders or one `exclusive`, writers not starved. */
export class RwLock {
  private readers = 0;
  private writer = false;
  private queue: { exclusive: boolean; wake: () => void }[] = [];

  private pump(): void {
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      if (next.exclusive) {
        if (this.readers > 0 || this.writer) return;
        this.writer = true;
      } else {
        if (this.writer) return;
        this.readers++;
      }
      this.queue.shift();
      next.wake();
    }
  }

  private async hold<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    await new Promise<void>((wake) => {
      this.queue.push({ exclusive, wake });
      this.pump();
    });
    try {
      return await fn();
    } finally {
      if (exclusive) this.writer = false;
      else this.readers--;
      this.pump();
    }
  }

  shared<T>(fn: () => Promise<T>): Promise<T> {
    return this.hold(false, fn);
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.hold(true, fn);
  }
}

/** One mark-and-sweep pass. */
export class Gc {
  constructor(
    private readonly blobs: BlobStore,
    private readonly log: Logger,
    private readonly graceMs: number,
  ) {}

  async run(manifestSuffix: string): Promise<{ deletedBlobs: number }> {
    const live = new Set<string>();
    try {
      for await (const key of this.blobs.list('workspaces/')) {
        if (!key.endsWith(manifestSuffix)) continue;
        const body = await this.blobs.get(key);
        if (!body) continue; // deleted meanwhile
        await readManifest(body, (e) => {
          for (const [h] of e.c ?? []) if (h) live.add(h);
        });
      }
      let deletedBlobs = 0;
      const cutoff = Date.now() - this.graceMs;
      for await (const key of this.blobs.list('blobs/sha256/')) {
        const hash = key.slice(key.lastIndexOf('/') + 1);
        if (live.has(hash)) continue;
        if (this.graceMs > 0) {
          const head = await this.blobs.head(key);
          if (!head || (head.lastModified && head.lastModified.getTime() > cutoff)) continue;
        }
        await this.blobs.delete(key);
        deletedBlobs++;
      }
      this.log.info({ live: live.size, deletedBlobs }, 'workspace blobs collected');
      return { deletedBlobs };
    } catch (err) {
      throw storeError(err, 'collecting unreferenced blobs');
    }
  }
}
