/**
 * Persistent sandboxes with real parts: the control plane in-process on the container runtime
 * (crun, cgroups), a real SQLite store, real workspace layers synced to a filesystem blob store,
 * and tiny freeze/sleep windows. Needs root and the base image (MAGS_IMAGE_DIR).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { composeControlPlane, type ControlPlane } from '../src/compose.js';
import { silentLogger } from '../src/logger.js';
import type { OutputStream, Sandbox } from '../src/runtime/driver.js';
import { ID_BASE } from '../src/runtime/image.js';
import { DEFAULT_PIDS_LIMIT } from '../src/scheduler/scheduler.js';
import { createPool } from '../src/scheduler/pool.js';
import { createBlobStore, type BlobStore } from '../src/storage/blobs/index.js';
import { openStores, type Stores } from '../src/storage/stores.js';
import { LocalLayers } from '../src/workspaces/local-layers.js';
import { WorkspaceSync } from '../src/workspaces/sync/index.js';
import { containerTestDriver, sandboxLeftovers, type ContainerTestDriver } from './helpers/container-runtime.js';
import { spawnServer, type SpawnedServer } from './helpers/spawn-server.js';

/** Whether the kernel reports the sandbox's cgroup frozen (cgroup v1 freezer or v2 cgroup.freeze). */
function cgroupFrozen(instance: string, id: string): boolean {
  const v1 = join('/sys/fs/cgroup/freezer', instance, id, 'freezer.state');
  if (existsSync(v1)) return readFileSync(v1, 'utf8').trim() === 'FROZEN';
  for (const root of ['/sys/fs/cgroup/unified', '/sys/fs/cgroup']) {
    const events = join(root, instance, id, 'cgroup.events');
    if (existsSync(events)) return /^frozen 1$/m.test(readFileSync(events, 'utf8'));
  }
  throw new Error(`no freezer state for sandbox ${id}`);
}

/** A TCP connection to `host:port`, or undefined when it is refused (the app is not listening yet). */
function connectTo(host: string, port: number): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const sock = createConnection({ host, port });
    sock.once('connect', () => resolve(sock));
    sock.once('error', () => {
      sock.destroy();
      resolve(undefined);
    });
  });
}

/** Runs a command in a sandbox through spawn and returns its stdout. */
async function run(sandbox: Sandbox, cmd: string): Promise<string> {
  let out = '';
  const p = sandbox.spawn!({ argv: ['/bin/sh', '-c', cmd] }, (stream: OutputStream, data: Buffer) => {
    if (stream === 'stdout') out += data.toString();
  });
  const exit = await p.exited;
  assert.equal(exit.code, 0, `${cmd} exited with ${exit.code}`);
  return out;
}

