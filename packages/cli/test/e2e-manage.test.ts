/**
 * Job management commands against a real server with real sandboxes: stop and rm with several
 * ids, wait with exit codes, list filters and short ids, logs --tail/-t, JSON errors, -v.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanEnv, mags, startServer, tempHome, type MagsResult, type TestServer } from './helpers.js';

describe('mags job management (real server, real sandboxes)', () => {
  let server: TestServer;
  let env: Record<string, string>;
  let removeHome: () => void;
  const run = (args: string[]): Promise<MagsResult> => mags(args, { env });

  before(async () => {
    server = await startServer();
    const home = tempHome();
    removeHome = home.remove;
    env = cleanEnv({ HOME: home.home, MAGS_API_URL: server.url, MAGS_API_TOKEN: server.token });
  });
  after(async () => {
    try {
      await server?.stop();
    } finally {
      removeHome?.();
    }
  });

  test('wait returns the exit code; stop and rm take several ids; rm refuses a running job', async () => {
    const a = (await run(['run', '-d', 'sleep 1; exit 3'])).stdout.trim();
    const b = (await run(['run', '-d', 'echo b'])).stdout.trim();
    const w = await run(['wait', a, b]);
    assert.equal(w.code, 3, w.stderr);
    assert.equal(w.stdout, '3\n0\n');
    assert.equal((await run(['wait', b])).code, 0);

    const s1 = (await run(['run', '-d', 'sleep 300'])).stdout.trim();
    const s2 = (await run(['run', '-d', 'sleep 300'])).stdout.trim();
    const refused = await run(['rm', s1]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /only a job that ended can be deleted/);
    const stopped = await run(['stop', s1, s2]);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(stopped.stdout.split('\n').filter((l) => l.startsWith('Stopped')).length, 2);

    const rm = await run(['rm', a, b, s1, 'no-such-job']);
    assert.equal(rm.code, 4, rm.stderr);
    assert.equal(rm.stdout, `Deleted ${a}\nDeleted ${b}\nDeleted ${s1}\n`);
    assert.match(rm.stderr, /no-such-job/);
    assert.equal((await run(['status', a])).code, 4);
    const forced = await run(['rm', '-f', (await run(['run', '-d', 'sleep 300'])).stdout.trim()]);
    assert.equal(forced.code, 0, forced.stderr);
    await run(['rm', s2]);
  });

  test('list --status/--since with short ids and relative times; --no-trunc and --json give full ones', async () => {
    const id = (await run(['run', '-d', 'sleep 300'])).stdout.trim();
    try {
      const deadline = Date.now() + 60_000;
      let table = '';
      while (!table.includes(id.slice(0, 8))) {
        assert.ok(Date.now() < deadline, table);
        table = (await run(['list', '--status', 'running', '--since', '1h'])).stdout;
      }
      assert.ok(!table.includes(id), 'short ids in the table');
      assert.match(table, /just now|s ago|min ago/);
      assert.ok((await run(['list', '--status', 'running', '--no-trunc'])).stdout.includes(id));
      const json = JSON.parse((await run(['list', '--status', 'running', '--json'])).stdout) as { jobs: Array<{ request_id: string }> };
      assert.ok(json.jobs.some((j) => j.request_id === id));
      assert.equal((await run(['list', '--status', 'completed', '--since', '2999-01-01'])).stderr.trim(), 'No jobs match.');
      const bad = await run(['list', '--since', 'yesterday']);
      assert.equal(bad.code, 2);
    } finally {
      await run(['stop', id]);
    }
  });

  test('logs --tail, --since and -t; errors under --json are JSON on stderr; -v prints the version', async () => {
    const id = (await run(['run', '-d', 'seq 1 5'])).stdout.trim();
    assert.equal((await run(['wait', id])).code, 0);
    assert.equal((await run(['logs', '--tail', '2', id])).stdout, '4\n5\n');
    const stamped = (await run(['logs', '-t', '--tail', '1', id])).stdout;
    assert.match(stamped, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z 5\n$/);
    assert.equal((await run(['logs', '--since', '2999-01-01', id])).stdout, '');
    assert.equal((await run(['logs', '--since', '1h', id])).stdout, '1\n2\n3\n4\n5\n');

    const missing = await run(['status', 'nope', '--json']);
    assert.equal(missing.code, 4);
    assert.equal(missing.stdout, '');
    const err = JSON.parse(missing.stderr) as { error: string; code: string; exit_code: number };
    assert.equal(err.code, 'JOB_NOT_FOUND');
    assert.equal(err.exit_code, 4);
    const v = await run(['-v']);
    assert.match(v.stdout, /^\d+\.\d+\.\d+/);
    assert.equal((await run(['version'])).stdout, v.stdout);
  });
});
