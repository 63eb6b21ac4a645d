import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createHarness, type Harness } from './helpers/harness.js';
import type { AccessGrant } from '../src/sandboxes/live.js';
import { POSTGRES_SKIP, startPostgres, type TestPostgres } from './helpers/postgres.js';

/**
 * The jobs API in-process (app.inject) with the fake sandbox pool, on a real SQLite store and on a
 * throwaway PostgreSQL (one code path, both backends).
 */
for (const backend of ['SQLite', 'PostgreSQL'] as const)
describe(`jobs API (in-process, ${backend})`, { skip: backend === 'PostgreSQL' && POSTGRES_SKIP }, () => {
  let h: Harness;
  let pg: TestPostgres | undefined;
  let auth: Record<string, string>;
  before(async () => {
    if (backend === 'PostgreSQL') pg = await startPostgres();
    h = await createHarness({ jobTimeoutSeconds: 2, maxOutputBytes: 2000, databaseUrl: pg?.url });
    auth = { authorization: `Bearer ${h.adminToken}` };
  });
  after(async () => {
    await h?.close();
    await pg?.stop();
  });

  const submit = async (body: Record<string, unknown>, version = 1) => {
    const res = await h.app.inject({ method: 'POST', url: `/api/v${version}/mags-jobs`, headers: auth, payload: body });
    assert.equal(res.statusCode, 202, res.body);
    const json = res.json() as { request_id: string; status: string; message: string };
    assert.equal(json.status, 'accepted');
    assert.match(json.request_id, /^[0-9a-f-]{36}$/);
    assert.equal(typeof json.message, 'string');
    return json.request_id;
  };
  const logs = async (id: string, query = '') => {
    const res = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${id}/logs${query}`, headers: auth });
    assert.equal(res.statusCode, 200, res.body);
    return (res.json() as { logs: Array<{ message: string; level: string; stream: string; seq: number; timestamp: string }> }).logs;
  };

  it('GET /health answers without a token', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/health' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ok', version: '0.1.0' });
  });

  it('runs echo Hello World: completed, exit 0, stdout as info', async () => {
    const id = await submit({ script: 'echo Hello World', type: 'inline' });
    const st = await h.waitDone(h.adminToken, id);
    assert.equal(st.status, 'completed');
    assert.equal(st.exit_code, 0);
    assert.equal(st.end_reason, 'exited');
    assert.equal(typeof st.script_duration_ms, 'number');
    assert.ok(st.started_at && st.completed_at && st.created_at);
    assert.equal(st.vm_id && String(st.vm_id).startsWith('fake-'), true);
    const l = await logs(id);
    assert.deepEqual(l.map((x) => [x.message, x.level, x.stream]), [['Hello World', 'info', 'stdout']]);
    assert.equal(l[0]!.seq, 1);
    assert.ok(!Number.isNaN(Date.parse(l[0]!.timestamp)));
  });

  it('non-zero exit is error with exit_code; stderr lines are level error; after= filters', async () => {
    const id = await submit({ script: 'echo out; echo err >&2; echo more; exit 7', type: 'inline', environment: { FOO: 'bar' } });
    const st = await h.waitDone(h.adminToken, id);
    assert.equal(st.status, 'error');
    assert.equal(st.exit_code, 7);
    assert.equal(st.end_reason, 'exited');
    assert.equal(st.error_message, 'script exited with code 7');
    const l = await logs(id);
    assert.equal(l.find((x) => x.message === 'err')?.level, 'error');
    assert.equal(l.find((x) => x.message === 'err')?.stream, 'stderr');
    const later = await logs(id, `?after=${l[0]!.seq}`);
    assert.equal(later.length, l.length - 1);
  });

  it('passes environment variables', async () => {
    const id = await submit({ script: 'echo "$FOO-$BAR"', type: 'inline', environment: { FOO: 'a', BAR: 'b' } });
    await h.waitDone(h.adminToken, id);
    assert.deepEqual((await logs(id)).map((x) => x.message), ['a-b']);
  });

  it('times out with the job timeout and says so', async () => {
    const id = await submit({ script: 'sleep 30', type: 'inline', timeout_seconds: 1 });
    const st = await h.waitDone(h.adminToken, id);
    assert.equal(st.status, 'error');
    assert.equal(st.end_reason, 'timeout');
    assert.equal(st.error_message, 'timed out after 1 s');
    assert.ok((await logs(id)).some((x) => x.stream === 'system' && x.message === 'timed out after 1 s'));
  });

  it('caps output with one truncation line', async () => {
    const id = await submit({ script: 'i=0; while [ $i -lt 500 ]; do echo line-$i; i=$((i+1)); done', type: 'inline' });
    const st = await h.waitDone(h.adminToken, id);
    assert.equal(st.status, 'completed');
    const l = await logs(id);
    const trunc = l.filter((x) => x.stream === 'system' && x.message.includes('output truncated'));
    assert.equal(trunc.length, 1);
    assert.equal(l.at(-1)!.message, trunc[0]!.message);
    assert.ok(l.length < 300);
  });

  it('stop cancels a running sleep 60 job quickly', async () => {
    const id = await submit({ script: 'echo started; sleep 60', type: 'inline', name: 'sleeper' });
    for (let i = 0; i < 200; i++) {
      const l = await logs(id);
      if (l.length > 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const t0 = Date.now();
    const res = await h.app.inject({ method: 'POST', url: `/api/v1/mags-jobs/sleeper/stop`, headers: auth });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { success: true, request_id: id, status: 'completed' });
    assert.ok(Date.now() - t0 < 5000);
    assert.ok((await logs(id)).some((x) => x.message === 'job stopped by user'));
    assert.equal((await h.waitDone(h.adminToken, id)).end_reason, 'cancelled');
    // Stopping again is harmless.
    const again = await h.app.inject({ method: 'POST', url: `/api/v1/mags-jobs/${id}/stop`, headers: { ...auth, 'content-type': 'application/json' }, payload: '' });
    assert.equal(again.statusCode, 200, again.body);
  });

  it('resolves {id} by name and workspace id, newest first', async () => {
    const a = await submit({ script: 'echo a', type: 'inline', name: 'named', workspace_id: 'ws-1' });
    await h.waitDone(h.adminToken, a);
    const b = await submit({ script: 'echo b', type: 'inline', name: 'named', workspace_id: 'ws-1' });
    await h.waitDone(h.adminToken, b);
    for (const ref of ['named', 'ws-1', b]) {
      const res = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${ref}/status`, headers: auth });
      assert.equal((res.json() as { request_id: string }).request_id, b);
    }
    const res = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${a}/status`, headers: auth });
    assert.equal((res.json() as { request_id: string }).request_id, a);
  });

  it('lists newest first with page, page_size and total', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/mags-jobs?page=1&page_size=2', headers: auth });
    assert.equal(res.statusCode, 200);
    const body = res.json() as { jobs: Array<{ request_id: string; created_at: string }>; page: number; page_size: number; total: number };
    assert.equal(body.page, 1);
    assert.equal(body.page_size, 2);
    assert.equal(body.jobs.length, 2);
    assert.ok(body.total >= 8);
    const page2 = (await h.app.inject({ method: 'GET', url: '/api/v1/mags-jobs?page=2&page_size=2', headers: auth })).json() as typeof body;
    assert.notEqual(page2.jobs[0]!.request_id, body.jobs[0]!.request_id);
    assert.ok(body.jobs[0]!.created_at >= page2.jobs[0]!.created_at);
    const huge = (await h.app.inject({ method: 'GET', url: '/api/v1/mags-jobs?page_size=100000', headers: auth })).json() as typeof body;
    assert.equal(huge.page_size, 100);
  });

  it('v2 accepts vcpus, memory_mb and rootfs_type and passes limits to the pool', async () => {
    const id = await submit({ script: 'true', type: 'inline', vcpus: 1, memory_mb: 256, rootfs_type: 'standard', disk_gb: 3 }, 2);
    const st = await h.waitDone(h.adminToken, id);
    assert.equal(st.status, 'completed');
  });

  /** Polls until the job's script has an exit code (a persistent job then stays `running`). */
  async function waitScript(id: string): Promise<Record<string, unknown>> {
    for (let i = 0; ; i++) {
      const st = (await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${id}/status`, headers: auth })).json() as Record<string, unknown>;
      if (st.exit_code !== null || (st.status !== 'pending' && st.status !== 'running')) return st;
      if (i > 500) throw new Error(`job ${id} still has no exit code`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('a persistent job whose script succeeded stays running with its sandbox; PATCH updates settings; stop frees it', async () => {
    const id = await submit({ script: 'echo up', type: 'inline', persistent: true, name: 'svc' });
    const st = await waitScript(id);
    assert.equal(st.status, 'running');
    assert.equal(st.exit_code, 0);
    assert.equal(typeof st.vm_id, 'string');
    assert.equal(st.persistent, true);
    assert.equal(h.pool.status().busy_vms, 1);
    const res = await h.app.inject({ method: 'PATCH', url: `/api/v1/mags-jobs/svc`, headers: auth, payload: { no_sleep: true, startup_command: 'python3 -m http.server 8080' } });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as Record<string, unknown>;
    assert.equal(body.success, true);
    assert.equal(body.no_sleep, true);
    assert.equal(body.startup_command, 'python3 -m http.server 8080');
    const stopped = await h.app.inject({ method: 'POST', url: `/api/v1/mags-jobs/svc/stop`, headers: auth });
    assert.equal((stopped.json() as { status: string }).status, 'completed');
    assert.equal(h.pool.status().busy_vms, 0);
  });

  it('access: 422 for an ephemeral job, 409 for an ended one, 501 without a URL or SSH grant (after the wake)', async () => {
    const eph = await submit({ script: 'true', type: 'inline' });
    await h.waitDone(h.adminToken, eph);
    const r422 = await h.app.inject({ method: 'POST', url: `/api/v1/mags-jobs/${eph}/access`, headers: auth, payload: { port: 8080 } });
    assert.equal(r422.statusCode, 422, r422.body);
    assert.equal((r422.json() as { code: string }).code, 'INVALID_STATE');
    const id = await submit({ script: 'true', type: 'inline', persistent: true });
    await waitScript(id);
    for (const port of [8080, 22]) {
      const res = await h.app.inject({ method: 'POST', url: `/api/v2/mags-jobs/${id}/access`, headers: auth, payload: { port } });
      assert.equal(res.statusCode, 501);
      assert.equal((res.json() as { code: string }).code, 'FEATURE_NOT_AVAILABLE');
    }
    await h.app.inject({ method: 'POST', url: `/api/v1/mags-jobs/${id}/stop`, headers: auth });
    const r409 = await h.app.inject({ method: 'POST', url: `/api/v1/mags-jobs/${id}/access`, headers: auth, payload: { port: 8080 } });
    assert.equal(r409.statusCode, 409, r409.body);
    assert.equal((r409.json() as { code: string }).code, 'JOB_NOT_RUNNING');
  });

  it('pool-status has the Mags fields', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/mags-jobs/pool-status', headers: auth });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(Object.keys(res.json() as object).sort(), ['busy_vms', 'idle_vms', 'max_pool_size', 'min_pool_size', 'total_vms']);
  });

  it('follow=1 streams stored lines, then end', async () => {
    const id = await submit({ script: 'echo one; echo two >&2; exit 3', type: 'inline' });
    const res = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${id}/logs?follow=1`, headers: auth });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /text\/event-stream/);
    const events = parseSse(res.body);
    assert.deepEqual(events.filter((e) => e.event === 'log').map((e) => (e.data as { message: string }).message), ['one', 'two']);
    assert.deepEqual(events.at(-1), { event: 'end', data: { status: 'error', exit_code: 3, end_reason: 'exited', error_message: 'script exited with code 3' } });
  });

  it('Accept: text/event-stream follows too; Last-Event-ID resumes after that line', async () => {
    const id = await submit({ script: 'echo a; echo b; echo c', type: 'inline' });
    await h.waitDone(h.adminToken, id);
    const res = await h.app.inject({ method: 'GET', url: `/api/v1/mags-jobs/${id}/logs`, headers: { ...auth, accept: 'text/event-stream', 'last-event-id': '1' } });
    assert.match(String(res.headers['content-type']), /text\/event-stream/);
    const events = parseSse(res.body);
    assert.deepEqual(events.filter((e) => e.event === 'log').map((e) => (e.data as { message: string }).message), ['b', 'c']);
    assert.match(res.body, /^id: 2$/m);
    assert.equal(events.at(-1)!.event, 'end');
  });

  it('me, tokens: create, list, use, revoke', async () => {
    const me = (await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: auth })).json() as Record<string, unknown>;
    assert.equal(me.name, 'admin');
    assert.equal(me.admin, true);
    const created = await h.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: auth, payload: { name: 'ci' } });
    assert.equal(created.statusCode, 201);
    const tok = created.json() as { id: string; token: string; name: string };
    assert.match(tok.token, /^mags_[0-9A-Za-z]{40}$/);
    const list = (await h.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: auth })).json() as { tokens: Array<{ id: string }> };
    assert.ok(list.tokens.some((t) => t.id === tok.id));
    assert.ok(!JSON.stringify(list).includes(tok.token));
    const withNew = await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${tok.token}` } });
    assert.equal(withNew.statusCode, 200);
    const del = await h.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${tok.id}`, headers: auth });
    assert.deepEqual(del.json(), { success: true });
    const revoked = await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${tok.token}` } });
    assert.equal(revoked.statusCode, 401);
    assert.equal((revoked.json() as { code: string }).code, 'INVALID_TOKEN');
  });

  it('users: admin creates and lists; non-admin is FORBIDDEN; duplicate is CONFLICT', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/users', headers: auth, payload: { name: 'alice' } });
    assert.equal(res.statusCode, 201);
    const alice = res.json() as { token: string; admin: boolean };
    assert.equal(alice.admin, false);
    const dup = await h.app.inject({ method: 'POST', url: '/api/v1/users', headers: auth, payload: { name: 'alice' } });
    assert.equal(dup.statusCode, 409);
    assert.equal((dup.json() as { code: string }).code, 'CONFLICT');
    const forbidden = await h.app.inject({ method: 'GET', url: '/api/v1/users', headers: { authorization: `Bearer ${alice.token}` } });
    assert.equal(forbidden.statusCode, 403);
    const list = (await h.app.inject({ method: 'GET', url: '/api/v1/users', headers: auth })).json() as { users: Array<{ name: string }> };
    assert.deepEqual(list.users.map((u) => u.name).sort(), ['admin', 'alice']);
  });

  it("ownership: another user's job is JOB_NOT_FOUND on every endpoint", async () => {
    const id = await submit({ script: 'echo secret', type: 'inline', name: 'private-job' });
    await h.waitDone(h.adminToken, id);
    const bob = { authorization: `Bearer ${await h.makeUser('bob')}` };
    for (const ref of [id, 'private-job']) {
      for (const [method, url, payload] of [
        ['GET', `/api/v1/mags-jobs/${ref}/status`],
        ['GET', `/api/v1/mags-jobs/${ref}/logs`],
        ['GET', `/api/v1/mags-jobs/${ref}/logs?follow=1`],
        ['POST', `/api/v1/mags-jobs/${ref}/stop`],
        ['POST', `/api/v1/mags-jobs/${ref}/access`, { port: 8080 }],
        ['PATCH', `/api/v1/mags-jobs/${ref}`, { no_sleep: false }],
      ] as const) {
        const res = await h.app.inject({ method, url, headers: bob, payload });
        assert.equal(res.statusCode, 404, `${method} ${url}: ${res.body}`);
        assert.equal((res.json() as { code: string }).code, 'JOB_NOT_FOUND');
        assert.ok(!res.body.includes('secret'));
      }
    }
    const list = (await h.app.inject({ method: 'GET', url: '/api/v1/mags-jobs', headers: bob })).json() as { total: number };
    assert.equal(list.total, 0);
  });
});

