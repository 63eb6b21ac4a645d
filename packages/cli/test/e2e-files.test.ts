/**
 * The files API end to end on a real server with real sandboxes, as an agent would use it: the Node
 * SDK (`mags.files`), the Python SDK (`Mags().files`) and the CLI (`mags cp`, `mags ls`,
 * `mags cat`), byte for byte, on one persistent job. The job is stopped and the server stopped in
 * `after`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Mags } from '@mags/sdk';
import { MAGS_BIN, cleanEnv, mags, startServer, tempHome, type MagsResult, type TestServer } from './helpers.js';

const PY_SDK = fileURLToPath(new URL('../../../sdk-python', import.meta.url));

/** Runs a command and returns its stdout as bytes. */
function runBytes(cmd: string, args: string[], env: Record<string, string>, input?: Buffer): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}

/** Every file and directory under `dir`: relative path -> content hash (files) or 'dir', with modes. */
function treeOf(dir: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const p = rel ? `${rel}/${name}` : name;
    const st = statSync(join(dir, p));
    if (st.isDirectory()) {
      out[p] = `dir ${(st.mode & 0o777).toString(8)}`;
      Object.assign(out, treeOf(dir, p));
    } else {
      out[p] = `${createHash('sha256').update(readFileSync(join(dir, p))).digest('hex')} ${(st.mode & 0o777).toString(8)}`;
    }
  }
  return out;
}

