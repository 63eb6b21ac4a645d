/**
 * `mags exec` into a slow pipe, against a real server and a real sandbox: the command's 200 MiB go
 * through a reader that pauses first, and while it pauses the daemon holds the command back
 * instead of buffering its output (its RSS stays flat); at the end the byte count is exact.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAGS_BIN, cleanEnv, mags, startServer, tempHome, type TestServer } from './helpers.js';

const MiB = 1024 * 1024;
const BYTES = 200 * MiB;
const PAUSE_S = 6;

/** Resident set size of a process in bytes, from /proc/<pid>/status. */
function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

describe('mags exec into a slow pipe', () => {
  let server: TestServer;
  let removeHome: () => void;
  let env: Record<string, string>;

  before(async () => {
    server = await startServer({ env: { MAGS_POOL_MIN_SIZE: '0' } });
    let home: string;
    ({ home, remove: removeHome } = tempHome());
    env = cleanEnv({ HOME: home, MAGS_API_URL: server.url, MAGS_API_TOKEN: server.token });
  });
  after(async () => {
    try {
      await mags(['stop', 'pipebox'], { env, timeoutMs: 60_000 });
    } finally {
      await server?.stop();
      removeHome?.();
    }
  });

  test('a reader that pauses holds the command back: the daemon does not buffer, every byte arrives', async (t) => {
    const created = await mags(['new', 'pipebox'], { env, timeoutMs: 180_000 });
    assert.equal(created.code, 0, created.stderr);
    const daemon = server.child.pid;
    assert.ok(daemon, 'the server helper knows the daemon pid');

    const before = rssOf(daemon);
    // The reader sleeps before it reads: the pipe (64 KiB) fills at once and stays full meanwhile.
    const pipeline = `${JSON.stringify(process.execPath)} ${JSON.stringify(MAGS_BIN)} exec pipebox 'head -c 200M /dev/zero' | { sleep ${PAUSE_S}; wc -c; }`;
    const shell = spawn('bash', ['-c', pipeline], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    let err = '';
    shell.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    shell.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const closed = new Promise<number | null>((resolve) => shell.on('close', resolve));
    try {
      let peak = before;
      const pausedUntil = Date.now() + (PAUSE_S - 0.5) * 1000;
      await sleep(1000); // the command starts and the pipe fills
      while (Date.now() < pausedUntil) {
        peak = Math.max(peak, rssOf(daemon));
        await sleep(200);
      }
      const limit = new AbortController();
      const code = await Promise.race([closed, sleep(240_000, 'timeout' as const, { signal: limit.signal })]);
      limit.abort();
      assert.notEqual(code, 'timeout', `the pipeline did not finish within 240 s; stderr: ${err}`);
      assert.equal(code, 0, err);
      assert.equal(out.trim(), String(BYTES), err);
      const growth = peak - before;
      t.diagnostic(`daemon RSS ${(before / MiB).toFixed(1)} MiB before, peak ${(peak / MiB).toFixed(1)} MiB while the reader paused`);
      assert.ok(growth < 64 * MiB, `the daemon's RSS grew by ${(growth / MiB).toFixed(1)} MiB while the reader paused`);
    } finally {
      if (shell.exitCode === null && shell.pid) process.kill(-shell.pid, 'SIGKILL');
    }
  });
});
