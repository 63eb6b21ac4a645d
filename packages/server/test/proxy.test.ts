/**
 * The public-URL proxy on real HTTP, real SQLite and real upstream servers on loopback, with a
 * small fake LiveSandboxes (the layer below: its sandboxes "live" at 127.0.0.1). Routing, errors,
 * hostile input, smuggling, WebSockets, SSE, concurrency, streaming, URL auth and aliases.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { silentLogger } from '../src/logger.js';
import { ProxyCounters } from '../src/proxy/metrics.js';
import { PublicProxy } from '../src/proxy/server.js';
import type { Sandbox } from '../src/runtime/driver.js';
import type { AttachOptions, LiveAttachment, LiveSandboxes, LiveState } from '../src/sandboxes/live.js';
import { AppError } from '../src/services/errors.js';
import { UrlService } from '../src/services/urls.js';
import { UsersService } from '../src/services/users.js';
import type { Job, User } from '../src/storage/metadata/store.js';
import { openStores, type Stores } from '../src/storage/stores.js';
import { freePort } from './helpers/free-port.js';

/** LiveSandboxes whose every sandbox is 127.0.0.1; records attachments and can simulate sleep. */
class FakeLive implements LiveSandboxes {
  states = new Map<string, LiveState>();
  open = 0;
  attaches = 0;
  /** Called on a wake (state sleeping/frozen) before attach() resolves. */
  onWake?: (job: Job) => Promise<void> | void;
  private listeners = new Set<(id: string, s: LiveState) => void>();

  async attach(job: Job, _purpose: string, opts: AttachOptions = {}): Promise<LiveAttachment> {
    this.attaches++;
    const state = this.state(job.request_id);
    if (state === 'ended') throw new AppError('JOB_NOT_RUNNING', 'ended');
    let woke: LiveAttachment['woke'] = 'no';
    if (state === 'sleeping' || state === 'frozen') {
      woke = state === 'frozen' ? 'thawed' : 'started';
      await this.onWake?.(job);
      if (opts.signal?.aborted) throw new Error('aborted');
      this.set(job.request_id, 'running');
    }
    this.open++;
    let done = false;
    return {
      job,
      sandbox: { ipAddress: '127.0.0.1' } as Sandbox,
      woke,
      release: () => {
        if (!done) this.open--;
        done = true;
      },
    };
  }
  touch(): void {}
  state(jobId: string): LiveState {
    return this.states.get(jobId) ?? 'running';
  }
  set(jobId: string, s: LiveState): void {
    this.states.set(jobId, s);
    for (const l of this.listeners) l(jobId, s);
  }
  onChange(listener: (id: string, s: LiveState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

function jobRow(user: User, port: number, over: Partial<Job> = {}): Job {
  const now = new Date().toISOString();
  return {
    request_id: randomUUID(), user_id: user.id, name: null, workspace_id: null, base_workspace_id: null, type: 'inline',
    script: 'serve', persistent: true, no_sleep: false, startup_command: null, environment: {}, file_ids: [], disk_gb: 2,
    vcpus: 1, memory_mb: 256, rootfs_type: null, timeout_seconds: null, api_version: 1, status: 'running', exit_code: null,
    end_reason: null, error_message: null, vm_id: 'vm', host: null, subdomain: null, url: null, script_duration_ms: null,
    created_at: now, started_at: now, completed_at: null, updated_at: now, ...over,
  } satisfies Job & { port?: number } as Job;
}

/** One HTTP request to the proxy with a chosen Host; the full body as text. */
async function get(port: number, host: string, path = '/', headers: Record<string, string> = {}, agent?: http.Agent): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host, ...headers }, agent }, (res) => {
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

/** Raw bytes to the proxy; everything it answers before closing (or after `waitMs`). */
async function raw(port: number, text: string, waitMs = 1500): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(out);
    }, waitMs);
    s.setEncoding('utf8');
    s.on('data', (c: string) => (out += c));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      if (out) resolve(out);
      else reject(err);
    });
    s.write(text);
  });
}

