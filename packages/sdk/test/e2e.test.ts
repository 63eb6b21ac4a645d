/**
 * The SDK against a real server with real sandboxes (the server package's spawnServer helper):
 * every method that has a server endpoint, and the typed errors. Persistent jobs are stopped and the
 * server is stopped in `after`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import {
  AuthenticationError,
  ConnectionError,
  Mags,
  MagsError,
  NotFoundError,
  ValidationError,
  type LogEntry,
} from '../src/index.js';

interface TestServer {
  url: string;
  token: string;
  stop(): Promise<void>;
}

async function startServer(): Promise<TestServer> {
  // Loaded by URL from the compiled tree: the server package builds after the SDK.
  const mod = (await import(new URL('../../../server/dist/test/helpers/spawn-server.js', import.meta.url).href)) as {
    spawnServer: () => Promise<TestServer>;
  };
  return mod.spawnServer();
}

function deadPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('Mags SDK against a real server', () => {
  let server: TestServer;
  let mags: Mags;
  const persistent: string[] = [];

  before(async () => {
    server = await startServer();
    mags = new Mags({ apiToken: server.token, apiUrl: server.url, timeout: 30_000 });
  });

  after(async () => {
    try {
      for (const id of persistent) await mags.stop(id).catch(() => undefined);
    } finally {
      await server?.stop();
    }
  });

  test('health and whoami', async () => {
    assert.equal((await mags.health()).status, 'ok');
    const me = await mags.whoami();
    assert.equal(me.name, 'admin');
    assert.equal(me.admin, true);
  });

  test('runAndWait: exit code, logs in order, live onOutput, returns as soon as the job ends', async () => {
    const live: LogEntry[] = [];
    const r = await mags.runAndWait('echo one; echo two >&2; sleep 0.3; echo three; exit 5', { onOutput: (l) => live.push(l) });
    assert.equal(r.status, 'error');
    assert.equal(r.exitCode, 5);
    const lines = r.logs.filter((l) => l.stream !== 'system').map((l) => `${l.stream}:${l.message}`);
    assert.deepEqual(lines, ['stdout:one', 'stderr:two', 'stdout:three']);
    assert.equal(live.length, r.logs.length);
    assert.equal(r.job.request_id, r.requestId);
    assert.ok(r.job.completed_at, 'completed_at is set');
    const lag = Date.now() - Date.parse(r.job.completed_at!);
    assert.ok(lag < 1000, `runAndWait returned ${lag} ms after the job completed`);

    const ok = await mags.runAndWait('echo Hello World');
    assert.equal(ok.status, 'completed');
    assert.equal(ok.exitCode, 0);
    assert.deepEqual(ok.logs.filter((l) => l.stream === 'stdout').map((l) => l.message), ['Hello World']);
  });

  test('run options reach the sandbox: environment, name, v2 memory/vcpus, timeoutSeconds', async () => {
    const env = await mags.runAndWait('echo "$A-$B"', { environment: { A: 'x', B: 'y z' }, name: 'sdk-e2e-env' });
    assert.deepEqual(env.logs.filter((l) => l.stream === 'stdout').map((l) => l.message), ['x-y z']);
    assert.equal((await mags.status('sdk-e2e-env')).name, 'sdk-e2e-env');
    const v2 = await mags.runAndWait('echo v2', { memoryMb: 256, vcpus: 1 });
    assert.equal(v2.exitCode, 0);
    const t0 = Date.now();
    const slow = await mags.runAndWait('sleep 30', { timeoutSeconds: 1 });
    assert.equal(slow.status, 'error');
    assert.match(slow.errorMessage ?? '', /timed out/);
    assert.equal(slow.endReason, 'timeout');
    assert.ok(Date.now() - t0 < 15_000);
  });

  test('run + status + logs(after) + streamLogs', async () => {
    const sub = await mags.run('echo a; sleep 0.5; echo b');
    assert.equal(sub.status, 'accepted');
    const streamed: string[] = [];
    for await (const l of mags.streamLogs(sub.request_id)) if (l.stream === 'stdout') streamed.push(l.message);
    assert.deepEqual(streamed, ['a', 'b']);
    const st = await mags.status(sub.request_id);
    assert.equal(st.status, 'completed');
    assert.equal(st.exit_code, 0);
    const all = await mags.logs(sub.request_id);
    const firstSeq = all.logs.find((l) => l.message === 'a')!.seq!;
    const later = await mags.logs(sub.request_id, { after: firstSeq });
    assert.ok(later.logs.every((l) => (l.seq ?? 0) > firstSeq));
    assert.ok(later.logs.some((l) => l.message === 'b'));
    assert.ok(!later.logs.some((l) => l.message === 'a'));
  });

  test('list pages newest first', async () => {
    const page = await mags.list({ page: 1, pageSize: 2 });
    assert.equal(page.jobs.length, 2);
    assert.equal(page.page_size, 2);
    assert.ok((page.total ?? 0) >= 4);
    const times = page.jobs.map((j) => Date.parse(j.created_at!));
    assert.ok(times[0]! >= times[1]!);
  });

  test('persistent job: findJob, updateJob, enableAccess/url, stop; new()', async () => {
    const r = await mags.runAndWait('echo ready', { persistent: true, name: 'sdk-e2e-web' });
    persistent.push(r.requestId);
    assert.equal(r.exitCode, 0);
    assert.ok(['running', 'sleeping'].includes(r.status), r.status);
    const found = await mags.findJob('sdk-e2e-web');
    assert.equal(found?.request_id, r.requestId);
    assert.equal(await mags.findJob('sdk-e2e-nothing'), null);

    const upd = await mags.updateJob('sdk-e2e-web', { noSleep: true, startupCommand: 'echo woke' });
    assert.equal(upd.success, true);
    const st = await mags.status(r.requestId);
    assert.equal(st.no_sleep, true);
    await mags.updateJob(r.requestId, { noSleep: false });
    assert.equal((await mags.status(r.requestId)).no_sleep, false);

    const access = await mags.url(r.requestId, 8080);
    assert.match(access.url ?? '', /^http:\/\/[0-9a-f]{12}\.apps\.localhost:\d+$/);
    assert.equal(access.subdomain, (await mags.status(r.requestId)).subdomain);

    const stopped = await mags.stop('sdk-e2e-web');
    assert.equal(stopped.success, true);
    assert.equal(stopped.request_id, r.requestId);

    const box = await mags.new('sdk-e2e-box');
    persistent.push(box.requestId);
    assert.ok(['running', 'sleeping'].includes(box.status));
    assert.equal((await mags.status(box.requestId)).name, 'sdk-e2e-box');
    await mags.stop(box.requestId);
  });

  test('workspaces: a second run sees /root; listWorkspaces, sync, 409 while busy, deleteWorkspace', async () => {
    const first = await mags.runAndWait('echo kept > /root/k.txt', { workspaceId: 'sdk-ws' });
    assert.equal(first.status, 'completed');
    const second = await mags.runAndWait('cat /root/k.txt', { workspaceId: 'sdk-ws' });
    assert.deepEqual(second.logs.filter((l) => l.stream === 'stdout').map((l) => l.message), ['kept']);
    const list = await mags.listWorkspaces();
    assert.ok(list.workspaces.some((w) => w.workspace_id === 'sdk-ws' && w.in_use === false && typeof w.image_version === 'string'));
    const synced = (await mags.sync('sdk-ws')) as { success: boolean; workspace_id?: string };
    assert.equal(synced.success, true);
    assert.equal(synced.workspace_id, 'sdk-ws');

    const busy = await mags.run('sleep 30', { workspaceId: 'sdk-ws' });
    try {
      await assert.rejects(mags.run('true', { workspaceId: 'sdk-ws' }), (err: unknown) => err instanceof MagsError && err.status === 409 && err.code === 'WORKSPACE_BUSY' && /already/.test(err.message));
      await assert.rejects(mags.deleteWorkspace('sdk-ws'), (err: unknown) => err instanceof MagsError && err.status === 409);
    } finally {
      await mags.stop(busy.request_id);
    }
    assert.equal((await mags.deleteWorkspace('sdk-ws')).success, true);
    await assert.rejects(mags.deleteWorkspace('sdk-ws'), NotFoundError);
  });

  test('workspaceHistory, restoreWorkspace to an older version, resizeWorkspace grows the disk the next job sees', async () => {
    try {
      assert.equal((await mags.runAndWait('echo one > /root/v.txt', { workspaceId: 'sdk-ver' })).status, 'completed');
      assert.equal((await mags.runAndWait('echo two > /root/v.txt', { workspaceId: 'sdk-ver' })).status, 'completed');
      // The job's status is stored before its sync ends: wait for the second version.
      let history = await mags.workspaceHistory('sdk-ver');
      for (const end = Date.now() + 30_000; history.versions.length < 2 && Date.now() < end; history = await mags.workspaceHistory('sdk-ver')) {
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(history.versions.length, 2, JSON.stringify(history));
      const older = history.versions[1]!.version;
      await assert.rejects(mags.restoreWorkspace('sdk-ver', '000000000000001-abcdef'), (err: unknown) => err instanceof NotFoundError && err.code === 'VERSION_NOT_FOUND');
      const restored = await mags.restoreWorkspace('sdk-ver', older);
      assert.equal(restored.restored_version, older);
      assert.equal((await mags.workspaceHistory('sdk-ver')).versions[0]!.version, restored.version, 'the restored state is the newest version');

      await assert.rejects(mags.resizeWorkspace('sdk-ver', 1), (err: unknown) => err instanceof MagsError && err.code === 'INVALID_STATE');
      assert.equal((await mags.resizeWorkspace('sdk-ver', 4)).disk_gb, 4);
      const after = await mags.runAndWait("cat /root/v.txt; df -BG --output=size /root | tail -1 | tr -d ' '", { workspaceId: 'sdk-ver' });
      assert.deepEqual(after.logs.filter((l) => l.stream === 'stdout').map((l) => l.message), ['one', '4G']);
    } finally {
      await mags.deleteWorkspace('sdk-ver').catch((err: unknown) => {
        if (!(err instanceof NotFoundError)) throw err;
      });
    }
  });

  test("Mags' README snippets run unchanged (CommonJS require, ESM import)", async () => {
    const { execFile } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const pkgDir = fileURLToPath(new URL('../../', import.meta.url));
    const env = { ...process.env, MAGS_API_URL: server.url, MAGS_API_TOKEN: server.token };
    const node = (args: string[]) =>
      new Promise<string>((resolve, reject) =>
        execFile(process.execPath, args, { cwd: pkgDir, env }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))),
      );
    const cjs = await node([
      '-e',
      `const Mags = require('@mags/sdk');
       (async () => {
         const mags = new Mags();
         const result = await mags.runAndWait('echo Hello World');
         console.log(result.status);
         console.log(result.logs.map((l) => l.message).join('|'));
       })().catch((e) => { console.error(e); process.exit(1); });`,
    ]);
    assert.equal(cjs, 'completed\nHello World\n');
    const esm = await node([
      '--input-type=module',
      '-e',
      `import { Mags } from '@mags/sdk';
       const mags = new Mags();
       const job = await mags.run('echo hi');
       const r = await mags.waitFor(job.request_id);
       console.log(r.exitCode, (await mags.status(job.request_id)).status);`,
    ]);
    assert.equal(esm, '0 completed\n');
  });

  test('poolStatus', async () => {
    const p = await mags.poolStatus();
    assert.ok(p.total_vms >= 0 && p.min_pool_size >= 0 && p.max_pool_size >= p.min_pool_size);
  });

  test('tokens: create, list, revoke; a revoked token gets AuthenticationError', async () => {
    const t = await mags.tokens.create('sdk-e2e');
    assert.match(t.token, /^mags_[0-9A-Za-z]{40}$/);
    const other = new Mags({ apiToken: t.token, apiUrl: server.url });
    assert.equal((await other.whoami()).name, 'admin');
    assert.ok((await mags.tokens.list()).tokens.some((x) => x.id === t.id));
    assert.deepEqual(await mags.tokens.revoke(t.id), { success: true });
    await assert.rejects(other.whoami(), AuthenticationError);
    await assert.rejects(mags.tokens.revoke(t.id), NotFoundError);
  });

  test('users: the admin creates a user whose token sees only its own jobs; non-admins may not create users', async () => {
    const name = `sdk-e2e-user-${Date.now()}`;
    const u = await mags.users.create(name);
    assert.equal(u.admin, false);
    assert.ok((await mags.users.list()).users.some((x) => x.id === u.id));
    const alice = new Mags({ apiToken: u.token, apiUrl: server.url });
    assert.equal((await alice.whoami()).name, name);
    assert.equal((await alice.list()).total, 0);
    const mine = await alice.runAndWait('echo mine');
    assert.equal(mine.exitCode, 0);
    await assert.rejects(alice.logs('sdk-e2e-env'), NotFoundError);
    await assert.rejects(alice.stop('sdk-e2e-env'), NotFoundError);
    await assert.rejects(alice.users.create('x'), (e: unknown) => e instanceof MagsError && e.status === 403 && e.code === 'FORBIDDEN');
  });

  test('typed errors: NotFoundError, ValidationError, AuthenticationError, ConnectionError', async () => {
    await assert.rejects(mags.status('no-such-job'), (e: unknown) => e instanceof NotFoundError && e.code === 'JOB_NOT_FOUND' && e.status === 404);
    await assert.rejects(mags.run('echo x', { diskGb: 0 }), (e: unknown) => e instanceof ValidationError && e.status === 400 && /disk_gb/.test(e.message));
    await assert.rejects(new Mags({ apiToken: 'mags_bad', apiUrl: server.url }).list(), (e: unknown) => e instanceof AuthenticationError && e.status === 401);
    const url = `http://127.0.0.1:${await deadPort()}`;
    await assert.rejects(new Mags({ apiToken: 't', apiUrl: url }).list(), (e: unknown) => e instanceof ConnectionError && e.message.includes(url));
  });
});
