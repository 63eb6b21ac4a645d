import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { silentLogger } from '../src/logger.js';
import { IdleClock } from '../src/sandboxes/idle.js';
import { LiveManager } from '../src/sandboxes/manager.js';
import { Scheduler } from '../src/scheduler/scheduler.js';
import { AppError } from '../src/services/errors.js';
import { JobLogs } from '../src/services/job-logs.js';
import { JobsService } from '../src/services/jobs.js';
import { newId } from '../src/services/tokens.js';
import type { Job, JobStore, User } from '../src/storage/metadata/store.js';
import { openStores, type Stores } from '../src/storage/stores.js';
import type { WorkspaceLease } from '../src/workspaces/service.js';
import { FakePool, type FakeSandbox } from './helpers/fake-runtime.js';
import type { SandboxStats } from '../src/runtime/driver.js';

const NO_USE: SandboxStats = { cpuUsageUs: 0, memoryBytes: 0, memoryPeakBytes: 0, egressBytes: 0, ingressBytes: 0 };

const SETTINGS = { freezeAfterMs: 1000, sleepAfterMs: 5000, cpuBusyFraction: 0.05, netBusyBytesPerSecond: 1024 };

describe('IdleClock: the idle rule on a controllable clock', () => {
  const facts = { frozen: false, noSleep: false, canSleep: true };

  it('freezes after the freeze window, sleeps after the sleep window (both from the last activity)', () => {
    const c = new IdleClock(SETTINGS, 0);
    assert.equal(c.decide(facts, 999), null);
    assert.equal(c.decide(facts, 1000), 'freeze');
    assert.equal(c.decide({ ...facts, frozen: true }, 4999), null);
    assert.equal(c.decide({ ...facts, frozen: true }, 5000), 'sleep');
    c.touch(5000);
    assert.equal(c.decide(facts, 5500), null);
    assert.equal(c.decide(facts, 6000), 'freeze');
  });

  it('an open attachment holds it awake; idle time counts from the release', () => {
    const c = new IdleClock(SETTINGS, 0);
    c.attach(0);
    c.attach(10);
    c.release(20);
    assert.equal(c.decide(facts, 60_000), null);
    c.release(60_000);
    assert.equal(c.attachments, 0);
    assert.equal(c.decide(facts, 60_999), null);
    assert.equal(c.decide(facts, 61_000), 'freeze');
  });

  it('CPU use above the threshold counts as activity, below it does not', () => {
    const c = new IdleClock(SETTINGS, 0);
    assert.equal(c.sampleCpu(0, 0), false);
    // 500 ms of CPU in 1 s: 50 % of a core.
    assert.equal(c.sampleCpu(500_000, 1000), true);
    assert.equal(c.decide(facts, 1500), null);
    // 10 ms in 1 s: 1 %, idle.
    assert.equal(c.sampleCpu(510_000, 2000), false);
    assert.equal(c.decide(facts, 2000), 'freeze');
    c.resetSamples();
    assert.equal(c.sampleCpu(10_000_000, 2100), false, 'the first sample after a reset has nothing to compare with');
  });

  it('network traffic above the threshold counts as activity, below it (or with the threshold 0) it does not', () => {
    const c = new IdleClock(SETTINGS, 0);
    assert.equal(c.sampleNet(0, 0), false);
    // 3 KB in 1.5 s: 2000 B/s, above 1024.
    assert.equal(c.sampleNet(3000, 1500), true);
    assert.equal(c.lastActiveAt, 1500);
    assert.equal(c.decide(facts, 2400), null);
    // 1024 B in 1 s is the threshold itself: not above it.
    assert.equal(c.sampleNet(4024, 2500), false);
    // ARP and keep-alive sized traffic: 150 B in 0.25 s = 600 B/s.
    assert.equal(c.sampleNet(4174, 2750), false);
    assert.equal(c.decide(facts, 2750), 'freeze');
    // A short sample window does not inflate a small packet into a busy rate below the threshold.
    assert.equal(c.sampleNet(4174 + 200, 2950), false);
    assert.equal(c.sampleNet(10_000_000, 2950), false, 'no time passed: nothing to compare with');
    c.resetSamples();
    assert.equal(c.sampleNet(50_000_000, 3000), false, 'the first sample after a reset (a new sandbox, a thaw) has nothing to compare with');
    assert.equal(c.sampleNet(10, 4000), false, 'counters of a new interface start again at 0: no activity');
    const off = new IdleClock({ ...SETTINGS, netBusyBytesPerSecond: 0 }, 0);
    off.sampleNet(0, 0);
    assert.equal(off.sampleNet(1e9, 1000), false);
    assert.equal(off.decide(facts, 1000), 'freeze');
  });

  it('no_sleep turns both off; without a workspace it only freezes; 0 disables a step', () => {
    const c = new IdleClock(SETTINGS, 0);
    assert.equal(c.decide({ ...facts, noSleep: true }, 1e9), null);
    assert.equal(c.decide({ ...facts, canSleep: false }, 1e9), 'freeze');
    assert.equal(c.decide({ frozen: true, noSleep: false, canSleep: false }, 1e9), null);
    const noFreeze = new IdleClock({ ...SETTINGS, freezeAfterMs: 0 }, 0);
    assert.equal(noFreeze.decide(facts, 4999), null);
    assert.equal(noFreeze.decide(facts, 5000), 'sleep');
    const never = new IdleClock({ ...SETTINGS, freezeAfterMs: 0, sleepAfterMs: 0 }, 0);
    assert.equal(never.decide(facts, 1e9), null);
  });
});

