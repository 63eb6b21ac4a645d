import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { client, type Client } from './helpers/http.js';
import { spawnServer, type SpawnedServer } from './helpers/spawn-server.js';

/**
 * The jobs API over a real socket against a real `mags server` with real sandboxes (the container
 * runtime). Needs root and the host packages (test.sh installs them).
 */
describe('jobs API end to end (real server, real sandboxes)', () => {
  let server: SpawnedServer;
  let admin: Client;
  before(async () => {
    server = await spawnServer({ env: { MAGS_JOB_TIMEOUT_SECONDS: '120' } });
    admin = client(server.url, server.token);
  });
  after(async () => {
    await server?.stop();
  });

  it('first start wrote the admin token (0600) and ~/.mags/config.json', async () => {
    const tokenFile = join(server.dataDir, 'admin-token');
    assert.equal((await stat(tokenFile)).mode & 0o777, 0o600);
    assert.match(await readFile(tokenFile, 'utf8'), /^mags_[0-9A-Za-z]{40}\n$/);
    const cfgFile = join(server.home, '.mags', 'config.json');
    assert.equal((await stat(cfgFile)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(cfgFile, 'utf8')), { api_url: server.url, api_token: server.token });
  });

  it('echo Hello World: 202 accepted, completed, exit 0, the line in the logs', async () => {
    const r = await admin.req('POST', '/api/v1/mags-jobs', { script: 'echo Hello World', type: 'inline' });
    assert.equal(r.status, 202);
    assert.equal(r.body.status, 'accepted');
    const st = await admin.waitDone(r.body.request_id);
    assert.equal(st.status, 'completed', JSON.stringify(st));
    assert.equal(st.exit_code, 0);
    assert.ok(st.vm_id);
    const logs = await admin.req('GET', `/api/v1/mags-jobs/${r.body.request_id}/logs`);
    assert.deepEqual(
      logs.body.logs.filter((l: any) => l.stream !== 'system').map((l: any) => [l.message, l.level]),
      [['Hello World', 'info']],
    );
  });

  it('runs as root in /root on host mags-vm', async () => {
    const id = await admin.submit({ script: 'id -un; pwd; hostname', type: 'inline' });
    await admin.waitDone(id);
    const logs = await admin.req('GET', `/api/v1/mags-jobs/${id}/logs`);
    assert.deepEqual(logs.body.logs.filter((l: any) => l.stream === 'stdout').map((l: any) => l.message), ['root', '/root', 'mags-vm']);
  });

  it('exit 7 is error with exit_code 7; stderr lines are level error', async () => {
    const id = await admin.submit({ script: 'echo to-stderr >&2; exit 7', type: 'inline' });
    const st = await admin.waitDone(id);
    assert.equal(st.status, 'error');
    assert.equal(st.exit_code, 7);
    assert.equal(st.error_message, 'script exited with code 7');
    const logs = await admin.req('GET', `/api/v1/mags-jobs/${id}/logs`);
    const line = logs.body.logs.find((l: any) => l.message === 'to-stderr');
    assert.equal(line?.level, 'error');
    assert.equal(line?.stream, 'stderr');
  });

  it('SSE follow sees lines live, then an end event', async () => {
    const t0 = Date.now();
    const id = await admin.submit({ script: 'echo first; sleep 2; echo second', type: 'inline' });
    const events = await admin.follow(id);
    const first = events.find((e) => e.event === 'log' && e.data.message === 'first');
    const second = events.find((e) => e.event === 'log' && e.data.message === 'second');
    const end = events.at(-1)!;
    assert.ok(first && second, JSON.stringify(events));
    assert.equal(end.event, 'end');
    assert.deepEqual(end.data, { status: 'completed', exit_code: 0, end_reason: 'exited', error_message: null });
    assert.ok(second.at - first.at >= 1000, `the first line arrived live (${first.at - t0} ms), before the second (${second.at - t0} ms)`);
    // A late follower gets the stored lines and the end at once; after= skips lines.
    const replay = await admin.follow(id, `&after=${first.data.seq}`);
    assert.deepEqual(replay.map((e) => e.event), ['log', 'end']);
    assert.equal(replay[0]!.data.message, 'second');
  });

  it('stop ends a sleep 60 job within seconds', async () => {
    const id = await admin.submit({ script: 'echo sleeping; sleep 60', type: 'inline', name: 'e2e-sleeper' });
    const end = Date.now() + 30_000;
    while ((await admin.req('GET', `/api/v1/mags-jobs/${id}/status`)).body.status !== 'running') {
      if (Date.now() > end) throw new Error('job never started');
      await new Promise((r) => setTimeout(r, 50));
    }
    const t0 = Date.now();
    const r = await admin.req('POST', '/api/v1/mags-jobs/e2e-sleeper/stop');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, { success: true, request_id: id, status: 'completed' });
    assert.ok(Date.now() - t0 < 10_000, `stop took ${Date.now() - t0} ms`);
  });

  it('a job timeout ends it in error', async () => {
    const id = await admin.submit({ script: 'sleep 30', type: 'inline', timeout_seconds: 1 });
    const st = await admin.waitDone(id, 30_000);
    assert.equal(st.status, 'error');
    assert.equal(st.error_message, 'timed out after 1 s');
  });

  it('running out of memory (v2 memory_mb) ends the job in error saying so', async () => {
    const id = await admin.submit({ script: 'python3 -c "x = bytearray(400*1024*1024); print(len(x))"', type: 'inline', memory_mb: 128 }, 2);
    const st = await admin.waitDone(id, 60_000);
    assert.equal(st.status, 'error');
    assert.equal(st.error_message, 'ran out of memory (limit 128 MiB)');
  });

  it('environment variables reach the script', async () => {
    const id = await admin.submit({ script: 'echo "$GREETING, $WHO"', type: 'inline', environment: { GREETING: 'Hello', WHO: 'env' } });
    await admin.waitDone(id);
    const logs = await admin.req('GET', `/api/v1/mags-jobs/${id}/logs`);
    assert.ok(logs.body.logs.some((l: any) => l.message === 'Hello, env'));
  });

  it('ownership between two users over the socket', async () => {
    const created = await admin.req('POST', '/api/v1/users', { name: 'e2e-bob' });
    assert.equal(created.status, 201);
    const bob = client(server.url, created.body.token);
    const id = await admin.submit({ script: 'echo admin-secret', type: 'inline', name: 'admin-only' });
    await admin.waitDone(id);
    for (const path of [`/api/v1/mags-jobs/${id}/status`, `/api/v1/mags-jobs/${id}/logs`, '/api/v1/mags-jobs/admin-only/status']) {
      const r = await bob.req('GET', path);
      assert.equal(r.status, 404);
      assert.equal(r.body.code, 'JOB_NOT_FOUND');
    }
    const stop = await bob.req('POST', `/api/v1/mags-jobs/${id}/stop`);
    assert.equal(stop.status, 404);
    const list = await bob.req('GET', '/api/v1/mags-jobs');
    assert.equal(list.body.total, 0);
    const bobJob = await bob.submit({ script: 'echo bob', type: 'inline' });
    assert.equal((await bob.waitDone(bobJob)).status, 'completed');
    assert.equal((await admin.req('GET', `/api/v1/mags-jobs/${bobJob}/status`)).status, 404);
  });

  it('the MAGS-API.md examples: shapes of every jobs call', async () => {
    // POST /api/v1/mags-jobs
    const sub = await admin.req('POST', '/api/v1/mags-jobs', { script: 'echo hi', type: 'inline', name: 'shape', persistent: false, environment: { A: 'b' }, disk_gb: 2, extra_unknown_field: 1 });
    assert.equal(sub.status, 202);
    assert.deepEqual(Object.keys(sub.body).sort(), ['message', 'request_id', 'status']);
    // POST /api/v2/mags-jobs
    const v2 = await admin.req('POST', '/api/v2/mags-jobs', { script: 'nproc', type: 'inline', vcpus: 1, memory_mb: 512, rootfs_type: 'standard' });
    assert.equal(v2.status, 202);
    // GET status
    const st = await admin.waitDone(sub.body.request_id);
    for (const k of ['request_id', 'name', 'status', 'vm_id', 'workspace_id', 'exit_code', 'subdomain', 'url', 'script_duration_ms', 'started_at', 'created_at', 'completed_at', 'persistent', 'no_sleep', 'error_message']) {
      assert.ok(k in st, `status has ${k}`);
    }
    assert.equal(st.name, 'shape');
    // GET list
    const list = await admin.req('GET', '/api/v1/mags-jobs?page=1&page_size=20');
    assert.equal(list.status, 200);
    assert.deepEqual(Object.keys(list.body).sort(), ['jobs', 'page', 'page_size', 'total']);
    assert.equal(list.body.jobs[0].request_id, v2.body.request_id, 'newest first');
    // GET logs
    const logs = await admin.req('GET', '/api/v1/mags-jobs/shape/logs');
    assert.deepEqual(Object.keys(logs.body.logs[0]).sort(), ['level', 'message', 'seq', 'stream', 'timestamp']);
    // The v2 job ran with its limits (the runtime tests check the limits themselves).
    assert.equal((await admin.waitDone(v2.body.request_id)).status, 'completed');
    // GET pool-status
    const pool = await admin.req('GET', '/api/v1/mags-jobs/pool-status');
    assert.equal(pool.status, 200);
    for (const k of ['idle_vms', 'busy_vms', 'total_vms', 'min_pool_size', 'max_pool_size']) assert.equal(typeof pool.body[k], 'number');
    assert.equal(pool.body.min_pool_size, 1);
    // POST access: only persistent jobs
    const access = await admin.req('POST', '/api/v1/mags-jobs/shape/access', { port: 8080 });
    assert.equal(access.status, 422);
    assert.equal(access.body.code, 'INVALID_STATE');
    // PATCH on a persistent job: it stays running with its sandbox after the script
    const p = await admin.submit({ script: 'true', type: 'inline', persistent: true, name: 'shape-p' });
    const kept = await admin.waitDone(p);
    assert.equal(kept.status, 'running');
    assert.ok(kept.vm_id);
    // The Mags access answer: a URL on the server's proxy (docs/urls.md; e2e-proxy serves through it).
    const pAccess = await admin.req('POST', '/api/v2/mags-jobs/shape-p/access', { port: 8080 });
    assert.equal(pAccess.status, 200, JSON.stringify(pAccess.body));
    assert.equal(pAccess.body.success, true);
    assert.match(pAccess.body.url, /^http:\/\/[0-9a-f]{12}\.apps\./);
    assert.equal(pAccess.body.port, 8080);
    const patch = await admin.req('PATCH', '/api/v1/mags-jobs/shape-p', { no_sleep: true, startup_command: 'echo up' });
    assert.equal(patch.status, 200);
    assert.equal(patch.body.no_sleep, true);
    // Errors keep the Mags shape.
    const bad = await admin.req('POST', '/api/v1/mags-jobs', { script: 'x' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /'type' is required and must be "inline"/);
    const noauth = await fetch(server.url + '/api/v1/mags-jobs');
    assert.equal(noauth.status, 401);
    // The API describes itself.
    const spec = await fetch(server.url + '/openapi.json');
    assert.equal(spec.status, 200);
    assert.ok(((await spec.json()) as any).paths['/api/v1/mags-jobs']);
  });
});

