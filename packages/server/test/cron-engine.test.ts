import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { Cron } from 'croner';
import { CronService, type CronJobs } from '../src/cron/service.js';
import { silentLogger } from '../src/logger.js';
import type { SubmitInput } from '../src/services/jobs.js';
import type { Job, User } from '../src/storage/metadata/store.js';
import { openStores, type Stores } from '../src/storage/stores.js';
import { FakeClock } from './helpers/fake-clock.js';

const T0 = Date.parse('2026-06-01T10:00:30Z');

/** A jobs service double: stores pending jobs so the engine sees their status. */
class Jobs implements CronJobs {
  submitted: Array<{ id: string; input: SubmitInput; at: number }> = [];
  stopped: string[] = [];
  private seq = 0;
  constructor(
    private readonly stores: Stores,
    private readonly clock: FakeClock,
  ) {}
  async submit(user: User, input: SubmitInput): Promise<Job> {
    const id = `job-${++this.seq}`;
    const now = new Date(this.clock.now()).toISOString();
    const job = {
      request_id: id, user_id: user.id, name: input.name ?? null, workspace_id: null, base_workspace_id: null, type: 'inline', script: input.script,
      persistent: false, no_sleep: false, startup_command: null, environment: {}, file_ids: [], disk_gb: 2, vcpus: 1, memory_mb: 512, rootfs_type: null,
      timeout_seconds: null, api_version: 1, status: 'pending', exit_code: null, end_reason: null, error_message: null, vm_id: null, host: null, subdomain: null,
      url: null, script_duration_ms: null, created_at: now, started_at: null, completed_at: null, updated_at: now,
    } satisfies Job;
    await this.stores.jobs.insertJob(job);
    this.submitted.push({ id, input, at: this.clock.now() });
    return job;
  }
  async stop(_user: User, ref: string): Promise<Job> {
    this.stopped.push(ref);
    await this.finish(ref);
    return (await this.stores.jobs.getJob(ref))!;
  }
  async finish(id: string): Promise<void> {
    await this.stores.jobs.updateJob(id, { status: 'completed', exit_code: 0, completed_at: new Date(this.clock.now()).toISOString() });
  }
}

