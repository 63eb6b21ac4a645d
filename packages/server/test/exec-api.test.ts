import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Mags, MagsError } from '@mags/sdk';
import WebSocket from 'ws';
import { createLivePlane, type LivePlane } from './helpers/live-fixture.js';

const run = promisify(execFile);
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

/**
 * The exec API, its NDJSON stream and the web terminal WebSocket on a real sandbox (container
 * driver) behind a listening in-process server, driven by the Node and Python SDKs and a raw
 * WebSocket client. Needs root and the base image.
 */
describe('exec API and web terminal (real sandboxes)', () => {
  let lp: LivePlane;
  let url: string;
  let client: Mags;
  let devId: string;
  let plainId: string;
  let stoppedId: string;

  const post = (path: string, body: unknown, token = lp.adminToken) =>
    fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const attachments = () => lp.plane.live.attachments(devId);

  before(async () => {
    lp = await createLivePlane();
    url = lp.url;
    client = new Mags({ apiUrl: url, apiToken: lp.adminToken });
    [devId, stoppedId] = await Promise.all([lp.persistent('dev'), lp.persistent('stopped')]);
    assert.equal((await lp.call('POST', `/api/v1/mags-jobs/${stoppedId}/stop`)).status, 200);
    const plain = await lp.call('POST', '/api/v1/mags-jobs', { script: 'true', type: 'inline', name: 'plain' });
    plainId = plain.body.request_id as string;
  });
  after(async () => {
    await lp?.close();
  });

  it('Node SDK exec: { exitCode, output, stderr } with env, cwd and stdin; v1 and v2 paths', async () => {
    const r = await client.exec('dev', 'echo out; echo err >&2; exit 3');
    assert.deepEqual(r, { exitCode: 3, output: 'out\n', stderr: 'err\n', timedOut: false, truncated: false });
    const e = await client.exec(devId, 'echo "$GREETING from $(pwd)"; cat', { env: { GREETING: 'hi' }, cwd: '/tmp', stdin: 'piped\n', timeout: 20_000 });
    assert.equal(e.output, 'hi from /tmp\npiped\n');
    const v2 = await post(`/api/v2/mags-jobs/dev/exec`, { command: 'hostname' });
    assert.equal(v2.status, 200);
    const body = (await v2.json()) as Record<string, unknown>;
    assert.equal(body.output, 'mags-vm\n');
    assert.equal(body.exit_code, 0);
    assert.equal(attachments(), 0, 'every exec released its attachment');
  });

  it('a timeout kills the process group: exit 124, timed_out, nothing left running', async () => {
    const t0 = Date.now();
    const r = await client.exec('dev', 'sleep 300 & sleep 301; echo never', { timeout: 1000 });
    assert.equal(r.exitCode, 124);
    assert.equal(r.timedOut, true);
    assert.equal(r.output, '');
    assert.ok(Date.now() - t0 < 10_000);
    const left = await client.exec('dev', 'pgrep -c -f "sleep 30[01]" || true');
    assert.equal(left.output.trim(), '0');
  });

  it('50 MB of output: buffered answer capped at 10 MiB with truncated; the stream carries all of it', async () => {
    const cmd = 'head -c 50000000 /dev/zero | tr "\\0" a; echo tail >&2';
    const r = await client.exec('dev', cmd);
    assert.equal(r.exitCode, 0);
    assert.equal(r.truncated, true);
    assert.equal(r.output.length, 10 * 1024 * 1024);
    assert.equal(r.stderr, 'tail\n');
    let bytes = 0;
    let err = '';
    const end = await client.execStream('dev', cmd, {
      onOutput: (s, text) => {
        if (s === 'stdout') bytes += text.length;
        else err += text;
      },
    });
    assert.deepEqual(end, { exitCode: 0, timedOut: false });
    assert.equal(bytes, 50_000_000);
    assert.equal(err, 'tail\n');
  });

  it('errors say "no job found" and "not running" in those words', async () => {
    await assert.rejects(client.exec('nope', 'true'), (e: MagsError) => e.status === 404 && e.code === 'JOB_NOT_FOUND' && /no job found/.test(e.message));
    await assert.rejects(client.exec(plainId, 'true'), (e: MagsError) => e.status === 409 && e.code === 'JOB_NOT_RUNNING' && /not running/.test(e.message));
    await assert.rejects(client.exec(stoppedId, 'true'), (e: MagsError) => e.status === 409 && /not running/.test(e.message));
    const bad = await post('/api/v1/mags-jobs/dev/exec', { command: '', timeout_seconds: 0 });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { code: string }).code, 'VALIDATION_ERROR');
    const other = await lp.makeUser('eve');
    const foreign = await post('/api/v1/mags-jobs/dev/exec', { command: 'true' }, other);
    assert.equal(foreign.status, 404);
  });

  it('Python SDK exec: {output, stderr, exit_code}', async () => {
    const py = `import json, mags\nc = mags.Mags(api_token=${JSON.stringify(lp.adminToken)}, api_url=${JSON.stringify(url)})\nr = c.exec("dev", "echo py; echo e >&2; exit 5", timeout=30)\nprint(json.dumps(r))\ntry:\n    c.exec("nope", "true")\nexcept mags.MagsError as e:\n    print(json.dumps({"status": e.status, "message": str(e)}))\n`;
    const { stdout } = await run('python3', ['-c', py], { env: { ...process.env, PYTHONPATH: join(REPO, 'packages', 'sdk-python') } });
    const [first, second] = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(first!.output, 'py\n');
    assert.equal(first!.stderr, 'e\n');
    assert.equal(first!.exit_code, 5);
    assert.equal(second!.status, 404);
    assert.match(String(second!.message), /no job found/);
  });

  it('web terminal: a ticket opens a login shell on a PTY, resize is followed, exit closes it', async () => {
    const t = (await (await post('/api/v1/mags-jobs/dev/terminal-ticket', {})).json()) as { ticket: string; expires_in: number };
    assert.match(t.ticket, /^mtt_/);
    const wsUrl = `${url.replace('http', 'ws')}/api/v1/mags-jobs/dev/terminal?ticket=${t.ticket}&cols=90&rows=20`;
    const ws = new WebSocket(wsUrl);
    let screen = '';
    const texts: string[] = [];
    ws.on('message', (d: Buffer, binary: boolean) => (binary ? (screen += d.toString()) : texts.push(d.toString())));
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 100 && !re.test(screen); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(screen, re);
    };
    try {
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      await waitFor(/root@mags-vm/);
      ws.send(Buffer.from('stty size\r'));
      await waitFor(/20 90/);
      ws.send(JSON.stringify({ type: 'resize', cols: 132, rows: 43 }));
      ws.send(Buffer.from('stty size; echo TERM=$TERM\r'));
      await waitFor(/43 132/);
      await waitFor(/TERM=xterm-256color/);
      assert.equal(attachments(), 1, 'the open terminal holds the attachment');
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      ws.send(Buffer.from('exit 7\r'));
      assert.equal(await closed, 1000);
      assert.deepEqual(JSON.parse(texts.at(-1)!), { type: 'exit', exit_code: 7, signal: null });
    } finally {
      ws.terminate();
    }
    // A ticket is single-use; a Bearer header works too; no credentials are refused before the upgrade.
    const upgradeStatus = (u: string, headers?: Record<string, string>) =>
      new Promise<number>((resolve) => {
        const w = new WebSocket(u, { headers });
        w.once('unexpected-response', (req, res) => {
          resolve(res.statusCode ?? 0);
          req.destroy();
        });
        w.once('open', () => {
          resolve(101);
          w.close();
        });
        // The destroyed request of a refused upgrade errors; its status was recorded above.
        w.on('error', (err) => assert.match(err.message, /closed before the connection|socket hang up|ECONNRESET/));
      });
    assert.equal(await upgradeStatus(wsUrl), 401);
    assert.equal(await upgradeStatus(`${url.replace('http', 'ws')}/api/v1/mags-jobs/dev/terminal`), 401);
    assert.equal(await upgradeStatus(`${url.replace('http', 'ws')}/api/v2/mags-jobs/dev/terminal`, { authorization: `Bearer ${lp.adminToken}` }), 101);
    // A hang-up ends the shell, or the kill 2 s later does (a close right after the upgrade).
    for (let i = 0; i < 300 && attachments() > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(attachments(), 0, 'closing the socket released the attachment');
  });
});
