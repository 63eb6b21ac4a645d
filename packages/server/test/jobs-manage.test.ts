/** Job management routes of ours, through the in-process control plane: DELETE a job, list filters, logs tail. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHarness } from './helpers/harness.js';

describe('job management', () => {
  it('DELETE removes a job that ended and its output; a running job is refused with 409 CONFLICT', async () => {
    const h = await createHarness();
    try {
      const auth = { authorization: `Bearer ${h.adminToken}` };
      const submit = async (script: string) => {
        const res = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: auth, payload: { type: 'inline', script } });
        return (res.json() as { request_id: string }).request_id;
      };
      const done = await submit('echo one; echo two');
      await h.waitDone(h.adminToken, done);
      const running = await submit('sleep 30');
      const deadline = Date.now() + 5000;
      while ((await h.stores.jobs.getJob(running))!.status !== 'running') {
        assert.ok(Date.now() < deadline);
        await new Promise((r) => setTimeout(r, 20));
      }
      const refused = await h.app.inject({ method: 'DELETE', url: `/api/v1/mags-jobs/${running}`, headers: auth });
      assert.equal(refused.statusCode, 409);
      assert.equal(refused.json().code, 'CONFLICT');
      assert.match(refused.json().hint, /stop/);

      const del = await h.app.inject({ method: 'DELETE', url: `/api/v1/mags-jobs/${done}`, headers: auth });
      assert.equal(del.statusCode, 200, del.body);
      assert.deepEqual(del.json(), { success: true, request_id: done });
      assert.equal((await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${done}/status`, headers: auth })).statusCode, 404);
      assert.deepEqual(await h.stores.logs.readChunks(done, 0, 10), [], 'the output is gone');
      const again = await h.app.inject({ method: 'DELETE', url: `/api/v1/mags-jobs/${done}`, headers: auth });
      assert.equal(again.json().code, 'JOB_NOT_FOUND');

      const other = await h.makeUser('other');
      const notYours = await h.app.inject({ method: 'DELETE', url: `/api/v1/mags-jobs/${running}`, headers: { authorization: `Bearer ${other}` } });
      assert.equal(notYours.statusCode, 404);
      await h.app.inject({ method: 'POST', url: `/api/v1/mags-jobs/${running}/stop`, headers: auth, payload: {} });
      assert.equal((await h.app.inject({ method: 'DELETE', url: `/api/v1/mags-jobs/${running}`, headers: auth })).statusCode, 200);
    } finally {
      await h.close();
    }
  });

  it('list filters by status and creation time; bad filters are 400; logs tail gives the last n lines', async () => {
    const h = await createHarness();
    try {
      const auth = { authorization: `Bearer ${h.adminToken}` };
      const submit = async (script: string) => {
        const res = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: auth, payload: { type: 'inline', script } });
        return (res.json() as { request_id: string }).request_id;
      };
      const ok = await submit('seq 1 10');
      const bad = await submit('exit 3');
      await h.waitDone(h.adminToken, ok);
      await h.waitDone(h.adminToken, bad);
      const list = async (q: string) => {
        const res = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs?${q}`, headers: auth });
        return res;
      };
      const ids = async (q: string) => ((await list(q)).json() as { jobs: Array<{ request_id: string }> }).jobs.map((j) => j.request_id);
      assert.deepEqual(await ids('status=error'), [bad]);
      assert.deepEqual(await ids('status=completed,error'), [bad, ok]);
      assert.deepEqual(await ids('status=running'), []);
      assert.equal(((await list('status=error')).json() as { total: number }).total, 1);
      assert.deepEqual(await ids(`since=${encodeURIComponent(new Date(Date.now() - 60_000).toISOString())}`), [bad, ok]);
      assert.deepEqual(await ids(`since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`), []);
      for (const q of ['status=runing', 'status=', 'since=yesterday', 'status=running,,error']) {
        const res = await list(q);
        assert.equal(res.statusCode, 400, q);
        assert.equal(res.json().code, 'VALIDATION_ERROR', q);
      }
      await h.logs.flush();
      const tail = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${ok}/logs?tail=3`, headers: auth });
      assert.deepEqual((tail.json() as { logs: Array<{ message: string }> }).logs.map((l) => l.message), ['8', '9', '10']);
      const none = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${ok}/logs?tail=0`, headers: auth });
      assert.deepEqual(none.json(), { logs: [] });
      const withFollow = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${ok}/logs?tail=3&follow=1`, headers: auth });
      assert.equal(withFollow.statusCode, 400);
    } finally {
      await h.close();
    }
  });
});
