/**
 * Public URLs survive a daemon restart: a sleeping persistent job's job URL and alias, requested
 * after the restart, wake it on its workspace and serve the page. Real daemon, real sandboxes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort } from './helpers/free-port.js';
import { client } from './helpers/http.js';
import { sandboxAppScript } from './helpers/sandbox-app.js';
import { spawnServer, type SpawnedServer } from './helpers/spawn-server.js';

function viaProxy(port: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', headers: { host }, agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

async function until(what: string, fn: () => Promise<boolean>, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('public URLs across a daemon restart', { timeout: 600_000 }, () => {
  let first: SpawnedServer | undefined;
  let second: SpawnedServer | undefined;
  const dirs: string[] = [];

  after(async () => {
    try {
      await first?.stop();
      await second?.stop();
    } finally {
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    }
  });

  it('a sleeping job is woken by its URL and its alias after a restart on another proxy port, and the API answers the new URL', async () => {
    const proxyPort = await freePort();
    const env = { MAGS_POOL_MIN_SIZE: '0', MAGS_PROXY_PORT: String(proxyPort), MAGS_FREEZE_AFTER_SECONDS: '1', MAGS_SLEEP_AFTER_SECONDS: '3' };
    const dataDir = await mkdtemp(join(tmpdir(), 'mags-restart-data-'));
    const home = await mkdtemp(join(tmpdir(), 'mags-restart-home-'));
    dirs.push(dataDir, home);
    first = await spawnServer({ env, dataDir, home });
    const api = client(first.url, first.token);
    const id = await api.submit({ type: 'inline', script: sandboxAppScript(8080, 'Still here'), persistent: true, name: 'again', workspace_id: 'again', startup_command: 'python3 /root/app.py 8080' }, 2);
    await until('the job to run', async () => (await api.req('GET', `/api/v2/mags-jobs/${id}/status`)).body.status === 'running');
    const access = await api.req('POST', '/api/v2/mags-jobs/again/access', { port: 8080 });
    assert.equal(access.status, 200, JSON.stringify(access.body));
    const host = new URL(access.body.url as string).host;
    assert.equal((await api.req('POST', '/api/v2/mags-url-aliases', { subdomain: 'again-site', workspace_id: 'again' })).status, 200);
    await until('the app to answer', async () => (await viaProxy(proxyPort, host)).status === 200);
    await until('the job to sleep', async () => (await api.req('GET', `/api/v2/mags-jobs/${id}/status`)).body.status === 'sleeping');

    await first.stop();
    first = undefined;
    // The next start listens on another proxy port: the URL the API answers follows it.
    const newPort = await freePort();
    second = await spawnServer({ env: { ...env, MAGS_PROXY_PORT: String(newPort) }, dataDir, home });
    const after = client(second.url, second.token);
    const st = await after.req('GET', `/api/v2/mags-jobs/${id}/status`);
    assert.equal(st.body.status, 'sleeping');
    const sub = host.split('.')[0]!;
    assert.equal(st.body.url, `http://${sub}.apps.localhost:${newPort}`, 'the status answers the URL on the new port');
    const listed = (await after.req('GET', '/api/v1/mags-jobs')).body.jobs as Array<{ request_id: string; url: string | null }>;
    assert.equal(listed.find((j) => j.request_id === id)?.url, `http://${sub}.apps.localhost:${newPort}`);
    const newHost = `${sub}.apps.localhost:${newPort}`;
    const page = await viaProxy(newPort, newHost);
    assert.equal(page.status, 200, page.body.slice(0, 300));
    assert.match(page.body, /Still here/);
    assert.match((await viaProxy(newPort, `again-site.apps.localhost:${newPort}`)).body, /Still here/);
    assert.equal((await after.req('POST', `/api/v1/mags-jobs/${id}/stop`)).status, 200);
  });
});