describe('files of a persistent sandbox through the SDKs and the CLI', { timeout: 600_000 }, () => {
  let server: TestServer;
  let home: string;
  let removeHome: () => void;
  let env: Record<string, string>;
  let client: Mags;
  let work: string;
  const job = `files-e2e-${randomBytes(3).toString('hex')}`;

  const run = (args: string[]): Promise<MagsResult> => mags(args, { env, timeoutMs: 180_000 });
  const ok = (r: MagsResult, what: string): MagsResult => {
    assert.equal(r.code, 0, `${what} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r;
  };

  before(async () => {
    // Jobs with a workspace go to sleep after 4 idle seconds (the sleeping-read test).
    server = await startServer({ env: { MAGS_FREEZE_AFTER_SECONDS: '1', MAGS_SLEEP_AFTER_SECONDS: '4' } });
    ({ home, remove: removeHome } = tempHome());
    env = cleanEnv({ HOME: home, MAGS_API_URL: server.url, MAGS_API_TOKEN: server.token });
    client = new Mags({ apiUrl: server.url, apiToken: server.token });
    work = mkdtempSync(join(tmpdir(), 'mags-files-e2e-'));
    await client.run('mkdir -p /root/proj && echo ready > /root/proj/README', { name: job, persistent: true });
    for (let i = 0; ; i++) {
      const st = await client.status(job);
      if (st.status === 'running' && st.vm_id) {
        // The script has run once README exists.
        const listed = await client.files.list(job, '/root/proj').catch(() => undefined);
        if (listed?.entries.some((e) => e.name === 'README')) break;
      }
      assert.ok(i < 600, `the persistent job did not come up: ${JSON.stringify(st)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  after(async () => {
    try {
      await client?.stop(job).catch(() => undefined);
    } finally {
      await server?.stop();
      removeHome?.();
      if (work) rmSync(work, { recursive: true, force: true });
    }
  });

  test('Node SDK: write, read (whole and range), list, mkdir, move, remove, watch', async () => {
    const data = randomBytes(300_000);
    const written = await client.files.write(job, 'proj/data.bin', data, { mode: 0o640 });
    assert.deepEqual([written.path, written.size, written.mode], ['/root/proj/data.bin', data.length, 0o640]);
    assert.ok(Buffer.from(await client.files.read(job, '/root/proj/data.bin')).equals(data));
    assert.ok(Buffer.from(await client.files.read(job, '/root/proj/data.bin', { offset: 1000, length: 10 })).equals(data.subarray(1000, 1010)));
    await client.files.writeText(job, '/root/proj/notes.txt', 'héllo\n');
    assert.equal(await client.files.readText(job, '/root/proj/notes.txt'), 'héllo\n');
    await client.files.write(job, '/root/proj/empty', new Uint8Array(0));
    assert.equal((await client.files.read(job, '/root/proj/empty')).length, 0);
    await client.files.mkdir(job, '/root/proj/a/b', { parents: true });
    await client.files.move(job, '/root/proj/notes.txt', '/root/proj/a/b/notes.txt');
    const names = (await client.files.list(job, '/root/proj', { depth: 3 })).entries.map((e) => e.path);
    assert.deepEqual(names, ['/root/proj/README', '/root/proj/a', '/root/proj/a/b', '/root/proj/a/b/notes.txt', '/root/proj/data.bin', '/root/proj/empty']);
    await assert.rejects(client.files.read(job, '/root/proj/missing'), (err: { code?: string; status?: number }) => err.code === 'PATH_NOT_FOUND' && err.status === 404);
    await client.files.remove(job, '/root/proj/a', { recursive: true });
    await client.files.remove(job, '/root/proj/empty');

    const ac = new AbortController();
    const events: Array<{ type: string; path?: string }> = [];
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    const watching = (async () => {
      try {
        for await (const e of client.files.watch(job, '/root/proj', { signal: ac.signal, onReady: ready })) {
          events.push(e);
          if (events.length === 3) break;
        }
      } catch (err) {
        if (!ac.signal.aborted) throw err;
      }
    })();
    await isReady;
    await client.files.mkdir(job, '/root/proj/w');
    await client.files.remove(job, '/root/proj/w');
    await client.files.mkdir(job, '/root/proj/w2');
    await Promise.race([watching, new Promise((r) => setTimeout(r, 15_000))]);
    ac.abort();
    assert.deepEqual(events.map((e) => [e.type, e.path]), [['create', '/root/proj/w'], ['delete', '/root/proj/w'], ['create', '/root/proj/w2']]);
    await client.files.remove(job, '/root/proj/w2');
  });

  test('a sleeping job is read and listed from its synced workspace without waking; a write wakes it', async () => {
    const sleeper = `sleeper-${randomBytes(3).toString('hex')}`;
    const ws = `ws-${randomBytes(3).toString('hex')}`;
    const data = randomBytes(5 * 1024 * 1024 + 17);
    try {
      await client.run('mkdir -p /root/keep && echo kept > /root/keep/a.txt', { name: sleeper, persistent: true, workspaceId: ws });
      for (let i = 0; (await client.status(sleeper)).status !== 'running' || !(await client.files.list(sleeper, '/root').catch(() => undefined))?.entries.some((e) => e.name === 'keep'); i++) {
        assert.ok(i < 600, 'the job did not come up');
        await new Promise((r) => setTimeout(r, 100));
      }
      await client.files.write(sleeper, '/root/keep/big.bin', data);
      for (let i = 0; (await client.status(sleeper)).status !== 'sleeping'; i++) {
        assert.ok(i < 600, 'the job did not go to sleep');
        await new Promise((r) => setTimeout(r, 100));
      }
      // Reads and listings come from the synced workspace: the job stays asleep.
      assert.ok(Buffer.from(await client.files.read(sleeper, '/root/keep/big.bin')).equals(data));
      assert.ok(Buffer.from(await client.files.read(sleeper, '/root/keep/big.bin', { offset: 4 * 1024 * 1024 - 3, length: 10 })).equals(data.subarray(4 * 1024 * 1024 - 3, 4 * 1024 * 1024 + 7)));
      const names = (await client.files.list(sleeper, '/root/keep')).entries.map((e) => e.name);
      assert.deepEqual(names, ['a.txt', 'big.bin']);
      await assert.rejects(client.files.read(sleeper, '/root/keep/none'), (err: { code?: string }) => err.code === 'PATH_NOT_FOUND');
      const cat = await runBytes(process.execPath, [MAGS_BIN, 'cat', `${sleeper}:keep/a.txt`], env);
      assert.equal(cat.stdout.toString(), 'kept\n');
      assert.equal((await client.status(sleeper)).status, 'sleeping');
      // The workspace by id, the same way.
      assert.equal(new TextDecoder().decode(await client.files.readWorkspace(ws, '/root/keep/a.txt')), 'kept\n');
      assert.deepEqual((await client.files.listWorkspace(ws, '/root', { depth: 2 })).entries.map((e) => e.path), ['/root/keep', '/root/keep/a.txt', '/root/keep/big.bin']);
      const wsCat = await runBytes(process.execPath, [MAGS_BIN, 'cat', `ws:${ws}:/root/keep/a.txt`], env);
      assert.equal(wsCat.stdout.toString(), 'kept\n', wsCat.stderr);
      const wsLs = ok(await run(['ls', `ws:${ws}:/root/keep`]), 'ls ws:');
      assert.match(wsLs.stdout, /big\.bin/);
      const py = await runBytes('python3', ['-c', 'import sys; from mags import Mags; m = Mags(api_url=sys.argv[1], api_token=sys.argv[2]); sys.stdout.write(m.files.read_workspace(sys.argv[3], "/root/keep/a.txt").decode()); print(len(m.files.list_workspace(sys.argv[3], "/root/keep")["entries"]))', server.url, server.token, ws], { ...env, PYTHONPATH: PY_SDK });
      assert.equal(py.stdout.toString(), 'kept\n2\n', py.stderr);
      assert.equal((await run(['cp', './x', `ws:${ws}:/root/`])).code, 2);
      assert.equal((await client.status(sleeper)).status, 'sleeping');
      // A write wakes the job and lands in its sandbox.
      await client.files.writeText(sleeper, '/root/keep/b.txt', 'woken');
      assert.equal((await client.status(sleeper)).status, 'running');
      assert.equal(await client.files.readText(sleeper, '/root/keep/b.txt'), 'woken');
    } finally {
      await client.stop(sleeper).catch(() => undefined);
    }
  });

  test('Python SDK: the same round trip, byte for byte', async () => {
    const script = `
import hashlib, os, sys
from mags import Mags
m = Mags(api_url=sys.argv[1], api_token=sys.argv[2])
job = sys.argv[3]
data = os.urandom(2 * 1024 * 1024 + 3)
e = m.files.write(job, "/root/proj/py.bin", data, mode=0o600)
assert e["size"] == len(data) and e["mode"] == 0o600, e
assert m.files.read(job, "/root/proj/py.bin") == data
assert m.files.read(job, "/root/proj/py.bin", offset=5, length=7) == data[5:12]
m.files.write_text(job, "proj/py.txt", "snake\\n")
assert m.files.read_text(job, "/root/proj/py.txt") == "snake\\n"
m.files.mkdir(job, "/root/proj/pydir/x", parents=True)
m.files.move(job, "/root/proj/py.txt", "/root/proj/pydir/x/py.txt")
paths = [x["path"] for x in m.files.list(job, "/root/proj/pydir", depth=2)["entries"]]
assert paths == ["/root/proj/pydir/x", "/root/proj/pydir/x/py.txt"], paths
try:
    m.files.read(job, "/root/proj/nope")
    raise SystemExit("no error")
except Exception as err:
    assert getattr(err, "code", None) == "PATH_NOT_FOUND", err
m.files.remove(job, "/root/proj/pydir", recursive=True)
m.files.remove(job, "/root/proj/py.bin")
print("ok")
`;
    const r = await runBytes('python3', ['-c', script, server.url, server.token, job], { ...env, PYTHONPATH: PY_SDK });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'ok\n');
  });

  test('CLI: cp a directory tree in and out with docker cp semantics; cat and ls', async () => {
    const src = join(work, 'src');
    mkdirSync(join(src, 'sub', 'deep'), { recursive: true });
    writeFileSync(join(src, 'top.bin'), randomBytes(70_000));
    writeFileSync(join(src, 'sub', 'deep', 'x.txt'), 'deep\n');
    writeFileSync(join(src, 'empty'), '');
    writeFileSync(join(src, 'run.sh'), '#!/bin/sh\necho hi\n');
    chmodSync(join(src, 'run.sh'), 0o755);
    const want = treeOf(src);

    // Into an existing directory: lands under its own name.
    ok(await run(['cp', src, `${job}:/root/proj`]), 'cp in');
    const ls = ok(await run(['ls', `${job}:/root/proj/src`]), 'ls');
    assert.match(ls.stdout, /run\.sh/);
    assert.match(ls.stdout, /-rwxr-xr-x/);
    assert.match(ls.stdout, /sub\//);
    // To a path that does not exist: becomes it.
    ok(await run(['cp', src, `${job}:/root/copy2`]), 'cp in (new name)');
    const listed = JSON.parse(ok(await run(['ls', `${job}:/root/copy2`, '--json', '--depth', '5']), 'ls --json').stdout) as { entries: Array<{ path: string }> };
    assert.ok(listed.entries.some((e) => e.path === '/root/copy2/sub/deep/x.txt'));

    // Out again, into an existing local directory and to a new name; compare trees.
    const out = join(work, 'out');
    mkdirSync(out);
    ok(await run(['cp', `${job}:/root/proj/src`, out]), 'cp out');
    assert.deepEqual(treeOf(join(out, 'src')), want);
    ok(await run(['cp', `${job}:/root/copy2`, join(work, 'fresh')]), 'cp out (new name)');
    assert.deepEqual(treeOf(join(work, 'fresh')), want);
    // Contents only (SRC/.).
    const contents = join(work, 'contents');
    mkdirSync(contents);
    ok(await run(['cp', `${job}:/root/copy2/.`, contents]), 'cp out contents');
    assert.deepEqual(treeOf(contents), want);

    // A single file into a directory, then cat byte for byte.
    ok(await run(['cp', join(src, 'top.bin'), `${job}:/root/`]), 'cp file');
    const cat = await runBytes(process.execPath, [MAGS_BIN, 'cat', `${job}:/root/top.bin`], env);
    assert.equal(cat.code, 0, cat.stderr);
    assert.ok(cat.stdout.equals(readFileSync(join(src, 'top.bin'))));
    // stdin -> file, file -> stdout.
    const blob = randomBytes(10_000);
    const up = await runBytes(process.execPath, [MAGS_BIN, 'cp', '-', `${job}:/root/stdin.bin`], env, blob);
    assert.equal(up.code, 0, up.stderr);
    const down = await runBytes(process.execPath, [MAGS_BIN, 'cp', `${job}:/root/stdin.bin`, '-'], env);
    assert.ok(down.stdout.equals(blob));

    const missing = await run(['cat', `${job}:/root/nope`]);
    assert.equal(missing.code, 4, missing.stderr);
    assert.match(missing.stderr, /No such file or directory/);
    const usage = await run(['cat', './local']);
    assert.equal(usage.code, 2);
  });
});
