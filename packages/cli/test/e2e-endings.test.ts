/**
 * How `mags` reports the end of a job, against a real server with real sandboxes and a 1 KiB output
 * cap: a stopped job is shown as stopped, truncated output is announced and changes a 0 exit code,
 * `mags logs -f` exits with the job's code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanEnv, mags, startServer, tempHome, type MagsResult, type TestServer } from './helpers.js';

describe('mags: endings that tell the truth', () => {
  let server: TestServer;
  let removeHome: () => void;
  let env: Record<string, string>;
  const run = (args: string[]): Promise<MagsResult> => mags(args, { env });

  before(async () => {
    server = await startServer({ env: { MAGS_MAX_OUTPUT_BYTES: '1024' } });
    const t = tempHome();
    removeHome = t.remove;
    env = cleanEnv({ HOME: t.home, MAGS_API_URL: server.url, MAGS_API_TOKEN: server.token });
  });

  after(async () => {
    try {
      await server?.stop();
    } finally {
      removeHome?.();
    }
  });

  test('run: output past the cap is announced on stderr; exit 6 when the script succeeded', async () => {
    const r = await run(['run', 'head -c 5000 /dev/zero | tr "\\0" x | fold -w 100']);
    assert.equal(r.code, 6, r.stderr);
    assert.match(r.stderr, /\[mags\] \[output truncated/);
    assert.match(r.stderr, /output was truncated; exiting 6/);
    assert.ok(r.stdout.length > 0 && r.stdout.length <= 1024, `stdout has ${r.stdout.length} bytes`);
    // The script's own failure code wins over the truncation code.
    const failed = await run(['run', 'head -c 5000 /dev/zero | tr "\\0" x | fold -w 100; exit 3']);
    assert.equal(failed.code, 3, failed.stderr);
    assert.match(failed.stderr, /\[output truncated/);
    // Under the cap nothing is announced.
    const small = await run(['run', 'echo small']);
    assert.equal(small.code, 0, small.stderr);
    assert.equal(small.stderr, '');
  });

  test('a job stopped by its owner is listed and shown as stopped; --json keeps the wire fields', async () => {
    const submitted = await run(['run', '--detach', '--name', 'to-stop', 'echo up; sleep 60']);
    assert.equal(submitted.code, 0, submitted.stderr);
    const id = submitted.stdout.trim();
    try {
      const deadline = Date.now() + 60_000;
      while (!(await run(['logs', id])).stdout.includes('up')) {
        assert.ok(Date.now() < deadline, 'the job did not start');
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal((await run(['stop', id])).code, 0);
      let wire: { status: string; end_reason: string | null } | undefined;
      while (Date.now() < deadline) {
        wire = JSON.parse((await run(['status', id, '--json'])).stdout) as typeof wire;
        if (wire!.status !== 'running') break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(wire?.status, 'completed');
      assert.equal(wire?.end_reason, 'cancelled');
      const shown = await run(['status', id]);
      assert.match(shown.stdout, /^status\s+stopped$/m);
      assert.match(shown.stdout, /^end_reason\s+cancelled$/m);
      const row = (await run(['list', '--no-trunc'])).stdout.split('\n').find((l) => l.startsWith(id));
      assert.ok(row, 'the stopped job is listed');
      assert.match(row, /\bstopped\b/);
      assert.doesNotMatch(row, /\bcompleted\b/);
      const listed = JSON.parse((await run(['list', '--json'])).stdout) as { jobs: { request_id: string; status: string }[] };
      assert.equal(listed.jobs.find((j) => j.request_id === id)?.status, 'completed');
    } finally {
      await run(['stop', id]);
    }
  });

  test("logs -f exits with the job's exit code", async () => {
    const submitted = await run(['run', '--detach', 'sleep 1; echo bye; exit 5']);
    assert.equal(submitted.code, 0, submitted.stderr);
    const id = submitted.stdout.trim();
    const r = await run(['logs', '-f', id]);
    assert.equal(r.code, 5, r.stderr);
    assert.equal(r.stdout, 'bye\n');
    const done = await run(['logs', '-f', id]);
    assert.equal(done.code, 5, 'also when the job had ended before');
    const okJob = (await run(['run', '--detach', 'echo fine'])).stdout.trim();
    assert.equal((await run(['logs', '-f', okJob])).code, 0);
  });
});
