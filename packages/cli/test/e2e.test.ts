/**
 * `mags` as a subprocess against a real server with real sandboxes (started with the server
 * package's spawnServer helper): every command, its --json form, error paths and exit codes.
 * Every job a test leaves running is stopped in `after`, then the server is stopped.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cleanEnv, mags, startServer, tempHome, type MagsResult, type TestServer } from './helpers.js';

describe('mags against a real server', () => {
  let server: TestServer;
  let home: string;
  let removeHome: () => void;
  let env: Record<string, string>;
  const started: string[] = [];

  const run = (args: string[], extra: Record<string, string> = {}, input?: string): Promise<MagsResult> =>
    mags(args, { env: { ...env, ...extra }, input });
  const ok = (r: MagsResult, what: string): MagsResult => {
    assert.equal(r.code, 0, `${what} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r;
  };

  before(async () => {
    server = await startServer();
    ({ home, remove: removeHome } = tempHome());
    env = cleanEnv({ HOME: home, MAGS_API_URL: server.url, MAGS_API_TOKEN: server.token });
  });

  after(async () => {
    try {
      for (const id of started) await run(['stop', id]).catch(() => undefined);
    } finally {
      await server?.stop();
      removeHome?.();
    }
  });

  test('run: prints the script output and exits 0', async () => {
    const r = ok(await run(['run', 'echo Hello World']), 'run');
    assert.equal(r.stdout, 'Hello World\n');
    assert.equal(r.stderr, '');
  });

  test("run: stdout and stderr go to the matching streams; the exit code is the script's", async () => {
    const r = await run(['run', 'for i in 1 2 3; do echo out$i; echo err$i >&2; done; exit 7']);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout, 'out1\nout2\nout3\n');
    assert.equal(r.stderr, 'err1\nerr2\nerr3\n');
    assert.equal((await run(['run', 'exit 7'])).code, 7);
    assert.equal((await run(['run', 'exit 0'])).code, 0);
  });

  test('run -: the script comes from stdin (several lines)', async () => {
    const r = ok(await run(['run', '-'], {}, 'x=4\necho "x=$x"\necho done >&2\n'), 'run -');
    assert.equal(r.stdout, 'x=4\n');
    assert.equal(r.stderr, 'done\n');
  });

  test('run -- CMD ARGS...: several words are an argv, each word kept whole', async () => {
    const r = ok(await run(['run', '--', 'printf', '[%s]\\n', 'a   b', 'c']), 'run -- printf');
    assert.equal(r.stdout, '[a   b]\n[c]\n');
    const py = ok(await run(['run', '--', 'python3', '-c', 'print(1)']), 'run -- python3 -c');
    assert.equal(py.stdout, '1\n');
  });

  test('run: a spinner on stderr only when stderr is a terminal', async () => {
    const { execFile } = await import('node:child_process');
    const { MAGS_BIN } = await import('./helpers.js');
    // script(1) gives mags a pseudo-terminal; its output is the terminal's (stdout and stderr merged).
    const tty = await new Promise<{ code: number | null; out: string }>((resolve) =>
      execFile('script', ['-qec', `${process.execPath} ${MAGS_BIN} run 'sleep 1; echo hi'`, '/dev/null'], { env }, (err, stdout) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout }),
      ),
    );
    assert.equal(tty.code, 0, tty.out);
    assert.match(tty.out, /Starting sandbox/);
    assert.match(tty.out, /hi\r?\n/);
  });

  test('run --json: one JSON document with status, exit code and logs', async () => {
    const r = await run(['run', '--json', 'echo a; echo b >&2; exit 3']);
    assert.equal(r.code, 3);
    const doc = JSON.parse(r.stdout) as { request_id: string; status: string; exit_code: number; logs: { message: string; stream: string }[] };
    assert.equal(doc.status, 'error');
    assert.equal(doc.exit_code, 3);
    assert.deepEqual(doc.logs.filter((l) => l.stream !== 'system').map((l) => `${l.stream}:${l.message}`), ['stdout:a', 'stderr:b']);
    assert.equal(r.stderr, '');
  });

  test('run --env, --name, --memory/--vcpus (v2 submit)', async () => {
    const r = ok(await run(['run', '--env', 'GREETING=hi there', '--env', 'EQ=a=b', 'echo "$GREETING|$EQ"']), 'run --env');
    assert.equal(r.stdout, 'hi there|a=b\n');
    const named = ok(await run(['run', '--name', 'cli-e2e-named', '--memory', '256', '--vcpus', '1', 'echo named']), 'run --name');
    assert.equal(named.stdout, 'named\n');
    const st = JSON.parse(ok(await run(['status', 'cli-e2e-named', '--json']), 'status by name').stdout) as { name: string; status: string };
    assert.equal(st.name, 'cli-e2e-named');
    assert.equal(st.status, 'completed');
  });

  test('run --timeout: the server ends the script; exit 124', async () => {
    const r = await run(['run', '--timeout', '1', 'sleep 30']);
    assert.equal(r.code, 124, r.stderr);
    assert.match(r.stderr, /timed out/);
    assert.ok(r.ms < 20_000, `took ${r.ms} ms`);
  });

  test('run --detach prints the request id; logs -f follows; status and logs --json', async () => {
    const d = ok(await run(['run', '--detach', 'sleep 1; echo late; echo bad >&2']), 'run --detach');
    const id = d.stdout.trim();
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.match(d.stderr, /mags logs -f/);
    const f = ok(await run(['logs', '-f', id]), 'logs -f');
    assert.equal(f.stdout, 'late\n');
    assert.equal(f.stderr.replace(/^\[mags\].*\n/gm, ''), 'bad\n');
    const st = JSON.parse(ok(await run(['status', id, '--json']), 'status --json').stdout) as { request_id: string; status: string; exit_code: number };
    assert.equal(st.request_id, id);
    assert.equal(st.status, 'completed');
    assert.equal(st.exit_code, 0);
    const human = ok(await run(['status', id]), 'status');
    assert.match(human.stdout, /status\s+completed/);
    const logs = JSON.parse(ok(await run(['logs', id, '--json']), 'logs --json').stdout) as { logs: { message: string }[] };
    assert.ok(logs.logs.some((l) => l.message === 'late'));
    const plain = ok(await run(['logs', id]), 'logs');
    assert.equal(plain.stdout, 'late\n');
    const ndjson = ok(await run(['logs', '-f', '--json', id]), 'logs -f --json');
    assert.ok(ndjson.stdout.trim().split('\n').map((l) => JSON.parse(l) as { message: string }).some((l) => l.message === 'late'));
  });

  test('run: Ctrl-C stops waiting (exit 130) and says how to stop the job', async () => {
    const { spawn } = await import('node:child_process');
    const { MAGS_BIN } = await import('./helpers.js');
    const child = spawn(process.execPath, [MAGS_BIN, 'run', 'echo started; sleep 60'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (stdout.includes('started')) child.kill('SIGINT');
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const id = /job (\S+) keeps running/.exec(stderr)?.[1];
    if (id) started.push(id);
    assert.equal(code, 130, stderr);
    assert.equal(stdout, 'started\n');
    assert.ok(id, stderr);
    assert.match(stderr, /mags stop /);
    ok(await run(['stop', id]), 'stop the interrupted job');
  });

  test('list: table, --json, paging', async () => {
    const t = ok(await run(['list']), 'list');
    assert.match(t.stdout, /^REQUEST ID\s+NAME\s+STATUS/);
    assert.match(t.stdout, /cli-e2e-named/);
    const j = JSON.parse(ok(await run(['list', '--json', '--page-size', '2']), 'list --json').stdout) as { jobs: unknown[]; page: number; page_size: number; total: number };
    assert.equal(j.jobs.length, 2);
    assert.equal(j.page, 1);
    assert.equal(j.page_size, 2);
    assert.ok(j.total >= 5);
    const p2 = JSON.parse(ok(await run(['list', '--json', '--page', '2', '--page-size', '2']), 'list page 2').stdout) as { page: number };
    assert.equal(p2.page, 2);
  });

  test('persistent run, set, url, stop (and their --json forms)', async () => {
    const r = ok(await run(['run', '-p', '--name', 'cli-e2e-web', 'echo up']), 'run -p');
    assert.equal(r.stdout, 'up\n');
    assert.match(r.stderr, /stays up/);
    const st = JSON.parse(ok(await run(['status', 'cli-e2e-web', '--json']), 'status').stdout) as { request_id: string; persistent: boolean; status: string };
    started.push(st.request_id);
    assert.equal(st.persistent, true);
    assert.ok(['running', 'sleeping'].includes(st.status), st.status);

    ok(await run(['set', 'cli-e2e-web', '--no-sleep']), 'set --no-sleep');
    const s1 = JSON.parse(ok(await run(['status', 'cli-e2e-web', '--json']), 'status').stdout) as { no_sleep: boolean };
    assert.equal(s1.no_sleep, true);
    const s2 = JSON.parse(ok(await run(['set', 'cli-e2e-web', '--sleep', '--startup-command', 'echo woke', '--json']), 'set --sleep').stdout) as { no_sleep: boolean; startup_command: string };
    assert.equal(s2.no_sleep, false);
    assert.equal(s2.startup_command, 'echo woke');

    const url = await run(['url', 'cli-e2e-web', '8080']);
    if (url.code === 0) assert.match(url.stdout, /^https?:\/\/\S+\n$/);
    else {
      // URL access arrives with the proxy; until then the server says so (501) and so does the CLI.
      assert.equal(url.code, 1);
      assert.match(url.stderr, /not available/);
    }

    const stopped = JSON.parse(ok(await run(['stop', 'cli-e2e-web', '--json']), 'stop --json').stdout) as { success: boolean; request_id: string };
    assert.equal(stopped.success, true);
    assert.equal(stopped.request_id, st.request_id);
    const after = JSON.parse(ok(await run(['status', st.request_id, '--json']), 'status after stop').stdout) as { status: string };
    assert.ok(['completed', 'error'].includes(after.status), after.status);
  });

  test('pool: text and --json', async () => {
    assert.match(ok(await run(['pool']), 'pool').stdout, /^idle \d+ {2}busy \d+ {2}total \d+/);
    const p = JSON.parse(ok(await run(['pool-status', '--json']), 'pool --json').stdout) as Record<string, number>;
    for (const k of ['idle_vms', 'busy_vms', 'total_vms', 'min_pool_size', 'max_pool_size']) assert.equal(typeof p[k], 'number', k);
  });

  test('token create/list/revoke; a revoked token is refused (exit 3)', async () => {
    const created = ok(await run(['token', 'create', 'cli-e2e']), 'token create');
    const token = created.stdout.trim();
    assert.match(token, /^mags_[0-9A-Za-z]{40}$/);
    assert.match(created.stderr, /shown only once/);
    const who = JSON.parse(ok(await run(['whoami', '--json', '--token', token]), 'whoami with new token').stdout) as { name: string; token_source: string };
    assert.equal(who.token_source, 'option');
    const list = JSON.parse(ok(await run(['token', 'list', '--json']), 'token list').stdout) as { tokens: { id: string; name: string }[] };
    const mine = list.tokens.find((t) => t.name === 'cli-e2e');
    assert.ok(mine);
    assert.match(ok(await run(['token', 'list']), 'token list').stdout, /cli-e2e/);
    const j = JSON.parse(ok(await run(['token', 'create', 'cli-e2e-json', '--json']), 'token create --json').stdout) as { id: string; token: string };
    assert.match(j.token, /^mags_/);
    ok(await run(['token', 'revoke', mine.id]), 'token revoke');
    assert.deepEqual(JSON.parse(ok(await run(['token', 'revoke', j.id, '--json']), 'revoke --json').stdout), { success: true });
    const refused = await run(['whoami', '--token', token]);
    assert.equal(refused.code, 3);
    assert.equal((await run(['token', 'revoke', mine.id])).code, 4);
  });

  test('user create/list (admin); the new user logs in and sees none of the admin jobs', async () => {
    const name = `cli-e2e-user-${Date.now()}`;
    const created = ok(await run(['user', 'create', name]), 'user create');
    const token = created.stdout.trim();
    assert.match(token, /^mags_/);
    assert.match(created.stderr, /mags login --url/);
    assert.match(ok(await run(['user', 'list']), 'user list').stdout, new RegExp(name));
    const users = JSON.parse(ok(await run(['user', 'list', '--json']), 'user list --json').stdout) as { users: { name: string; admin: boolean }[] };
    assert.equal(users.users.find((u) => u.name === name)?.admin, false);
    const theirs = JSON.parse(ok(await run(['list', '--json'], { MAGS_API_TOKEN: token }), 'list as the new user').stdout) as { total: number };
    assert.equal(theirs.total, 0);
    assert.equal((await run(['status', 'cli-e2e-named'], { MAGS_API_TOKEN: token })).code, 4);
    const forbidden = await run(['user', 'create', 'nope'], { MAGS_API_TOKEN: token });
    assert.equal(forbidden.code, 1);
    assert.notEqual(forbidden.stderr, '');
  });

  test('whoami and token precedence: --token > MAGS_API_TOKEN > MAGS_TOKEN > config file', async () => {
    const w = JSON.parse(ok(await run(['whoami', '--json']), 'whoami').stdout) as { name: string; admin: boolean; api_url: string; token_source: string };
    assert.equal(w.admin, true);
    assert.equal(w.api_url, server.url);
    assert.equal(w.token_source, 'MAGS_API_TOKEN');
    assert.match(ok(await run(['whoami']), 'whoami').stdout, /\(admin\) at http/);
    // A bad env token loses to a good flag; a bad flag loses to nothing.
    ok(await run(['whoami', '--token', server.token], { MAGS_API_TOKEN: 'mags_bad' }), 'flag beats env');
    assert.equal((await run(['whoami', '--token', 'mags_bad'])).code, 3);
    // MAGS_API_TOKEN beats MAGS_TOKEN.
    ok(await run(['whoami'], { MAGS_TOKEN: 'mags_bad' }), 'MAGS_API_TOKEN beats MAGS_TOKEN');
    const viaMagsToken = cleanEnv({ HOME: home, MAGS_API_URL: server.url, MAGS_TOKEN: server.token });
    const t = JSON.parse(ok(await mags(['whoami', '--json'], { env: viaMagsToken }), 'MAGS_TOKEN').stdout) as { token_source: string };
    assert.equal(t.token_source, 'MAGS_TOKEN');
  });

  test('login: token on stdin, verified, saved 0600; bad token refused and not saved; logout', async () => {
    const { home: h, remove } = tempHome();
    try {
      const bare = cleanEnv({ HOME: h });
      const path = join(h, '.mags', 'config.json');
      const bad = await mags(['login', '--url', server.url, '--token', 'mags_bad'], { env: bare });
      assert.equal(bad.code, 3);
      assert.match(bad.stderr, /refused this token/);
      assert.equal(existsSync(path), false);

      const r = await mags(['login', '--url', server.url], { env: bare, input: server.token + '\n' });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Logged in to .* as admin/);
      assert.match(r.stderr, /admin-token/);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { api_url: server.url, api_token: server.token });

      const who = JSON.parse(ok(await mags(['whoami', '--json'], { env: bare }), 'whoami from config').stdout) as { token_source: string };
      assert.equal(who.token_source, 'config');
      // The env token beats the saved one.
      assert.equal((await mags(['whoami'], { env: { ...bare, MAGS_API_TOKEN: 'mags_bad' } })).code, 3);

      const j = JSON.parse(ok(await mags(['login', '--url', server.url, '--token', server.token, '--json'], { env: bare }), 'login --json').stdout) as { api_url: string; user: { name: string } };
      assert.equal(j.user.name, 'admin');

      ok(await mags(['logout'], { env: bare }), 'logout');
      assert.equal((await mags(['whoami'], { env: bare })).code, 3);
    } finally {
      remove();
    }
  });

  test('workspace history|restore --to and resize: tables, --json, exit codes', async () => {
    try {
      ok(await run(['run', '-w', 'cli-ver', 'echo one > /root/v.txt']), 'first run');
      ok(await run(['run', '-w', 'cli-ver', 'echo two > /root/v.txt']), 'second run');
      // The second job's sync ends after its status is stored: wait for its version.
      let versions: Array<{ version: string }> = [];
      for (const end = Date.now() + 30_000; versions.length < 2 && Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
        versions = (JSON.parse(ok(await run(['workspace', 'history', 'cli-ver', '--json']), 'history --json').stdout) as { versions: Array<{ version: string }> }).versions;
      }
      assert.equal(versions.length, 2);
      const table = ok(await run(['workspace', 'history', 'cli-ver']), 'history');
      assert.match(table.stdout, /^VERSION\s+CREATED\s+FILES\s+SIZE\s+IMAGE/);
      assert.ok(table.stdout.indexOf(versions[0]!.version) < table.stdout.indexOf(versions[1]!.version), 'newest first');

      const unknown = await run(['workspace', 'restore', 'cli-ver', '--to', '000000000000001-abcdef']);
      assert.equal(unknown.code, 4, unknown.stderr);
      assert.match(unknown.stderr, /mags workspace history/);
      const restored = ok(await run(['workspace', 'restore', 'cli-ver', '--to', versions[1]!.version]), 'restore');
      assert.match(restored.stdout, new RegExp(`^Restored workspace cli-ver to version ${versions[1]!.version}`));
      assert.equal(ok(await run(['run', '-w', 'cli-ver', 'cat /root/v.txt']), 'run after restore').stdout, 'one\n');

      const shrink = await run(['resize', 'cli-ver', '--disk', '1']);
      assert.equal(shrink.code, 1, shrink.stderr);
      assert.match(shrink.stderr, /never shrinks/);
      assert.equal((await run(['resize', 'cli-ver', '--disk', 'big'])).code, 2, 'a malformed size is a usage error');
      assert.deepEqual(JSON.parse(ok(await run(['resize', 'cli-ver', '--disk', '3', '--json']), 'resize').stdout), { success: true, workspace_id: 'cli-ver', disk_gb: 3, grown: true });
      assert.equal(ok(await run(['run', '-w', 'cli-ver', "df -BG --output=size /root | tail -1 | tr -d ' '"]), 'df').stdout, '3G\n');
    } finally {
      await run(['workspace', 'delete', 'cli-ver']);
    }
  });

  test('error paths: unknown id (4, suggests mags list), bad token (3)', async () => {
    for (const args of [['status', 'no-such-job'], ['logs', 'no-such-job'], ['stop', 'no-such-job'], ['logs', '-f', 'no-such-job']]) {
      const r = await run(args);
      assert.equal(r.code, 4, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /mags list/);
    }
    const bad = await run(['list'], { MAGS_API_TOKEN: 'mags_0000000000000000000000000000000000000000' });
    assert.equal(bad.code, 3);
    assert.match(bad.stderr, /token/i);
  });
});
