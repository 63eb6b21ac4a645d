/**
 * `mags cron` and `mags webhook` as subprocesses against a real server with real sandboxes: add,
 * list, show, disable, enable, run-now (a real job), remove; webhook add, list, test (a signed
 * delivery to a loopback receiver, its Standard Webhooks HMAC recomputed), deliveries, remove;
 * error paths name the field and exit non-zero.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac } from 'node:crypto';
import { cleanEnv, mags, startServer, tempHome, type MagsResult, type TestServer } from './helpers.js';

describe('mags cron and mags webhook against a real server', () => {
  let server: TestServer;
  let removeHome: () => void;
  let env: Record<string, string>;
  let receiver: Server;
  let hookUrl: string;
  const got: Array<{ body: string; headers: Record<string, string> }> = [];

  const run = (args: string[]): Promise<MagsResult> => mags(args, { env });
  const ok = (r: MagsResult, what: string): MagsResult => {
    assert.equal(r.code, 0, `${what} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r;
  };

  before(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        got.push({ body, headers: req.headers as Record<string, string> });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    server = await startServer({ env: { MAGS_WEBHOOK_ALLOW_PRIVATE: '1' } });
    let home: string;
    ({ home, remove: removeHome } = tempHome());
    env = cleanEnv({ HOME: home, MAGS_API_URL: server.url, MAGS_API_TOKEN: server.token });
  });

  after(async () => {
    try {
      await server?.stop();
    } finally {
      removeHome?.();
      receiver?.closeAllConnections();
      await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
    }
  });

  test('cron add, list, show, disable, enable, run-now, remove', async () => {
    const add = ok(await run(['cron', 'add', 'nightly', '0 3 * * *', '--tz', 'Europe/Berlin', '--json', 'echo from-cron']), 'cron add');
    const s = JSON.parse(add.stdout);
    assert.equal(s.name, 'nightly');
    assert.equal(s.next_runs.length, 3);
    assert.match(ok(await run(['cron', 'list']), 'cron list').stdout, /nightly\s+cron_[0-9a-f]+\s+0 3 \* \* \*\s+Europe\/Berlin\s+yes/);
    assert.match(ok(await run(['cron', 'disable', 'nightly']), 'disable').stdout, /^Disabled schedule nightly\n$/);
    assert.equal(JSON.parse(ok(await run(['cron', 'show', 'nightly', '--json']), 'show').stdout).enabled, false);
    assert.match(ok(await run(['cron', 'enable', 'nightly']), 'enable').stdout, /^Enabled schedule nightly; next run 20/);
    const now = ok(await run(['cron', 'run-now', 'nightly']), 'run-now');
    const jobId = /Started job (\S+)/.exec(now.stdout)![1]!;
    const logs = ok(await run(['logs', jobId]), 'logs');
    for (let i = 0; i < 60 && !logs.stdout.includes('from-cron'); i++) {
      await new Promise((r) => setTimeout(r, 500));
      logs.stdout = (await run(['logs', jobId])).stdout;
    }
    assert.match(logs.stdout, /from-cron/);
    assert.match(ok(await run(['cron', 'show', 'nightly']), 'show').stdout, new RegExp(`manual\\s+submitted\\s+${jobId}`));
    ok(await run(['cron', 'remove', 'nightly']), 'remove');
    const gone = await run(['cron', 'show', 'nightly']);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /No schedule of yours has id or name "nightly"/);
  });

  test('cron add refuses a bad expression and a bad time zone naming the field', async () => {
    const bad = await run(['cron', 'add', 'x', '61 * * * *', 'true']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /cron_expression: "61 \* \* \* \*" is not valid/);
    const tz = await run(['cron', 'add', 'x', '@hourly', '--tz', 'Mars/Base', 'true']);
    assert.notEqual(tz.code, 0);
    assert.match(tz.stderr, /timezone: "Mars\/Base" is not an IANA time zone/);
  });

  test('webhook add, list, test (signed), deliveries, remove', async () => {
    const add = ok(await run(['webhook', 'add', hookUrl, '--event', 'job.completed']), 'webhook add');
    const id = /Added webhook (ep_[0-9a-f]+)/.exec(add.stdout)![1]!;
    const secret = /Signing secret .*: (whsec_\S+)/.exec(add.stdout)![1]!;
    assert.match(ok(await run(['webhook', 'list']), 'list').stdout, new RegExp(`${id}\\s+${hookUrl.replace(/[/.]/g, '\\$&')}\\s+job.completed\\s+active`));
    ok(await run(['webhook', 'test', id]), 'test');
    for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    const h = got[0]!.headers;
    const mac = createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64')).update(`${h['webhook-id']}.${h['webhook-timestamp']}.${got[0]!.body}`).digest('base64');
    assert.equal(h['webhook-signature'], `v1,${mac}`);
    assert.equal(JSON.parse(got[0]!.body).type, 'webhook.test');
    let deliveries = '';
    for (let i = 0; i < 50 && !/delivered/.test(deliveries); i++) {
      deliveries = ok(await run(['webhook', 'deliveries', id]), 'deliveries').stdout;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(deliveries, /webhook\.test\s+delivered\s+1\s+204/);
    ok(await run(['webhook', 'remove', id]), 'remove');
    assert.doesNotMatch(ok(await run(['webhook', 'list']), 'list').stdout, new RegExp(id));
  });
});