describe('cron engine (controllable clock, SQLite)', () => {
  let dir: string;
  let stores: Stores;
  let clock: FakeClock;
  let jobs: Jobs;
  let cron: CronService;
  const user: User = { id: 'u1', name: 'alice', admin: false, created_at: new Date(T0).toISOString() };

  const make = (o: Partial<ConstructorParameters<typeof CronService>[0]> = {}) =>
    new CronService({ store: stores.cron, users: stores.users, jobs, jobStore: stores.jobs, log: silentLogger(), clock, ...o });
  /** Moves the clock and waits for the passes its timers started. */
  const moveTo = async (ms: number, c = cron) => {
    clock.set(ms);
    await c.idle();
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mags-cron-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await cron.stop();
    await stores.close();
  });
  beforeEach(async () => {
    stores = await openStores({ sqlitePath: join(dir, `${Math.random().toString(36).slice(2)}.db`) });
    await stores.users.createUser(user);
    clock = new FakeClock(T0);
    jobs = new Jobs(stores, clock);
    cron = make();
    cron.start();
  });

  it('fires an every-minute schedule on time and arms one timer for the next due firing', async () => {
    const s = await cron.create(user, { name: 'm', cron_expression: '* * * * *', script: 'echo hi' });
    assert.equal(s.next_run_at, '2026-06-01T10:01:00.000Z');
    assert.deepEqual(cron.nextRuns(s), ['2026-06-01T10:01:00.000Z', '2026-06-01T10:02:00.000Z', '2026-06-01T10:03:00.000Z']);
    await moveTo(T0);
    assert.equal(clock.timers.size, 1);
    assert.equal(clock.nextTimerAt(), Date.parse('2026-06-01T10:01:00Z'));
    await moveTo(Date.parse('2026-06-01T10:00:59.999Z'));
    assert.equal(jobs.submitted.length, 0, 'nothing before the time');
    await moveTo(Date.parse('2026-06-01T10:01:00Z'));
    assert.equal(jobs.submitted.length, 1);
    assert.equal(jobs.submitted[0]!.at, Date.parse('2026-06-01T10:01:00Z'));
    assert.equal(jobs.submitted[0]!.input.name, 'm');
    const runs = await stores.cron.listRuns(s.id, 10);
    assert.equal(runs.length, 1);
    assert.equal(runs[0]!.scheduled_for, '2026-06-01T10:01:00.000Z');
    assert.equal(runs[0]!.job_id, 'job-1');
    assert.equal(clock.timers.size, 1);
    assert.equal(clock.nextTimerAt(), Date.parse('2026-06-01T10:02:00Z'));
  });

  it('1000 schedules keep one timer, sleeping until the earliest due firing', async () => {
    const first = await cron.create(user, { name: 's0', cron_expression: '0 * * * *', script: 'true' });
    for (let i = 1; i < 1000; i++) await stores.cron.insertSchedule({ ...first, id: `x${i}`, name: `s${i}` });
    assert.equal((await cron.list(user)).length, 1000);
    await moveTo(T0 + 1);
    assert.equal(clock.timers.size, 1, 'one timer whatever the number of schedules');
    // The earliest firing is 10:59:30 away (an hour at most: the timer caps its sleep at a minute).
    assert.equal(clock.nextTimerAt(), T0 + 1 + 60_000);
  });

  it('overlap skip: a firing while the previous job runs is recorded as skipped', async () => {
    const s = await cron.create(user, { name: 'skip', cron_expression: '* * * * *', script: 'sleep 100' });
    await moveTo(Date.parse('2026-06-01T10:01:00Z'));
    await moveTo(Date.parse('2026-06-01T10:02:00Z'));
    assert.equal(jobs.submitted.length, 1);
    const runs = await stores.cron.listRuns(s.id, 10);
    assert.equal(runs[0]!.outcome, 'skipped');
    assert.match(runs[0]!.message!, /job-1 is still pending/);
    await jobs.finish('job-1');
    await moveTo(Date.parse('2026-06-01T10:03:00Z'));
    assert.equal(jobs.submitted.length, 2);
  });

  it('overlap queue: one firing waits and is submitted when the previous job ends', async () => {
    const s = await cron.create(user, { name: 'queue', cron_expression: '* * * * *', script: 'sleep 100', overlap: 'queue' });
    await moveTo(Date.parse('2026-06-01T10:01:00Z'));
    await moveTo(Date.parse('2026-06-01T10:02:00Z'));
    await moveTo(Date.parse('2026-06-01T10:03:00Z'));
    assert.equal(jobs.submitted.length, 1);
    const runs = await stores.cron.listRuns(s.id, 10);
    assert.deepEqual(runs.map((r) => r.outcome), ['skipped', 'queued', 'submitted']);
    await jobs.finish('job-1');
    await cron.jobEnded((await stores.jobs.getJob('job-1'))!, 'completed');
    assert.equal(jobs.submitted.length, 2, 'the queued firing runs once the previous job ended');
    const after = await stores.cron.listRuns(s.id, 10);
    assert.equal(after.find((r) => r.scheduled_for === '2026-06-01T10:02:00.000Z')!.job_id, 'job-2');
  });

  it('overlap replace: the previous job is stopped and a new one submitted', async () => {
    await cron.create(user, { name: 'replace', cron_expression: '* * * * *', script: 'sleep 100', overlap: 'replace' });
    await moveTo(Date.parse('2026-06-01T10:01:00Z'));
    await moveTo(Date.parse('2026-06-01T10:02:00Z'));
    assert.deepEqual(jobs.stopped, ['job-1']);
    assert.equal(jobs.submitted.length, 2);
  });

  it('catch_up one: after downtime over many firings it runs once at start, never a burst', async () => {
    const s = await cron.create(user, { name: 'cu', cron_expression: '*/5 * * * *', script: 'true' });
    await cron.stop(); // the daemon goes down at 10:00:30
    clock.set(Date.parse('2026-06-01T12:07:00Z'));
    const restarted = make();
    restarted.start();
    await moveTo(Date.parse('2026-06-01T12:07:00Z'), restarted);
    assert.equal(jobs.submitted.length, 1, 'one firing for 25 missed ones');
    const runs = await stores.cron.listRuns(s.id, 10);
    assert.equal(runs.length, 1);
    assert.equal(runs[0]!.trigger, 'catch_up');
    assert.equal(runs[0]!.scheduled_for, '2026-06-01T12:05:00.000Z', 'the latest missed time');
    assert.equal((await stores.cron.getSchedule(s.id))!.next_run_at, '2026-06-01T12:10:00.000Z');
    await restarted.stop();
  });

  it('catch_up none: missed firings are recorded as skipped and nothing runs until the next time', async () => {
    const s = await cron.create(user, { name: 'cn', cron_expression: '*/5 * * * *', script: 'true', catch_up: 'none' });
    await cron.stop();
    clock.set(Date.parse('2026-06-01T12:07:00Z'));
    const restarted = make();
    restarted.start();
    await moveTo(Date.parse('2026-06-01T12:07:00Z'), restarted);
    assert.equal(jobs.submitted.length, 0);
    assert.equal((await stores.cron.listRuns(s.id, 10))[0]!.outcome, 'skipped');
    await moveTo(Date.parse('2026-06-01T12:10:00Z'), restarted);
    assert.equal(jobs.submitted.length, 1);
    await restarted.stop();
  });

  it('jitter delays each firing by 0..jitter_seconds and never more', async () => {
    for (const r of [0, 0.5, 0.999999]) {
      await cron.stop();
      const c = make({ random: () => r });
      const s = await c.create(user, { name: `j${r}`, cron_expression: '@hourly', script: 'true', jitter_seconds: 600 });
      const lag = Date.parse(s.due_at!) - Date.parse(s.next_run_at!);
      assert.ok(lag >= 0 && lag <= 600_000, `lag ${lag}`);
      if (r === 0) assert.equal(lag, 0);
      if (r > 0.99) assert.ok(lag > 599_000);
    }
    // A jittered firing is not missed: it fires at its due time with its nominal scheduled_for.
    const c = make({ random: () => 0.5 });
    c.start();
    const s = await c.create(user, { name: 'jit', cron_expression: '@hourly', script: 'true', jitter_seconds: 600 });
    await moveTo(Date.parse('2026-06-01T11:04:59Z'), c);
    assert.equal((await stores.cron.listRuns(s.id, 1)).length, 0);
    await moveTo(Date.parse('2026-06-01T11:05:00Z'), c);
    const runs = await stores.cron.listRuns(s.id, 1);
    assert.equal(runs.length, 1);
    assert.equal(runs[0]!.scheduled_for, '2026-06-01T11:00:00.000Z');
    assert.equal(jobs.submitted.find((j) => j.id === runs[0]!.job_id)!.at, Date.parse('2026-06-01T11:05:00Z'));
    await c.stop();
  });

  it('DST: times in a time zone follow croner (spring forward in Europe/Berlin)', async () => {
    clock.set(Date.parse('2026-03-28T12:00:00Z'));
    const s = await cron.create(user, { name: 'dst', cron_expression: '30 2 * * *', script: 'true', timezone: 'Europe/Berlin' });
    const expected = new Cron('30 2 * * *', { timezone: 'Europe/Berlin', paused: true }).nextRuns(3, new Date(clock.now())).map((d) => d.toISOString());
    assert.deepEqual(cron.nextRuns(s), expected);
    // 02:30 does not exist on 2026-03-29 in Berlin; the day after it is 00:30 UTC (CEST).
    assert.ok(expected.includes('2026-03-30T00:30:00.000Z'));
    const winter = await cron.create(user, { name: 'w', cron_expression: '0 9 * * *', script: 'true', timezone: 'America/New_York' });
    assert.equal(winter.next_run_at, '2026-03-28T13:00:00.000Z', '09:00 EDT (New York changed to summer time on 8 March)');
  });

  it('two engines on one database fire each time once', async () => {
    const s = await cron.create(user, { name: 'two', cron_expression: '* * * * *', script: 'true' });
    const other = make();
    other.start();
    for (let m = 1; m <= 5; m++) {
      clock.set(Date.parse(`2026-06-01T10:0${m}:00Z`));
      await Promise.all([cron.idle(), other.idle(), cron.pass(), other.pass()]);
      await jobs.finish(`job-${jobs.submitted.length}`).catch(() => undefined);
    }
    assert.equal(jobs.submitted.length, 5);
    const runs = await stores.cron.listRuns(s.id, 10);
    assert.equal(new Set(runs.map((r) => r.scheduled_for)).size, 5);
    await other.stop();
  });

  it('a schedule whose firing keeps failing is retried a minute later, not in a loop', async () => {
    const s = await cron.create(user, { name: 'broken', cron_expression: '* * * * *', script: 'true' });
    // An expression this server can no longer parse (as if stored by another version).
    await stores.cron.updateSchedule(s.id, { cron_expression: 'not a cron' });
    await moveTo(Date.parse('2026-06-01T10:01:00Z'));
    const row = (await stores.cron.getSchedule(s.id))!;
    assert.equal(row.due_at, '2026-06-01T10:02:00.000Z', 'postponed by a minute');
    assert.equal(clock.timers.size, 1);
    assert.ok(clock.nextTimerAt() >= Date.parse('2026-06-01T10:01:00Z') + 1000, 'the timer does not fire again at once');
    assert.equal(jobs.submitted.length, 0);
  });

  it('bad expressions and time zones are refused naming the field', async () => {
    await assert.rejects(cron.create(user, { name: 'b', cron_expression: '61 * * * *', script: 'x' }), (e: Error & { code?: string }) => e.code === 'VALIDATION_ERROR' && /^cron_expression:/.test(e.message));
    await assert.rejects(cron.create(user, { name: 'b', cron_expression: '* * * * * *', script: 'x' }), /^Error: cron_expression:|cron_expression:/);
    await assert.rejects(cron.create(user, { name: 'b', cron_expression: '* * * * *', script: 'x', timezone: 'Mars/Olympus' }), /timezone: "Mars\/Olympus" is not an IANA time zone/);
    await assert.rejects(cron.create(user, { name: 'b', cron_expression: '0 0 30 2 *', script: 'x' }), /never fires/);
  });
});