describe('public-URL proxy', () => {
  let dir: string;
  let stores: Stores;
  let users: UsersService;
  let urls: UrlService;
  let live: FakeLive;
  let proxy: PublicProxy;
  let proxyPort: number;
  let counters: ProxyCounters;
  let owner: { user: User; token: string };
  let other: { user: User; token: string };
  let app: http.Server;
  let appPort: number;
  let appRequests: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[];
  let wss: WebSocketServer;
  let job: Job;
  let sub: string;
  let resetDone = false;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mags-proxy-'));
    stores = await openStores({ sqlitePath: join(dir, 'mags.db') });
    users = new UsersService(stores.users, silentLogger());
    owner = (await users.bootstrapAdmin())!;
    other = await users.createUser(owner.user, 'other', false);
    live = new FakeLive();
    urls = new UrlService(stores.urlRoutes, stores.jobs, stores.workspaces, users, { domain: 'localhost', scheme: 'http', publicPort: () => proxyPort }, silentLogger());
    urls.watch(live);
    counters = new ProxyCounters();
    proxy = new PublicProxy({ urls, live, domain: 'localhost', wakeTimeoutMs: 1500, log: silentLogger(), metrics: counters });
    proxyPort = await proxy.listen('127.0.0.1', 0);

    appRequests = [];
    app = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        appRequests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        if (req.url === '/reset-once' && !resetDone) {
          resetDone = true;
          req.socket.destroy();
          return;
        }
        if (req.url === '/sse') {
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
          let n = 0;
          const t = setInterval(() => {
            res.write(`data: tick ${n++}\n\n`);
            if (n === 3) {
              clearInterval(t);
              res.end();
            }
          }, 200);
          return;
        }
        if (req.url!.startsWith('/bytes/')) {
          const total = Number(req.url!.slice(7));
          const chunk = Buffer.alloc(1024 * 1024, 120);
          let sent = 0;
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
          const pump = () => {
            while (sent < total) {
              const n = Math.min(chunk.length, total - sent);
              sent += n;
              if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
            }
            res.end();
          };
          return pump();
        }
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`hello ${req.method} ${req.url} ${body}`);
      });
    });
    wss = new WebSocketServer({ server: app });
    wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo:${m.toString()}`)));
    appPort = await new Promise<number>((r) => app.listen(0, '127.0.0.1', () => r((app.address() as AddressInfo).port)));

    job = jobRow(owner.user, appPort);
    await stores.jobs.insertJob(job);
    const granted = await urls.grant(job, appPort, {});
    sub = granted.subdomain as string;
  });

  after(async () => {
    try {
      await proxy.close();
      wss.close();
      app.closeAllConnections();
      await new Promise<void>((r) => app.close(() => r()));
      urls.close();
      await stores.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('grant: a 12-hex subdomain, a URL on the proxy port, stored on the job; the same port grants the same URL', async () => {
    assert.match(sub, /^[0-9a-f]{12}$/);
    const again = await urls.grant(job, appPort, {});
    assert.equal(again.subdomain, sub);
    assert.equal(again.url, `http://${sub}.apps.localhost:${proxyPort}`);
    const row = await stores.jobs.getJob(job.request_id);
    assert.equal(row!.subdomain, sub);
    assert.equal(row!.url, again.url);
    await assert.rejects(urls.grant({ ...job, persistent: false }, 9, {}), (e: AppError) => e.code === 'INVALID_STATE');
  });

  it('routes by Host to the app with X-Forwarded-For/Proto/Host, keep-alive reused, attachment released', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const host = `${sub}.apps.localhost:${proxyPort}`;
      const a = await get(proxyPort, host, '/a?x=1', {}, agent);
      const b = await get(proxyPort, host.toUpperCase(), '/b', {}, agent);
      assert.equal(a.status, 200);
      assert.equal(a.body, 'hello GET /a?x=1 ');
      assert.equal(b.body, 'hello GET /b ');
      const seen = appRequests.at(-1)!;
      assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(seen.headers['x-forwarded-proto'], 'http');
      assert.equal(seen.headers['x-forwarded-host'], host.toUpperCase());
      assert.equal(live.open, 0, 'every attachment released');
    } finally {
      agent.destroy();
    }
  });

  it('streams request bodies to the app (chunked and with a length)', async () => {
    const res = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: proxyPort, method: 'POST', path: '/up', headers: { host: `${sub}.apps.localhost` } }, (r) => {
        let b = '';
        r.on('data', (c: Buffer) => (b += c));
        r.on('end', () => resolve(b));
      });
      req.on('error', reject);
      req.write('part1-');
      setTimeout(() => req.end('part2'), 50);
    });
    assert.equal(res, 'hello POST /up part1-part2');
  });

  it('a connection the app resets before answering: a bodiless request is sent once more', async () => {
    const r = await get(proxyPort, `${sub}.apps.localhost`, '/reset-once');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello GET /reset-once ');
    assert.ok(resetDone);
  });

  it('unknown and foreign hosts: 404 page (HTML, or JSON when asked); bad Host: 400', async () => {
    const html = await get(proxyPort, 'nosuchapp.apps.localhost');
    assert.equal(html.status, 404);
    assert.match(html.headers['content-type']!, /text\/html/);
    assert.match(html.body, /No app is published/);
    const json = await get(proxyPort, 'example.com', '/', { accept: 'application/json' });
    assert.equal(json.status, 404);
    assert.equal(JSON.parse(json.body).code, 'URL_NOT_FOUND');
    const before = appRequests.length;
    for (const host of [`${sub}.apps.localhost:99999`, 'a b', `${sub}.apps.localhost@evil.com`, '[::1]']) {
      const r = await raw(proxyPort, `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      assert.match(r, /^HTTP\/1\.1 400 /, `Host ${host}: ${r.slice(0, 60)}`);
    }
    assert.equal(appRequests.length, before, 'nothing reached the app');
  });

  it('smuggling and ambiguity: CL+TE, double CL, double Host, odd TE, absolute-form: 400 and never reach the app', async () => {
    const host = `${sub}.apps.localhost`;
    const before = appRequests.length;
    const attempts = [
      `POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      `POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde`,
      `POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc`,
      `GET / HTTP/1.1\r\nHost: ${host}\r\nHost: other.apps.localhost\r\n\r\n`,
      `POST / HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
      `POST / HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: identity\r\n\r\n`,
      `GET http://evil.example/ HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      `GET //evil.example/ HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      `GET / HTTP/1.1\r\n\r\n`,
    ];
    for (const a of attempts) {
      const r = await raw(proxyPort, a);
      assert.match(r, /^HTTP\/1\.1 400 /, `${JSON.stringify(a.slice(0, 70))} -> ${JSON.stringify(r.slice(0, 80))}`);
      assert.doesNotMatch(r, /hello/);
    }
    assert.equal(appRequests.length, before, 'no attempt reached the app');
    assert.equal(live.open, 0);
  });

  it('WebSocket echo through the proxy; the attachment is held while the socket is open', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${proxyPort}/ws`, { headers: { host: `${sub}.apps.localhost` } });
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      assert.equal(live.open, 1, 'held while open');
      const reply = new Promise<string>((r) => ws.once('message', (m) => r(m.toString())));
      ws.send('ping');
      assert.equal(await reply, 'echo:ping');
    } finally {
      ws.close();
    }
    await waitFor(() => live.open === 0, 'released after close');
  });

  it('SSE: events arrive as they are sent, not at the end', async () => {
    const t0 = Date.now();
    const firstAt = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: proxyPort, path: '/sse', headers: { host: `${sub}.apps.localhost`, accept: 'text/event-stream' } }, (res) => {
        assert.equal(res.headers['content-type'], 'text/event-stream');
        let first = 0;
        let body = '';
        res.on('data', (c: Buffer) => {
          if (!first) first = Date.now() - t0;
          body += c;
        });
        res.on('end', () => {
          assert.match(body, /data: tick 0\n\n[\s\S]*data: tick 2/);
          resolve(first);
        });
      });
      req.on('error', reject);
      req.end();
    });
    assert.ok(firstAt < 550, `first event after ${firstAt} ms (the stream ends after ~600 ms)`);
  });

  it('200 concurrent requests are all answered', async () => {
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => get(proxyPort, `${sub}.apps.localhost`, `/c${i}`)));
    assert.ok(results.every((r, i) => r.status === 200 && r.body === `hello GET /c${i} `));
    await waitFor(() => live.open === 0, 'all released');
  });

  it('a 1 GiB download streams through with flat memory', async () => {
    const total = 1024 ** 3;
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    try {
      const got = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: proxyPort, path: `/bytes/${total}`, headers: { host: `${sub}.apps.localhost` } }, (res) => {
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
    const growthMb = (peak - rss0) / 1024 ** 2;
    assert.ok(growthMb < 150, `RSS grew ${growthMb.toFixed(0)} MiB during a 1 GiB download`);
  });

  it('app not listening: 502; job ended: 410; wake waits for the port, else 504', async () => {
    const deadPort = await freePort();
    const idle = jobRow(owner.user, deadPort);
    await stores.jobs.insertJob(idle);
    const g = await urls.grant(idle, deadPort, {});
    const host = `${g.subdomain as string}.apps.localhost`;
    const r502 = await get(proxyPort, host, '/', { accept: 'application/json' });
    assert.equal(r502.status, 502);
    assert.equal(JSON.parse(r502.body).code, 'APP_NOT_LISTENING');

    // A sleeping job: the wake starts the app 300 ms later; the request waits and is served.
    live.set(idle.request_id, 'sleeping');
    let late: http.Server | undefined;
    live.onWake = () => {
      setTimeout(() => {
        late = http.createServer((_q, s) => s.end('woke up')).listen(deadPort, '127.0.0.1');
      }, 300);
    };
    try {
      const woke = await get(proxyPort, host);
      assert.equal(woke.status, 200);
      assert.equal(woke.body, 'woke up');
    } finally {
      live.onWake = undefined;
      late?.closeAllConnections();
      await new Promise<void>((r) => (late ? late.close(() => r()) : r()));
    }
    // A wake whose app never comes: 504 within the bound.
    live.set(idle.request_id, 'frozen');
    const t0 = Date.now();
    const r504 = await get(proxyPort, host, '/', { accept: 'application/json' });
    assert.equal(r504.status, 504);
    assert.equal(JSON.parse(r504.body).code, 'APP_WAKE_TIMEOUT');
    assert.ok(Date.now() - t0 < 4000);

    live.set(idle.request_id, 'ended');
    const ended = await get(proxyPort, host);
    assert.equal(ended.status, 410, 'attach refuses an ended job');
    await stores.jobs.updateJob(idle.request_id, { status: 'completed' });
    live.set(idle.request_id, 'ended');
    const r410 = await get(proxyPort, host);
    assert.equal(r410.status, 410);
    assert.match(r410.body, /has ended/);
    assert.equal(live.open, 0);
  });

  it('token mode: no token 401, another user 403, the owner passes (credentials not forwarded), one-time login link sets a cookie', async () => {
    const priv = jobRow(owner.user, appPort);
    await stores.jobs.insertJob(priv);
    const g = await urls.grant(priv, appPort, { auth: 'token' });
    assert.equal(g.auth, 'token');
    const host = `${g.subdomain as string}.apps.localhost`;
    const before = appRequests.length;
    assert.equal((await get(proxyPort, host)).status, 401);
    assert.equal((await get(proxyPort, host, '/', { authorization: `Bearer ${other.token}` })).status, 403);
    assert.equal((await get(proxyPort, host, '/', { authorization: 'Bearer mags_nonsense' })).status, 401);
    assert.equal(appRequests.length, before, 'refused requests never reached the app');
    const ok = await get(proxyPort, host, '/mine', { authorization: `Bearer ${owner.token}` });
    assert.equal(ok.status, 200);
    assert.equal(appRequests.at(-1)!.headers.authorization, undefined, 'the API token is not forwarded');

    const link = new URL(g.login_url as string);
    assert.equal(link.host, `${host}:${proxyPort}`);
    const login = await get(proxyPort, host, link.pathname + link.search);
    assert.equal(login.status, 302);
    const cookie = login.headers['set-cookie']![0]!;
    assert.match(cookie, /HttpOnly/);
    const session = cookie.split(';')[0]!;
    const withCookie = await get(proxyPort, host, '/c', { cookie: `${session}; theme=dark` });
    assert.equal(withCookie.status, 200);
    assert.equal(appRequests.at(-1)!.headers.cookie, 'theme=dark', 'the session cookie is not forwarded');
    assert.equal((await get(proxyPort, host, link.pathname + link.search)).status, 403, 'a link works once');
    // The cookie is scoped to its host: another token-mode URL does not accept it.
    const other2 = await urls.grant(priv, appPort + 1 > 65535 ? 1 : appPort + 1, { auth: 'token' });
    assert.equal((await get(proxyPort, `${other2.subdomain as string}.apps.localhost`, '/', { cookie: session })).status, 401);
  });

  it('aliases: follow the workspace job, unique across users (409 "already in use"), label syntax and reserved names refused', async () => {
    const wsJob = jobRow(owner.user, appPort, { workspace_id: 'site', name: 'site' });
    await stores.jobs.insertJob(wsJob);
    const a = await urls.createAlias(owner.user, { subdomain: 'My-Site', workspace_id: 'site', port: appPort });
    assert.equal(a.subdomain, 'my-site');
    assert.equal(a.url, `http://my-site.apps.localhost:${proxyPort}`);
    const r = await get(proxyPort, 'my-site.apps.localhost', '/x');
    assert.equal(r.body, 'hello GET /x ');

    const otherJob = jobRow(other.user, appPort, { workspace_id: 'site2' });
    await stores.jobs.insertJob(otherJob);
    await assert.rejects(urls.createAlias(other.user, { subdomain: 'my-site', workspace_id: 'site2' }), (e: AppError) => e.code === 'CONFLICT' && /already in use/.test(e.message));
    await assert.rejects(urls.createAlias(other.user, { subdomain: sub, workspace_id: 'site2' }), (e: AppError) => e.code === 'VALIDATION_ERROR');
    for (const bad of ['www', 'api', '-x', 'a_b', 'a.b', 'x'.repeat(64), '']) {
      await assert.rejects(urls.createAlias(owner.user, { subdomain: bad, workspace_id: 'site' }), (e: AppError) => e.code === 'VALIDATION_ERROR', bad);
    }
    await assert.rejects(urls.createAlias(owner.user, { subdomain: 'elsewhere', workspace_id: 'site', domain: 'evil.com' }), (e: AppError) => e.code === 'VALIDATION_ERROR');
    await assert.rejects(urls.createAlias(other.user, { subdomain: 'theirs', workspace_id: 'site' }), (e: AppError) => e.code === 'WORKSPACE_NOT_FOUND', "another user's workspace");
    await assert.rejects(urls.deleteAlias(other.user, 'my-site'), (e: AppError) => e.code === 'URL_ALIAS_NOT_FOUND');
    await assert.rejects(urls.deleteAlias(owner.user, 'a\u0000b'), (e: AppError) => e.code === 'URL_ALIAS_NOT_FOUND');
    await assert.rejects(urls.createAlias(owner.user, { subdomain: 'nul', workspace_id: 'si\u0000te' }), (e: AppError) => e.code === 'VALIDATION_ERROR');
    assert.deepEqual((await urls.listAliases(other.user)).length, 0);

    // The job ends: the alias answers 410 until a new job runs on the workspace.
    await stores.jobs.updateJob(wsJob.request_id, { status: 'completed' });
    live.set(wsJob.request_id, 'ended');
    assert.equal((await get(proxyPort, 'my-site.apps.localhost')).status, 410);
    const next = jobRow(owner.user, appPort, { workspace_id: 'site' });
    await stores.jobs.insertJob(next);
    live.set(next.request_id, 'running');
    assert.equal((await get(proxyPort, 'my-site.apps.localhost', '/again')).body, 'hello GET /again ');

    await urls.deleteAlias(owner.user, 'my-site');
    assert.equal((await get(proxyPort, 'my-site.apps.localhost')).status, 404);
  });

  it('counts answers by status class', () => {
    const s = counters.snapshot();
    assert.ok(s['2xx'] >= 200);
    assert.ok(s['4xx'] >= 10);
    assert.ok(s['5xx'] >= 2);
    assert.ok(s['1xx'] >= 1);
  });
});

async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