describe('persistent sandboxes (real sandboxes)', { timeout: 300_000 }, () => {
  let rt: ContainerTestDriver;
  let stores: Stores;
  let blobs: BlobStore;
  let layers: LocalLayers;
  let syncer: WorkspaceSync;
  let plane: ControlPlane;
  let app: FastifyInstance;
  let auth: Record<string, string>;

  before(async () => {
    rt = await containerTestDriver();
    await rt.driver.init();
    stores = await openStores({ sqlitePath: join(rt.dataDir, 'mags.db') });
    blobs = await createBlobStore({ driver: 'fs', root: join(rt.dataDir, 'blobs') });
    layers = new LocalLayers(join(rt.dataDir, 'workspaces'));
    syncer = new WorkspaceSync({ blobs, log: silentLogger(), idShift: ID_BASE, cacheDir: join(rt.dataDir, 'sync-cache') });
    const pool = createPool(rt.driver, { minSize: 0, maxSize: 0, defaultLimits: { vcpus: 1, memoryMb: 512, diskGb: 2, pids: DEFAULT_PIDS_LIMIT }, log: silentLogger() });
    plane = await composeControlPlane({
      stores,
      pool,
      log: silentLogger(),
      blobs,
      workspaces: { layers, syncer, imageVersion: () => 'test-image', syncIntervalSeconds: 0 },
      settings: { jobTimeoutSeconds: 60, maxOutputBytes: 1 << 20, maxConcurrentJobs: 8, freezeAfterSeconds: 0.6, sleepAfterSeconds: 2.5, wakeTimeoutSeconds: 60 },
    });
    app = plane.app;
    const admin = (await plane.users.bootstrapAdmin())!;
    auth = { authorization: `Bearer ${admin.token}` };
    await plane.start();
  });

  after(async () => {
    try {
      await plane?.close();
      await stores?.close();
      await layers?.shutdown();
      await blobs?.close();
    } finally {
      await rt?.close();
      if (rt) await rm(rt.dataDir, { recursive: true, force: true });
    }
  });

  const api = async (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object) => {
    const res = await app.inject({ method, url, headers: auth, ...(payload ? { payload } : {}) });
    return { status: res.statusCode, body: res.json() as Record<string, unknown> };
  };
  const until = async <T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 30_000): Promise<T> => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const status = async (ref: string) => (await api('GET', `/api/v2/mags-jobs/${ref}/status`)).body;
  /** Submits a persistent job and waits until its script is done (status stays `running`). */
  const persistent = async (body: Record<string, unknown>) => {
    const sub = await api('POST', '/api/v2/mags-jobs', { type: 'inline', persistent: true, ...body });
    assert.equal(sub.status, 202, JSON.stringify(sub.body));
    const id = sub.body.request_id as string;
    return until('the script to end', async () => {
      const st = await status(id);
      return st.exit_code !== null || (st.status !== 'pending' && st.status !== 'running') ? st : undefined;
    });
  };
  const logLines = async (id: string) => {
    await plane.logs.flush();
    return ((await api('GET', `/api/v1/mags-jobs/${id}/logs`)).body.logs as Array<{ message: string }>).map((l) => l.message);
  };

  it('a persistent job keeps its sandbox: running with vm_id, attach gives that sandbox, stop frees it (no cgroup left)', async () => {
    const st = await persistent({ script: 'echo hi > /root/kept.txt', name: 'keep-1' });
    assert.equal(st.status, 'running');
    assert.equal(st.exit_code, 0);
    const vm = st.vm_id as string;
    assert.ok(vm);
    const job = (await stores.jobs.getJob(st.request_id as string))!;
    const a = await plane.live.attach(job, 'exec');
    try {
      assert.equal(a.sandbox.id, vm);
      assert.equal(a.woke, 'no');
      assert.equal(await run(a.sandbox, 'cat /root/kept.txt'), 'hi\n', 'the sandbox is the one the script ran in');
    } finally {
      a.release();
    }
    const stopped = await api('POST', '/api/v2/mags-jobs/keep-1/stop');
    assert.equal(stopped.body.status, 'completed');
    assert.deepEqual(await sandboxLeftovers(rt.dataDir, rt.instance, vm), [], 'the sandbox and its cgroups are gone');
    assert.equal((await status(st.request_id as string)).end_reason, 'cancelled');
  });

  it('idle -> frozen (cgroup freezer) -> sleeping (workspace synced) -> access wakes it with startup_command and the files intact', async () => {
    const st = await persistent({
      script: 'echo data > /root/app.txt',
      name: 'web-1',
      workspace_id: 'web-1',
      startup_command: 'date +%s%N >> /root/starts; echo startup-ran',
    });
    const id = st.request_id as string;
    const vm1 = st.vm_id as string;
    await until('frozen', () => plane.live.state(id) === 'frozen');
    assert.equal(cgroupFrozen(rt.instance, vm1), true, 'the kernel reports the cgroup frozen');
    assert.equal((await status('web-1')).status, 'running', 'frozen is reported as running');
    const slept = await until('sleeping', async () => {
      const s = await status('web-1');
      return s.status === 'sleeping' ? s : undefined;
    });
    assert.equal(slept.vm_id, null);
    assert.deepEqual(await sandboxLeftovers(rt.dataDir, rt.instance, vm1), [], 'the sandbox is destroyed while sleeping');
    const versions = await syncer.history(`${(await stores.jobs.getJob(id))!.user_id}.web-1`);
    assert.ok(versions.length >= 1, 'the workspace was synced to the blob store at sleep');

    const t0 = performance.now();
    const access = await api('POST', '/api/v2/mags-jobs/web-1/access', { port: 8080 });
    const wakeMs = performance.now() - t0;
    // No URL grant on this plane: 501, after the wake.
    assert.equal(access.status, 501, JSON.stringify(access.body));
    const woke = await status('web-1');
    assert.equal(woke.status, 'running');
    assert.ok(woke.vm_id && woke.vm_id !== vm1, 'a new sandbox');
    const job = (await stores.jobs.getJob(id))!;
    const a = await plane.live.attach(job, 'files');
    try {
      assert.equal(a.sandbox.id, woke.vm_id);
      assert.equal(await run(a.sandbox, 'cat /root/app.txt'), 'data\n');
      await until('startup_command ran once', async () => (await run(a.sandbox, 'cat /root/starts 2>/dev/null || true')).trim().split('\n').filter(Boolean).length === 1);
    } finally {
      a.release();
    }
    const lines = await logLines(id);
    assert.ok(lines.includes('startup-ran'), lines.join('\n'));
    assert.ok(lines.some((l) => /^woke up in [\d.]+ ms/.test(l)));
    process.stderr.write(`# wake from sleep via access: ${wakeMs.toFixed(0)} ms\n`);
    await api('POST', '/api/v1/mags-jobs/web-1/stop');
  });

  it('an open attachment prevents freeze and sleep; a busy CPU loop prevents freeze', async () => {
    const st = await persistent({ script: 'true', name: 'held-1', workspace_id: 'held-1' });
    const id = st.request_id as string;
    const job = (await stores.jobs.getJob(id))!;
    const a = await plane.live.attach(job, 'terminal');
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal(plane.live.state(id), 'running', 'held by the open attachment');
    assert.equal(cgroupFrozen(rt.instance, st.vm_id as string), false);
    // A CPU loop in the background, then the attachment goes away: CPU use alone keeps it awake.
    const loop = a.sandbox.spawn!({ argv: ['/bin/sh', '-c', 'while :; do :; done'] }, () => {});
    a.release();
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal(plane.live.state(id), 'running', 'busy CPU counts as activity');
    loop.kill(9);
    await until('frozen once the loop stopped', () => plane.live.state(id) === 'frozen');
    await api('POST', `/api/v1/mags-jobs/${id}/stop`);
    assert.deepEqual(await sandboxLeftovers(rt.dataDir, rt.instance, st.vm_id as string), []);
  });

  it('a slow trickle over a connection that bypasses the proxy keeps it awake at near-zero CPU; frozen soon after the trickle stops', async () => {
    // The script is the app: it accepts one TCP connection and reads it to the end, at no CPU to speak of.
    const reader = "import socket\ns = socket.create_server(('0.0.0.0', 9000))\nc, _ = s.accept()\nwhile c.recv(65536):\n    pass\n";
    const sub = await api('POST', '/api/v2/mags-jobs', { type: 'inline', persistent: true, name: 'trickle-1', script: `exec python3 -c "${reader}"` });
    assert.equal(sub.status, 202, JSON.stringify(sub.body));
    const id = sub.body.request_id as string;
    const st = await until('running', async () => {
      const s = await status(id);
      return s.status === 'running' && s.vm_id ? s : undefined;
    });
    const vm = st.vm_id as string;
    const a = await plane.live.attach((await stores.jobs.getJob(id))!, 'exec');
    const address = a.sandbox.ipAddress;
    const sandbox = a.sandbox;
    a.release();
    assert.ok(address, 'the sandbox has an address on the bridge');
    let conn: Socket | undefined;
    let trickle: NodeJS.Timeout | undefined;
    try {
      // The host (not the proxy) connects to the sandbox and sends about 5 KB/s: 512 bytes every 100 ms.
      conn = await until('the app to accept a connection', () => connectTo(address, 9000));
      conn.on('error', () => undefined);
      const sending = conn;
      trickle = setInterval(() => sending.write(Buffer.alloc(512, 'x')), 100);
      const cpu0 = (await sandbox.stats!()).cpuUsageUs;
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, 4000));
      const cpuFraction = ((await sandbox.stats!()).cpuUsageUs - cpu0) / ((performance.now() - t0) * 1000);
      assert.ok(cpuFraction < 0.05, `the app used ${(cpuFraction * 100).toFixed(1)} % of a core: below the CPU rule, so only traffic keeps it awake`);
      assert.equal(plane.live.state(id), 'running', 'the trickle counts as activity (freeze window 0.6 s, 4 s of trickle)');
      assert.equal(cgroupFrozen(rt.instance, vm), false);
      // The trickle stops; the connection stays open but moves nothing.
      clearInterval(trickle);
      trickle = undefined;
      const stopped = performance.now();
      await until('frozen once the trickle stopped', () => plane.live.state(id) === 'frozen', 5000);
      assert.equal(cgroupFrozen(rt.instance, vm), true);
      process.stderr.write(`# frozen ${(performance.now() - stopped).toFixed(0)} ms after the trickle stopped (window 600 ms); app CPU ${(cpuFraction * 100).toFixed(2)} %\n`);
    } finally {
      if (trickle) clearInterval(trickle);
      conn?.destroy();
      await api('POST', `/api/v1/mags-jobs/${id}/stop`);
    }
    assert.deepEqual(await sandboxLeftovers(rt.dataDir, rt.instance, vm), []);
  });

  it('a server started as the script sleeps when idle (script stopped, workspace synced) and runs again on wake', async () => {
    const sub = await api('POST', '/api/v2/mags-jobs', { type: 'inline', persistent: true, name: 'srv-1', workspace_id: 'srv-1', script: 'echo run >> /root/runs; exec python3 -m http.server 8080' });
    const id = sub.body.request_id as string;
    const first = await until('running', async () => {
      const st = await status(id);
      return st.status === 'running' && st.vm_id ? st : undefined;
    });
    const slept = await until('sleeping', async () => {
      const st = await status(id);
      return st.status === 'sleeping' ? st : undefined;
    });
    assert.equal(slept.exit_code, null);
    assert.deepEqual(await sandboxLeftovers(rt.dataDir, rt.instance, first.vm_id as string), []);
    const job = (await stores.jobs.getJob(id))!;
    const a = await plane.live.attach(job, 'proxy');
    try {
      await until('the script ran again and serves', async () => (await run(a.sandbox, 'cat /root/runs; curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:8080/ || true')) === 'run\nrun\n200');
    } finally {
      a.release();
    }
    await api('POST', `/api/v1/mags-jobs/${id}/stop`);
  });

  it('concurrent attaches on a sleeping job share one wake', async () => {
    const st = await persistent({ script: 'true', name: 'crowd-1', workspace_id: 'crowd-1', startup_command: 'echo x >> /root/starts' });
    const id = st.request_id as string;
    await until('sleeping', async () => (await status(id)).status === 'sleeping');
    const job = (await stores.jobs.getJob(id))!;
    const all = await Promise.all(Array.from({ length: 6 }, () => plane.live.attach(job, 'proxy')));
    try {
      assert.equal(new Set(all.map((x) => x.sandbox.id)).size, 1, 'one sandbox for all');
      assert.equal((await logLines(id)).filter((l) => l.startsWith('woke up in')).length, 1, 'one wake');
      await until('startup ran', async () => (await run(all[0]!.sandbox, 'cat /root/starts 2>/dev/null || true')).trim() === 'x');
    } finally {
      for (const x of all) x.release();
    }
    await api('POST', `/api/v1/mags-jobs/${id}/stop`);
  });
});

