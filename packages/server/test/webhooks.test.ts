import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { silentLogger } from '../src/logger.js';
import { WebhookDispatcher } from '../src/webhooks/dispatcher.js';
import { createHarness, type Harness } from './helpers/harness.js';
import { startReceiver, type Received, type Receiver } from './helpers/webhook-receiver.js';

/**
 * Webhook deliveries end to end in-process (fake sandbox pool, real HTTP to a loopback receiver):
 * Standard Webhooks signatures checked with the `standardwebhooks` verifier, retries after 500s
 * and timeouts, the delivery log, redelivery, disabling, and a restart continuing stored deliveries.
 */
describe('webhooks (in-process, loopback receiver)', () => {
  let h: Harness;
  let token: string;
  let auth: Record<string, string>;
  let rx: Receiver;
  before(async () => {
    h = await createHarness({ webhookAllowPrivate: true, freezeAfterSeconds: 0.1, sleepAfterSeconds: 0.3, webhookRetry: { timeoutMs: 500, retryBaseMs: 100, retryMaxMs: 400, retryWindowMs: 4000, disableAfterFailures: 5 } });
    token = await h.makeUser('hooks');
    auth = { authorization: `Bearer ${token}` };
    rx = await startReceiver();
  });
  after(async () => {
    await h?.close();
    await rx?.close();
  });

  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) =>
    h.app.inject({ method, url, headers: auth, ...(payload === undefined ? {} : { payload: payload as object }) });
  const verify = (secret: string, r: Received) =>
    new Webhook(secret).verify(r.body, {
      'webhook-id': String(r.headers['webhook-id']),
      'webhook-timestamp': String(r.headers['webhook-timestamp']),
      'webhook-signature': String(r.headers['webhook-signature']),
    }) as { type: string; data: Record<string, any> };
  const submit = async (body: Record<string, unknown>) => {
    const res = await call('POST', '/api/v1/mags-jobs', { type: 'inline', ...body });
    assert.equal(res.statusCode, 202, res.body);
    return res.json().request_id as string;
  };
  const deliveries = async (id: string) => (await call('GET', `/api/v1/webhooks/${id}/deliveries`)).json().deliveries as any[];
  const until = async <T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  let endpoint: { id: string; secret: string };

  it('an endpoint gets signed job.completed and job.failed events with output tail, exit code, duration and logs URL', async () => {
    const res = await call('POST', '/api/v1/webhooks', { url: rx.url, events: ['job.completed', 'job.failed'], description: 'ci' });
    assert.equal(res.statusCode, 201, res.body);
    endpoint = res.json();
    assert.match(endpoint.secret, /^whsec_[A-Za-z0-9+/=]{40,}$/);
    const listed = (await call('GET', '/api/v1/webhooks')).json().webhooks;
    assert.equal(listed[0].secret, undefined, 'the secret is shown once');
    assert.equal(listed[0].status, 'active');

    const ok = await submit({ name: 'tail', script: 'for i in $(seq 1 60); do echo line$i; done' });
    const bad = await submit({ name: 'bad', script: 'echo oops >&2; exit 3' });
    await h.waitDone(token, ok);
    await h.waitDone(token, bad);
    await rx.waitFor(2);
    const events = rx.got.map((r) => verify(endpoint.secret, r));
    const completed = events.find((e) => e.type === 'job.completed')!;
    assert.equal(completed.data.request_id, ok);
    assert.equal(completed.data.name, 'tail');
    assert.equal(completed.data.status, 'completed');
    assert.equal(completed.data.exit_code, 0);
    assert.equal(typeof completed.data.duration_ms, 'number');
    // The tail is the last 50 stored lines (the test pool may drop output of a script under heavy
    // load, so compare with what the logs endpoint has).
    const stored = (await call('GET', `/api/v1/mags-jobs/${ok}/logs`)).json().logs as Array<{ message: string; stream: string }>;
    assert.deepEqual(completed.data.output_tail, stored.slice(-50).map((l) => ({ stream: l.stream, message: l.message })));
    if (stored.length === 60) {
      assert.equal(completed.data.output_tail[0].message, 'line11');
      assert.equal(completed.data.output_tail[49].message, 'line60');
    }
    assert.match(completed.data.logs_url, new RegExp(`/api/v1/mags-jobs/${ok}/logs$`));
    assert.equal(completed.data.changes, null, 'no workspace, no changed files');
    const failed = events.find((e) => e.type === 'job.failed')!;
    assert.equal(failed.data.exit_code, 3);
    assert.equal(failed.data.status, 'error');
    assert.ok(failed.data.output_tail.some((l: { stream: string; message: string }) => l.stream === 'stderr' && l.message === 'oops'));
    // A tampered body fails verification.
    assert.throws(() => verify(endpoint.secret, { ...rx.got[0]!, body: rx.got[0]!.body.replace('"', ' "') }));
    const log = await until('delivered log', async () => {
      const d = await deliveries(endpoint.id);
      return d.length === 2 && d.every((x) => x.status === 'delivered') ? d : undefined;
    });
    assert.equal(log[0].attempts, 1);
    assert.equal(log[0].last_status_code, 200);
    assert.equal(log[0].last_response, 'ok');
  });

  it("a job's own webhook_url needs the signing key, then gets events signed with it", async () => {
    rx.got.length = 0;
    const refused = await call('POST', '/api/v1/mags-jobs', { type: 'inline', script: 'true', webhook_url: rx.url });
    assert.equal(refused.statusCode, 400);
    assert.match(refused.json().error, /^webhook_url: create your webhook signing key first/);
    const key = (await call('POST', '/api/v1/webhooks/signing-key')).json().secret as string;
    assert.match(key, /^whsec_/);
    const id = await submit({ script: 'echo own', webhook_url: `${rx.url}?own=1` });
    await h.waitDone(token, id);
    // The endpoint also gets it (job.completed): two deliveries, each with its own secret.
    const got = await rx.waitFor(2);
    const own = got.find((r) => r.path.includes('own=1'))!;
    assert.equal(verify(key, own).data.request_id, id);
    assert.throws(() => verify(endpoint.secret, own), 'not signed with the endpoint secret');
  });

  // A workspace layer is an ext4 image the harness mounts: root only.
  it('a persistent job on a workspace that goes idle sleeps and sends job.sleeping', { skip: process.getuid?.() !== 0 && 'needs root (workspace layers are mounted)' }, async () => {
    rx.got.length = 0;
    const ep = (await call('POST', '/api/v1/webhooks', { url: `${rx.url}?sleep=1`, events: ['job.sleeping'] })).json();
    const id = await submit({ script: 'echo up', persistent: true, workspace_id: 'wh-sleep' });
    await until('sleeping', async () => ((await call('GET', `/api/v1/mags-jobs/${id}/status`)).json().status === 'sleeping' ? true : undefined));
    const got = await until('job.sleeping', async () => rx.got.find((r) => r.path.includes('sleep=1')));
    const evt = verify(ep.secret, got);
    assert.equal(evt.type, 'job.sleeping');
    assert.equal(evt.data.request_id, id);
    assert.equal(evt.data.status, 'sleeping');
    await call('POST', `/api/v1/mags-jobs/${id}/stop`);
    await call('DELETE', `/api/v1/webhooks/${ep.id}`);
  });

  it('retries after 500s and after a timeout with backoff, same webhook-id on each attempt', async () => {
    rx.got.length = 0;
    let n = 0;
    rx.respond = (_req, res) => {
      n++;
      if (n === 1) res.writeHead(500).end('boom');
      else if (n === 2) setTimeout(() => res.writeHead(200).end('late'), 1500); // longer than timeoutMs (500)
      else res.writeHead(200).end('fine');
    };
    const id = await submit({ script: 'true' });
    await h.waitDone(token, id);
    const got = await rx.waitFor(3);
    assert.equal(new Set(got.map((r) => r.headers['webhook-id'])).size, 1);
    assert.ok(got[1]!.at - got[0]!.at >= 90, 'waited before the second attempt');
    assert.ok(got[2]!.at - got[1]!.at >= 190 + 400, 'timed out, then waited twice as long');
    const d = await until('delivered after retries', async () => {
      const x = (await deliveries(endpoint.id)).find((y) => y.job_id === id);
      return x?.status === 'delivered' ? x : undefined;
    });
    assert.equal(d.attempts, 3);
    assert.equal(d.last_response, 'fine');
    rx.respond = (_req, res) => res.writeHead(200).end('ok');
  });

  it('redelivers a delivery on request with the same webhook-id', async () => {
    rx.got.length = 0;
    const d = (await deliveries(endpoint.id))[0];
    const res = await call('POST', `/api/v1/webhooks/${endpoint.id}/deliveries/${d.id}/redeliver`);
    assert.equal(res.statusCode, 202, res.body);
    const [r] = await rx.waitFor(1);
    assert.equal(r!.headers['webhook-id'], d.id);
    verify(endpoint.secret, r!);
    assert.equal((await call('POST', `/api/v1/webhooks/${endpoint.id}/deliveries/msg_nope/redeliver`)).json().code, 'WEBHOOK_NOT_FOUND');
  });

  it('test sends a webhook.test event', async () => {
    rx.got.length = 0;
    assert.equal((await call('POST', `/api/v1/webhooks/${endpoint.id}/test`)).statusCode, 202);
    const [r] = await rx.waitFor(1);
    assert.equal(verify(endpoint.secret, r!).type, 'webhook.test');
  });

  it('an endpoint that keeps failing is disabled with a clear status; enabling it again works', async () => {
    rx.respond = (_req, res) => res.writeHead(503).end('down');
    for (let i = 0; i < 3; i++) await submit({ script: 'true' });
    const ep = await until('disabled', async () => {
      const e = (await call('GET', `/api/v1/webhooks/${endpoint.id}`)).json();
      return e.status === 'disabled' ? e : undefined;
    }, 15_000);
    assert.match(ep.disabled_reason, /5 delivery attempts failed in a row; last error: HTTP 503/);
    const refused = await call('POST', `/api/v1/webhooks/${endpoint.id}/test`);
    assert.equal(refused.statusCode, 422);
    assert.equal(refused.json().code, 'INVALID_STATE');
    rx.respond = (_req, res) => res.writeHead(200).end('ok');
    const on = (await call('PATCH', `/api/v1/webhooks/${endpoint.id}`, { enabled: true })).json();
    assert.equal(on.status, 'active');
    assert.equal(on.disabled_reason, null);
  });

  it('a delivery stored before a restart is sent by the next dispatcher', async () => {
    rx.got.length = 0;
    await h.plane.dispatcher.stop();
    const ep2 = (await call('POST', '/api/v1/webhooks', { url: `${rx.url}?restart=1`, events: ['job.completed'] })).json();
    const id = await submit({ script: 'true' });
    await h.waitDone(token, id);
    await until('stored', async () => ((await deliveries(ep2.id)).length === 1 ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(rx.got.filter((r) => r.path.includes('restart=1')).length, 0, 'nothing sent while stopped');
    const next = new WebhookDispatcher({ store: h.stores.webhooks, log: silentLogger(), allowPrivate: true });
    next.start();
    try {
      const got = await until('sent after restart', async () => rx.got.find((r) => r.path.includes('restart=1')));
      assert.equal(verify(ep2.secret, got).data.request_id, id);
    } finally {
      await next.stop();
    }
  });

  it('deleting an endpoint; unknown ids are WEBHOOK_NOT_FOUND', async () => {
    assert.equal((await call('DELETE', `/api/v1/webhooks/${endpoint.id}`)).statusCode, 200);
    assert.equal((await call('GET', `/api/v1/webhooks/${endpoint.id}`)).json().code, 'WEBHOOK_NOT_FOUND');
    assert.equal((await call('GET', `/api/v1/webhooks/${endpoint.id}/deliveries`)).statusCode, 404);
  });
});
