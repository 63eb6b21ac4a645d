/**
 * Retry with exponential backoff for syncs that fail with a retryable error (the blob store is
 * down). Anything else (corrupt data, bad arguments, an abort) is thrown at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkspaceSyncError } from './errors.js';
import type { SyncResult } from './index.js';

export interface SyncRetryOptions {
  signal?: AbortSignal;
  imageVersion?: string;
  /** Attempts in all, default 8. */
  attempts?: number;
  /** First delay, doubled after each failure up to `maxDelayMs`; defaults 500 ms and 30 s. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Called before each wait (for logs and tests). */
  onRetry?: (err: WorkspaceSyncError, attempt: number, delayMs: number) => void;
}

/** `sync.sync(ws, layerDir)` (a `WorkspaceSync`, or a wrapper of one) retried with backoff while it fails with a retryable WorkspaceSyncError. */
export async function syncWithRetry<R = SyncResult>(
  sync: { sync(ws: string, layerDir: string, opts: { signal?: AbortSignal; imageVersion?: string }): Promise<R> },
  ws: string,
  layerDir: string,
  opts: SyncRetryOptions = {},
): Promise<R> {
  const attempts = opts.attempts ?? 8;
  let delay = opts.baseDelayMs ?? 500;
  for (let attempt = 1; ; attempt++) {
    try {
      return await sync.sync(ws, layerDir, { signal: opts.signal, imageVersion: opts.imageVersion });
    } catch (err) {
      if (!(err instanceof WorkspaceSyncError) || !err.retryable || attempt >= attempts) throw err;
      const wait = Math.min(delay, opts.maxDelayMs ?? 30_000);
      opts.onRetry?.(err, attempt, wait);
      await sleep(wait, undefined, { signal: opts.signal });
      delay *= 2;
    }
  }
}
