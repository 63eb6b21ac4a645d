/**
 * `mags run -p --url`, `mags url [--private]` and `mags url alias ...` as subprocesses against a
 * real server with real sandboxes; the printed URLs are fetched through the server's proxy.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { cleanEnv, mags, startServer, tempHome, type MagsResult, type TestServer } from './helpers.js';

/** GET through the proxy on loopback with the URL's host. */
function fetchVia(server: TestServer, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: server.proxyPort, path: u.pathname + u.search, headers: { host: u.host, ...headers }, agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

describe('mags url against a real server', () => {
  let server: TestServer;
  let removeHome: () => void;
  let env: Record<string, string>;
  const run = (args: string[]): Promise<MagsResult> => mags(args, { env });
  const ok = (r: MagsResult, what: string): MagsResult => {
    assert.equal(r.code, 0, `${what} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r;
  };

  before(async () => {
    server = await startServer({ env: { MAGS_POOL_MIN_SIZE: '0' } });
    const t = tempHome();
    removeHome = t.remove;
    env = cleanEnv({ HOME: t.home, MAGS_API_URL: server.url, MAGS_API_TOKEN: server.token });
  });

  after(async () => {
    try {
      await run(['stop', 'cli-web']).catch(() => undefined);
    } finally {
      await server?.stop();
      removeHome?.();
    }
  });

  test('run -p --url prints a URL that serves the app; url, url --private, alias add/list/remove', async () => {
    const script = "mkdir -p /root/site && echo 'cli says hi' > /root/site/index.html && cd /root/site && exec python3 -m http.server 8080";
    const r = ok(await run(['run', '-w', 'cli-web', '--name', 'cli-web', '-p', '--url', '--port', '8080', script]), 'run -p --url');
    const url = r.stdout.trim();
    assert.match(url, /^http:\/\/[0-9a-f]{12}\.apps\.localhost:\d+$/);
    let page = { status: 0, body: '' };
    for (let i = 0; i < 100 && page.status !== 200; i++) {
      page = await fetchVia(server, url + '/');
      if (page.status !== 200) await new Promise((res) => setTimeout(res, 200));
    }
    assert.equal(page.body, 'cli says hi\n');

    assert.equal(ok(await run(['url', 'cli-web', '8080']), 'url').stdout.trim(), url, 'the same port keeps its URL');
    const priv = ok(await run(['url', 'cli-web', '--private']), 'url --private');
    assert.equal(priv.stdout.trim(), url);
    const link = /(http:\/\/\S+\/__mags\/login\?token=\S+)/.exec(priv.stderr)?.[1];
    assert.ok(link, priv.stderr);
    assert.equal((await fetchVia(server, url + '/')).status, 401);
    assert.equal((await fetchVia(server, url + '/', { authorization: `Bearer ${server.token}` })).status, 200);
    ok(await run(['url', 'cli-web']), 'url (public again)');
    assert.equal((await fetchVia(server, url + '/')).status, 200);

    const alias = ok(await run(['url', 'alias', 'cli-shop', 'cli-web', '--port', '8080']), 'url alias');
    assert.match(alias.stdout.trim(), /^http:\/\/cli-shop\.apps\.localhost:\d+$/);
    assert.equal((await fetchVia(server, alias.stdout.trim() + '/')).body, 'cli says hi\n');
    const taken = await run(['url', 'alias', 'cli-shop', 'cli-web']);
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /already in use/);
    const list = JSON.parse(ok(await run(['url', 'alias', 'list', '--json']), 'url alias list').stdout) as { aliases: Array<{ subdomain: string; port: number }> };
    assert.deepEqual(list.aliases.map((a) => [a.subdomain, a.port]), [['cli-shop', 8080]]);
    assert.match(ok(await run(['url', 'alias', 'list']), 'list table').stdout, /^SUBDOMAIN\s+WORKSPACE\s+PORT\s+AUTH\s+URL\n cli-shop|^SUBDOMAIN/m);
    ok(await run(['url', 'alias', 'remove', 'cli-shop']), 'url alias remove');
    assert.equal((await run(['url', 'alias', 'remove', 'cli-shop'])).code !== 0, true);
    assert.match(ok(await run(['list']), 'list').stdout, new RegExp(url.replace(/[.:/]/g, '\\$&')));
  });
});
