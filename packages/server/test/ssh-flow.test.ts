import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { createLivePlane, type LivePlane } from './helpers/live-fixture.js';

/** How much the daemon's resident memory may grow while a reader pauses a flood. */
const RSS_BUDGET = 64 * 1024 * 1024;
const MiB = 1024 * 1024;

/**
 * Output flow control end to end (docs/guest-agent.md, "Limits and back-pressure"): a process in
 * a real sandbox floods its output to a reader that pauses, through the SSH gateway (Debian's
 * OpenSSH client) and through the streamed exec API. While the reader pauses, the daemon's memory
 * stays bounded and the writer in the sandbox is blocked; resumed, every byte arrives. The daemon
 * runs in this process, so its RSS is this process's. Needs root, the base image and ssh.
 */
describe('output flow control (real sandboxes)', { timeout: 300_000 }, () => {
  let lp: LivePlane;
  let key: string;
  let jobId: string;

  const sshArgs = () => [
    '-i', key, '-p', String(lp.sshPort), '-o', `UserKnownHostsFile=${join(lp.dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=accept-new',
    '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'LogLevel=ERROR', '-F', '/dev/null', 'root@127.0.0.1',
  ];
  /** Bytes the sandbox's `head` (the flood's last writer) has written so far, read through exec. */
  const written = async (): Promise<number> => {
    const r = await lp.call('POST', `/api/v1/mags-jobs/${jobId}/exec`, { command: 'p=$(pgrep -x head) && grep ^wchar /proc/$p/io' });
    const m = /wchar: (\d+)/.exec(String(r.body.output));
    assert.ok(m, `head is running: ${JSON.stringify(r.body)}`);
    return Number(m[1]);
  };
  /** Samples this process's RSS until stopped; answers the largest growth over `base`. */
  const sampleRss = () => {
    const base = process.memoryUsage().rss;
    let peak = base;
    const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    return { growth: () => peak - base, stop: () => clearInterval(t) };
  };
  /** Waits until the writer stops making progress; answers its byte count then. */
  const blocked = async (): Promise<number> => {
    let last = -1;
    for (let i = 0; i < 40; i++) {
      await sleep(500);
      const now = await written();
      if (now === last) return now;
      last = now;
    }
    assert.fail(`the writer never stopped (at ${last} bytes)`);
  };

  /**
   * Asserts the reader's pause reached the sandbox: the writer stopped well short of `total` and
   * stays stopped, and the daemon's memory grew less than RSS_BUDGET.
   */
  const assertPaused = async (t: { diagnostic(m: string): void }, rss: ReturnType<typeof sampleRss>, total: number): Promise<void> => {
    const stuck = await blocked();
    await sleep(1000);
    assert.equal(await written(), stuck, 'the writer stays blocked while the reader pauses');
    assert.ok(stuck < total / 4, `only a window got through (${stuck} of ${total} bytes written)`);
    const growth = rss.growth();
    assert.ok(growth < RSS_BUDGET, `daemon RSS grew ${Math.round(growth / MiB)} MiB while paused`);
    t.diagnostic(`paused: writer blocked at ${(stuck / MiB).toFixed(1)} MiB, daemon RSS +${(growth / MiB).toFixed(1)} MiB`);
  };

  before(async () => {
    lp = await createLivePlane();
    jobId = await lp.persistent('flood');
    const r = await lp.call('POST', `/api/v1/mags-jobs/${jobId}/access`, { port: 22 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    key = join(lp.dir, 'key');
    await writeFile(key, r.body.ssh_private_key as string, { mode: 0o600 });
  });
  after(async () => {
    await lp?.close();
  });

  it('ssh: a paused reader blocks `head -c 500M` in the sandbox with the daemon\'s memory bounded; resumed, every byte arrives', async (t) => {
    const total = 500 * MiB;
    const rss = sampleRss();
    const p = spawn('ssh', [...sshArgs(), `head -c ${total} /dev/zero`], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let got = 0;
      let nonZero = false;
      let stderr = '';
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.stdout.on('data', (d: Buffer) => {
        got += d.length;
        if (!nonZero && d.some((b) => b !== 0)) nonZero = true;
      });
      const closed = new Promise<number | null>((ok) => p.on('close', ok));
      // Read a little, then pause: ssh's stdout pipe fills, its window closes, the gateway pauses.
      while (got < 4 * MiB) await sleep(20);
      p.stdout.pause();
      const atPause = got;
      await assertPaused(t, rss, total);
      assert.ok(got - atPause < 16 * MiB);
      const resumedAt = Date.now();
      p.stdout.resume();
      assert.equal(await closed, 0, stderr);
      assert.equal(got, total);
      assert.equal(nonZero, false);
      assert.ok(rss.growth() < RSS_BUDGET, `daemon RSS grew ${Math.round(rss.growth() / MiB)} MiB over the whole transfer`);
      t.diagnostic(`resumed: ${total / MiB} MiB in ${Date.now() - resumedAt} ms, daemon RSS peak +${(rss.growth() / MiB).toFixed(1)} MiB`);
    } finally {
      rss.stop();
      p.kill('SIGKILL');
    }
  });

  it('exec stream: a paused HTTP reader blocks the command; resumed, every byte arrives', async (t) => {
    const total = 100 * MiB;
    const rss = sampleRss();
    const url = new URL(`${lp.url}/api/v1/mags-jobs/${jobId}/exec?stream=1`);
    const body = JSON.stringify({ command: `yes abcdefghijklmnopqrstuvwxyz | head -c ${total}` });
    let req: ReturnType<typeof request> | undefined;
    try {
      const res = await new Promise<import('node:http').IncomingMessage>((ok, fail) => {
        req = request(url, { method: 'POST', headers: { authorization: `Bearer ${lp.adminToken}`, 'content-type': 'application/json' } }, ok);
        req.on('error', fail);
        req.end(body);
      });
      assert.equal(res.statusCode, 200);
      let bytes = 0;
      let exit: Record<string, unknown> | undefined;
      let partial = '';
      res.setEncoding('utf8');
      res.on('data', (text: string) => {
        const lines = (partial + text).split('\n');
        partial = lines.pop()!;
        for (const l of lines) {
          const ev = JSON.parse(l) as { type: string; data?: string };
          if (ev.type === 'stdout') bytes += Buffer.byteLength(ev.data!);
          else if (ev.type === 'exit') exit = ev;
        }
      });
      const ended = new Promise<void>((ok) => res.on('end', ok));
      while (bytes < 2 * MiB) await sleep(20);
      res.pause();
      await assertPaused(t, rss, total);
      res.resume();
      await ended;
      assert.equal(bytes, total);
      assert.equal(exit?.exit_code, 0, JSON.stringify(exit));
    } finally {
      rss.stop();
      req?.destroy();
    }
  });

  it('web terminal: a browser that stops reading pauses the shell; resumed, every byte arrives', async (t) => {
    const total = 128 * MiB;
    const rss = sampleRss();
    const ws = new WebSocket(`${lp.url.replace('http', 'ws')}/api/v1/mags-jobs/${jobId}/terminal?cols=200&rows=50`, { headers: { authorization: `Bearer ${lp.adminToken}` } });
    try {
      let got = 0;
      let exit: Record<string, unknown> | undefined;
      ws.on('message', (d: Buffer, binary: boolean) => {
        if (binary) got += d.length;
        else if ((JSON.parse(d.toString()) as { type: string }).type === 'exit') exit = JSON.parse(d.toString()) as Record<string, unknown>;
      });
      const closed = new Promise<void>((ok) => ws.on('close', () => ok()));
      await new Promise<void>((ok, fail) => {
        ws.once('open', ok);
        ws.once('error', fail);
      });
      // A terminal's lines: no echo of the flood, exactly `total` bytes of text, then the shell exits.
      const line = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV';
      ws.send(Buffer.from(`stty -echo; yes ${line} | head -c ${total}; exit\n`));
      while (got < 2 * MiB) await sleep(20);
      const sock = (ws as unknown as { _socket: import('node:net').Socket })._socket;
      sock.pause();
      await assertPaused(t, rss, total);
      sock.resume();
      await closed;
      assert.equal(exit?.exit_code, 0, JSON.stringify(exit));
      // The PTY turns each \n into \r\n; the prompt and the echoed command line come on top.
      const expected = total + Math.floor(total / (line.length + 1));
      assert.ok(got >= expected && got < expected + 4096, `${got} bytes arrived, ${expected} expected (+ prompt and echo)`);
    } finally {
      rss.stop();
      ws.terminate();
    }
  });

  it('buffered exec keeps draining past its cap: a 50 MB flood ends, truncated, without a reader to wait for', async () => {
    const r = await lp.call('POST', `/api/v1/mags-jobs/${jobId}/exec`, { command: 'head -c 50000000 /dev/zero | tr "\\0" x; echo done >&2' });
    assert.equal(r.status, 200);
    assert.equal(r.body.exit_code, 0);
    assert.equal(r.body.truncated, true);
    assert.equal((r.body.output as string).length, 10 * MiB);
    assert.equal(r.body.stderr, 'done\n');
  });
});