/** Parses a Server-Sent Events body into {event, data} pairs (comments skipped). */
export function parseSse(body: string): Array<{ event: string; data: unknown }> {
  const out: Array<{ event: string; data: unknown }> = [];
  for (const block of body.split('\n\n')) {
    let event = 'message';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    if (data) out.push({ event, data: JSON.parse(data) });
  }
  return out;
}

describe('calls of features that come later', () => {
  it('answer 501 FEATURE_NOT_AVAILABLE (job paths check ownership first)', async () => {
    const h = await createHarness();
    try {
      const auth = { authorization: `Bearer ${h.adminToken}` };
      const sub = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: auth, payload: { script: 'true', type: 'inline', name: 'p' } });
      assert.equal(sub.statusCode, 202);
      for (const [method, url] of [
        ['POST', '/api/v1/mags-jobs/p/exec'],
        ['GET', '/api/v2/mags-url-aliases'],
        ['POST', '/api/v2/mags-url-aliases'],
        ['DELETE', '/api/v2/mags-url-aliases/abc'],
      ] as const) {
        const res = await h.app.inject({ method, url, headers: auth, payload: method === 'POST' ? {} : undefined });
        assert.equal(res.statusCode, 501, `${method} ${url}: ${res.body}`);
        assert.equal((res.json() as { code: string }).code, 'FEATURE_NOT_AVAILABLE');
      }
      const unknown = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs/nope/exec', headers: auth, payload: { command: 'ls' } });
      assert.equal(unknown.statusCode, 404);
      const noauth = await h.app.inject({ method: 'GET', url: '/api/v2/mags-url-aliases' });
      assert.equal(noauth.statusCode, 401);
    } finally {
      await h.close();
    }
  });
});