describe('persistent jobs across a daemon restart (real server process)', { timeout: 400_000 }, () => {
  it('a no_sleep job comes back up with startup_command and its workspace; a plain persistent job is sleeping; /api/v2 answers by name', async () => {
    // Our own dirs: a server started on them leaves them for the next one.
    const dataDir = await mkdtemp(join(tmpdir(), 'mags-test-persist-'));
    const home = await mkdtemp(join(tmpdir(), 'mags-test-home-'));
    let first: SpawnedServer | undefined;
    let second: SpawnedServer | undefined;
    try {
      first = await spawnServer({ dataDir, home, env: { MAGS_POOL_MIN_SIZE: '0', MAGS_FREEZE_AFTER_SECONDS: '0.3', MAGS_SLEEP_AFTER_SECONDS: '600' } });
      const token = first.token;
      const call = async (base: SpawnedServer, method: string, path: string, body?: object) => {
        const res = await fetch(base.url + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
        return (await res.json()) as Record<string, unknown>;
      };
      const waitFor = async (base: SpawnedServer, ref: string, pred: (s: Record<string, unknown>) => boolean) => {
        const end = Date.now() + 60_000;
        for (;;) {
          const s = await call(base, 'GET', `/api/v2/mags-jobs/${ref}/status`);
          if (pred(s)) return s;
          if (Date.now() > end) throw new Error(`${ref}: still ${JSON.stringify(s)}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      const startup = 'echo up >> /root/starts';
      await call(first, 'POST', '/api/v2/mags-jobs', { type: 'inline', script: 'echo kept > /root/f.txt', persistent: true, no_sleep: true, name: 'always', workspace_id: 'always', startup_command: startup });
      await call(first, 'POST', '/api/v2/mags-jobs', { type: 'inline', script: 'true', persistent: true, name: 'lazy', workspace_id: 'lazy' });
      const before = await waitFor(first, 'always', (s) => s.status === 'running' && s.exit_code === 0);
      await waitFor(first, 'lazy', (s) => s.status === 'running' && s.exit_code === 0);
      // no_sleep: never frozen even with a 0.3 s freeze window.
      await new Promise((r) => setTimeout(r, 1500));
      const frozenLines = first.stderr().split('\n').filter((l) => l.includes('frozen after idle'));
      assert.ok(frozenLines.some((l) => !l.includes(before.request_id as string)), 'the other job froze (the window works)');
      assert.ok(!frozenLines.some((l) => l.includes(before.request_id as string)), 'the no_sleep job was never frozen');
      await first.stop();

      second = await spawnServer({ dataDir, home, env: { MAGS_POOL_MIN_SIZE: '0', MAGS_FREEZE_AFTER_SECONDS: '600', MAGS_SLEEP_AFTER_SECONDS: '600' } });
      const lazy = await call(second, 'GET', '/api/v2/mags-jobs/lazy/status');
      assert.equal(lazy.status, 'sleeping', JSON.stringify(lazy));
      assert.equal(lazy.vm_id, null);
      const back = await waitFor(second, 'always', (s) => s.status === 'running' && typeof s.vm_id === 'string');
      assert.notEqual(back.vm_id, before.vm_id);
      const logs = async () => ((await call(second!, 'GET', '/api/v2/mags-jobs/always/logs')).logs as Array<{ message: string }>).map((l) => l.message);
      const end = Date.now() + 30_000;
      while (!(await logs()).includes('startup_command exited with code 0') && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
      assert.ok((await logs()).includes('startup_command exited with code 0'), (await logs()).join('\n'));
      const stopped = await call(second, 'POST', '/api/v2/mags-jobs/always/stop');
      assert.equal(stopped.status, 'completed');
      await call(second, 'POST', '/api/v2/mags-jobs/lazy/stop');
    } finally {
      await second?.stop();
      await first?.stop();
      await rm(dataDir, { recursive: true, force: true });
      await rm(home, { recursive: true, force: true });
    }
  });
});
