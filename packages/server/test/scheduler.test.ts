import type { EndReason } from '@mags/shared';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { ExecRequest, ExecResult, OutputLine, SandboxPool, SandboxSpec } from '../src/runtime/driver.js';
import { silentLogger } from '../src/logger.js';
import { createPool } from '../src/scheduler/pool.js';
import { DEFAULT_PIDS_LIMIT, Scheduler } from '../src/scheduler/scheduler.js';
import { JobLogs } from '../src/services/job-logs.js';
import { JobsService } from '../src/services/jobs.js';
import { newId } from '../src/services/tokens.js';
import type { Job, JobStore, User } from '../src/storage/metadata/store.js';
import { openStores, type Stores } from '../src/storage/stores.js';
import { FakeRuntimeDriver, type FakeSandbox } from './helpers/fake-runtime.js';

/**
 * The scheduler on a real SQLite store and the real pool over the fake runtime driver (no root):
 * outcomes, queueing, reconciliation. An empty pool (minimum 0) creates one sandbox per job.
 */
describe('scheduler', () => {
  let dir: string;
  let stores: Stores;
  let store: JobStore;
  let driver: FakeRuntimeDriver;
  let pool: SandboxPool;
  let logs: JobLogs;
  let scheduler: Scheduler | undefined;
  let user: User;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mags-sched-'));
    stores = await openStores({ sqlitePath: join(dir, 'mags.db') });
    store = stores.jobs;
    driver = new FakeRuntimeDriver();
    await driver.init();
    pool = createPool(driver, { minSize: 0, maxSize: 4, defaultLimits: { vcpus: 2, memoryMb: 1024, diskGb: 2, pids: DEFAULT_PIDS_LIMIT }, log: silentLogger() });
    logs = new JobLogs(stores.logs, silentLogger());
    user = { id: newId(), name: 'u', admin: false, created_at: new Date().toISOString() };
    await stores.users.createUser(user);
  });
  afterEach(async () => {
    await scheduler?.shutdown();
    scheduler = undefined;
    await logs.flush();
    await stores.close();
    await pool.stop();
    await driver.shutdown();
    await rm(driver.dataDir, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  });

  const make = (o: Partial<ConstructorParameters<typeof Scheduler>[0]> = {}) => {
    scheduler = new Scheduler({ store, logs, pool, log: silentLogger(), jobTimeoutSeconds: 30, maxOutputBytes: 1 << 20, maxConcurrentJobs: 4, ...o });
    return { scheduler, jobs: new JobsService(store, logs, scheduler, silentLogger()) };
  };
  const until = async (id: string, pred: (j: Job) => boolean, ms = 10_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const j = (await store.getJob(id))!;
      if (pred(j)) return j;
      if (Date.now() > end) throw new Error(`job ${id} stuck in ${j.status}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const done = (id: string) => until(id, (j) => j.status !== 'pending' && j.status !== 'running');

  it('a sandbox that cannot be created ends the job in error, and nothing leaks', async () => {
    const { scheduler: s, jobs } = make();
    await s.start();
    driver.failCreate = 'no loop devices left';
    const job = await jobs.submit(user, { script: 'echo', type: 'inline' }, 1);
    const j = await done(job.request_id);
    assert.equal(j.status, 'error');
    assert.equal(j.error_message, 'could not start a sandbox: no loop devices left');
    assert.equal(j.end_reason, 'sandbox_failed');
    assert.equal(pool.status().busy_vms, 0);
    assert.equal(driver.list().length, 0);
  });

  it('exec failures and end reasons map to error messages; sandboxes are always released', async () => {
    const results: Array<[Partial<ExecResult> | Error, string, EndReason]> = [
      [{ reason: 'oom', exitCode: null }, 'ran out of memory (limit 1024 MiB)', 'oom'],
      [{ reason: 'signaled', exitCode: null, signal: 'SIGSEGV' }, 'script was killed by signal SIGSEGV', 'signaled'],
      [{ reason: 'sandbox_failed', exitCode: null, message: 'agent vanished' }, 'sandbox failed: agent vanished', 'sandbox_failed'],
      [{ reason: 'timeout', exitCode: null }, 'timed out after 30 s', 'timeout'],
      [new Error('socket closed'), 'sandbox failed: socket closed', 'sandbox_failed'],
    ];
    const { scheduler: s, jobs } = make();
    await s.start();
    for (const [result, message, reason] of results) {
      driver.onCreate = (sb) => {
        sb.exec = async (_req: ExecRequest, _on: (l: OutputLine) => void) => {
          if (result instanceof Error) throw result;
          return { durationMs: 5, exitCode: null, reason: 'exited', ...result } as ExecResult;
        };
      };
      const job = await jobs.submit(user, { script: 'x', type: 'inline' }, 1);
      const j = await done(job.request_id);
      driver.onCreate = undefined;
      assert.equal(j.status, 'error');
      assert.equal(j.error_message, message);
      assert.equal(j.end_reason, reason, message);
      const lines = await logs.read(job.request_id, 0, 10);
      assert.ok(lines.some((l) => l.stream === 'system' && l.message === message));
    }
    // The job's outcome is stored before its sandbox is released: wait for the last release.
    for (const end = Date.now() + 5000; driver.list().length > 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
    assert.equal(pool.status().busy_vms, 0);
    assert.equal(driver.stats.destroyed, driver.stats.created, 'every sandbox was released and destroyed');
    assert.equal(driver.stats.created, results.length);
  });

  it('passes limits, env and timeout to the sandbox', async () => {
    const seen: Array<{ spec: SandboxSpec; req: ExecRequest }> = [];
    driver.onCreate = (sb: FakeSandbox) => {
      const exec = sb.exec.bind(sb);
      sb.exec = (req, on) => {
        seen.push({ spec: sb.spec, req });
        return exec(req, on);
      };
    };
    const { scheduler: s, jobs } = make({ jobTimeoutSeconds: 77 });
    await s.start();
    const a = await jobs.submit(user, { script: 'true', type: 'inline', vcpus: 1, memory_mb: 256, disk_gb: 5, environment: { X: '1' } }, 2);
    const b = await jobs.submit(user, { script: 'true', type: 'inline', timeout_seconds: 9 }, 1);
    await done(a.request_id);
    await done(b.request_id);
    const sa = seen.find((x) => x.spec.labels?.job === a.request_id)!;
    assert.deepEqual(sa.spec.limits, { vcpus: 1, memoryMb: 256, diskGb: 5, pids: 1024 });
    assert.deepEqual(sa.req.env, { X: '1' });
    assert.equal(sa.req.timeoutMs, 77_000);
    assert.equal(sa.req.cwd, '/root');
    assert.equal(seen.find((x) => x.spec.labels?.job === b.request_id)!.req.timeoutMs, 9_000);
  });

  it('MAGS_MAX_CONCURRENT_JOBS queues the rest as pending, in order', async () => {
    const { scheduler: s, jobs } = make({ maxConcurrentJobs: 1 });
    await s.start();
    const a = await jobs.submit(user, { script: 'sleep 0.4', type: 'inline' }, 1);
    const b = await jobs.submit(user, { script: 'true', type: 'inline' }, 1);
    await until(a.request_id, (j) => j.status === 'running');
    assert.equal((await store.getJob(b.request_id))!.status, 'pending');
    assert.deepEqual(s.counts(), { running: 1, queued: 1 });
    const jb = await done(b.request_id);
    const ja = (await store.getJob(a.request_id))!;
    assert.equal(ja.status, 'completed');
    assert.ok(jb.started_at! >= ja.completed_at!, 'b started after a ended');
  });

  it('a long queue (ids only past 64) runs every job once, in order', async () => {
    const { scheduler: s, jobs } = make({ maxConcurrentJobs: 2 });
    await s.start();
    const ids: string[] = [];
    for (let i = 0; i < 80; i++) ids.push((await jobs.submit(user, { script: `echo ${i}`, type: 'inline' }, 1)).request_id);
    await jobs.stop(user, ids[70]!);
    for (const id of ids) await done(id);
    const all = await Promise.all(ids.map((id) => store.getJob(id)));
    assert.equal(all.filter((j) => j!.status === 'completed').length, 80);
    assert.equal(all[70]!.started_at, null, 'the stopped queued job never started');
    assert.equal(driver.stats.created, 79);
    assert.deepEqual((await logs.read(ids[79]!, 0, 10)).map((l) => l.message), ['79']);
  });

  it('a user with too many pending jobs gets RATE_LIMITED; other users are not affected', async () => {
    scheduler = new Scheduler({ store, logs, pool, log: silentLogger(), jobTimeoutSeconds: 30, maxOutputBytes: 1 << 20, maxConcurrentJobs: 1 });
    const jobs = new JobsService(store, logs, scheduler, silentLogger(), { maxPendingJobsPerUser: 2 });
    await scheduler.start();
    await jobs.submit(user, { script: 'sleep 5', type: 'inline' }, 1);
    await until((await store.listJobs(user.id, 0, 1)).jobs[0]!.request_id, (j) => j.status === 'running');
    await jobs.submit(user, { script: 'true', type: 'inline' }, 1);
    await jobs.submit(user, { script: 'true', type: 'inline' }, 1);
    const before = await store.countJobs();
    await assert.rejects(jobs.submit(user, { script: 'true', type: 'inline' }, 1), (err: Error & { code?: string }) => err.code === 'RATE_LIMITED' && /2 jobs waiting/.test(err.message));
    assert.equal(await store.countJobs(), before);
    const other: User = { id: newId(), name: 'other', admin: false, created_at: new Date().toISOString() };
    await stores.users.createUser(other);
    await jobs.submit(other, { script: 'true', type: 'inline' }, 1);
  });

  it('stopping a queued job means it never starts', async () => {
    const { scheduler: s, jobs } = make({ maxConcurrentJobs: 1 });
    await s.start();
    const a = await jobs.submit(user, { script: 'sleep 5', type: 'inline' }, 1);
    const b = await jobs.submit(user, { script: 'echo never', type: 'inline' }, 1);
    await until(a.request_id, (j) => j.status === 'running');
    const stoppedB = await jobs.stop(user, b.request_id);
    assert.equal(stoppedB.status, 'completed');
    assert.equal(stoppedB.started_at, null);
    const stoppedA = await jobs.stop(user, a.request_id);
    assert.equal(stoppedA.status, 'completed');
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(!(await logs.read(b.request_id, 0, 10)).some((l) => l.message === 'never'));
    assert.equal(driver.stats.created, 1);
  });

  it('start() reconciles: running jobs of a dead process end in error, pending ones run', async () => {
    const now = new Date().toISOString();
    const base = { user_id: user.id, name: null, workspace_id: null, base_workspace_id: null, type: 'inline' as const, persistent: false, no_sleep: false, startup_command: null, environment: {}, file_ids: [], disk_gb: 2, vcpus: 2, memory_mb: 1024, rootfs_type: null, timeout_seconds: null, api_version: 1, exit_code: null, end_reason: null, error_message: null, vm_id: null, host: null, subdomain: null, url: null, script_duration_ms: null, created_at: now, started_at: null, completed_at: null, updated_at: now };
    const running: Job = { ...base, request_id: newId(), script: 'sleep 100', status: 'running', vm_id: 'gone', started_at: now };
    const pending: Job = { ...base, request_id: newId(), script: 'echo requeued', status: 'pending' };
    await store.insertJob(running);
    await store.insertJob(pending);
    const { scheduler: s } = make();
    await s.start();
    const r = (await store.getJob(running.request_id))!;
    assert.equal(r.status, 'error');
    assert.equal(r.error_message, 'server restarted while the job was running');
    assert.equal(r.end_reason, 'server_shutdown');
    assert.ok(r.completed_at);
    const p = await done(pending.request_id);
    assert.equal(p.status, 'completed');
    assert.equal(p.end_reason, 'exited');
    assert.deepEqual((await logs.read(pending.request_id, 0, 10)).map((l) => l.message), ['requeued']);
  });

  it('shutdown ends running jobs in error and keeps queued ones pending', async () => {
    const { scheduler: s, jobs } = make({ maxConcurrentJobs: 1 });
    await s.start();
    const a = await jobs.submit(user, { script: 'sleep 30', type: 'inline' }, 1);
    const b = await jobs.submit(user, { script: 'true', type: 'inline' }, 1);
    await until(a.request_id, (j) => j.status === 'running');
    await s.shutdown();
    scheduler = undefined;
    const ja = (await store.getJob(a.request_id))!;
    assert.equal(ja.status, 'error');
    assert.equal(ja.error_message, 'server shut down while the job was running');
    assert.equal(ja.end_reason, 'server_shutdown');
    assert.equal((await store.getJob(b.request_id))!.status, 'pending');
    assert.equal(pool.status().busy_vms, 0);
    assert.equal(driver.list().length, 0);
  });

  it('an output flood is stored in few batches and capped without growing memory', async () => {
    const { scheduler: s, jobs } = make({ maxOutputBytes: 200_000 });
    await s.start();
    let appendCalls = 0;
    const orig = stores.logs.appendChunks.bind(stores.logs);
    stores.logs.appendChunks = async (chunks) => {
      appendCalls++;
      return orig(chunks);
    };
    const job = await jobs.submit(user, { script: 'seq 1 200000', type: 'inline' }, 1);
    const j = await done(job.request_id, );
    assert.equal(j.status, 'completed');
    const lines = await logs.read(job.request_id, 0, 1_000_000);
    assert.ok(lines.length < 40_000, `${lines.length} lines stored`);
    assert.match(lines.at(-1)!.message, /output truncated: the job wrote more than 200000 bytes/);
    assert.ok(appendCalls < 200, `${appendCalls} batch writes for ${lines.length} lines`);
  });
});