describe('access grants (in-process)', () => {
  it('access wakes the persistent job, then the URL grant (any port) or SSH grant (port 22) answers; pending jobs are waited for', async () => {
    const calls: Array<{ kind: string; id: string; port: number; status: string; host?: string }> = [];
    const grant = (kind: string): AccessGrant => ({
      async grant(job, port, opts) {
        calls.push({ kind, id: job.request_id, port, status: job.status, host: opts.requestHost });
        return kind === 'url' ? { url: `http://x.apps.localhost/`, port } : { ssh_host: 'h', ssh_port: 2222 };
      },
    });
    const h = await createHarness({ access: { url: grant('url'), ssh: grant('ssh') } });
    try {
      const auth = { authorization: `Bearer ${h.adminToken}` };
      const sub = await h.app.inject({ method: 'POST', url: '/api/v2/mags-jobs', headers: auth, payload: { script: 'true', type: 'inline', persistent: true, name: 'g' } });
      const id = (sub.json() as { request_id: string }).request_id;
      // Right after the submit: the call waits for the first sandbox.
      const url = await h.app.inject({ method: 'POST', url: '/api/v2/mags-jobs/g/access', headers: { ...auth, host: 'api.example:8090' }, payload: { port: 3000 } });
      assert.equal(url.statusCode, 200, url.body);
      assert.deepEqual(url.json(), { success: true, url: 'http://x.apps.localhost/', port: 3000 });
      const ssh = await h.app.inject({ method: 'POST', url: `/api/v1/mags-jobs/${id}/access`, headers: auth, payload: { port: 22 } });
      assert.deepEqual(ssh.json(), { success: true, ssh_host: 'h', ssh_port: 2222 });
      assert.deepEqual(calls.map((c) => [c.kind, c.id, c.port, c.status]), [['url', id, 3000, 'running'], ['ssh', id, 22, 'running']]);
      assert.equal(calls[0]!.host, 'api.example:8090');
      assert.equal(h.live.attachments(id), 0, 'the access call released its attachment');
      const st = (await h.app.inject({ method: 'GET', url: '/api/v2/mags-jobs/g/status', headers: auth })).json() as Record<string, unknown>;
      assert.equal(st.sandbox_state, 'running');
    } finally {
      await h.close();
    }
  });
});
