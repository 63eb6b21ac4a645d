#!/usr/bin/env node
// Echo latency while another sandbox tries to exhaust a host-wide resource (issue 15): warm `echo hi`
// through the HTTP API (submit -> end event), p50/p95, first with nothing else running, then while
// one job runs each attack (fork bomb to pids.max, file table, epoll, inotify, memory to its limit,
// 10 MiB of empty lines, CPU spin on all cores). With `--base DIR` (another built checkout, e.g. a
// worktree of the previous main commit) also warm and cold echo of that tree against this one, in
// the same run, the two servers taking turns request by request.
//
//   node bench/exhaust.mjs [--runs 30] [--base /work/wt-base] [--attacks fork,files,...]
//
// Needs root, a built tree and the base image (MAGS_IMAGE_DIR). docs/benchmarks.md records a run.
import { parseArgs } from 'node:util';
import { api, printTable, startServer, stats, REPO } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '30' },
    base: { type: 'string' },
    attacks: { type: 'string' },
    'no-attacks': { type: 'boolean', default: false },
  },
});
const RUNS = Number(opt.runs);

/** Each attack runs as one job (512 MiB, 2 vCPUs) until stopped; its first output line says it started. */
const ATTACKS = {
  fork: 'echo started; f() { f & f & }; f 2>/dev/null; sleep 600',
  files: `echo started; python3 -c '
import os, time
fds = []
for p in range(200):
    if os.fork() == 0:
        try:
            while True: fds.append(os.open("/etc/hostname", os.O_RDONLY))
        except OSError: time.sleep(600)
        os._exit(0)
time.sleep(600)' 2>/dev/null`,
  epoll: `echo started; python3 -c '
import os, select, time
for p in range(16):
    if os.fork() == 0:
        eps, fds = [], []
        try:
            for i in range(480): fds.append(os.eventfd(0))
            for i in range(500):
                ep = select.epoll(); eps.append(ep)
                for fd in fds: ep.register(fd, select.EPOLLIN)
        except OSError: pass
        time.sleep(600); os._exit(0)
time.sleep(600)' 2>/dev/null`,
  inotify: `echo started; python3 -c '
import ctypes, time
libc = ctypes.CDLL(None)
fds = [libc.inotify_init1(0) for i in range(1000)]
for fd in fds:
    if fd >= 0:
        for i in range(10000):
            if libc.inotify_add_watch(fd, b"/etc/hostname", 0x2 | (i & 0xff) << 24) < 0: break
time.sleep(600)' 2>/dev/null`,
  memory: `echo started; python3 -c '
import time
chunks = []
try:
    while True: chunks.append(bytearray(16 << 20))
except MemoryError: pass
time.sleep(600)'; sleep 600`,
  'empty-lines': 'echo started; head -c 10485760 /dev/zero | tr "\\0" "\\n"; sleep 600',
  cpu: 'echo started; for i in $(seq $(nproc)); do (while :; do :; done) & done; sleep 600',
};

async function echoStats(c, n) {
  const samples = [];
  for (let i = 0; i < n; i++) {
    await c.waitPoolIdle(1, 120_000);
    const t0 = performance.now();
    const id = await c.submit('echo hi');
    const { lines, end } = await c.follow(id);
    if (end?.status !== 'completed' || !lines.some((l) => l.message === 'hi')) throw new Error(`echo job ${id} ended ${JSON.stringify(end)}`);
    samples.push(performance.now() - t0);
  }
  return stats(samples);
}

async function coldStats(c, n) {
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const id = await c.submit('echo hi');
    const { end } = await c.follow(id);
    if (end?.status !== 'completed') throw new Error(`echo job ${id} ended ${JSON.stringify(end)}`);
    samples.push(performance.now() - t0);
  }
  return stats(samples);
}

async function waitStarted(server, id) {
  const headers = { authorization: `Bearer ${server.token}`, accept: 'text/event-stream' };
  const ctl = new AbortController();
  const res = await fetch(`${server.url}/api/v1/mags-jobs/${id}/logs?follow=1`, { headers, signal: ctl.signal });
  let buf = '';
  const deadline = Date.now() + 60_000;
  try {
    for await (const chunk of res.body) {
      buf += Buffer.from(chunk).toString();
      if (buf.includes('started')) return;
      if (Date.now() > deadline) throw new Error(`attack job ${id} did not start`);
    }
  } finally {
    ctl.abort();
  }
}

async function stop(server, id) {
  await fetch(`${server.url}/api/v1/mags-jobs/${id}/stop`, { method: 'POST', headers: { authorization: `Bearer ${server.token}` } });
}

const rows = [];
if (opt.base) {
  // Both trees' servers run at once and take turns, sample by sample: a busy host slows both alike.
  for (const [mode, env] of [['warm', { MAGS_POOL_MIN_SIZE: '4' }], ['cold', { MAGS_POOL_MIN_SIZE: '0' }]]) {
    const servers = [await startServer(env, opt.base), await startServer(env, REPO)];
    try {
      const clients = servers.map((s) => api(s));
      if (mode === 'warm') for (const c of clients) await c.waitPoolIdle(4, 120_000);
      const measure = mode === 'warm' ? echoStats : coldStats;
      for (const c of clients) await measure(c, 3);
      const samples = [[], []];
      for (let i = 0; i < RUNS; i++) {
        for (const k of [0, 1]) {
          const r = await measure(clients[k], 1);
          samples[k].push(r.p50);
        }
      }
      rows.push({ name: `before (base): ${mode}`, ...stats(samples[0]) });
      rows.push({ name: `after (this tree): ${mode}`, ...stats(samples[1]) });
    } finally {
      for (const s of servers) await s.stop();
    }
  }
  printTable('echo hi before vs after, interleaved (ms)', rows.splice(0));
}

if (opt['no-attacks']) process.exit(0);
const server = await startServer({ MAGS_POOL_MIN_SIZE: '4' });
try {
  const c = api(server);
  await c.waitPoolIdle(4, 120_000);
  await echoStats(c, 5);
  rows.push({ name: 'no attack', ...(await echoStats(c, RUNS)) });
  const names = opt.attacks ? opt.attacks.split(',') : Object.keys(ATTACKS);
  for (const name of names) {
    const id = await c.submit(ATTACKS[name], { memory_mb: 512, vcpus: 2, timeout_seconds: 600 });
    try {
      await waitStarted(server, id);
      await new Promise((r) => setTimeout(r, 3000)); // let it reach its limit
      rows.push({ name: `during ${name}`, ...(await echoStats(c, RUNS)) });
    } finally {
      await stop(server, id);
    }
    const job = await c.json(`/api/v1/mags-jobs/${id}/status`).catch(() => null);
    rows[rows.length - 1].note = job ? `attack ended ${job.status}` : '';
  }
} finally {
  await server.stop();
}
printTable(`warm echo hi while another job attacks (ms, ${RUNS} runs each)`, rows);
