/**
 * `mags server` runs the real daemon (flags passed through, ready line, admin token, the client
 * config file it writes on first start) and stops cleanly on SIGTERM; `mags server image build`
 * finds the cached image.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAGS_BIN, cleanEnv, mags } from './helpers.js';

const IMAGE_DIR = process.env.MAGS_IMAGE_DIR ?? '/var/cache/mags/images';

test('mags server: starts with flags, prints the ready line, serves the CLI, exits 0 on SIGTERM', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mags-cli-server-data-'));
  const home = mkdtempSync(join(tmpdir(), 'mags-cli-server-home-'));
  const env = cleanEnv({ HOME: home, MAGS_IMAGE_DIR: IMAGE_DIR, MAGS_LOG_LEVEL: 'warn' });
  const child = spawn(
    process.execPath,
    [MAGS_BIN, 'server', '--data-dir', dataDir, '--port', '0', '--proxy-port', '0', '--pool-min-size', '1'],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready line within 180 s; stderr: ${stderr}`)), 180_000);
      const check = () => {
        const m = /^Mags server ready at (http:\/\/\S+)$/m.exec(stdout);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      };
      child.stdout.on('data', check);
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`mags server exited ${code} before it was ready; stderr: ${stderr}`));
      });
    });
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    const config = join(home, '.mags', 'config.json');
    assert.deepEqual(JSON.parse(readFileSync(config, 'utf8')), { api_url: url, api_token: token });
    assert.equal(statSync(config).mode & 0o777, 0o600);
    // The CLI on the same host works at once from the config file the server wrote.
    const who = await mags(['whoami', '--json'], { env: cleanEnv({ HOME: home }) });
    assert.equal(who.code, 0, who.stderr);
    assert.equal((JSON.parse(who.stdout) as { token_source: string }).token_source, 'config');
    const r = await mags(['run', 'echo from mags server'], { env: cleanEnv({ HOME: home }) });
    assert.equal(r.stdout, 'from mags server\n');
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await exited;
    clearTimeout(killer);
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
    assert.equal(code, 0, `exit code after SIGTERM; stderr: ${stderr.slice(-2000)}`);
  }
});

test('mags server: bad flags exit 2 before anything starts', async () => {
  const r = await mags(['server', '--no-such-flag', '1'], { env: cleanEnv({ HOME: tmpdir() }) });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option --no-such-flag/);
  assert.match(r.stderr, /mags server --help/);
});

test('mags server image build: reports the cached image', async () => {
  const r = await mags(['server', 'image', 'build', '--image-dir', IMAGE_DIR], { env: cleanEnv({ HOME: tmpdir() }), timeoutMs: 1_800_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Image \S+ ready at \S+rootfs\.erofs\n$/);
});
