#!/usr/bin/env node
/**
 * Output throughput and exec latency of this tree against another built checkout (`--base DIR`,
 * e.g. the commit before output flow control), both servers running at once and taking turns
 * sample by sample, so a busy host slows both alike:
 *   - exec of `true`, buffered, on a running persistent sandbox (round trip)
 *   - a streamed exec of 64 MiB read at full speed (NDJSON)
 *   - `ssh host 'head -c 128M /dev/zero'` through the SSH gateway, read at full speed
 *   - an ordinary job writing 8 MiB of lines into its log (submit -> end event)
 * Without --base only this tree is measured. Needs root, built trees, the base image and ssh.
 *
 *   node bench/flow.mjs --base /path/to/base [--runs 100] [--bulk 8]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO, api, printTable, startServer, stats } from './lib.mjs';

const { values: opt } = parseArgs({ options: { base: { type: 'string' }, runs: { type: 'string', default: '100' }, bulk: { type: 'string', default: '8' } } });
const RUNS = Number(opt.runs);
const BULK = Number(opt.bulk);
const MiB = 1024 * 1024;
const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tmp = mkdtempSync(join(tmpdir(), 'mags-bench-flow-'));

/** One server's client: a running persistent sandbox and an SSH key for it. */
async function prepare(server, tag) {
  const headers = { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' };
  const c = api(server);
  const call = (method, path, body) => c.call(method, path, body);
  const { request_id: id } = await call('POST', '/api/v1/mags-jobs', { script: 'true', type: 'inline', persistent: true, name: 'flow', no_sleep: true });
  for (;;) {
    const st = await call('GET', `/api/v1/mags-jobs/${id}/status`);
    if (st.status === 'running' && st.vm_id) break;
    await sleep(20);
  }
  const access = await call('POST', `/api/v1/mags-jobs/${id}/access`, { port: 22 });
  const key = join(tmp, `key-${tag}`);
  writeFileSync(key, access.ssh_private_key, { mode: 0o600 });
  return {
    async execTrue() {
      const t = now();
      const r = await call('POST', `/api/v1/mags-jobs/${id}/exec`, { command: 'true' });
      if (r.exit_code !== 0) throw new Error('exec true failed');
      return now() - t;
    },
    async execStream() {
      const t = now();
      const res = await fetch(`${server.url}/api/v1/mags-jobs/${id}/exec?stream=1`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ command: `head -c ${64 * MiB} /dev/zero | tr '\\0' a` }),
      });
      let chars = 0;
      let exit;
      let buf = '';
      const decoder = new TextDecoder();
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk, { stream: true });
        const lines = buf.split('\n');
        buf = lines.pop();
        for (const l of lines) {
          const ev = JSON.parse(l);
          if (ev.type === 'stdout') chars += ev.data.length;
          else if (ev.type === 'exit') exit = ev;
        }
      }
      if (chars !== 64 * MiB) throw new Error(`exec stream: ${chars} bytes, then ${JSON.stringify(exit)}`);
      return now() - t;
    },
    async ssh() {
      const t = now();
      const p = spawn('ssh', ['-i', key, '-p', String(access.ssh_port), '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${join(tmp, 'kh')}`, '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-F', '/dev/null', 'root@127.0.0.1', `head -c ${128 * MiB} /dev/zero`], { stdio: ['ignore', 'pipe', 'inherit'] });
      let n = 0;
      p.stdout.on('data', (d) => (n += d.length));
      const code = await new Promise((ok) => p.on('close', ok));
      if (code !== 0 || n !== 128 * MiB) throw new Error(`ssh: exit ${code}, ${n} bytes`);
      return now() - t;
    },
    async jobLog() {
      await c.waitPoolIdle(1, 120_000);
      const t = now();
      const jid = await c.submit(`yes 'a line of job output for the log pipeline' | head -c ${8 * MiB}`);
      const { end } = await c.follow(jid);
      if (end?.status !== 'completed') throw new Error(`job ${jid} ended ${JSON.stringify(end)}`);
      return now() - t;
    },
  };
}

const trees = opt.base ? [['before (base)', opt.base], ['after (this tree)', REPO]] : [['this tree', REPO]];
const servers = [];
try {
  for (const [, repo] of trees) servers.push(await startServer({ MAGS_SSH_PORT: '0', MAGS_POOL_MIN_SIZE: '1' }, repo));
  const clients = [];
  for (let i = 0; i < servers.length; i++) clients.push(await prepare(servers[i], i));
  const cases = [
    ['exec `true`, warm', 'execTrue', RUNS, null],
    ['exec stream 64 MiB', 'execStream', BULK, 64],
    ['ssh head -c 128M', 'ssh', BULK, 128],
    ['job writing 8 MiB of log lines', 'jobLog', BULK, 8],
  ];
  const rows = [];
  for (const [name, fn, n, mib] of cases) {
    for (const c of clients) await c[fn](); // warm-up
    const samples = clients.map(() => []);
    // A run that fails (e.g. a streamed exec cut off because its reader lagged) is counted, not timed.
    const failed = clients.map(() => []);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < clients.length; k++) {
        try {
          samples[k].push(await clients[k][fn]());
        } catch (err) {
          failed[k].push(err.message);
        }
      }
    }
    for (let k = 0; k < clients.length; k++) {
      const s = samples[k].length ? stats(samples[k]) : { n: 0 };
      const rate = mib && s.p50 ? `${Math.round(mib / (s.p50 / 1000))} MiB/s at p50` : '';
      const fails = failed[k].length ? ` ${failed[k].length} failed: ${failed[k][0].slice(0, 120)}` : '';
      rows.push({ name: `${name}: ${trees[k][0]}`, ...s, note: rate + fails });
    }
  }
  printTable('exec latency and output throughput, interleaved (ms)', rows);
} finally {
  for (const s of servers) await s.stop();
  rmSync(tmp, { recursive: true, force: true });
}
