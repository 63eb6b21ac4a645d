import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { silentLogger } from '../src/logger.js';
import { logSweep, Retention } from '../src/services/retention.js';
import { createHarness, type Harness } from './helpers/harness.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe('log volume', () => {
  it('2 M empty lines hit the output cap through the per-line overhead', async () => {
    const cap = 1 * MiB;
    const h = await createHarness({ maxOutputBytes: cap, jobTimeoutSeconds: 120 });
    try {
      const auth = { authorization: `Bearer ${h.adminToken}` };
      const heapBefore = heapAfterGc();
      const started = Date.now();
      const res = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: auth, payload: { script: "yes '' | head -n 2000000", type: 'inline' } });
      assert.equal(res.statusCode, 202, res.body);
      const id = (res.json() as { request_id: string }).request_id;
      const st = await h.waitDone(h.adminToken, id, 60_000);
      const elapsed = Date.now() - started;
      assert.equal(st.status, 'completed');
      const rows = await h.stores.logs.maxSeq(id);
      const heapGrowth = heapAfterGc() - heapBefore;
      console.log(`# ${rows} rows stored in ${elapsed} ms; heap growth ${(heapGrowth / MiB).toFixed(1)} MiB`);
      // Each line costs its bytes + 64 (docs/api.md): the text-free rows end at cap / 64, plus the truncation line.
      assert.ok(rows <= cap / 64 + 1, `${rows} rows stored`);
      const last = await h.stores.logs.read(id, rows - 1, 1);
      assert.equal(last[0]!.stream, 'system');
      assert.match(last[0]!.message, /^\[output truncated: the job wrote more than 1048576 bytes/);
      assert.ok(elapsed < 10_000, `took ${elapsed} ms`);

      // Without `limit` the answer holds every line (Mags clients expect it); `limit` pages by up to 10000.
      const all = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${id}/logs`, headers: auth });
      assert.equal(all.statusCode, 200);
      assert.equal((all.json() as { logs: unknown[] }).logs.length, rows);
      const page = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${id}/logs?after=10&limit=10000`, headers: auth });
      assert.equal(page.statusCode, 200);
      const lines = (page.json() as { logs: Array<{ seq: number }> }).logs;
      assert.equal(lines.length, 10_000);
      assert.equal(lines[0]!.seq, 11);
      assert.ok(heapGrowth < 32 * MiB, `heap grew by ${heapGrowth} bytes`);
    } finally {
      await h.close();
    }
  });

  describe('log retention (MAGS_LOG_RETENTION_DAYS)', () => {
    const DAY = 86_400_000;
    const run = async (h: Harness, script: string) => {
      const res = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: { authorization: `Bearer ${h.adminToken}` }, payload: { script, type: 'inline' } });
      assert.equal(res.statusCode, 202, res.body);
      const id = (res.json() as { request_id: string }).request_id;
      assert.equal((await h.waitDone(h.adminToken, id)).status, 'completed');
      await h.logs.flush();
      return id;
    };
    const getLogs = async (h: Harness, id: string) => {
      const res = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${id}/logs`, headers: { authorization: `Bearer ${h.adminToken}` } });
      assert.equal(res.statusCode, 200, res.body);
      return (res.json() as { logs: Array<{ message: string }> }).logs;
    };
    const endedDaysAgo = (h: Harness, id: string, days: number) =>
      h.stores.jobs.updateJob(id, { completed_at: new Date(Date.now() - days * DAY).toISOString() });

    it('the daemon deletes the lines of jobs that ended more than N days ago; the job row stays', async () => {
      const h = await createHarness({ logRetentionDays: 3, logRetentionIntervalMs: 50 });
      try {
        const old = await run(h, 'echo old');
        const recent = await run(h, 'echo recent');
        await endedDaysAgo(h, old, 4);
        await endedDaysAgo(h, recent, 2);
        const before = (await h.stores.jobs.getJob(old))!;
        const deadline = Date.now() + 5_000;
        while ((await getLogs(h, old)).length > 0) {
          assert.ok(Date.now() < deadline, 'the old job still has its lines');
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.deepEqual(await getLogs(h, old), []);
        assert.deepEqual((await getLogs(h, recent)).map((l) => l.message), ['recent']);
        const afterRow = (await h.stores.jobs.getJob(old))!;
        assert.equal(afterRow.status, before.status);
        assert.equal(afterRow.completed_at, before.completed_at);
        const st = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${old}/status`, headers: { authorization: `Bearer ${h.adminToken}` } });
        assert.equal((st.json() as { status: string }).status, 'completed');
      } finally {
        await h.close();
      }
    });

    it('sweeps at start and then every interval, by its clock; 0 days keeps everything', async () => {
      const h = await createHarness();
      let retention: Retention | undefined;
      try {
        const id = await run(h, 'echo kept; echo more');
        const off = new Retention(silentLogger(), [logSweep(h.stores.logs, 0)], { now: () => Date.now() + 1000 * DAY });
        off.start();
        await off.stop();
        assert.equal((await getLogs(h, id)).length, 2);

        let now = Date.now();
        retention = new Retention(silentLogger(), [logSweep(h.stores.logs, 1)], { intervalMs: 30, now: () => now });
        retention.start(); // the sweep at start: the job ended just now, nothing goes
        await new Promise((r) => setTimeout(r, 10));
        assert.equal((await getLogs(h, id)).length, 2);
        now += 2 * DAY; // a later sweep sees the job 2 days old
        const deadline = Date.now() + 5_000;
        while ((await getLogs(h, id)).length > 0) {
          assert.ok(Date.now() < deadline, 'no sweep deleted the lines');
          await new Promise((r) => setTimeout(r, 10));
        }
      } finally {
        await retention?.stop();
        await h.close();
      }
    });
  });
});
