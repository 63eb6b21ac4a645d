import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { postJson, refusedAddress, resolveTarget } from '../src/webhooks/target.js';
import { createHarness, type Harness } from './helpers/harness.js';
import { startReceiver, type Receiver } from './helpers/webhook-receiver.js';

/** The SSRF guard: refused targets without MAGS_WEBHOOK_ALLOW_PRIVATE, pinned connections, no redirects, capped answers. */
describe('webhook targets (SSRF guard)', () => {
  let h: Harness;
  let auth: Record<string, string>;
  let rx: Receiver;
  before(async () => {
    h = await createHarness({ webhookAllowPrivate: false });
    auth = { authorization: `Bearer ${await h.makeUser('ssrf')}` };
    rx = await startReceiver();
  });
  after(async () => {
    await h?.close();
    await rx?.close();
  });

  const refused = [
    'http://127.0.0.1/hook',
    'http://127.1.2.3:8080/',
    'http://169.254.169.254/latest/meta-data/',
    'http://10.0.0.7/',
    'http://192.168.1.1/',
    'http://172.16.0.1/',
    'http://100.64.0.1/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:a9fe:a9fe]/',
    'http://[fe80::1]/',
    'http://0.0.0.0/',
    'http://224.0.0.1/',
    'http://localhost/',
  ];

  it('endpoints pointing at loopback, link-local, private, CGNAT, multicast or a name resolving to loopback get 400', async () => {
    for (const url of refused) {
      const res = await h.app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: auth, payload: { url } });
      assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
      assert.equal(res.json().code, 'WEBHOOK_TARGET_REFUSED', url);
      assert.match(res.json().error, /^url: /);
    }
    const list = await h.app.inject({ method: 'GET', url: '/api/v1/webhooks', headers: auth });
    assert.equal(list.json().webhooks.length, 0, 'nothing half-written');
  });

  it('non-http schemes and credentials are refused', async () => {
    for (const url of ['file:///etc/passwd', 'gopher://example.com/', 'ftp://example.com/', 'http://user:pw@example.com/', 'not a url']) {
      const res = await h.app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: auth, payload: { url } });
      assert.equal(res.statusCode, 400, url);
      assert.equal(res.json().code, 'WEBHOOK_TARGET_REFUSED');
    }
  });

  it("a job's and a schedule's webhook_url get the same check", async () => {
    await h.app.inject({ method: 'POST', url: '/api/v1/webhooks/signing-key', headers: auth });
    const job = await h.app.inject({ method: 'POST', url: '/api/v1/mags-jobs', headers: auth, payload: { script: 'true', type: 'inline', webhook_url: 'http://169.254.169.254/' } });
    assert.equal(job.statusCode, 400);
    assert.equal(job.json().code, 'WEBHOOK_TARGET_REFUSED');
    assert.match(job.json().error, /^webhook_url: /);
    const cron = await h.app.inject({ method: 'POST', url: '/api/v1/mags-cron', headers: auth, payload: { name: 'x', cron_expression: '@daily', script: 'true', webhook_url: 'http://[::1]:9/' } });
    assert.equal(cron.statusCode, 400);
    assert.equal(cron.json().code, 'WEBHOOK_TARGET_REFUSED');
    assert.equal((await h.app.inject({ method: 'GET', url: '/api/v1/mags-jobs', headers: auth })).json().total, 0, 'no job was stored');
  });

  it('classifies addresses, mapped forms included', () => {
    assert.equal(refusedAddress('93.184.216.34', new Set()), undefined);
    assert.equal(refusedAddress('2606:4700:4700::1111', new Set()), undefined);
    assert.match(refusedAddress('::ffff:10.1.1.1', new Set())!, /maps to 10\.1\.1\.1/);
    assert.match(refusedAddress('64:ff9b::7f00:1', new Set())!, /maps to 127\.0\.0\.1/);
    assert.match(refusedAddress('93.184.216.34', new Set(['93.184.216.34']))!, /own addresses/);
  });

  it('connects to the checked address, not to a fresh DNS answer (no rebinding)', async () => {
    const port = rx.port;
    const t = await resolveTarget('url', `http://localhost:${port}/pinned`, true);
    // The same target with a host name that resolves nowhere: the request still goes to the checked address.
    const pinned = { ...t, url: new URL(`http://rebind.invalid:${port}/pinned`) };
    const r = await postJson(pinned, {}, '{}', 5000, 4096);
    assert.equal(r.status, 200, r.error ?? '');
    const got = rx.got.at(-1)!;
    assert.equal(got.path, '/pinned');
    assert.equal(got.headers.host, `rebind.invalid:${port}`);
  });

  it('does not follow redirects and keeps at most 4 KiB of the answer', async () => {
    let hits = 0;
    rx.respond = (req, res) => {
      hits++;
      if (req.path === '/redirect') res.writeHead(302, { location: `http://127.0.0.1:${rx.port}/elsewhere` }).end('moved');
      else res.writeHead(200).end('x'.repeat(10_000));
    };
    const t = await resolveTarget('url', `http://127.0.0.1:${rx.port}/redirect`, true);
    const r = await postJson(t, {}, '{}', 5000, 4096);
    assert.equal(r.status, 302);
    assert.equal(hits, 1, 'the redirect target was not requested');
    const big = await postJson(await resolveTarget('url', `http://127.0.0.1:${rx.port}/big`, true), {}, '{}', 5000, 4096);
    assert.equal(big.body.length, 4096);
    rx.respond = (_req, res) => res.writeHead(200).end('ok');
  });
});
