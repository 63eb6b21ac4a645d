#!/usr/bin/env node
/**
 * Exec and SSH benchmark against a real server (real sandboxes, its SSH gateway), side by side in
 * one run:
 *   - exec of `true` through the API on a running persistent sandbox (warm), vs a plain
 *     `GET .../status` of the same job (the HTTP + auth + lookup floor)
 *   - `ssh host true` connect-to-exit through the gateway vs `ssh` to a local OpenSSH sshd on a
 *     loopback port (same client, same key type)
 *   - exec and ssh on a frozen sandbox (thaw) and on a sleeping one (new sandbox on the workspace):
 *     connect-to-exit from sleep
 * Needs root, a built tree (`npm run build`), ssh and sshd. Prints a table and writes
 * bench/exec.results.json.
 *
 *   node bench/exec.mjs [--runs 200] [--ssh 30] [--wake 5]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { REPO, fmt, numberOption, printTable, startServer, stats } from './lib.mjs';

const RUNS = numberOption('--runs', 200);
const SSH_RUNS = numberOption('--ssh', 30);
const WAKE_RUNS = numberOption('--wake', 5);
const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });

const tmp = mkdtempSync(join(tmpdir(), 'mags-bench-exec-'));
const server = await startServer({ MAGS_SSH_PORT: '0', MAGS_POOL_MIN_SIZE: '1', MAGS_FREEZE_AFTER_SECONDS: '0.5', MAGS_SLEEP_AFTER_SECONDS: '2' });
let sshd;
try {
  const headers = { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' };
  const call = async (method, path, body) => {
    const res = await fetch(`${server.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const persistent = async (name, extra = {}) => {
    const { request_id } = await call('POST', '/api/v1/mags-jobs', { script: 'true', type: 'inline', persistent: true, name, no_sleep: false, ...extra });
    for (;;) {
      const st = await call('GET', `/api/v1/mags-jobs/${request_id}/status`);
      if (st.status === 'running' && st.vm_id) return request_id;
      if (!['pending', 'running'].includes(st.status)) throw new Error(`job ${name}: ${JSON.stringify(st)}`);
      await sleep(20);
    }
  };
  const waitStatus = async (id, want) => {
    for (let i = 0; i < 600; i++) {
      if ((await call('GET', `/api/v1/mags-jobs/${id}/status`)).status === want) return;
      await sleep(50);
    }
    throw new Error(`job ${id} never ${want}`);
  };
  const keyFor = async (id, name) => {
    const a = await call('POST', `/api/v1/mags-jobs/${id}/access`, { port: 22 });
    const f = join(tmp, name);
    writeFileSync(f, a.ssh_private_key, { mode: 0o600 });
    return { key: f, port: a.ssh_port };
  };
  const sshOnce = (key, port, user = 'root') => {
    const t = now();
    const r = spawnSync('ssh', ['-i', key, '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${join(tmp, 'kh')}`, '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-F', '/dev/null', `${user}@127.0.0.1`, 'true']);
    const ms = now() - t;
    if (r.status !== 0) throw new Error(`ssh failed (${r.status}): ${r.stderr}`);
    return ms;
  };

  // Warm exec vs the status floor, on one busy-free running sandbox (frozen after 0.5 s idle, so
  // the loop runs back to back and a warm-up wakes it first).
  const hot = await persistent('hot', { no_sleep: true });
  for (let i = 0; i < 20; i++) await call('POST', `/api/v1/mags-jobs/${hot}/exec`, { command: 'true' });
  const execSamples = [];
  const statusSamples = [];
  for (let i = 0; i < RUNS; i++) {
    let t = now();
    const r = await call('POST', `/api/v1/mags-jobs/${hot}/exec`, { command: 'true' });
    execSamples.push(now() - t);
    if (r.exit_code !== 0) throw new Error('exec true failed');
    t = now();
    await call('GET', `/api/v1/mags-jobs/${hot}/status`);
    statusSamples.push(now() - t);
  }

  // ssh through the gateway vs a local sshd on a loopback port.
  const { key, port } = await keyFor(hot, 'hot_key');
  const gateway = [];
  for (let i = 0; i < SSH_RUNS; i++) gateway.push(sshOnce(key, port));
  const sshdPort = await freePort();
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(tmp, 'sshd_host')]);
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(tmp, 'client')]);
  writeFileSync(join(tmp, 'authorized_keys'), spawnSync('cat', [join(tmp, 'client.pub')]).stdout);
  writeFileSync(
    join(tmp, 'sshd_config'),
    [`Port ${sshdPort}`, 'ListenAddress 127.0.0.1', `HostKey ${join(tmp, 'sshd_host')}`, `AuthorizedKeysFile ${join(tmp, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'UseDNS no', 'StrictModes no',
      `PidFile ${join(tmp, 'sshd.pid')}`, 'PrintMotd no'].join('\n') + '\n',
  );
  spawnSync('mkdir', ['-p', '/run/sshd']);
  sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(tmp, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  for (let i = 0; i < 100; i++) {
    if (spawnSync('ssh', ['-i', join(tmp, 'client'), '-p', String(sshdPort), '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${join(tmp, 'kh')}`, '-o', 'BatchMode=yes', '-F', '/dev/null', 'root@127.0.0.1', 'true']).status === 0) break;
    await sleep(100);
  }
  const local = [];
  for (let i = 0; i < SSH_RUNS; i++) local.push(sshOnce(join(tmp, 'client'), sshdPort));

  // From frozen and from sleep: a job with a workspace, left idle until frozen / sleeping.
  const sleeper = await persistent('sleeper', { workspace_id: 'bench-sleeper' });
  const sk = await keyFor(sleeper, 'sleeper_key');
  const thawExec = [];
  const thawSsh = [];
  const wakeExec = [];
  const wakeSsh = [];
  for (let i = 0; i < WAKE_RUNS; i++) {
    await sleep(1200); // frozen after 0.5 s idle, not yet asleep (2 s)
    let t = now();
    await call('POST', `/api/v1/mags-jobs/${sleeper}/exec`, { command: 'true' });
    thawExec.push(now() - t);
    await sleep(1200);
    thawSsh.push(sshOnce(sk.key, sk.port));
    await waitStatus(sleeper, 'sleeping');
    t = now();
    await call('POST', `/api/v1/mags-jobs/${sleeper}/exec`, { command: 'true' });
    wakeExec.push(now() - t);
    await waitStatus(sleeper, 'sleeping');
    wakeSsh.push(sshOnce(sk.key, sk.port));
  }

  const rows = [
    { name: 'GET status (floor: HTTP + auth + lookup)', ...stats(statusSamples) },
    { name: 'exec `true`, warm', ...stats(execSamples) },
    { name: 'ssh true, local OpenSSH sshd (baseline)', ...stats(local) },
    { name: 'ssh true, mags gateway, warm', ...stats(gateway) },
    { name: 'exec `true` on a frozen sandbox (thaw)', ...stats(thawExec) },
    { name: 'ssh true on a frozen sandbox (thaw)', ...stats(thawSsh) },
    { name: 'exec `true` on a sleeping sandbox (wake)', ...stats(wakeExec) },
    { name: 'ssh true on a sleeping sandbox (wake)', ...stats(wakeSsh) },
  ];
  printTable('exec and SSH round trips (connect to exit)', rows);
  writeFileSync(join(REPO, 'bench', 'exec.results.json'), JSON.stringify({ at: new Date().toISOString(), rows: rows.map((r) => ({ ...r, p50: Number(fmt(r.p50)), p95: Number(fmt(r.p95)) })) }, null, 2) + '\n');
} finally {
  if (sshd && sshd.exitCode === null) {
    sshd.kill('SIGTERM');
    await new Promise((r) => sshd.once('exit', r));
  }
  await server.stop();
  rmSync(tmp, { recursive: true, force: true });
}
