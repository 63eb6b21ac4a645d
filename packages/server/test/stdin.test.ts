/** Job stdin (`"stdin": true` + `PUT .../stdin`) through the in-process control plane and the fake runtime. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { StdinHub } from '../src/services/stdin.js';
import { createHarness } from './helpers/harness.js';

const MiB = 1024 * 1024;

describe('job stdin', () => {
  it('the upload becomes the script stdin; the answer counts the bytes it took; misuse is refused with codes', async () => {
    const h = await createHarness();
    try {
      const auth = { authorization: `Bearer ${h.adminToken}` };
      const submit = async (payload: object) => {
        const res = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: auth, payload: { type: 'inline', ...payload } });
        assert.equal(res.statusCode, 202, res.body);
        return (res.json() as { request_id: string }).request_id;
      };
      const id = await submit({ script: 'tr a-z A-Z; echo end', stdin: true });
      const put = await h.app.inject({ method: 'PUT', url: `/api/v1/mags-jobs/${id}/stdin`, headers: { ...auth, 'content-type': 'application/octet-stream' }, payload: 'hello\nworld' });
      assert.equal(put.statusCode, 200, put.body);
      assert.deepEqual(put.json(), { bytes: 11 });
      assert.equal((await h.waitDone(h.adminToken, id)).status, 'completed');
      const logs = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${id}/logs?format=raw&stream=stdout`, headers: auth });
      assert.equal(logs.body, 'HELLO\nWORLDend\n');

      const again = await h.app.inject({ method: 'PUT', url: `/api/v1/mags-jobs/${id}/stdin`, headers: auth, payload: 'x' });
      assert.equal(again.statusCode, 409);
      assert.equal(again.json().code, 'JOB_NOT_RUNNING');

      const plain = await submit({ script: 'sleep 2' });
      const refused = await h.app.inject({ method: 'PUT', url: `/api/v1/mags-jobs/${plain}/stdin`, headers: auth, payload: 'x' });
      assert.equal(refused.statusCode, 422);
      assert.equal(refused.json().code, 'INVALID_STATE');

      const twice = await submit({ script: 'cat >/dev/null; sleep 1', stdin: true });
      const first = h.app.inject({ method: 'PUT', url: `/api/v1/mags-jobs/${twice}/stdin`, headers: auth, payload: 'one' });
      await new Promise((r) => setTimeout(r, 50));
      const second = await h.app.inject({ method: 'PUT', url: `/api/v1/mags-jobs/${twice}/stdin`, headers: auth, payload: 'two' });
      assert.equal(second.statusCode, 409);
      assert.equal(second.json().code, 'CONFLICT');
      assert.equal((await first).statusCode, 200);
      await h.app.inject({ method: 'POST', url: `/api/v1/mags-jobs/${plain}/stop`, headers: auth, payload: {} });
    } finally {
      await h.close();
    }
  });

  it('100 MiB of stdin over a real socket is streamed, not buffered whole; the script sees every byte', async () => {
    const h = await createHarness({ jobTimeoutSeconds: 120 });
    try {
      const auth = { authorization: `Bearer ${h.adminToken}` };
      const res = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: auth, payload: { type: 'inline', script: 'sha256sum | cut -c1-64', stdin: true } });
      const id = (res.json() as { request_id: string }).request_id;
      const url = await h.app.listen({ port: 0, host: '127.0.0.1' });
      const block = Buffer.alloc(MiB, 'stdin-bytes ');
      const want = createHash('sha256');
      for (let i = 0; i < 100; i++) want.update(block);
      let peakHeap = 0;
      const heap0 = process.memoryUsage().heapUsed;
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed - heap0);
          if (sent++ < 100) controller.enqueue(new Uint8Array(block));
          else controller.close();
        },
      });
      const put = await fetch(`${url}/api/v1/mags-jobs/${id}/stdin`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/octet-stream' }, body, duplex: 'half' } as RequestInit);
      assert.equal(put.status, 200, await put.clone().text());
      assert.deepEqual(await put.json(), { bytes: 100 * MiB });
      assert.equal((await h.waitDone(h.adminToken, id, 60_000)).status, 'completed');
      await h.logs.flush();
      const out = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${id}/logs?format=raw&stream=stdout`, headers: auth });
      assert.equal(out.body.trim(), want.digest('hex'));
      assert.ok(peakHeap < 64 * MiB, `heap grew by ${peakHeap} bytes while 100 MiB streamed`);
    } finally {
      await h.close();
    }
  });

  it('StdinHub: without an upload in time the script reads EOF; an upload after the job ended is refused', async () => {
    const hub = new StdinHub(50);
    hub.expect('j');
    const got: Buffer[] = [];
    const t0 = Date.now();
    for await (const c of hub.take('j')) got.push(c);
    assert.deepEqual(got, []);
    assert.ok(Date.now() - t0 < 2000);
    assert.throws(() => hub.provide('j', (async function* () {})()), { code: 'CONFLICT', message: /already reached EOF/ });
    // An upload that comes while the script already waits for it is taken.
    hub.expect('w');
    const reading = (async () => {
      const parts: string[] = [];
      for await (const c of hub.take('w')) parts.push(c.toString());
      return parts.join('');
    })();
    await new Promise((r) => setTimeout(r, 10));
    const answered = hub.provide('w', (async function* () {
      yield Buffer.from('late ');
      yield Buffer.from('but taken');
    })());
    assert.equal(await reading, 'late but taken');
    assert.deepEqual(await answered, { bytes: 14 });
    hub.drop('j');
    assert.throws(() => hub.provide('j', (async function* () {})()), { code: 'INVALID_STATE' });
    hub.expect('k');
    const waiting = hub.provide('k', (async function* () {})());
    hub.drop('k');
    await assert.rejects(waiting, { code: 'JOB_NOT_RUNNING' });
  });
});
