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

/** Every metadata database driver the conformance suites run on. */
export const STORE_BACKENDS: ReadonlyArray<{ name: string; open(): Promise<StoreBackend> }> = [
  {
    name: 'SQLite',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'mags-store-'));
      const target = { sqlitePath: join(dir, 'mags.db') };
      try {
        const stores = await openStores(target);
        return {
          stores,
          target,
          async cleanup() {
            try {
              await stores.close();
            } finally {
              await rm(dir, { recursive: true, force: true });
            }
          },
        };
      } catch (err) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    },
  },
  {
    name: 'PostgreSQL 15',
    async open() {
      const pg = await startPostgres();
      const target = { url: pg.url, sqlitePath: '' };
      try {
        const stores = await openStores(target);
        return {
          stores,
          target,
          async cleanup() {
            try {
              await stores.close();
            } finally {
              await pg.stop();
            }
          },
        };
      } catch (err) {
        await pg.stop();
        throw err;
      }
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
    created_at: now, started_at: null, completed_at: null, updated_at: now, ...over,
  };
}
