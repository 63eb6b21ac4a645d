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
import { startPostgres } from './helpers/postgres.js';

/**
 * Two control planes (two daemons) on one throwaway PostgreSQL with an every-second schedule (the
 * test-only seconds field): every scheduled second is fired by exactly one of them, and each
 * submitted firing is one job.
 */
describe('cron with two daemons on one PostgreSQL', () => {
  it('fires each scheduled time once', async () => {
    const pg = await startPostgres();
    const dir = await mkdtemp(join(tmpdir(), 'mags-cron-pg-'));
    const planes: Array<{ plane: ControlPlane; stores: Stores; pool: FakePool }> = [];
    try {
      for (const n of [1, 2]) {
        const stores = await openStores({ url: pg.url, sqlitePath: ':memory:' });
        const pool = new FakePool();
        const plane = await composeControlPlane({
          stores,
          pool,
          log: silentLogger(),
          blobs: await createBlobStore({ driver: 'fs', root: join(dir, `blobs${n}`) }),
          workspaces: { layers: new LocalLayers(join(dir, `ws${n}`)), imageVersion: () => 'test' },
          settings: { jobTimeoutSeconds: 30, maxOutputBytes: 100_000, maxConcurrentJobs: 8, cronAllowSeconds: true },
        });
        planes.push({ plane, stores, pool });
      }
      const [a, b] = planes as [(typeof planes)[0], (typeof planes)[0]];
      const user = { id: 'u-cron', name: 'cron', admin: false, created_at: new Date().toISOString() };
      await a.stores.users.createUser(user);
      await a.plane.start();
      await b.plane.start();
      // Overlap queue: a firing never disappears because the previous one-second job is still starting.
      const s = await a.plane.cron.create(user, { name: 'every-second', cron_expression: '* * * * * *', script: 'true', overlap: 'queue' });
      await new Promise((r) => setTimeout(r, 6500));
      await a.plane.cron.update(user, s.id, { enabled: false });
      await new Promise((r) => setTimeout(r, 1500));
      const runs = await a.stores.cron.listRuns(s.id, 1000);
      const times = runs.map((r) => Date.parse(r.scheduled_for)).sort((x, y) => x - y);
      assert.ok(times.length >= 5, `${times.length} firings in 6.5 s`);
      for (let i = 1; i < times.length; i++) assert.equal(times[i]! - times[i - 1]!, 1000, 'one firing per second, none missing, none twice');
      const jobs = await a.stores.jobs.listJobs(user.id, 0, 1000);
      const submitted = runs.filter((r) => r.job_id !== null);
      assert.equal(jobs.total, submitted.length, 'one job per submitted firing');
      assert.equal(new Set(submitted.map((r) => r.job_id)).size, submitted.length);
      assert.ok(submitted.length >= times.length - 1, `${submitted.length} of ${times.length} firings submitted`);
      assert.ok(a.pool.acquired + b.pool.acquired >= submitted.length - 1);
    } finally {
      for (const p of planes) {
        await p.plane.close();
        await p.stores.close();
        await p.pool.stop();
      }
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
