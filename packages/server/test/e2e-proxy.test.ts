/**
 * Public URLs end to end: a real daemon (spawnServer) with real sandboxes, a python3 web app in a
 * persistent job, reached through the proxy on loopback by a Node client with a Host header, by
 * headless Chromium (playwright-core + Debian chromium; screenshot in docs/img/), a WebSocket and
 * SSE; 200 concurrent requests; a 1 GiB download with the daemon's RSS sampled; hostile and
 * smuggling requests that never reach the app; aliases and URL auth across two users; a request
 * that wakes a sleeping job. Needs root, the guest agent and the base image (MAGS_IMAGE_DIR).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { WebSocket } from 'ws';
import { REPO_ROOT } from '../src/spec.js';
import { client, type Client } from './helpers/http.js';
import { sandboxAppScript } from './helpers/sandbox-app.js';
import { spawnServer, type SpawnedServer } from './helpers/spawn-server.js';

const CHROMIUM = '/usr/bin/chromium';

/** A GET through the proxy on loopback with the URL's Host header. */
async function viaProxy(port: number, host: string, path = '/', headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host, ...headers }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => s.destroy(), 3000);
    s.setEncoding('utf8');
    s.on('data', (c: string) => (out += c));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.on('error', () => undefined);
    s.write(text);
  });
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('public URLs through the proxy (real server, real sandboxes)', { timeout: 900_000 }, () => {
  let server: SpawnedServer;
  let admin: Client;
  let other: Client;
  let host: string;
  let url: string;
  let jobId: string;

  before(async () => {
    server = await spawnServer({ env: { MAGS_POOL_MIN_SIZE: '0', MAGS_FREEZE_AFTER_SECONDS: '2', MAGS_SLEEP_AFTER_SECONDS: '8', MAGS_PROXY_WAKE_TIMEOUT_SECONDS: '60' } });
    admin = client(server.url, server.token);
    const u = await admin.req('POST', '/api/v1/users', { name: 'mallory' });
    assert.equal(u.status, 201, JSON.stringify(u.body));
    other = client(server.url, u.body.token as string);
    jobId = await admin.submit({ type: 'inline', script: sandboxAppScript(8080), persistent: true, name: 'webapp', workspace_id: 'webapp', startup_command: 'python3 /root/app.py 8080' }, 2);
    await until('the job to run with a sandbox', async () => {
      const s = await admin.req('GET', `/api/v2/mags-jobs/${jobId}/status`);
      if (s.body.status === 'error' || s.body.status === 'completed') throw new Error(`job ended: ${JSON.stringify(s.body)}`);
      return s.body.status === 'running' && s.body.vm_id ? s.body : undefined;
    });
    const access = await admin.req('POST', '/api/v2/mags-jobs/webapp/access', { port: 8080 });
    assert.equal(access.status, 200, JSON.stringify(access.body));
    url = access.body.url as string;
    host = new URL(url).host;
    assert.match(access.body.subdomain as string, /^[0-9a-f]{12}$/);
    assert.equal(url, `http://${access.body.subdomain as string}.apps.localhost:${server.proxyPort}`);
    await until('the app to answer through the proxy', async () => (await viaProxy(server.proxyPort, host)).status === 200);
  });

  after(async () => {
    await server?.stop();
  });

  it('status shows subdomain and url; a Node client gets the page with X-Forwarded-* headers', async () => {
    const st = await admin.req('GET', '/api/v2/mags-jobs/webapp/status');
    assert.equal(st.body.url, url);
    assert.equal(typeof st.body.subdomain, 'string');
    const page = await viaProxy(server.proxyPort, host);
    assert.equal(page.status, 200);
    assert.match(page.body, /Hello from a Mags sandbox/);
    const h = JSON.parse((await viaProxy(server.proxyPort, host, '/headers')).body) as Record<string, string>;
    assert.equal(h['x-forwarded-host'], host);
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
  });

  it('headless Chromium loads the page at its *.localhost URL (screenshot in docs/img)', { skip: !existsSync(CHROMIUM) && 'no /usr/bin/chromium' }, async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 900, height: 420 } });
      const res = await page.goto(url + '/', { waitUntil: 'load' });
      assert.equal(res?.status(), 200);
      assert.equal(await page.title(), 'Hello from a Mags sandbox');
      await mkdir(join(REPO_ROOT, 'docs', 'img'), { recursive: true });
      await page.screenshot({ path: join(REPO_ROOT, 'docs', 'img', 'proxy-webapp.png') });
      const missing = await page.goto(`http://nosuchapp.apps.localhost:${server.proxyPort}/`);
      assert.equal(missing?.status(), 404);
      assert.match(await page.content(), /No app is published/);
    } finally {
      await browser.close();
    }
  });

  it('WebSocket echo and SSE through the proxy', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.proxyPort}/ws`, { headers: { host } });
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      const reply = new Promise<string>((r) => ws.once('message', (m) => r(m.toString())));
      ws.send('hello sandbox');
      assert.equal(await reply, 'echo:hello sandbox');
    } finally {
      ws.close();
    }
    const t0 = Date.now();
    const times: number[] = [];
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: server.proxyPort, path: '/sse', headers: { host, accept: 'text/event-stream' } }, (res) => {
        assert.equal(res.headers['content-type'], 'text/event-stream');
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          times.push(Date.now() - t0);
          b += c;
        });
        res.on('end', () => resolve(b));
      });
      req.on('error', reject);
      req.end();
    });
    assert.match(body, /data: tick 0\n\n[\s\S]*data: tick 2\n\n/);
    assert.ok(times[0]! < times.at(-1)! - 400, `events streamed as sent (${times.join(', ')} ms)`);
  });

  it('200 concurrent requests are all answered', async () => {
    const results = await Promise.all(Array.from({ length: 200 }, () => viaProxy(server.proxyPort, host, '/index.html')));
    const bad = results.filter((r) => r.status !== 200 || !/Hello from a Mags sandbox/.test(r.body));
    const why = (b: string) => /<p>([^<]*)<\/p>/.exec(b)?.[1] ?? b.slice(0, 200);
    assert.equal(bad.length, 0, `${bad.length} failed, e.g. ${bad[0]?.status} ${why(bad[0]?.body ?? '')}\n${server.stderr().split('\n').filter((l) => /app connection failed/.test(l)).slice(-3).join('\n')}`);
  });

  it('a 1 GiB download through the proxy keeps the daemon RSS flat', async () => {
    const pid = server.child.pid!;
    const base = rssKb(pid);
    let peak = base;
    const sampler = setInterval(() => (peak = Math.max(peak, rssKb(pid))), 100);
    const total = 1024 ** 3;
    try {
      const got = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: server.proxyPort, path: `/bytes/${total}`, headers: { host } }, (res) => {
          let n = 0;
          res.on('data', (c: Buffer) => (n += c.length));
          res.on('end', () => resolve(n));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(got, total);
    } finally {
      clearInterval(sampler);
    }
    const growthMb = (peak - base) / 1024;
    process.stderr.write(`# daemon RSS ${Math.round(base / 1024)} MiB before, peak +${growthMb.toFixed(1)} MiB during a 1 GiB download\n`);
    assert.ok(growthMb < 100, `daemon RSS grew ${growthMb.toFixed(0)} MiB`);
  });

  it('hostile hosts and smuggling attempts get 400/404 and never reach the sandbox', async () => {
    const count = async () => Number((await viaProxy(server.proxyPort, host, '/count')).body);
    const before = await count();
    const attempts = [
      `POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      `POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde`,
      `GET / HTTP/1.1\r\nHost: ${host}\r\nHost: other.apps.localhost\r\n\r\n`,
      `POST / HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: gzip\r\n\r\n`,
      `GET http://169.254.169.254/ HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      `GET / HTTP/1.1\r\nHost: ${host}/../x\r\n\r\n`,
    ];
    for (const a of attempts) assert.match(await raw(server.proxyPort, a), /^HTTP\/1\.1 400 /, JSON.stringify(a.slice(0, 60)));
    for (const h of ['127.0.0.1', 'localhost', `x.${host}`, 'apps.localhost', `${host.split('.')[0]}.apps.localhost.evil.com`]) {
      assert.equal((await viaProxy(server.proxyPort, h)).status, 404, h);
    }
    // The two /count calls are the only requests the app saw.
    assert.equal(await count(), before + 1);
  });

  it('aliases: another user cannot take a used subdomain; token mode: only the owner gets in', async () => {
    const alias = await admin.req('POST', '/api/v2/mags-url-aliases', { subdomain: 'myshop', workspace_id: 'webapp', port: 8080 });
    assert.equal(alias.status, 200, JSON.stringify(alias.body));
    assert.equal(alias.body.url, `http://myshop.apps.localhost:${server.proxyPort}`);
    assert.match((await viaProxy(server.proxyPort, `myshop.apps.localhost:${server.proxyPort}`)).body, /Hello from a Mags sandbox/);
    const theirs = await other.req('POST', '/api/v2/mags-url-aliases', { subdomain: 'myshop', workspace_id: 'webapp' });
    assert.equal(theirs.status, 404, 'their own workspace check comes first');
    const otherJob = await other.submit({ type: 'inline', script: 'true', persistent: true, workspace_id: 'mine' }, 2);
    await until('their job to run', async () => (await other.req('GET', `/api/v2/mags-jobs/${otherJob}/status`)).body.status === 'running');
    const taken = await other.req('POST', '/api/v2/mags-url-aliases', { subdomain: 'myshop', workspace_id: 'mine' });
    assert.equal(taken.status, 409);
    assert.match(taken.body.error as string, /already in use/);
    assert.equal((await other.req('DELETE', '/api/v2/mags-url-aliases/myshop')).status, 404);
    assert.equal((await other.req('POST', `/api/v2/mags-jobs/${jobId}/access`, { port: 8080 })).status, 404, "another user's job is not theirs to open");

    const priv = await admin.req('POST', '/api/v2/mags-jobs/webapp/access', { port: 8080, auth: 'token' });
    assert.equal(priv.status, 200, JSON.stringify(priv.body));
    assert.equal(priv.body.auth, 'token');
    assert.equal((await viaProxy(server.proxyPort, host)).status, 401);
    assert.equal((await viaProxy(server.proxyPort, host, '/', { authorization: `Bearer ${other.token}` })).status, 403);
    assert.equal((await viaProxy(server.proxyPort, host, '/', { authorization: `Bearer ${admin.token}` })).status, 200);
    const link = new URL(priv.body.login_url as string);
    const login = await viaProxy(server.proxyPort, host, link.pathname + link.search);
    assert.equal(login.status, 302);
    const cookie = login.headers['set-cookie']![0]!.split(';')[0]!;
    assert.equal((await viaProxy(server.proxyPort, host, '/', { cookie })).status, 200);
    assert.equal((await admin.req('POST', '/api/v2/mags-jobs/webapp/access', { port: 8080, auth: 'public' })).body.auth, 'public');
    assert.equal((await viaProxy(server.proxyPort, host)).status, 200);
    await other.req('POST', `/api/v1/mags-jobs/${otherJob}/stop`);
  });

  it('a request to a sleeping job wakes it (startup_command) and the page loads; a stopped job answers 410', async () => {
    await until('the job to sleep', async () => (await admin.req('GET', '/api/v2/mags-jobs/webapp/status')).body.status === 'sleeping', 120_000);
    const t0 = Date.now();
    const woke = await viaProxy(server.proxyPort, host);
    const ms = Date.now() - t0;
    assert.equal(woke.status, 200, woke.body.slice(0, 300));
    assert.match(woke.body, /Hello from a Mags sandbox/, 'the workspace files are intact');
    process.stderr.write(`# sleeping job -> first byte through the proxy: ${ms} ms (sandbox start + python start included)\n`);
    assert.equal((await admin.req('GET', '/api/v2/mags-jobs/webapp/status')).body.status, 'running');
    assert.match((await viaProxy(server.proxyPort, `myshop.apps.localhost`)).body, /Hello from a Mags sandbox/, 'the alias follows the woken job');
    assert.equal((await admin.req('POST', '/api/v1/mags-jobs/webapp/stop')).status, 200);
    await until('the URL to answer 410', async () => (await viaProxy(server.proxyPort, host)).status === 410, 30_000);
    assert.equal((await viaProxy(server.proxyPort, 'myshop.apps.localhost')).status, 410);
  });
});
