/**
 * `mags run` stdin against a real server with real sandboxes: a pipe or file on stdin is streamed
 * to the script (100 MiB arrive whole), `--no-stdin` keeps it away, an endless stdin does not hold
 * up a script that never reads it, and `mags run - < script` honours a `#!` line.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAGS_BIN, cleanEnv, mags, startServer, tempHome, type TestServer } from './helpers.js';

/** Runs `mags` with `stdin` as its stdin: a file descriptor, or a shell command piped in. */
function magsWith(stdin: { fd: number } | { pipeFrom: string }, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const quoted = [MAGS_BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const child = 'fd' in stdin
      ? spawn(process.execPath, [MAGS_BIN, ...args], { env, stdio: [stdin.fd, 'pipe', 'pipe'] })
      : spawn('sh', ['-c', `${stdin.pipeFrom} | '${process.execPath}' ${quoted}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

describe('mags run stdin (real server, real sandboxes)', () => {
  let server: TestServer;
  let env: Record<string, string>;
  let removeHome: () => void;
  let dir: string;

  before(async () => {
    server = await startServer();
    const home = tempHome();
    removeHome = home.remove;
    env = cleanEnv({ HOME: home.home, MAGS_API_URL: server.url, MAGS_API_TOKEN: server.token });
    dir = mkdtempSync(join(tmpdir(), 'mags-stdin-'));
  });
  after(async () => {
    try {
      await server?.stop();
    } finally {
      removeHome?.();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  test('echo x | mags run cat prints x; --no-stdin keeps it away', async () => {
    const r = await magsWith({ pipeFrom: 'echo x' }, ['run', 'cat'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'x\n');
    const off = await magsWith({ pipeFrom: 'echo x' }, ['run', '--no-stdin', 'cat; echo end'], env);
    assert.equal(off.code, 0, off.stderr);
    assert.equal(off.stdout, 'end\n');
  });

  test('100 MiB of stdin from a file reach the script whole', async () => {
    const file = join(dir, 'big.bin');
    const fd = openSync(file, 'w');
    const hash = createHash('sha256');
    const block = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < 100; i++) {
      block.fill(i);
      writeSync(fd, block);
      hash.update(block);
    }
    closeSync(fd);
    const input = openSync(file, 'r');
    try {
      const r = await magsWith({ fd: input }, ['run', 'sha256sum | cut -c1-64; echo done >&2'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), hash.digest('hex'));
      assert.equal(r.stderr, 'done\n');
    } finally {
      closeSync(input);
    }
  });

  test('an endless stdin does not hold up a script that never reads it', async () => {
    const r = await magsWith({ pipeFrom: 'yes' }, ['run', 'echo done'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'done\n');
    assert.equal(r.stderr, '');
  });

  test('mags run - < script honours its #! line', async () => {
    const file = join(dir, 'hello.py');
    writeFileSync(file, '#!/usr/bin/env python3\nimport sys\nprint("py", sys.version_info[0])\n');
    const r = await mags(['run', '-'], { env, input: '#!/usr/bin/env python3\nimport sys\nprint("py", sys.version_info[0])\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'py 3\n');
    const sh = await mags(['run', '-'], { env, input: 'echo plain $((1+2))\n' });
    assert.equal(sh.stdout, 'plain 3\n');
  });
});
