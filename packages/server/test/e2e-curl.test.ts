import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { spawnServer, type SpawnedServer } from './helpers/spawn-server.js';

const run = promisify(execFile);

/**
 * The calls of MAGS-API.md made with curl exactly as a Mags user types them, against a real server
 * with real sandboxes.
 */
describe('MAGS-API.md calls with curl', () => {
  let server: SpawnedServer;
  before(async () => {
    server = await spawnServer();
  });
  after(async () => {
    await server?.stop();
  });

  /** Runs `sh -c` with MAGS_API_URL and MAGS_API_TOKEN set; returns stdout (with -w status appended). */
  const sh = async (cmd: string): Promise<{ status: number; body: any; raw: string }> => {
    const { stdout } = await run('sh', ['-c', `${cmd} -w '\\n%{http_code}'`], {
      env: { PATH: process.env.PATH, MAGS_API_URL: server.url, MAGS_API_TOKEN: server.token },
    });
    const i = stdout.lastIndexOf('\n');
    const raw = stdout.slice(0, i);
    let body: any = raw;
    try {
      body = JSON.parse(raw);
    } catch {
      /* SSE or text */
    }
    return { status: Number(stdout.slice(i + 1)), body, raw };
  };
  const auth = '-H "Authorization: Bearer $MAGS_API_TOKEN"';
  const json = "-H 'Content-Type: application/json'";

  it('submit, status, logs, list, follow, patch, access, stop, pool-status', async () => {
    const sub = await sh(`curl -s -X POST "$MAGS_API_URL/api/v1/mags-jobs" ${auth} ${json} -d '{"script": "echo Hello World", "type": "inline", "name": "curl-job"}'`);
    assert.equal(sub.status, 202);
    assert.equal(sub.body.status, 'accepted');
    const id = sub.body.request_id as string;

    const follow = await sh(`curl -s -N "$MAGS_API_URL/api/v1/mags-jobs/${id}/logs?follow=1" ${auth}`);
    assert.equal(follow.status, 200);
    assert.match(follow.raw, /event: log\ndata: \{[^\n]*"message":"Hello World"/);
    assert.match(follow.raw, /event: end\ndata: \{"status":"completed","exit_code":0/);

    const status = await sh(`curl -s "$MAGS_API_URL/api/v1/mags-jobs/${id}/status" ${auth}`);
    assert.equal(status.status, 200);
    assert.equal(status.body.status, 'completed');
    assert.equal(status.body.exit_code, 0);

    const byName = await sh(`curl -s "$MAGS_API_URL/api/v1/mags-jobs/curl-job/logs" ${auth}`);
    assert.equal(byName.status, 200);
    assert.deepEqual(byName.body.logs.map((l: any) => [l.level, l.message]), [['info', 'Hello World']]);

    const list = await sh(`curl -s "$MAGS_API_URL/api/v1/mags-jobs?page=1&page_size=20" ${auth}`);
    assert.equal(list.status, 200);
    assert.equal(list.body.jobs[0].request_id, id);
    assert.equal(list.body.total, 1);

    const v2 = await sh(`curl -s -X POST "$MAGS_API_URL/api/v2/mags-jobs" ${auth} ${json} -d '{"script": "echo v2", "type": "inline", "vcpus": 1, "memory_mb": 512, "persistent": true, "name": "curl-p"}'`);
    assert.equal(v2.status, 202);
    const patch = await sh(`curl -s -X PATCH "$MAGS_API_URL/api/v1/mags-jobs/curl-p" ${auth} ${json} -d '{"no_sleep": true}'`);
    assert.equal(patch.status, 200);
    assert.equal(patch.body.no_sleep, true);

    for (let i = 0; (await sh(`curl -s "$MAGS_API_URL/api/v1/mags-jobs/curl-p/status" ${auth}`)).body.status !== 'running'; i++) {
      assert.ok(i < 300, 'the persistent job runs');
      await new Promise((r) => setTimeout(r, 100));
    }
    const access = await sh(`curl -s -X POST "$MAGS_API_URL/api/v1/mags-jobs/curl-p/access" ${auth} ${json} -d '{"port": 8080}'`);
    assert.equal(access.status, 200);
    assert.equal(access.body.success, true);
    assert.match(access.body.url, /^http:\/\/[0-9a-f]{12}\.apps\.localhost:\d+$/);

    const stop = await sh(`curl -s -X POST "$MAGS_API_URL/api/v1/mags-jobs/curl-p/stop" ${auth}`);
    assert.equal(stop.status, 200);
    assert.equal(stop.body.success, true);

    const pool = await sh(`curl -s "$MAGS_API_URL/api/v1/mags-jobs/pool-status" ${auth}`);
    assert.equal(pool.status, 200);
    assert.deepEqual(Object.keys(pool.body).sort(), ['busy_vms', 'idle_vms', 'max_pool_size', 'min_pool_size', 'total_vms']);

    const missingType = await sh(`curl -s -X POST "$MAGS_API_URL/api/v1/mags-jobs" ${auth} ${json} -d '{"script": "echo"}'`);
    assert.equal(missingType.status, 400);
    assert.deepEqual(Object.keys(missingType.body).sort(), ['code', 'error']);

    const noToken = await sh(`curl -s "$MAGS_API_URL/api/v1/mags-jobs"`);
    assert.equal(noToken.status, 401);
    assert.match(noToken.body.error, /API token required/);

    const formPost = await sh(`curl -s -X POST "$MAGS_API_URL/api/v1/mags-jobs" ${auth} -d '{"script": "echo", "type": "inline"}'`);
    assert.equal(formPost.status, 415, 'curl -d without a JSON content type is refused with a clear message');
    assert.match(formPost.body.error, /Content-Type: application\/json/);
  });
});
