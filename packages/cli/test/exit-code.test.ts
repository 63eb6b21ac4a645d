/**
 * The exit code belongs to one run of `main`: commands return it, the entry point returns it, and a
 * second command in the same process gets its own code, not the one the previous command left.
 * Runs `main` in-process against a small loopback HTTP server that answers like a Mags server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { main } from '../src/main.js';
import { tempHome } from './helpers.js';

const EXIT3 = {
  request_id: 'r-exit3', name: null, status: 'error', vm_id: null, workspace_id: null, base_workspace_id: null,
  exit_code: 3, subdomain: null, url: null, script_duration_ms: 5, started_at: null, created_at: '2026-01-01T00:00:00Z',
  completed_at: null, persistent: false, no_sleep: false, startup_command: null, end_reason: 'exited', error_message: 'exited with code 3',
};
/** The job the server answers with. */
let JOB: Record<string, unknown> & { request_id: string } = EXIT3;

function answer(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const json = (status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  if (req.method === 'POST' && url.pathname === '/api/v1/mags-jobs') return json(202, { request_id: JOB.request_id, status: 'accepted', message: 'Job submitted' });
  if (url.pathname === `/api/v1/mags-jobs/${JOB.request_id}/logs` && url.searchParams.get('follow') === '1') {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(`event: end\ndata: ${JSON.stringify({ status: JOB.status, exit_code: JOB.exit_code, end_reason: JOB.end_reason, error_message: JOB.error_message })}\n\n`);
    return;
  }
  if (url.pathname === `/api/v1/mags-jobs/${JOB.request_id}/status`) return json(200, JOB);
  json(404, { error: `no route ${req.method} ${url.pathname}`, code: 'NOT_FOUND' });
}

/** Runs `main` with stdout and stderr captured (the test runner owns the real ones). */
async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = process.stdout.write;
  const err = process.stderr.write;
  let stdout = '';
  let stderr = '';
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  try {
      const code = await main(args);
      return { code, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

/** Runs `fn` with HOME, MAGS_API_URL and MAGS_API_TOKEN pointing at a loopback fake server. */
async function withServer(fn: () => Promise<void>): Promise<void> {
  const server = createServer(answer);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { home, remove } = tempHome();
  const saved = { HOME: process.env.HOME, MAGS_API_URL: process.env.MAGS_API_URL, MAGS_API_TOKEN: process.env.MAGS_API_TOKEN };
  process.env.HOME = home;
  process.env.MAGS_API_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.MAGS_API_TOKEN = 'mags_testtoken';
  try {
      await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    remove();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

// One test only: `run` swaps process.stdout.write, which would also swallow the test reporter's
// lines about an earlier test.
test('two commands in one process: each returns its own exit code; 124 comes from end_reason', async () => {
  JOB = EXIT3;
  try {
    await withServer(async () => {
      const first = await run(['run', 'exit 3']);
      assert.equal(first.code, 3, `mags run exits with the script's code\n${first.stderr}`);
      const second = await run(['status', JOB.request_id]);
      assert.equal(second.code, 0, `mags status succeeded and exits 0\n${second.stderr}`);
      assert.match(second.stdout, /exit_code\s+3/);
      const third = await run(['status', 'missing']);
      assert.equal(third.code, 4, 'a not-found job exits 4');
      const fourth = await run(['run', 'exit 3']);
      assert.equal(fourth.code, 3);

      // mags run decides "timed out" (exit 124) by the end reason, never by the message text.
      const noExit = { ...EXIT3, exit_code: null };
      JOB = { ...noExit, end_reason: 'timeout', error_message: 'wall-clock limit of 1 s reached' };
      const timedOut = await run(['run', 'sleep 9']);
      assert.equal(timedOut.code, 124, timedOut.stderr);
      assert.match(timedOut.stderr, /--timeout/);
      JOB = { ...noExit, end_reason: 'oom', error_message: 'timed out while out of memory' };
      const oom = await run(['run', 'sleep 9']);
      assert.equal(oom.code, 1, oom.stderr);
      assert.doesNotMatch(oom.stderr, /--timeout/);
      JOB = { ...EXIT3, end_reason: 'oom', error_message: 'ran out of memory (limit 256 MiB)' };
      const killed = await run(['run', 'x']);
      assert.equal(killed.code, 3);
      assert.match(killed.stderr, /ran out of memory/, 'a reason other than a plain exit is shown');
    });
  } finally {
    JOB = EXIT3;
  }
});
