/**
 * The proxy serving HTTPS itself (MAGS_PROXY_TLS_CERT/KEY): a self-signed certificate for
 * `*.apps.localhost` made with openssl, the settings read by startPublicProxy, a request over TLS
 * reaching an upstream on loopback with `X-Forwarded-Proto: https`, a login link's cookie marked
 * Secure, and unreadable or mismatched files refused at start.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.js';
import { silentLogger } from '../src/logger.js';
import { startPublicProxy, type RunningProxy } from '../src/proxy/index.js';
import type { Sandbox } from '../src/runtime/driver.js';
import type { LiveSandboxes } from '../src/sandboxes/live.js';
import { createUrlService, type UrlService } from '../src/services/urls.js';
import { UsersService } from '../src/services/users.js';
import type { Job } from '../src/storage/metadata/store.js';
import { openStores, type Stores } from '../src/storage/stores.js';

const live: LiveSandboxes = {
  attach: async (job) => ({ job, sandbox: { ipAddress: '127.0.0.1' } as Sandbox, woke: 'no', release() {} }),
  touch() {},
  state: () => 'running',
  onChange: () => () => undefined,
};

describe('proxy over TLS', () => {
  let dir: string;
  let stores: Stores;
  let urls: UrlService;
  let proxy: RunningProxy;
  let app: http.Server;
  let cert: Buffer;
  let seen: http.IncomingHttpHeaders | undefined;
  let grant: Record<string, unknown>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mags-proxy-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=*.apps.localhost',
      '-addext', 'subjectAltName=DNS:*.apps.localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    cert = await readFile(join(dir, 'cert.pem'));
    stores = await openStores({ sqlitePath: join(dir, 'mags.db') });
    const owner = (await new UsersService(stores.users, silentLogger()).bootstrapAdmin())!;
    app = http.createServer((req, res) => {
      seen = req.headers;
      res.end('over tls');
    });
    const appPort = await new Promise<number>((r) => app.listen(0, '127.0.0.1', () => r((app.address() as AddressInfo).port)));
    const config = loadConfig({ HOME: dir, MAGS_DATA_DIR: dir, MAGS_PROXY_PORT: '0', MAGS_PROXY_TLS_CERT: join(dir, 'cert.pem'), MAGS_PROXY_TLS_KEY: join(dir, 'key.pem') });
    assert.equal(config.proxyPublicScheme, 'https');
    let port: number | undefined;
    urls = createUrlService(stores, { domain: config.domain, scheme: config.proxyPublicScheme, publicPort: () => port }, silentLogger());
    proxy = await startPublicProxy(config, { urls, live, log: silentLogger() });
    port = proxy.port;
    const now = new Date().toISOString();
    const job = {
      request_id: randomUUID(), user_id: owner.user.id, name: null, workspace_id: null, base_workspace_id: null, type: 'inline', script: 'x',
      persistent: true, no_sleep: false, startup_command: null, environment: {}, file_ids: [], disk_gb: 2, vcpus: 1, memory_mb: 256,
      rootfs_type: null, timeout_seconds: null, api_version: 1, status: 'running', exit_code: null, end_reason: null, error_message: null,
      vm_id: 'vm', host: null, subdomain: null, url: null, script_duration_ms: null, created_at: now, started_at: now, completed_at: null, updated_at: now,
    } satisfies Job;
    await stores.jobs.insertJob(job);
    grant = await urls.grant(job, appPort, { auth: 'token' });
  });

  after(async () => {
    try {
      await proxy?.close();
      app?.closeAllConnections();
      await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
      urls?.close();
      await stores?.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  const get = (path: string) =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const host = `${grant.subdomain as string}.apps.localhost`;
      const req = https.request({ host: '127.0.0.1', port: proxy.port, path, servername: host, ca: cert, headers: { host } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });

  it('hands out https URLs and serves them with the certificate; the app sees X-Forwarded-Proto https', async () => {
    assert.equal(grant.url, `https://${grant.subdomain as string}.apps.localhost:${proxy.port}`);
    const login = new URL(grant.login_url as string);
    const r = await get(login.pathname + login.search);
    assert.equal(r.status, 302);
    const cookie = r.headers['set-cookie']![0]!;
    assert.match(cookie, /; Secure/);
    assert.match(cookie, /HttpOnly/);
    const page = await new Promise<string>((resolve, reject) => {
      const host = `${grant.subdomain as string}.apps.localhost`;
      https
        .get({ host: '127.0.0.1', port: proxy.port, path: '/', servername: host, ca: cert, headers: { host, cookie: cookie.split(';')[0]! } }, (res) => {
          let b = '';
          res.on('data', (c: Buffer) => (b += c));
          res.on('end', () => resolve(`${res.statusCode} ${b}`));
        })
        .on('error', reject);
    });
    assert.equal(page, '200 over tls');
    assert.equal(seen!['x-forwarded-proto'], 'https');
  });

  it('unreadable or mismatched certificate files stop the start with a ConfigError', async () => {
    const bad = loadConfig({ HOME: dir, MAGS_DATA_DIR: dir, MAGS_PROXY_PORT: '0', MAGS_PROXY_TLS_CERT: join(dir, 'missing.pem'), MAGS_PROXY_TLS_KEY: join(dir, 'key.pem') });
    await assert.rejects(startPublicProxy(bad, { urls, live, log: silentLogger() }), (e: Error) => e instanceof ConfigError && /MAGS_PROXY_TLS_CERT/.test(e.message));
    await writeFile(join(dir, 'junk.pem'), 'not a certificate\n');
    const junk = loadConfig({ HOME: dir, MAGS_DATA_DIR: dir, MAGS_PROXY_PORT: '0', MAGS_PROXY_TLS_CERT: join(dir, 'junk.pem'), MAGS_PROXY_TLS_KEY: join(dir, 'key.pem') });
    await assert.rejects(startPublicProxy(junk, { urls, live, log: silentLogger() }), (e: Error) => e instanceof ConfigError);
  });
});