/**
 * The lifecycle manager with the scheduler on a real SQLite store and the fake pool (no root):
 * workspaces are directories the fake sandboxes use as their home, a lease counts its closes
 * (the final sync), and the idle clock is driven by the test.
 */
describe('LiveManager: persistent jobs keep, freeze, sleep and wake', () => {
  let dir: string;
  let stores: Stores;
  let store: JobStore;
  let pool: FakePool;
  let logs: JobLogs;
  let user: User;
  let now: number;
  let live: LiveManager | undefined;
  let scheduler: Scheduler | undefined;
  let jobs: JobsService;
  /** Job ids whose lease was closed (sandbox gone, workspace synced), in order. */
  let closes: string[];
  /** When set, opening a workspace waits for this. */
  let openGate: Promise<void> | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mags-live-'));
    stores = await openStores({ sqlitePath: join(dir, 'mags.db') });
    store = stores.jobs;
    pool = new FakePool();
    logs = new JobLogs(stores.logs, silentLogger());
    user = { id: newId(), name: 'u', admin: false, created_at: new Date().toISOString() };
    await stores.users.createUser(user);
    now = 0;
    closes = [];
    openGate = undefined;
  });
  afterEach(async () => {
    await live?.shutdown();
    await scheduler?.shutdown();
    live = undefined;
    scheduler = undefined;
    await logs.flush();
    await stores.close();
    await pool.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const workspaces = {
    async open(job: Job): Promise<WorkspaceLease | undefined> {
      if (!job.workspace_id) return undefined;
      if (openGate) await openGate;
      const layer = join(dir, 'ws', job.workspace_id);
      await mkdir(join(layer, 'root'), { recursive: true });
      return { workspaceLayerDir: layer, notes: [], close: async () => void closes.push(job.request_id) };
    },
  };

  const make = async (o: { maxConcurrentJobs?: number; wakeTimeoutMs?: number; maxOutputBytes?: number; capacityWaitMs?: number } = {}) => {
    live = new LiveManager({ store, logs, pool, workspaces, log: silentLogger(), idle: SETTINGS, tickMs: 5, now: () => now, wakeTimeoutMs: o.wakeTimeoutMs, maxOutputBytes: o.maxOutputBytes, capacityWaitMs: o.capacityWaitMs });
    scheduler = new Scheduler({ store, logs, pool, log: silentLogger(), jobTimeoutSeconds: 30, maxOutputBytes: 1 << 20, maxConcurrentJobs: o.maxConcurrentJobs ?? 4, workspaces, live });
    live.useSlots(scheduler);
    jobs = new JobsService(store, logs, scheduler, silentLogger(), undefined, undefined, undefined, { live });
    await scheduler.start();
    await live.start();
    return { live, scheduler };
  };
  const until = async <T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  /** Submits a persistent job and waits until its script has ended with the sandbox kept. */
  const persistent = async (extra: Partial<Parameters<JobsService['submit']>[1]> = {}): Promise<Job> => {
    const j = await jobs.submit(user, { script: 'echo up', type: 'inline', persistent: true, ...extra }, 1);
    return until('the script to end', async () => {
      const r = (await store.getJob(j.request_id))!;
      return r.exit_code !== null || r.status !== 'running' && r.status !== 'pending' ? r : undefined;
    });
  };
  const layerFile = (ws: string, name: string) => join(dir, 'ws', ws, 'root', name);

  it('keeps the sandbox after the script: running with vm_id, attach hands out that sandbox, stop frees it', async () => {
    const { live: l, scheduler: s } = await make();
    const job = await persistent();
    assert.equal(job.status, 'running');
    assert.equal(job.exit_code, 0);
    assert.ok(job.vm_id);
    assert.equal(l.state(job.request_id), 'running');
    assert.equal(s.counts().running, 1, 'the kept sandbox holds a run slot');
    const a = await l.attach(job, 'exec');
    assert.equal(a.sandbox.id, job.vm_id);
    assert.equal(a.woke, 'no');
    a.release();
    a.release();
    assert.equal(l.attachments(job.request_id), 0, 'release is idempotent');
    const stopped = await jobs.stop(user, job.request_id);
    assert.equal(stopped.status, 'completed');
    assert.equal(stopped.end_reason, 'cancelled');
    assert.equal(pool.busy.size, 0);
    assert.equal(s.counts().running, 0);
    assert.equal(l.state(job.request_id), 'ended');
    await assert.rejects(l.attach(stopped, 'exec'), (e: AppError) => e.code === 'JOB_NOT_RUNNING');
  });

  it('idle -> frozen -> sleeping (lease closed, slot freed) -> attach wakes on the workspace and runs startup_command', async () => {
    const { live: l, scheduler: s } = await make();
    const job = await persistent({ workspace_id: 'web', script: 'echo kept > /dev/null; echo data > f.txt', startup_command: 'echo woke >> marker; echo from-startup' });
    const id = job.request_id;
    const sandbox = pool.busy.values().next().value as FakeSandbox;
    now = 999;
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(l.state(id), 'running');
    now = 1000;
    await until('frozen', () => l.state(id) === 'frozen');
    assert.equal((sandbox as unknown as { paused: boolean }).paused, true);
    now = 5000;
    await until('sleeping', () => l.state(id) === 'sleeping');
    const slept = await until('status sleeping', async () => ((await store.getJob(id))!.status === 'sleeping' ? (await store.getJob(id))! : undefined));
    assert.equal(slept.vm_id, null);
    assert.deepEqual(closes, [id], 'the workspace was synced (lease closed) once');
    assert.equal(pool.busy.size, 0);
    assert.equal(s.counts().running, 0, 'a sleeping job holds no slot');
    assert.equal(readFileSync(layerFile('web', 'f.txt'), 'utf8'), 'data\n');

    await jobs.update(user, id, { startup_command: 'echo woke >> marker; echo from-startup' });
    const a = await l.attach(slept, 'ssh');
    try {
      assert.equal(a.woke, 'started');
      assert.notEqual(a.sandbox.id, job.vm_id);
      const fresh = (await store.getJob(id))!;
      assert.equal(fresh.status, 'running');
      assert.equal(fresh.vm_id, a.sandbox.id);
      assert.equal(s.counts().running, 1);
      await until('the startup_command marker', () => existsSync(layerFile('web', 'marker')));
      await logs.flush();
      const lines = async () => (await logs.read(id, 0, 100)).map((x) => x.message);
      await until('startup output in the log', async () => ((await lines()).includes('from-startup') ? true : (await logs.flush(), undefined)));
      assert.ok((await lines()).some((m) => /^woke up in [\d.]+ ms/.test(m)));
    } finally {
      a.release();
    }
  });

  it('a script that keeps running (a server as the script) freezes and sleeps when idle, and runs again on wake', async () => {
    const { live: l, scheduler: s } = await make();
    const sub = await jobs.submit(user, { script: 'echo run >> runs; exec sleep 1000', type: 'inline', persistent: true, workspace_id: 'srv' }, 1);
    const id = sub.request_id;
    await until('the script to start', () => existsSync(layerFile('srv', 'runs')));
    assert.equal(l.state(id), 'running');
    now = 1000;
    await until('frozen while the script runs', () => l.state(id) === 'frozen');
    now = 5000;
    const slept = await until('sleeping', async () => {
      const j = (await store.getJob(id))!;
      return j.status === 'sleeping' ? j : undefined;
    });
    assert.equal(slept.exit_code, null, 'the script never finished');
    assert.equal(slept.vm_id, null);
    await until('the lease closed', () => closes.includes(id));
    assert.equal(pool.busy.size, 0);
    assert.equal(s.counts().running, 0);
    const a = await l.attach(slept, 'proxy');
    try {
      assert.equal(a.woke, 'started');
      await until('the script ran again', () => readFileSync(layerFile('srv', 'runs'), 'utf8') === 'run\nrun\n');
    } finally {
      a.release();
    }
    assert.equal((await jobs.stop(user, id)).status, 'completed');
    assert.equal(pool.busy.size, 0);
  });

  it('the startup process output is capped per wake (one truncation line, the rest discarded)', async () => {
    const { live: l } = await make({ maxOutputBytes: 2000 });
    const job = await persistent({ workspace_id: 'chatty', startup_command: 'seq 1 5000; echo done > finished' });
    now = 5000;
    await until('sleeping', async () => (await store.getJob(job.request_id))!.status === 'sleeping');
    const a = await l.attach(job, 'proxy');
    a.release();
    await until('the startup process ended', () => existsSync(layerFile('chatty', 'finished')));
    await until('its exit logged', async () => {
      await logs.flush();
      return (await logs.read(job.request_id, 0, 10_000)).some((x) => x.message === 'startup_command exited with code 0');
    });
    const lines = (await logs.read(job.request_id, 0, 10_000)).map((x) => x.message);
    assert.equal(lines.filter((m) => m.startsWith('[output truncated')).length, 1);
    assert.ok(!lines.includes('5000'));
    assert.ok(lines.filter((m) => /^\d+$/.test(m)).length < 40);
  });

  it('an open attachment prevents freeze and sleep; the release lets them happen', async () => {
    const { live: l } = await make();
    const job = await persistent({ workspace_id: 'held' });
    const a = await l.attach(job, 'terminal');
    now = 60_000;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(l.state(job.request_id), 'running');
    a.release();
    now = 61_000;
    await until('frozen after release', () => l.state(job.request_id) === 'frozen');
  });

  it('a busy CPU counts as activity: no freeze while the sandbox computes', async () => {
    const { live: l } = await make();
    const job = await persistent({ workspace_id: 'busy' });
    const sandbox = pool.busy.values().next().value as FakeSandbox & { stats?: () => Promise<SandboxStats> };
    let usage = 0;
    // Half a core at every sample, however far the clock moved.
    sandbox.stats = async () => ({ ...NO_USE, cpuUsageUs: (usage += 1_000_000_000) });
    for (let i = 0; i < 20; i++) {
      now += 500;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(l.state(job.request_id), 'running');
    sandbox.stats = async () => ({ ...NO_USE, cpuUsageUs: usage });
    now += 1100;
    await until('frozen once quiet', () => l.state(job.request_id) === 'frozen');
  });

  it('network traffic counts as activity: no freeze while the sandbox downloads slowly at no CPU; frozen once it stops', async () => {
    const { live: l } = await make();
    const job = await persistent({ workspace_id: 'trickle' });
    const sandbox = pool.busy.values().next().value as FakeSandbox & { stats?: () => Promise<SandboxStats> };
    let received = 0;
    // 2 KB more at every sample (about 4 KB/s of the fake clock), no CPU at all.
    sandbox.stats = async () => ({ ...NO_USE, ingressBytes: (received += 2048), egressBytes: received / 50 });
    for (let i = 0; i < 20; i++) {
      now += 500;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(l.state(job.request_id), 'running', 'a slow transfer keeps the sandbox awake');
    sandbox.stats = async () => ({ ...NO_USE, ingressBytes: received, egressBytes: received / 50 });
    now += 1100;
    await until('frozen once the transfer stopped', () => l.state(job.request_id) === 'frozen');
  });

  it('concurrent attaches on a sleeping job share one wake; a frozen one thaws', async () => {
    const { live: l } = await make();
    const job = await persistent({ workspace_id: 'shared' });
    now = 1000;
    await until('frozen', () => l.state(job.request_id) === 'frozen');
    const t = await l.attach(job, 'proxy');
    assert.equal(t.woke, 'thawed');
    t.release();
    now = 1000 + 5000;
    await until('sleeping', async () => (await store.getJob(job.request_id))!.status === 'sleeping');
    const before = pool.acquired;
    const all = await Promise.all(Array.from({ length: 8 }, () => l.attach(job, 'proxy')));
    try {
      assert.equal(pool.acquired - before, 1, 'one sandbox for eight attaches');
      assert.equal(new Set(all.map((a) => a.sandbox.id)).size, 1);
      assert.equal(all.filter((a) => a.woke === 'started').length, 8);
      assert.equal(l.attachments(job.request_id), 8);
    } finally {
      for (const a of all) a.release();
    }
  });

  it('a wake is bounded: SANDBOX_START_TIMEOUT instead of a hang, and the wake finishes later', async () => {
    const { live: l } = await make({ wakeTimeoutMs: 100 });
    const job = await persistent({ workspace_id: 'slow' });
    now = 5000;
    await until('sleeping', async () => (await store.getJob(job.request_id))!.status === 'sleeping');
    let open!: () => void;
    openGate = new Promise((r) => (open = r));
    try {
      const t0 = Date.now();
      await assert.rejects(l.attach(job, 'access'), (e: AppError) => e.code === 'SANDBOX_START_TIMEOUT' && e.statusCode === 504);
      assert.ok(Date.now() - t0 < 2000);
      assert.equal(l.attachments(job.request_id), 0, 'a failed attach holds nothing');
    } finally {
      open();
    }
    await until('running after the slow wake', async () => (await store.getJob(job.request_id))!.status === 'running');
  });

  it('a stop during a wake waits for it, then frees the new sandbox; attach afterwards is refused', async () => {
    const { live: l, scheduler: s } = await make();
    const job = await persistent({ workspace_id: 'race' });
    now = 5000;
    await until('sleeping', async () => (await store.getJob(job.request_id))!.status === 'sleeping');
    let open!: () => void;
    openGate = new Promise((r) => (open = r));
    const attaching = l.attach(job, 'ssh');
    await until('the wake to start', () => l.state(job.request_id) === 'starting');
    const stopping = jobs.stop(user, job.request_id);
    open();
    // The stop is queued behind the wake: the attach either got the sandbox just before or sees the end.
    const outcome = await attaching.then(
      (a) => (a.release(), 'attached'),
      (e: AppError) => e.code,
    );
    assert.ok(['attached', 'JOB_NOT_RUNNING'].includes(outcome), outcome);
    assert.equal((await stopping).status, 'completed');
    assert.equal(pool.busy.size, 0, 'the woken sandbox was destroyed by the stop');
    assert.equal(s.counts().running, 0);
    await assert.rejects(l.attach(job, 'ssh'), (e: AppError) => e.code === 'JOB_NOT_RUNNING');
  });

  it("another user's job cannot be stopped or patched by name; an ephemeral job cannot be attached", async () => {
    const { live: l } = await make();
    const job = await persistent({ name: 'mine', workspace_id: 'mine' });
    const other: User = { id: newId(), name: 'o', admin: false, created_at: new Date().toISOString() };
    await stores.users.createUser(other);
    await assert.rejects(jobs.stop(other, 'mine'), (e: AppError) => e.code === 'JOB_NOT_FOUND');
    await assert.rejects(jobs.update(other, job.request_id, { no_sleep: true }), (e: AppError) => e.code === 'JOB_NOT_FOUND');
    assert.equal(l.state(job.request_id), 'running');
    const eph = await jobs.submit(user, { script: 'true', type: 'inline' }, 1);
    await assert.rejects(l.attach(eph, 'exec'), (e: AppError) => e.code === 'JOB_NOT_RUNNING');
  });

  it('no_sleep never freezes; PATCH no_sleep on a sleeping job brings it up', async () => {
    const { live: l } = await make();
    const keep = await persistent({ workspace_id: 'ns', no_sleep: true });
    const other = await persistent({ workspace_id: 'ns2' });
    now = 100_000;
    await until('the other one sleeps', async () => (await store.getJob(other.request_id))!.status === 'sleeping');
    assert.equal(l.state(keep.request_id), 'running');
    await jobs.update(user, other.request_id, { no_sleep: true });
    await until('woken by no_sleep', async () => (await store.getJob(other.request_id))!.status === 'running');
    now = 200_000;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(l.state(other.request_id), 'running');
  });

  it('a full host puts the longest-idle frozen sandbox to sleep early so a queued job starts', async () => {
    const { live: l, scheduler: s } = await make({ maxConcurrentJobs: 1 });
    const p = await persistent({ workspace_id: 'hog' });
    now = 1000;
    await until('frozen', () => l.state(p.request_id) === 'frozen');
    const e = await jobs.submit(user, { script: 'echo ephemeral', type: 'inline' }, 1);
    const done = await until('the queued job to finish', async () => {
      const j = (await store.getJob(e.request_id))!;
      return j.status === 'completed' ? j : undefined;
    });
    assert.equal(done.exit_code, 0);
    assert.equal((await store.getJob(p.request_id))!.status, 'sleeping');
    assert.ok(s.counts().running <= 1);
  });

  it('a wake on a full host puts a frozen sandbox to sleep to make room, else fails with CAPACITY_EXHAUSTED and stays asleep', async () => {
    const { live: l, scheduler: s } = await make({ maxConcurrentJobs: 1, capacityWaitMs: 300 });
    const a = await persistent({ workspace_id: 'wa' });
    now = 5000;
    const asleep = await until('a sleeping', async () => ((await store.getJob(a.request_id))!.status === 'sleeping' ? (await store.getJob(a.request_id))! : undefined));
    // A running script holds the only slot: nothing can be put to sleep, the wake gives up.
    const busy = await jobs.submit(user, { script: 'exec sleep 1000', type: 'inline' }, 1);
    await until('the busy job running', async () => (await store.getJob(busy.request_id))!.status === 'running');
    const t0 = Date.now();
    await assert.rejects(l.attach(asleep, 'exec'), (e: AppError) => e.code === 'CAPACITY_EXHAUSTED' && /all 1 sandbox slots/.test(e.message));
    assert.ok(Date.now() - t0 >= 250, 'it waited for room first');
    assert.equal(l.state(a.request_id), 'sleeping');
    assert.equal((await store.getJob(a.request_id))!.status, 'sleeping');
    assert.equal(s.counts().running, 1, 'the failed wake holds no slot');
    await jobs.stop(user, busy.request_id);
    // A frozen idle sandbox holds the slot now: the wake puts it to sleep and takes its place.
    const b = await persistent({ workspace_id: 'wb' });
    now = 6500;
    await until('b frozen', () => l.state(b.request_id) === 'frozen');
    const att = await l.attach(asleep, 'exec');
    try {
      assert.equal(att.woke, 'started');
      assert.equal((await store.getJob(b.request_id))!.status, 'sleeping');
      assert.equal(s.counts().running, 1);
    } finally {
      att.release();
    }
  });

  it('restart: a running persistent job comes back sleeping; a no_sleep one is brought back up', async () => {
    const at = new Date().toISOString();
    const base: Job = {
      request_id: '', user_id: user.id, name: null, workspace_id: 'r', base_workspace_id: null, type: 'inline', script: 'true', persistent: true, no_sleep: false,
      startup_command: 'echo back >> marker', environment: {}, file_ids: [], disk_gb: 2, vcpus: 1, memory_mb: 256, rootfs_type: null, timeout_seconds: null, api_version: 1,
      status: 'running', exit_code: 0, end_reason: 'exited', error_message: null, vm_id: 'gone', host: null, subdomain: null, url: null, script_duration_ms: 1,
      created_at: at, started_at: at, completed_at: null, updated_at: at,
    };
    const plain = { ...base, request_id: newId() };
    const kept = { ...base, request_id: newId(), workspace_id: 'r2', no_sleep: true };
    await store.insertJob(plain);
    await store.insertJob(kept);
    const { live: l } = await make();
    assert.equal((await store.getJob(plain.request_id))!.status, 'sleeping');
    assert.equal(l.state(plain.request_id), 'sleeping');
    const up = await until('the no_sleep job back up', async () => {
      const j = (await store.getJob(kept.request_id))!;
      return j.status === 'running' ? j : undefined;
    });
    assert.notEqual(up.vm_id, 'gone');
    await until('startup_command ran again', () => existsSync(layerFile('r2', 'marker')));
  });
});
