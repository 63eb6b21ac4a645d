/**
 * `mags new`, `mags exec` and `mags ssh` as subprocesses against a real server with its SSH
 * gateway (MAGS_SSH_PORT=0) and real sandboxes; `mags ssh` runs Debian's OpenSSH client.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cleanEnv, mags, startServer, tempHome, type MagsResult, type TestServer } from './helpers.js';

describe('mags new / exec / ssh against a real server', () => {
  let server: TestServer;
  let home: string;
  let removeHome: () => void;
  let env: Record<string, string>;
  const run = (args: string[], input?: string): Promise<MagsResult> => mags(args, { env, input, timeoutMs: 180_000 });

  before(async () => {
    server = await startServer({ env: { MAGS_SSH_PORT: '0', MAGS_POOL_MIN_SIZE: '0' } });
    ({ home, remove: removeHome } = tempHome());
    env = cleanEnv({ HOME: home, MAGS_API_URL: server.url, MAGS_API_TOKEN: server.token });
  });
  after(async () => {
    try {
      await run(['stop', 'clidev']);
    } finally {
      await server?.stop();
      removeHome?.();
    }
  });

  test('new waits until the sandbox runs; exec streams output and exits with the command\'s code', async () => {
    const created = await run(['new', 'clidev', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const box = JSON.parse(created.stdout) as Record<string, unknown>;
    assert.equal(box.status, 'running');
    assert.equal(typeof box.request_id, 'string');
    const r = await run(['exec', 'clidev', 'echo out; echo err >&2; exit 7']);
    assert.equal(r.code, 7);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    const words = await run(['exec', 'clidev', 'echo', '$HOSTNAME', '--cwd-is-an-argument']);
    assert.equal(words.stdout, 'mags-vm --cwd-is-an-argument\n');
    const timeout = await run(['exec', '--timeout', '1', 'clidev', 'sleep 30']);
    assert.equal(timeout.code, 124);
    const missing = await run(['exec', 'no-such-box', 'true']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /no job found/);
  });

  test('ssh keeps the key (0600) and the pinned host key under ~/.mags and runs the system ssh', async () => {
    const r = await run(['ssh', 'clidev', 'echo via-ssh; hostname; exit 3']);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, 'via-ssh\nmags-vm\n');
    assert.match(r.stderr, /^Connecting to 127\.0\.0\.1:\d+\.\.\.$/m);
    const dir = join(home, '.mags', 'ssh');
    const files = readdirSync(dir);
    const key = files.find((f) => f.endsWith('_ed25519'))!;
    assert.ok(key, files.join(','));
    assert.equal(statSync(join(dir, key)).mode & 0o777, 0o600);
    assert.match(readFileSync(join(dir, key), 'utf8'), /BEGIN OPENSSH PRIVATE KEY/);
    const pinned = files.find((f) => f.endsWith('.known_hosts'))!;
    assert.match(readFileSync(join(dir, pinned), 'utf8'), /^\[127\.0\.0\.1\]:\d+ ssh-ed25519 AAAA/);
    // A second connection reuses the pinned host key (StrictHostKeyChecking=yes).
    assert.equal((await run(['ssh', 'clidev', 'true'])).code, 0);
  });
});
