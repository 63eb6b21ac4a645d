/**
 * The CLI as a subprocess where no working server is needed: version, help, usage errors, missing
 * token, unreachable server, logout, setup-claude.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanEnv, deadPort, mags, tempHome } from './helpers.js';

describe('mags without a server', () => {
  let home: string;
  let remove: () => void;
  let env: Record<string, string>;
  before(() => {
    ({ home, remove } = tempHome());
    env = cleanEnv({ HOME: home });
  });
  after(() => remove());

  test('--version prints the version quickly', async () => {
    const r = await mags(['--version'], { env });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
    assert.equal(r.stderr, '');
  });

  test('every command has --help with examples', async () => {
    const commands = [
      ['login'], ['logout'], ['whoami'], ['run'], ['status'], ['logs'], ['list'], ['stop'], ['url'], ['set'],
      ['pool'], ['token'], ['token', 'create'], ['token', 'list'], ['token', 'revoke'], ['user'], ['user', 'create'], ['user', 'list'], ['setup-claude'],
    ];
    const results = await Promise.all(commands.map((c) => mags([...c, '--help'], { env })));
    commands.forEach((c, i) => {
      const r = results[i]!;
      assert.equal(r.code, 0, `${c.join(' ')} --help: ${r.stderr}`);
      assert.match(r.stdout, /Examples:\n  \$ mags /, `${c.join(' ')} --help has examples`);
    });
    const server = await mags(['server', '--help'], { env });
    assert.equal(server.code, 0, server.stderr);
    assert.match(server.stdout, /--data-dir/);
    assert.match(server.stdout, /Examples:/);
  });

  test('usage errors exit 2: unknown command, missing argument, bad flag value, bad combination', async () => {
    for (const args of [['bogus'], ['run'], ['run', '--disk', 'abc', 'true'], ['run', '--url', 'true'], ['list', '--page', '0'], ['set', 'x']]) {
      const r = await mags(args, { env: { ...env, MAGS_API_TOKEN: 't' } });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.notEqual(r.stderr, '');
    }
  });

  test('no token: exit 3, says how to get one', async () => {
    const r = await mags(['list'], { env });
    assert.equal(r.code, 3);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /API token required: set MAGS_API_TOKEN or run `mags login`/);
    assert.match(r.stderr, /admin-token/);
  });

  test('run -e KEY=VALUE (docker habit): exit 2 with a hint to use --env, before any request', async () => {
    for (const args of [['run', '-e', 'FOO=bar', 'echo $FOO'], ['run', '-e', 'FOO=bar']]) {
      const r = await mags(args, { env: { ...env, MAGS_API_TOKEN: 't', MAGS_API_URL: `http://127.0.0.1:${await deadPort()}` } });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /-e is --ephemeral/);
      assert.match(r.stderr, /--env FOO=bar/);
    }
  });

  test('server down: exit 5, names the URL and MAGS_API_URL', async () => {
    const url = `http://127.0.0.1:${await deadPort()}`;
    for (const args of [['whoami'], ['run', 'echo hi'], ['list', '--json']]) {
      const r = await mags(args, { env: { ...env, MAGS_API_URL: url, MAGS_API_TOKEN: 't' } });
      assert.equal(r.code, 5, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.ok(r.stderr.includes(url), r.stderr);
      assert.match(r.stderr, /MAGS_API_URL/);
    }
  });

  test('URL precedence: the config file URL is used, --api-url beats it', async () => {
    // The token precedence is checked against a real server in e2e.test.ts (whoami --json).
    const port = await deadPort();
    mkdirSync(join(home, '.mags'), { recursive: true });
    writeFileSync(join(home, '.mags', 'config.json'), JSON.stringify({ api_url: `http://127.0.0.1:${port}`, api_token: 'cfg' }));
    try {
      const r = await mags(['whoami'], { env });
      assert.equal(r.code, 5);
      assert.ok(r.stderr.includes(`127.0.0.1:${port}`), r.stderr);
      const r2 = await mags(['whoami', '--api-url', `http://127.0.0.1:${port}/x`], { env });
      assert.ok(r2.stderr.includes(`127.0.0.1:${port}/x`), r2.stderr);
    } finally {
      writeFileSync(join(home, '.mags', 'config.json'), '{}');
    }
  });

  test('logout removes only the token and keeps the file 0600', async () => {
    const path = join(home, '.mags', 'config.json');
    writeFileSync(path, JSON.stringify({ api_url: 'http://127.0.0.1:1', api_token: 'x' }), { mode: 0o600 });
    const r = await mags(['logout'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Logged out/);
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { api_url: 'http://127.0.0.1:1' });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const again = await mags(['logout', '--json'], { env });
    assert.deepEqual(JSON.parse(again.stdout), { logged_out: false, config_path: path });
  });

  test('setup-claude writes the skill file; --print prints it', async () => {
    const printed = await mags(['setup-claude', '--print'], { env });
    assert.equal(printed.code, 0);
    assert.match(printed.stdout, /^---\nname: mags\n/);
    assert.match(printed.stdout, /mags run 'echo Hello World'/);
    const path = join(home, '.claude', 'skills', 'mags', 'SKILL.md');
    assert.equal(existsSync(path), false);
    const r = await mags(['setup-claude', '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { path });
    assert.equal(readFileSync(path, 'utf8'), printed.stdout);
  });

  test('mags server: an unknown MAGS_RUNTIME stops the start with exit 2, listing the known drivers', async () => {
    const r = await mags(['server', '--port', '0'], { env: { ...env, MAGS_RUNTIME: 'bogus' } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /MAGS_RUNTIME="bogus" is not a known runtime driver; the known ones are: container\./);
    assert.equal(r.stdout, '');
  });

  test('mags server --help lists the proxy and SSH gateway settings', async () => {
    const help = await mags(['server', '--help'], { env });
    assert.match(help.stdout, /--proxy-port/);
    assert.match(help.stdout, /--ssh-port/);
  });

  test('login without a token on stdin is a usage error', async () => {
    const r = await mags(['login', '--url', 'http://127.0.0.1:1'], { env, input: '\n' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /admin-token/);
    assert.match(r.stderr, /Create a token in the dashboard: http:\/\/127\.0\.0\.1:1\/tokens/);
    assert.match(r.stderr, /No token given/);
  });
});
