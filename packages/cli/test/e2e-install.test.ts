/**
 * Installable anywhere: the client packages built by scripts/build-downloads.mjs are served by a
 * real daemon at /downloads/, the CLI installs from that URL with `npm i -g` into a fresh prefix
 * (no registry reachable, no workspace around) and runs a job; the Python wheel installs into a
 * fresh venv with `pip install --no-index <url>` and runs a job too.
 */
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cleanEnv, deadPort, startServer, type TestServer } from './helpers.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

describe('client packages from /downloads/ (real server, real sandboxes)', () => {
  let server: TestServer;
  let dir: string;
  let env: Record<string, string>;

  before(async () => {
    await run(process.execPath, [join(REPO, 'scripts/build-downloads.mjs')], { cwd: REPO, timeout: 300_000 });
    server = await startServer();
    dir = mkdtempSync(join(tmpdir(), 'mags-install-'));
    // No registry: the install may use nothing but the tarball.
    env = cleanEnv({ HOME: dir, MAGS_API_URL: server.url, MAGS_API_TOKEN: server.token, npm_config_registry: `http://127.0.0.1:${await deadPort()}/`, npm_config_cache: join(dir, 'npm-cache') });
  });
  after(async () => {
    try {
      await server?.stop();
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  test('GET /downloads lists the packages; an unknown name is 404 in the registry shape', async () => {
    const list = (await (await fetch(`${server.url}/downloads`)).json()) as { files: string[] };
    assert.ok(list.files.includes('mags-cli.tgz'), JSON.stringify(list));
    assert.ok(list.files.includes('mags-sdk.tgz'));
    assert.ok(list.files.some((f) => /^magpie_mags-.*-py3-none-any\.whl$/.test(f)));
    for (const bad of ['nope.tgz', '..%2Fpackage.json', '%2e%2e']) {
      // Sent as written: fetch() would resolve %2e%2e to the parent path before sending it.
      const { status, body } = await rawGet(`${server.url}/downloads/${bad}`);
      assert.equal(status, 404, bad);
      assert.equal((JSON.parse(body) as { code: string }).code, 'NOT_FOUND');
    }
  });

  test('npm i -g <server>/downloads/mags-cli.tgz into a fresh prefix, then mags run works', async () => {
    const prefix = join(dir, 'prefix');
    const cwd = mkdtempSync(join(dir, 'empty-'));
    await run('npm', ['i', '-g', '--prefix', prefix, '--no-audit', '--no-fund', `${server.url}/downloads/mags-cli.tgz`], { cwd, env, timeout: 180_000 });
    const mags = join(prefix, 'bin', 'mags');
    const r = await run(mags, ['run', 'echo ok'], { cwd, env, timeout: 120_000 });
    assert.equal(r.stdout, 'ok\n');
    assert.match((await run(mags, ['-v'], { cwd, env })).stdout, /^\d+\.\d+\.\d+\n$/);
  });

  test('pip install --no-index <server>/downloads/<wheel> into a fresh venv, then the SDK runs a job', async () => {
    const list = (await (await fetch(`${server.url}/downloads`)).json()) as { files: string[] };
    const wheel = list.files.find((f) => f.endsWith('.whl'))!;
    const venv = join(dir, 'venv');
    await run('python3', ['-m', 'venv', '--without-pip', venv], { env, timeout: 120_000 }).catch(() => run('python3', ['-m', 'venv', venv], { env, timeout: 120_000 }));
    const py = join(venv, 'bin', 'python');
    // pip comes from the host's Python (the venv may have none): installing uses only the wheel.
    await run('python3', ['-m', 'pip', '--python', py, 'install', '--no-index', '--disable-pip-version-check', `${server.url}/downloads/${wheel}`], { env, timeout: 180_000 });
    const code = 'from mags import Mags\nr = Mags().run_and_wait("echo from-python")\nprint(r["status"], [l["message"] for l in r["logs"] if l.get("stream") == "stdout"])';
    const r = await run(py, ['-c', code], { env, cwd: dir, timeout: 120_000 });
    assert.equal(r.stdout.trim(), "completed ['from-python']");
  });
});

/** GET with the path exactly as given (no URL normalisation). */
function rawGet(url: string): Promise<{ status: number; body: string }> {
  const u = new URL(url.replace(/\/downloads\/.*$/, '/'));
  const path = url.slice(url.indexOf('/downloads/'));
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
