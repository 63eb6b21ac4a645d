/**
 * `mags usage` and `mags user quota` against a real server with real sandboxes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanEnv, mags, startServer, tempHome, type MagsResult, type TestServer } from './helpers.js';

describe('mags usage and quotas against a real server', () => {
  let server: TestServer;
  let removeHome: () => void;
  let env: Record<string, string>;

  const run = (args: string[], extra: Record<string, string> = {}): Promise<MagsResult> => mags(args, { env: { ...env, ...extra } });

  before(async () => {
    server = await startServer();
    const home = tempHome();
    removeHome = home.remove;
    env = cleanEnv({ HOME: home.home, MAGS_API_URL: server.url, MAGS_API_TOKEN: server.token });
  });
  after(async () => {
    await server?.stop();
    removeHome?.();
  });

  test('usage: a job shows up by job and by day, as a table and as JSON', async () => {
    const r = await run(['run', 'echo metered']);
    assert.equal(r.code, 0, r.stderr);
    const json = await run(['usage', '--by', 'job', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const u = JSON.parse(json.stdout) as { rows: Array<{ key: string; jobs: number; wall_seconds: number }>; totals: { jobs: number } };
    assert.equal(u.rows.length, 1);
    assert.equal(u.totals.jobs, 1);
    assert.ok(u.rows[0]!.wall_seconds > 0);
    const t = await run(['usage', '--days', '7']);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, new RegExp(`^${new Date().toISOString().slice(0, 10)}\\s+1\\s`, 'm'));
    assert.match(t.stdout, /^total: 1 jobs, /m);
    const bad = await run(['usage', '--by', 'week']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /day, job or user/);
  });

  test('user quota: the admin limits a user; their next run is refused naming the quota; none removes it', async () => {
    const created = await run(['user', 'create', 'bob', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const bob = JSON.parse(created.stdout) as { id: string; token: string };
    let r = await run(['user', 'quota', bob.id, '--concurrent', '0', '--hours', '10']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /concurrent sandboxes\s+0\s+0/);
    assert.match(r.stdout, /sandbox hours \/ month\s+10\s/);
    assert.match(r.stdout, /storage GB\s+no limit/);
    r = await run(['run', 'echo hi'], { MAGS_API_TOKEN: bob.token });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Quota exceeded: concurrent sandboxes/);
    r = await run(['user', 'quota', bob.id, '--concurrent', 'none']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sandbox hours \/ month\s+10\s/, 'an option not given keeps its value');
    r = await run(['run', 'echo hi'], { MAGS_API_TOKEN: bob.token });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hi\n');
    r = await run(['user', 'quota', bob.id, '--hours', '-1']);
    assert.equal(r.code, 2);
    r = await run(['user', 'quota', bob.id], { MAGS_API_TOKEN: bob.token });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /admin/);
  });
});
