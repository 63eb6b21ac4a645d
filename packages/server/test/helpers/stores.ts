import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newId } from '../../src/services/tokens.js';
import type { Job } from '../../src/storage/metadata/store.js';
import { openStores, type Stores } from '../../src/storage/stores.js';
import { startPostgres } from './postgres.js';

/** A metadata database for a conformance suite: its stores and how to remove it. */
export interface StoreBackend {
  stores: Stores;
  /** What `openStores` was given (to open the same database again). */
  target: { url?: string; sqlitePath: string };
  /** Closes the stores and deletes the database (temp dir or throwaway cluster). */
  cleanup(): Promise<void>;
}

/** Opens the stores on `target`; `release` removes the database when the stores close or opening fails. */
async function backend(target: StoreBackend['target'], release: () => Promise<void>): Promise<StoreBackend> {
  let stores: Stores;
  try {
    stores = await openStores(target);
  } catch (err) {
    await release();
    throw err;
  }
  return {
    stores,
    target,
    async cleanup() {
      try {
        await stores.close();
      } finally {
        await release();
      }
    },
  };
}

/** Every metadata database driver the conformance suites run on. */
export const STORE_BACKENDS: ReadonlyArray<{ name: string; open(): Promise<StoreBackend> }> = [
  {
    name: 'SQLite',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'mags-store-'));
      return backend({ sqlitePath: join(dir, 'mags.db') }, () => rm(dir, { recursive: true, force: true }));
    },
  },
  {
    name: 'PostgreSQL 15',
    async open() {
      const pg = await startPostgres();
      return backend({ url: pg.url, sqlitePath: '' }, () => pg.stop());
    },
  },
];

/** A pending job of this user with every field set. */
export function job(userId: string, over: Partial<Job> = {}): Job {
  const now = new Date().toISOString();
  return {
    request_id: newId(), user_id: userId, name: null, workspace_id: null, base_workspace_id: null, type: 'inline',
    script: 'echo hi', persistent: false, no_sleep: false, startup_command: null, environment: { A: '1' }, file_ids: [],
    disk_gb: 2, vcpus: 2, memory_mb: 1024, rootfs_type: null, timeout_seconds: null, api_version: 1, status: 'pending',
    exit_code: null, end_reason: null, error_message: null, vm_id: null, host: null, subdomain: null, url: null, script_duration_ms: null,
    created_at: now, started_at: null, completed_at: null, updated_at: now, webhook_url: null, ...over,
  };
}