describe('server restarts and shutdown', () => {
  it('a job running when the server is killed ends in error after the restart; SIGTERM exits 0', async () => {
    const first = await spawnServer();
    let second: SpawnedServer | undefined;
    try {
      const c = client(first.url, first.token);
      const id = await c.submit({ script: 'sleep 60', type: 'inline' });
      const end = Date.now() + 30_000;
      while ((await c.req('GET', `/api/v1/mags-jobs/${id}/status`)).body.status !== 'running') {
        if (Date.now() > end) throw new Error('job never started');
        await new Promise((r) => setTimeout(r, 50));
      }
      first.child.kill('SIGKILL');
      await new Promise((r) => first.child.once('exit', r));
      second = await spawnServer({ dataDir: first.dataDir, home: first.home });
      assert.equal(second.token, first.token, 'the admin token survives a restart');
      const c2 = client(second.url, second.token);
      const st = await c2.req('GET', `/api/v1/mags-jobs/${id}/status`);
      assert.equal(st.body.status, 'error');
      assert.equal(st.body.error_message, 'server restarted while the job was running');
      const ok = await c2.submit({ script: 'echo after-restart', type: 'inline' });
      assert.equal((await c2.waitDone(ok)).status, 'completed');
      const exited = new Promise<number | null>((r) => second!.child.once('exit', (code) => r(code)));
      second.child.kill('SIGTERM');
      assert.equal(await exited, 0, 'clean shutdown exits 0');
    } finally {
      await second?.stop();
      await first.stop();
    }
  });
});
