/**
 * The data dir is private: after a real server start the database (and its -wal/-shm files) and the
 * admin token are 0600, the data dir, workspaces, sync cache and blob dir 0700, also when an earlier
 * start left them world-readable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServer } from './helpers/spawn-server.js';

const FILES = ['mags.db', 'mags.db-wal', 'mags.db-shm', 'admin-token'];
const DIRS = ['.', 'workspaces', 'sync-cache', 'blobs'];

function modes(dataDir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [...FILES, ...DIRS]) {
    const p = join(dataDir, name);
    out[name] = existsSync(p) ? (statSync(p).mode & 0o777).toString(8) : 'missing';
  }
  return out;
}

const PRIVATE = Object.fromEntries([...FILES.map((f) => [f, '600']), ...DIRS.map((d) => [d, '700'])]);

test('the database, its -wal/-shm, the admin token and the data dirs are private, also after a loosened restart', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mags-modes-'));
  const home = mkdtempSync(join(tmpdir(), 'mags-modes-home-'));
  try {
    chmodSync(dataDir, 0o755);
    const first = await spawnServer({ dataDir, home });
    try {
      assert.deepEqual(modes(dataDir), PRIVATE);
    } finally {
      await first.stop();
    }
    // As an older version left them: world-readable.
    for (const f of FILES) if (existsSync(join(dataDir, f))) chmodSync(join(dataDir, f), 0o644);
    for (const d of DIRS) chmodSync(join(dataDir, d), 0o755);
    const second = await spawnServer({ dataDir, home });
    try {
      assert.deepEqual(modes(dataDir), PRIVATE);
    } finally {
      await second.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  }
});
