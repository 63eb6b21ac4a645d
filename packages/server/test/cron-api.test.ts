import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createHarness, type Harness } from './helpers/harness.js';
import { POSTGRES_SKIP, startPostgres, type TestPostgres } from './helpers/postgres.js';

/**
 * The cron API in-process (app.inject) with the fake sandbox pool, on SQLite and on a throwaway
 * PostgreSQL: validation naming the field, next_runs, CRUD, runs, run-now through the jobs service.
 */
for (const backend of ['SQLite', 'PostgreSQL'] as const)
describe(`cron API (in-process, ${backend})`, { skip: backend === 'PostgreSQL' && POSTGRES_SKIP }, () => {
  let h: Harness;
  let pg: TestPostgres | undefined;
  let auth: Record<string, string>;
  let other: Record<string, string>;
  before(async () => {
    if (backend === 'PostgreSQL') pg = await startPostgres();
    h = await createHarness({ databaseUrl: pg?.url });
    auth = { authorization: `Bearer ${await h.makeUser('cron-alice')}` };
    other = { authorization: `Bearer ${await h.makeUser('cron-bob')}` };
  });
  after(async () => {
    await h?.close();
    await pg?.stop();
  });
  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown, headers = auth) =>
    h.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });

  it('creates a schedule and answers the next 3 run times', async () => {
    const res = await call('POST', '/api/v1/mags-cron', { name: 'nightly', cron_expression: '0 3 * * *', timezone: 'Europe/Berlin', script: 'echo hi', workspace_id: 'ws1', environment: { A: '1' } });
    assert.equal(res.statusCode, 201, res.body);
    const s = res.json();
    assert.match(s.id, /^cron_[0-9a-f]{16}$/);
    assert.equal(s.overlap, 'skip');
    assert.equal(s.catch_up, 'one');
    assert.equal(s.enabled, true);
    assert.equal(s.workspace_id, 'ws1');
    assert.deepEqual(s.environment, { A: '1' });
    assert.equal(s.next_runs.length, 3);
    for (const t of s.next_runs) assert.match(t, /T0[12]:00:00\.000Z$/, '03:00 in Berlin is 01:00 or 02:00 UTC');
    assert.equal(s.next_run_at, s.next_runs[0]);
    const list = await call('GET', '/api/v1/mags-cron');
    assert.deepEqual(list.json().schedules.map((x: { name: string }) => x.name), ['nightly']);
    assert.equal((await call('GET', '/api/v1/mags-cron/nightly')).json().id, s.id, 'by name');
    assert.equal((await call('GET', `/api/v1/mags-cron/${s.id}`, undefined, other)).json().code, 'SCHEDULE_NOT_FOUND', "another user's schedule is invisible");
    assert.equal((await call('GET', '/api/v1/mags-cron', undefined, other)).json().schedules.length, 0);
  });

  it('refuses bad expressions, time zones and options with 400 naming the field', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ cron_expression: '61 * * * *' }, /^cron_expression: .*minute/],
      [{ cron_expression: 'every day' }, /^cron_expression:/],
      [{ cron_expression: '* * * * * *' }, /^cron_expression:/],
      [{ cron_expression: '0 0 30 2 *' }, /^cron_expression: .*never fires/],
      [{ timezone: 'Mars/Olympus' }, /^timezone: "Mars\/Olympus" is not an IANA time zone/],
      [{ overlap: 'sometimes' }, /overlap/],
      [{ catch_up: 'all' }, /catch_up/],
      [{ jitter_seconds: -1 }, /jitter_seconds/],
      [{ name: '' }, /name/],
      [{ script: undefined }, /script/],
    ];
    for (const [patch, re] of cases) {
      const res = await call('POST', '/api/v1/mags-cron', { name: 'bad', cron_expression: '* * * * *', script: 'x', ...patch });
      assert.equal(res.statusCode, 400, `${JSON.stringify(patch)}: ${res.body}`);
      assert.equal(res.json().code, 'VALIDATION_ERROR');
      assert.match(res.json().error, re);
    }
    const s = (await call('GET', '/api/v1/mags-cron/nightly')).json();
    const patched = await call('PATCH', `/api/v1/mags-cron/${s.id}`, { timezone: 'Nowhere/Land' });
    assert.equal(patched.statusCode, 400);
    assert.match(patched.json().error, /^timezone:/);
    assert.equal((await call('GET', `/api/v1/mags-cron/${s.id}`)).json().timezone, 'Europe/Berlin', 'a refused change changes nothing');
  });

  it('hostile input: a script over 1 MiB, NUL characters, non-JSON and huge names are refused and nothing is stored', async () => {
    const big = await call('POST', '/api/v1/mags-cron', { name: 'big', cron_expression: '@daily', script: 'x'.repeat(1024 * 1024 + 1) });
    assert.equal(big.statusCode, 413, big.body);
    assert.match(big.json().error, /^script:/);
    const nul = await call('POST', '/api/v1/mags-cron', { name: 'a\u0000b', cron_expression: '@daily', script: 'x' });
    assert.equal(nul.statusCode, 400);
    const long = await call('POST', '/api/v1/mags-cron', { name: 'n'.repeat(10_000), cron_expression: '@daily', script: 'x' });
    assert.equal(long.statusCode, 400);
    const junk = await h.app.inject({ method: 'POST', url: '/api/v1/mags-cron', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"name":' });
    assert.equal(junk.json().code, 'INVALID_JSON');
    const expr = await call('POST', '/api/v1/mags-cron', { name: 'e', cron_expression: '*/0 * * * *', script: 'x' });
    assert.equal(expr.statusCode, 400);
    assert.deepEqual((await call('GET', '/api/v1/mags-cron')).json().schedules.map((x: { name: string }) => x.name), ['nightly']);
  });

  it('a second schedule of the same name is a 409 naming the field', async () => {
    const res = await call('POST', '/api/v1/mags-cron', { name: 'nightly', cron_expression: '@hourly', script: 'x' });
    assert.equal(res.statusCode, 409);
    assert.match(res.json().error, /^name:/);
  });

  it('disable, enable and change the expression', async () => {
    const s = (await call('GET', '/api/v1/mags-cron/nightly')).json();
    const off = (await call('PATCH', `/api/v1/mags-cron/${s.id}`, { enabled: false })).json();
    assert.equal(off.enabled, false);
    assert.equal(off.next_run_at, null);
    assert.deepEqual(off.next_runs, []);
    const on = (await call('PATCH', `/api/v1/mags-cron/${s.id}`, { enabled: true, cron_expression: '@hourly', timezone: 'UTC' })).json();
    assert.equal(on.enabled, true);
    assert.match(on.next_run_at, /:00:00\.000Z$/);
    assert.equal(on.workspace_id, 'ws1', 'job options survive a change of other fields');
  });

  it('run-now submits an ordinary job linked to the schedule; runs lists it', async () => {
    const created = (await call('POST', '/api/v1/mags-cron', { name: 'now', cron_expression: '@daily', script: 'echo from-cron' })).json();
    const res = await call('POST', `/api/v1/mags-cron/${created.id}/run`);
    assert.equal(res.statusCode, 202, res.body);
    const run = res.json();
    assert.equal(run.trigger, 'manual');
    assert.equal(run.outcome, 'submitted');
    const job = await h.waitDone(auth.authorization!.slice(7), run.job_id);
    assert.equal(job.status, 'completed');
    assert.equal(job.name, 'now', 'the job carries the schedule name');
    const logs = (await call('GET', `/api/v1/mags-jobs/${run.job_id}/logs`)).json().logs;
    assert.ok(logs.some((l: { message: string }) => l.message === 'from-cron'));
    const runs = (await call('GET', `/api/v1/mags-cron/${created.id}/runs`)).json().runs;
    assert.equal(runs.length, 1);
    assert.equal(runs[0].job_id, run.job_id);
    assert.equal(runs[0].job_status, 'completed');
  });

  it('submit checks apply at firing: a refused submit is a failed run naming the reason', async () => {
    const created = (await call('POST', '/api/v1/mags-cron', { name: 'badenv', cron_expression: '@daily', script: 'true', environment: { '1BAD': 'x' } })).json();
    const run = (await call('POST', `/api/v1/mags-cron/${created.id}/run`)).json();
    assert.equal(run.outcome, 'failed');
    assert.match(run.message, /VALIDATION_ERROR: environment: "1BAD"/);
  });

  it('delete removes the schedule (404 after), its jobs stay', async () => {
    const s = (await call('GET', '/api/v1/mags-cron/now')).json();
    const runs = (await call('GET', `/api/v1/mags-cron/${s.id}/runs`)).json().runs;
    assert.equal((await call('DELETE', `/api/v1/mags-cron/${s.id}`)).statusCode, 200);
    assert.equal((await call('GET', `/api/v1/mags-cron/${s.id}`)).statusCode, 404);
    assert.equal((await call('DELETE', `/api/v1/mags-cron/${s.id}`)).json().code, 'SCHEDULE_NOT_FOUND');
    assert.equal((await call('GET', `/api/v1/mags-jobs/${runs[0].job_id}/status`)).statusCode, 200);
  });
});
