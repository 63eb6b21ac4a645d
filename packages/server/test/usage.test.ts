import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../src/logger.js';
import { UsageMeter } from '../src/services/usage.js';
import type { User } from '../src/storage/metadata/store.js';
import { createHarness, type Harness } from './helpers/harness.js';
import { POSTGRES_SKIP, startPostgres, type TestPostgres } from './helpers/postgres.js';

/**
 * Usage metering, quotas and /metrics in-process (fake sandboxes: wall time is real, CPU and
 * network counters are zero; test/usage-sandbox.test.ts meters real sandboxes), on SQLite and on a
 * throwaway PostgreSQL.
 */
for (const backend of ['SQLite', 'PostgreSQL'] as const)
describe(`usage, quotas and metrics (${backend})`, { skip: backend === 'PostgreSQL' && POSTGRES_SKIP }, () => {
  let h: Harness;
  let pg: TestPostgres | undefined;
  let admin: Record<string, string>;
  let alice: Record<string, string>;
  let aliceId: string;
  before(async () => {
    if (backend === 'PostgreSQL') pg = await startPostgres();
    h = await createHarness({ databaseUrl: pg?.url });
    admin = { authorization: `Bearer ${h.adminToken}` };
    alice = { authorization: `Bearer ${await h.makeUser('alice')}` };
    aliceId = ((await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: alice })).json() as { id: string }).id;
  });
  after(async () => {
    await h?.close();
    await pg?.stop();
  });

  const get = async (url: string, headers: Record<string, string>, status = 200) => {
    const res = await h.app.inject({ method: 'GET', url, headers });
    assert.equal(res.statusCode, status, res.body);
    return res.json() as Record<string, any>;
  };
  const run = async (headers: Record<string, string>, script: string) => {
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers, payload: { script, type: 'inline' } });
    assert.equal(res.statusCode, 202, res.body);
    const id = (res.json() as { request_id: string }).request_id;
    await h.waitDone(headers.authorization!.slice(7), id);
    return id;
  };

  it('records a job\'s wall time when its sandbox is given back, per job and per day', async () => {
    const id = await run(alice, 'sleep 0.2; echo done');
    const byJob = await get('/api/v1/usage?group_by=job', alice);
    assert.equal(byJob.group_by, 'job');
    const row = byJob.rows.find((r: { key: string }) => r.key === id);
    assert.ok(row, JSON.stringify(byJob));
    assert.equal(row.jobs, 1);
    assert.ok(row.wall_seconds >= 0.2 && row.wall_seconds < 30, `wall ${row.wall_seconds}`);
    assert.equal(row.storage_bytes, null);
    const byDay = await get('/api/v1/usage', alice);
    assert.equal(byDay.group_by, 'day');
    assert.equal(byDay.rows.length, 1);
    assert.equal(byDay.rows[0].key, new Date().toISOString().slice(0, 10));
    assert.equal(byDay.totals.jobs, 1);
    assert.equal(byDay.totals.storage_bytes, 0);
  });

  it('sums stored records by day and user; a job spanning midnight counts once in the totals', async () => {
    const base = { memory_mb: 1024, vcpus: 1, memory_peak_bytes: 50 * 1024 * 1024, egress_bytes: 1000, ingress_bytes: 10 };
    const rec = (id: string, job: string, user: string, ended: string, wallMs: number, cpuUs: number) =>
      h.stores.usage.insertUsage({ id, job_id: job, user_id: user, started_at: ended, ended_at: ended, wall_ms: wallMs, cpu_us: cpuUs, ...base });
    await rec('u1', 'job-x', aliceId, '2026-01-01T23:59:00.000Z', 60_000, 30_000_000);
    await rec('u2', 'job-x', aliceId, '2026-01-02T00:04:00.000Z', 300_000, 1_000_000);
    const a = await get('/api/v1/usage?from=2026-01-01&to=2026-01-03', alice);
    assert.deepEqual(a.rows.map((r: { key: string }) => r.key), ['2026-01-01', '2026-01-02']);
    assert.equal(a.rows[0].wall_seconds, 60);
    assert.equal(a.rows[0].vcpu_seconds, 30);
    assert.equal(a.rows[0].memory_mb_seconds, 60 * 1024);
    assert.equal(a.rows[0].peak_memory_mb, 50);
    assert.equal(a.totals.jobs, 1);
    assert.equal(a.totals.wall_seconds, 360);
    assert.equal(a.totals.egress_bytes, 2000);
    // The admin sees every user's, grouped by user; alice cannot ask for another user's.
    const all = await get('/api/v1/usage?from=2026-01-01&to=2026-01-03&group_by=user', admin);
    assert.deepEqual(all.rows.map((r: { key: string }) => r.key), [aliceId]);
    assert.equal(all.rows[0].storage_bytes, 0);
    await get(`/api/v1/usage?user_id=someone-else`, alice, 403);
    const narrowed = await get(`/api/v1/usage?from=2026-01-01&to=2026-01-03&user_id=${aliceId}`, admin);
    assert.equal(narrowed.totals.wall_seconds, 360);
  });

  it('refuses bad ranges and groupings with the field named', async () => {
    for (const [q, field] of [
      ['from=yesterday', 'from'],
      ['to=2026-13-45', 'to'],
      ['group_by=week', 'group_by'],
      ['from=2026-02-01&to=2026-01-01', 'from'],
      ['from=2020-01-01&to=2026-01-01', 'from'],
    ] as const) {
      const body = await get(`/api/v1/usage?${q}`, alice, 400);
      assert.equal(body.code, 'VALIDATION_ERROR');
      assert.match(body.error, new RegExp(field), q);
    }
  });

  it('quotas: only an admin sets them; a used-up quota refuses submissions with QUOTA_EXCEEDED naming it', async () => {
    const put = (headers: Record<string, string>, user: string, payload: unknown) => h.app.inject({ method: 'PUT', url: `/api/v1/users/${user}/quota`, headers, payload: payload as object });
    assert.equal((await put(alice, aliceId, { max_concurrent_sandboxes: 100 })).statusCode, 403);
    assert.equal((await put(admin, 'no-such-user', { max_concurrent_sandboxes: 1 })).json().code, 'USER_NOT_FOUND');
    assert.equal((await put(admin, aliceId, { max_concurrent_sandboxes: -1 })).statusCode, 400);
    assert.equal((await put(admin, aliceId, { storage_gb: 1, bogus: 1 })).statusCode, 400);

    let res = await put(admin, aliceId, { max_concurrent_sandboxes: 0 });
    assert.equal(res.statusCode, 200, res.body);
    const submit = () => h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: alice, payload: { script: 'true', type: 'inline' } });
    res = await submit();
    assert.equal(res.statusCode, 429);
    assert.equal(res.json().code, 'QUOTA_EXCEEDED');
    assert.match(res.json().error, /concurrent sandboxes.*quota is 0/);

    // Hours: alice has 360 s + the first job recorded this month? Only the 2026-01 records are old;
    // a quota of 0 hours is used up by any use this month.
    await put(admin, aliceId, { sandbox_hours_per_month: 0 });
    res = await submit();
    assert.equal(res.json().code, 'QUOTA_EXCEEDED');
    assert.match(res.json().error, /sandbox hours per month/);

    const own = await get('/api/v1/quota', alice);
    assert.equal(own.quota.sandbox_hours_per_month, 0);
    assert.equal(own.quota.max_concurrent_sandboxes, null);
    assert.ok(own.used.sandbox_hours_this_month > 0);
    assert.equal(own.used.concurrent_sandboxes, 0);
    await get(`/api/v1/users/${aliceId}/quota`, alice, 403);
    assert.equal((await get(`/api/v1/users/${aliceId}/quota`, admin)).quota.user_id, aliceId);

    // Clearing the quota lets alice run again; the admin is never limited by alice's quota.
    res = await put(admin, aliceId, {});
    assert.equal(res.json().sandbox_hours_per_month, null);
    await run(alice, 'true');
  });

  it('submissions read quota rows from a cache: set here they apply at once, set by another control plane after quotaCacheMs', async () => {
    let now = Date.now();
    let reads = 0;
    const counted = Object.create(h.stores.usage) as typeof h.stores.usage;
    counted.getQuota = (userId) => {
      reads++;
      return h.stores.usage.getQuota(userId);
    };
    const meter = () => new UsageMeter({ store: counted, jobs: h.stores.jobs, users: h.stores.users, log: silentLogger(), now: () => now, quotaCacheMs: 5000 });
    const here = meter();
    const other = meter();
    const bob = (await get('/api/v1/me', { authorization: `Bearer ${await h.makeUser('bob-cache')}` })) as User;
    const root: User = { id: 'admin', name: 'admin', admin: true, created_at: new Date(now).toISOString() };
    const none = { max_concurrent_sandboxes: null, sandbox_hours_per_month: null, storage_gb: null };
    const refused = { code: 'QUOTA_EXCEEDED' };

    await here.checkSubmit(bob, { workspace: false });
    await here.checkSubmit(bob, { workspace: false });
    assert.equal(reads, 1, 'no quota is cached too: one read for two submissions');
    await other.setQuota(root, bob.id, { ...none, max_concurrent_sandboxes: 0 });
    await here.checkSubmit(bob, { workspace: false });
    await assert.rejects(other.checkSubmit(bob, { workspace: false }), refused, 'the control plane that set it applies it at once');
    now += 4999;
    await here.checkSubmit(bob, { workspace: false });
    now += 1;
    await assert.rejects(here.checkSubmit(bob, { workspace: false }), refused, 'another control plane applies it once its cached row expired');
    assert.equal(reads, 2);

    await other.setQuota(root, bob.id, { ...none, max_concurrent_sandboxes: 0 });
    await here.setQuota(root, bob.id, none);
    await here.checkSubmit(bob, { workspace: false });
    await assert.rejects(other.checkSubmit(bob, { workspace: false }), refused, 'the other still has its fresh row');
    now += 5000;
    await other.checkSubmit(bob, { workspace: false });
    assert.deepEqual((await here.quota(bob.id)).max_concurrent_sandboxes, null, 'GET .../quota reads the stored row');
  });

  it('/metrics: admin token only; counts jobs by status, start latency and API requests', async () => {
    let res = await h.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 401);
    res = await h.app.inject({ method: 'GET', url: '/metrics', headers: alice });
    assert.equal(res.statusCode, 403);
    res = await h.app.inject({ method: 'GET', url: '/metrics', headers: admin });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /^text\/plain/);
    const text = res.body;
    const completed = Number(/^mags_jobs\{status="completed"\} (\d+)$/m.exec(text)?.[1]);
    assert.ok(completed >= 2, text.slice(0, 2000));
    assert.match(text, /^mags_jobs\{status="pending"\} 0$/m);
    assert.ok(Number(/^mags_sandbox_start_seconds_count\{warm="(?:true|false)"\} (\d+)$/m.exec(text)?.[1]) >= 2);
    assert.match(text, /^mags_queue_length 0$/m);
    assert.match(text, /^mags_api_requests_total\{method="GET",code="4xx"\} \d+$/m);
    assert.match(text, /^mags_process_resident_memory_bytes \d+/m);
  });
});
