import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { composeControlPlane, type ControlPlane } from '../src/compose.js';
import { silentLogger } from '../src/logger.js';
import { createBlobStore } from '../src/storage/blobs/index.js';
import { openStores, type Stores } from '../src/storage/stores.js';
import { LocalLayers } from '../src/workspaces/local-layers.js';
import { FakePool } from './helpers/fake-runtime.js';

/**
 * Catch-up on the real clock: a control plane stops while a schedule (every second, the test-only
 * seconds field) misses several firings; the next control plane on the same SQLite file runs the
 * latest missed one once at start, then fires on time again.
 */
describe('cron catch-up after a restart (real clock, SQLite)', () => {
  it('runs one missed firing at start, never a burst', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mags-cron-restart-'));
    const open = async () => {
      const stores = await openStores({ sqlitePath: join(dir, 'mags.db') });
      const pool = new FakePool();
      const plane = await composeControlPlane({
        stores,
        pool,
        log: silentLogger(),
        blobs: await createBlobStore({ driver: 'fs', root: join(dir, 'blobs') }),
        workspaces: { layers: new LocalLayers(join(dir, 'ws')), imageVersion: () => 'test' },
        settings: { jobTimeoutSeconds: 30, maxOutputBytes: 100_000, maxConcurrentJobs: 4, cronAllowSeconds: true, cronMissedAfterMs: 1500 },
      });
      await plane.start();
      return { stores, pool, plane };
    };
    const close = async (x: { stores: Stores; pool: FakePool; plane: ControlPlane }) => {
      await x.plane.close();
      await x.stores.close();
      await x.pool.stop();
    };
    let current: Awaited<ReturnType<typeof open>> | undefined;
    try {
      current = await open();
      const user = { id: 'u-restart', name: 'restart', admin: false, created_at: new Date().toISOString() };
      await current.stores.users.createUser(user);
      const s = await current.plane.cron.create(user, { name: 'tick', cron_expression: '*/2 * * * * *', script: 'true' });
      await new Promise((r) => setTimeout(r, 2500));
      await close(current);
      current = undefined;
      const stoppedAt = Date.now();
      await new Promise((r) => setTimeout(r, 7000)); // three or four firings missed
      current = await open();
      const restartedAt = Date.now();
      await new Promise((r) => setTimeout(r, 3000));
      const runs = (await current.stores.cron.listRuns(s.id, 100)).reverse();
      const catchUps = runs.filter((r) => r.trigger === 'catch_up');
      assert.equal(catchUps.length, 1, JSON.stringify(runs));
      const cu = catchUps[0]!;
      assert.equal(cu.outcome, 'submitted');
      assert.ok(Date.parse(cu.created_at) - restartedAt < 1000, 'at start');
      assert.ok(Date.parse(cu.scheduled_for) > stoppedAt + 4000, 'the latest missed time, not the first');
      const during = runs.filter((r) => Date.parse(r.scheduled_for) > stoppedAt && Date.parse(r.scheduled_for) < restartedAt);
      assert.equal(during.length, 1, 'of the missed times only one ran');
      const after = runs.filter((r) => r.trigger === 'schedule' && Date.parse(r.scheduled_for) >= restartedAt);
      assert.ok(after.length >= 1, 'on time again after the catch-up');
    } finally {
      if (current) await close(current);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
