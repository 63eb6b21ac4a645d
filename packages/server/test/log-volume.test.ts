import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createHarness } from './helpers/harness.js';

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
});
