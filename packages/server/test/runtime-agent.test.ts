/** The guest agent's interactive side (used by the SSH gateway): stdin, pty, resize, signals, orphans. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { OutputStream, Sandbox, SandboxProcess } from '../src/runtime/driver.js';
import { buildGuestAgent } from '../src/runtime/drivers/container/driver.js';
import { HostSpawner } from '../src/runtime/drivers/container/spawner.js';
import { MAINTENANCE_CPU_WEIGHT, sharesOfWeight } from '../src/runtime/drivers/container/cgroups.js';
import { inBackground } from '../src/runtime/priority.js';
import { containerTestDriver as instanceDriver } from './helpers/container-runtime.js';
import { containerTestDriver, run, sandboxLeftovers, SMALL, testLog, type TestDriver } from './runtime-conformance.test.js';

const exec = promisify(execFile);

function collect(sb: Sandbox, req: Parameters<NonNullable<Sandbox['spawn']>>[0]) {
  const out: Record<OutputStream, string> = { stdout: '', stderr: '' };
  const proc: SandboxProcess = sb.spawn!(req, (stream, data) => (out[stream] += data.toString()));
  return { proc, out };
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('guest agent: interactive processes', { timeout: 120_000 }, () => {
  let t: TestDriver;
  let sb: Sandbox;
  before(async () => {
    t = await containerTestDriver({ network: false });
    await t.driver.init();
    sb = await t.driver.create({ limits: SMALL, network: false });
  });
  after(async () => {
    await t?.close();
  });

  it('stdin pipe: data in, EOF ends the process', async () => {
    const { proc, out } = collect(sb, { argv: ['/bin/sh', '-c', 'tr a-z A-Z; echo end'], stdin: true });
    proc.write('hello\n');
    proc.write(Buffer.from('world\n'));
    proc.closeStdin();
    assert.deepEqual(await proc.exited, { code: 0, signal: null });
    assert.equal(out.stdout, 'HELLO\nWORLD\nend\n');
  });

  it('stdin flow control: 64 MiB streamed through the window arrive whole; a process that reads nothing holds only its own writer', async () => {
    const { proc, out } = collect(sb, { argv: ['/bin/sh', '-c', 'sha256sum | cut -c1-64'], stdin: true });
    const block = Buffer.alloc(1024 * 1024, 'abcdefgh');
    let waits = 0;
    for (let i = 0; i < 64; i++) {
      if (!proc.write(block)) {
        waits++;
        await proc.writable();
      }
    }
    proc.closeStdin();
    assert.deepEqual(await proc.exited, { code: 0, signal: null });
    const { createHash } = await import('node:crypto');
    const h = createHash('sha256');
    for (let i = 0; i < 64; i++) h.update(block);
    assert.equal(out.stdout.trim(), h.digest('hex'));
    assert.ok(waits >= 32, `the writer waited ${waits} times: the window bounds what is queued`);

    const stuck = collect(sb, { argv: ['/bin/sh', '-c', 'sleep 30'], stdin: true });
    let full = false;
    for (let i = 0; i < 4 && !full; i++) full = !stuck.proc.write(block);
    assert.ok(full, 'the window fills when the process reads nothing');
    let freed = false;
    void stuck.proc.writable().then(() => (freed = true));
    // Other channels are not held up: a new process runs and a ping answers.
    assert.deepEqual((await run(sb, 'echo still answering')).stdout, ['still answering']);
    assert.equal(freed, false, 'the stuck writer still waits');
    stuck.proc.kill(9);
    await stuck.proc.exited;
    await waitFor(() => freed, 'the writer released when the process ended');
  });

  it('pty: a terminal inside the sandbox, window size and resize, interactive shell', async () => {
    const { proc, out } = collect(sb, { argv: ['/bin/bash', '--norc', '-i'], pty: { cols: 100, rows: 30 } });
    proc.write('tty; stty size\n');
    await waitFor(() => /30 100/.test(out.stdout), 'stty size 30 100');
    assert.match(out.stdout, /\/dev\/pts\/\d+/);
    proc.resize(120, 40);
    proc.write('stty size\n');
    await waitFor(() => /40 120/.test(out.stdout), 'stty size 40 120');
    proc.write('exit 7\n');
    assert.deepEqual(await proc.exited, { code: 7, signal: null });
    assert.equal(out.stderr, '', 'a pty merges stderr into its output');
  });

  it('signals reach the process group (Ctrl-C semantics)', async () => {
    const { proc } = collect(sb, { argv: ['/bin/sh', '-c', 'sleep 30'] });
    await new Promise((r) => setTimeout(r, 100));
    proc.kill(2);
    assert.deepEqual(await proc.exited, { code: null, signal: 2 });
  });

  it('a sandbox killed from outside ends its running script with sandbox_failed; destroy still cleans up', async () => {
    const victim = await t.driver.create({ limits: SMALL, network: false });
    const running = run(victim, 'sleep 30');
    await new Promise((r) => setTimeout(r, 200));
    await exec('crun', ['--root', join('/run/mags', t.instance, 'crun'), 'kill', victim.id, 'KILL']);
    const r = await running;
    assert.equal(r.reason, 'sandbox_failed');
    assert.match(r.message ?? '', /sandbox stopped/);
    assert.equal((await run(victim, 'echo x')).reason, 'sandbox_failed');
    await victim.destroy();
    assert.deepEqual(await sandboxLeftovers(t.dataDir, t.instance, victim.id), []);
  });

  it('a sandbox frozen without its object knowing (a pause that timed out) is still destroyed cleanly', async () => {
    const victim = await t.driver.create({ limits: SMALL, network: false });
    const running = run(victim, 'sleep 30');
    await new Promise((r) => setTimeout(r, 200));
    // The cgroup freezer holds every process while the Sandbox believes it runs (paused = false).
    await (t.driver as unknown as { freeze(id: string, frozen: boolean): Promise<void> }).freeze(victim.id, true);
    await victim.destroy();
    assert.notEqual((await running).reason, 'exited');
    assert.deepEqual(await sandboxLeftovers(t.dataDir, t.instance, victim.id), []);
  });

  it('PID 1 reaps orphans: no zombies pile up', async () => {
    await run(sb, 'for i in $(seq 20); do (sh -c "exit 0" &) ; done; sleep 0.3');
    const r = await run(sb, 'ps -eo stat= | grep -c "^Z" || true');
    assert.deepEqual(r.stdout, ['0']);
  });
});

describe('background host work', { timeout: 120_000 }, () => {
  it('runs its host commands at a low CPU weight in a cgroup of its own; sandboxes never join it; the cgroup goes with the driver', async () => {
    const t = await instanceDriver({ network: false });
    try {
      await t.driver.init();
      const bg = await inBackground(() => t.driver.create({ limits: SMALL, network: false }));
      const fg = await t.driver.create({ limits: SMALL, network: false });
      const v1 = existsSync('/sys/fs/cgroup/cpu/cgroup.procs');
      const root = v1 ? '/sys/fs/cgroup/cpu' : '/sys/fs/cgroup';
      const maint = join(root, `${t.instance}.maint`);
      const weight = readFileSync(join(maint, v1 ? 'cpu.shares' : 'cpu.weight'), 'utf8').trim();
      assert.equal(weight, String(v1 ? sharesOfWeight(MAINTENANCE_CPU_WEIGHT) : MAINTENANCE_CPU_WEIGHT));
      // Only the background spawner lives there (the commands it forks inherit it while they run).
      const pids = readFileSync(join(maint, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
      assert.equal(pids.length, 1, `processes in ${maint}: ${pids.join(' ')}`);
      assert.match(readFileSync(`/proc/${pids[0]}/cmdline`, 'utf8').replaceAll('\0', ' '), /mags-guest host/);
      // Both sandboxes run in their own cgroups at the normal weight, the one made in the background too.
      for (const sb of [bg, fg]) {
        const procs = readFileSync(join(root, t.instance, sb.id, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
        assert.ok(procs.length > 0, `sandbox ${sb.id} has no processes in its own cgroup`);
        assert.ok(!procs.some((p) => pids.includes(p)));
        assert.equal((await sb.exec({ script: 'echo hi' }, () => {})).exitCode, 0);
      }
      await inBackground(() => bg.destroy());
      await fg.destroy();
    } finally {
      await t.close(); // fails when the driver left the background cgroup (or anything else) behind
    }
  });
});

describe('host process spawner', { timeout: 60_000 }, () => {
  let spawner: HostSpawner;
  before(async () => {
    spawner = new HostSpawner(await buildGuestAgent(), testLog);
  });
  after(() => spawner?.close());

  it('passes input on stdin and closes it; empty input is an immediate EOF', async () => {
    assert.equal((await spawner.run('cat', [], { input: 'link add x\nlink del y\n' })).stdout, 'link add x\nlink del y\n');
    assert.equal((await spawner.run('cat', [], { input: '' })).stdout, '');
    // Without input the command's stdin is /dev/null (cat ends at once).
    assert.equal((await spawner.run('cat', [])).stdout, '');
  });

  it('keeps a daemon with nothing else pending alive while it starts and runs a command', async () => {
    const spawnerJs = new URL('../src/runtime/drivers/container/spawner.js', import.meta.url).href;
    const script = `
      const { HostSpawner } = await import(${JSON.stringify(spawnerJs)});
      const s = new HostSpawner(${JSON.stringify(await buildGuestAgent())}, { error() {} });
      const r = await s.run('echo', ['done']);
      process.stdout.write(r.stdout);
      s.close();`;
    const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 });
    assert.equal(stdout, 'done\n');
  });

  it('a failing command rejects with its exit code, stdout and stderr', async () => {
    const err = (await spawner.run('sh', ['-c', 'cat; echo bad >&2; exit 3'], { input: 'partial' }).catch((e: unknown) => e)) as Error & {
      exitCode?: number;
      stdout?: string;
      stderr?: string;
    };
    assert.ok(err instanceof Error);
    assert.equal(err.exitCode, 3);
    assert.equal(err.stdout, 'partial');
    assert.equal(err.stderr?.trim(), 'bad');
  });
});
