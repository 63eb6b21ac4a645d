import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { client, type Client } from './helpers/http.js';
import { spawnServer, type SpawnedServer } from './helpers/spawn-server.js';
import { startReceiver, type Receiver } from './helpers/webhook-receiver.js';

/**
 * The cookbook's scheduled monitor end to end: a real `mags server` (real sandboxes, a real
 * workspace synced to the file blob store), an every-minute schedule against a workspace, and a
 * loopback receiver that verifies the signed job.completed event with the standardwebhooks
 * verifier and reads the files the run changed. One real firing: up to ~60 s until the next minute.
 */
describe('cron + webhooks end to end (real server, real sandboxes)', () => {
  let server: SpawnedServer;
  let api: Client;
  let rx: Receiver;
  before(async () => {
    rx = await startReceiver();
    server = await spawnServer({ env: { MAGS_WEBHOOK_ALLOW_PRIVATE: '1', MAGS_SYNC_INTERVAL_SECONDS: '0' } });
    api = client(server.url, server.token);
  });
  after(async () => {
    await server?.stop();
    await rx?.close();
  });

  it('an every-minute schedule on a workspace fires on time and posts a verified webhook with the changed files', async () => {
    const ep = await api.req('POST', '/api/v1/webhooks', { url: rx.url, events: ['job.completed', 'job.failed', 'workspace.synced'] });
    assert.equal(ep.status, 201, JSON.stringify(ep.body));
    const secret = ep.body.secret as string;
    const s = await api.req('POST', '/api/v1/mags-cron', {
      name: 'site-monitor',
      cron_expression: '* * * * *',
      workspace_id: 'monitor',
      script: 'mkdir -p /root/reports && date -u +%FT%TZ > /root/reports/last.txt && echo "check ok" && cat /root/reports/last.txt',
    });
    assert.equal(s.status, 201, JSON.stringify(s.body));
    assert.equal(s.body.next_runs.length, 3);
    const scheduledFor = s.body.next_run_at as string;

    const got = await rx.waitFor(2, 150_000);
    const verified = got.map(
      (r) =>
        new Webhook(secret).verify(r.body, {
          'webhook-id': String(r.headers['webhook-id']),
          'webhook-timestamp': String(r.headers['webhook-timestamp']),
          'webhook-signature': String(r.headers['webhook-signature']),
        }) as { type: string; data: any },
    );
    const done = verified.find((e) => e.type === 'job.completed');
    assert.ok(done, `events: ${verified.map((e) => e.type).join(', ')}`);
    assert.equal(done.data.name, 'site-monitor');
    assert.equal(done.data.exit_code, 0);
    assert.equal(done.data.workspace_id, 'monitor');
    assert.ok(done.data.output_tail.some((l: { message: string }) => l.message === 'check ok'));
    const added = done.data.changes.added as Array<{ path: string; size: number }>;
    const last = added.find((f) => f.path === 'root/reports/last.txt');
    assert.ok(last, `changed files: ${JSON.stringify(done.data.changes)}`);
    assert.equal(last.size, 21, 'an ISO time and a newline');
    assert.ok(verified.some((e) => e.type === 'workspace.synced' && e.data.workspace_id === 'monitor'));

    const runs = (await api.req('GET', `/api/v1/mags-cron/${s.body.id}/runs`)).body.runs;
    assert.equal(runs.at(-1).scheduled_for, scheduledFor);
    assert.equal(runs.at(-1).trigger, 'schedule');
    const job = (await api.req('GET', `/api/v1/mags-jobs/${runs.at(-1).job_id}/status`)).body;
    const delayMs = Date.parse(job.started_at) - Date.parse(scheduledFor);
    assert.ok(delayMs >= 0 && delayMs < 15_000, `fired ${delayMs} ms after its time`);
    await api.req('DELETE', `/api/v1/mags-cron/${s.body.id}`);
  });
});
