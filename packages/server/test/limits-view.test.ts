/**
 * Limits seen from inside (issue 12 item 5): a sandbox's `free`, `nproc`, /proc/{meminfo,cpuinfo,
 * stat,uptime,loadavg}, Node's os module and Python's os module report the memory and CPUs it was
 * granted, on a cold sandbox and on one whose limits changed after start (the pool's warm path), and
 * the LXCFS process behind the view is supervised: killed, it is restarted; while it is gone a
 * sandbox reading /proc gets an error at once, never a hang; once it is back its files are mounted
 * again into the sandboxes that run (and those frozen) so they show their limits again (issue 15).
 * Real crun sandboxes and a real lxcfs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Sandbox, SandboxLimits } from '../src/runtime/driver.js';
import { instancePrefix } from '../src/host/instance.js';
import { createContainerDriver } from '../src/runtime/drivers/container/driver.js';
import type { LxcfsView } from '../src/runtime/drivers/container/lxcfs.js';
import type { ProcViewRepair } from '../src/runtime/drivers/container/procview.js';
import { containerTestDriver, IMAGE_DIR, run, SMALL, testLog, type TestDriver } from './runtime-conformance.test.js';

const isRoot = process.getuid?.() === 0;
const hasLxcfs = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v lxcfs'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** What a sandbox reports about its memory (MiB) and CPUs, one probe per tool. */
const PROBE = [
  "free -m | awk '/^Mem:/ {print \"free\", $2}'",
  'echo nproc $(nproc)',
  "awk '/^MemTotal/ {print \"meminfo\", int($2/1024)}' /proc/meminfo",
  'echo cpuinfo $(grep -c ^processor /proc/cpuinfo)',
  'echo stat $(grep -c "^cpu[0-9]" /proc/stat)',
  'echo online $(cat /sys/devices/system/cpu/online)',
  "echo uptime $(awk '{print int($1)}' /proc/uptime)",
  'echo loadavg $(wc -w < /proc/loadavg)',
  `node -e 'const os=require("os"); console.log("node", Math.round(os.totalmem()/1048576), os.cpus().length, os.availableParallelism())'`,
  `python3 -c 'import os; print("python", os.cpu_count(), len(os.sched_getaffinity(0)), os.sysconf("SC_NPROCESSORS_ONLN"))'`,
].join('; ');

function parse(lines: string[]): Record<string, string[]> {
  return Object.fromEntries(lines.map((l) => l.trim().split(/\s+/)).map(([k, ...v]) => [k!, v]));
}

function assertView(v: Record<string, string[]>, memoryMb: number, ncpu: number): void {
  const near = (label: string, mb: string | undefined) => assert.ok(Math.abs(Number(mb) - memoryMb) <= 2, `${label} reports ${mb} MiB, granted ${memoryMb}: ${JSON.stringify(v)}`);
  near('free -m', v.free?.[0]);
  near('/proc/meminfo', v.meminfo?.[0]);
  near('node os.totalmem()', v.node?.[0]);
  const n = String(ncpu);
  assert.equal(v.nproc?.[0], n, `nproc: ${JSON.stringify(v)}`);
  assert.equal(v.cpuinfo?.[0], n, `/proc/cpuinfo processors: ${JSON.stringify(v)}`);
  assert.equal(v.stat?.[0], n, `/proc/stat cpuN lines: ${JSON.stringify(v)}`);
  assert.equal(v.online?.[0], ncpu === 1 ? '0' : `0-${ncpu - 1}`, `/sys/devices/system/cpu/online: ${JSON.stringify(v)}`);
  assert.deepEqual(v.node?.slice(1), [n, n], `node os.cpus().length, os.availableParallelism(): ${JSON.stringify(v)}`);
  assert.deepEqual(v.python, [n, n, n], `python os.cpu_count(), sched_getaffinity, SC_NPROCESSORS_ONLN: ${JSON.stringify(v)}`);
  assert.ok(Number(v.uptime?.[0]) < 120, `uptime is the sandbox's, not the host's: ${JSON.stringify(v)}`);
  assert.equal(v.loadavg?.[0], '5');
}

describe('limits seen from inside a sandbox (LXCFS + cpuset)', { skip: !isRoot ? 'needs root' : !hasLxcfs ? 'lxcfs not installed (apt-get install lxcfs)' : false, timeout: 300_000 }, () => {
  let t: TestDriver;
  const created: Sandbox[] = [];
  const make = async (limits: Partial<SandboxLimits> = {}) => {
    const sb = await t.driver.create({ limits: { ...SMALL, ...limits }, network: false });
    created.push(sb);
    return sb;
  };
  const view = () => (t.driver as unknown as { procView: LxcfsView }).procView;
  const repair = () => (t.driver as unknown as { procViewRepair: ProcViewRepair }).procViewRepair;
  /** Kills this driver's lxcfs (by the pid its supervisor holds) and waits until it is back and mounted into the sandboxes. */
  const restartLxcfs = async () => {
    const pid = view().pid;
    assert.ok(pid, 'lxcfs runs');
    const generation = view().generation;
    process.kill(pid, 'SIGKILL');
    // The supervisor sees the exit asynchronously: wait for its restart attempt to begin.
    for (const deadline = Date.now() + 15_000; view().generation === generation && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    assert.ok(view().generation > generation, 'a new lxcfs process was started');
    assert.equal(await view().ready(), true, 'lxcfs came back');
    // Joins the pass the restart started (or runs one): resolves once every sandbox was handled.
    return repair().repairAll();
  };

  before(async () => {
    t = await containerTestDriver({ network: false });
    await t.driver.init();
    assert.equal(view().active, true, 'lxcfs started with the driver');
  });
  after(async () => {
    try {
      await Promise.allSettled(created.map((s) => s.destroy()));
      const pid = view()?.pid;
      await t?.close();
      assert.equal(pid === null || (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')) === '', true, 'lxcfs left running after shutdown');
    } finally {
      // Nothing else to release: close() unmounts and removes the instance.
    }
  });

  it('cold: memory_mb 512 and vcpus 1 show as 512 MiB and 1 CPU in free, nproc, /proc, node and python', async () => {
    const sb = await make({ memoryMb: 512, vcpus: 1 });
    const r = await run(sb, PROBE);
    assert.equal(r.exitCode, 0, r.stderr.join('\n'));
    assertView(parse(r.stdout), 512, 1);
  });

  it('warm: a sandbox started with other limits shows the new ones after updateLimits (as the pool hands it out)', async () => {
    const hostCpus = cpus().length;
    const sb = await make({ memoryMb: 1024, vcpus: hostCpus });
    const before = await run(sb, PROBE);
    assertView(parse(before.stdout), 1024, hostCpus);
    await sb.updateLimits({ memoryMb: 512, vcpus: 1 });
    const r = await run(sb, PROBE);
    assert.equal(r.exitCode, 0, r.stderr.join('\n'));
    assertView(parse(r.stdout), 512, 1);
    // Fractions round up: 0.5 vCPU is one CPU to see, with half its time.
    await sb.updateLimits({ vcpus: 0.5, memoryMb: 300 });
    assertView(parse((await run(sb, PROBE)).stdout), 300, 1);
  });

  it('one-vCPU sandboxes are spread over the host CPUs, not piled on CPU 0', async (ctx) => {
    if (cpus().length < 2) return ctx.skip('one-CPU host');
    const a = await make({ vcpus: 1 });
    const b = await make({ vcpus: 1 });
    const cpuOf = async (sb: Sandbox) => (await run(sb, "awk '/Cpus_allowed_list/ {print $2}' /proc/self/status")).stdout[0];
    assert.notEqual(await cpuOf(a), await cpuOf(b));
  });

  it('MAGS_SANDBOX_CPUSET=off: the sandbox may run on every CPU (nproc = host), /proc still shows its quota', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mags-rt-'));
    const instance = instancePrefix(dataDir);
    const driver = createContainerDriver({ dataDir, imageDir: IMAGE_DIR, instance, log: testLog, network: null, cpuset: false });
    try {
      await driver.init();
      const sb = await driver.create({ limits: { ...SMALL, vcpus: 1 }, network: false });
      const v = parse((await run(sb, PROBE)).stdout);
      assert.equal(v.nproc?.[0], String(cpus().length));
      assert.equal(v.cpuinfo?.[0], '1');
      await sb.destroy();
    } finally {
      await driver.shutdown();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('lxcfs killed: a running sandbox gets an error from /proc at once (no hang), lxcfs is restarted and new sandboxes see the view', async () => {
    const old = await make({ memoryMb: 512, vcpus: 1 });
    const pid = view().pid;
    assert.ok(pid, 'lxcfs runs');
    const generation = view().generation;
    process.kill(pid, 'SIGKILL');
    const t0 = Date.now();
    const r = await run(old, 'cat /proc/meminfo >/dev/null 2>&1; echo rc=$?; cat /proc/self/status >/dev/null && echo own-proc-ok', { timeoutMs: 20_000 });
    const tookMs = Date.now() - t0;
    assert.ok(tookMs < 5_000, `reading /proc took ${tookMs} ms with lxcfs gone`);
    assert.equal(r.stdout.at(-1), 'own-proc-ok');
    // The supervisor sees the exit only once Node has reaped the process: wait for the new one.
    for (const deadline = Date.now() + 15_000; !(view().active && view().generation > generation) && Date.now() < deadline; ) await new Promise((res) => setTimeout(res, 20));
    assert.ok(view().active && view().generation > generation, 'lxcfs came back');
    assert.notEqual(view().pid, pid);
    const fresh = await make({ memoryMb: 512, vcpus: 1 });
    assertView(parse((await run(fresh, PROBE)).stdout), 512, 1);
  });

  it('lxcfs restarted: a running and a frozen sandbox get the new view mounted and show their limits again', async () => {
    const running = await make({ memoryMb: 512, vcpus: 1 });
    const frozen = await make({ memoryMb: 512, vcpus: 1 });
    assertView(parse((await run(running, PROBE)).stdout), 512, 1);
    await frozen.pause!();
    // Twice: the second restart replaces mounts that were themselves repaired.
    for (let round = 1; round <= 2; round++) {
      const report = await restartLxcfs();
      assert.deepEqual(report.failed, [], `repair failures: ${JSON.stringify(report.failed)}`);
      for (const sb of [running, frozen]) assert.equal(repair().generationOf(sb.id), view().generation, `sandbox ${sb.id} has the new view (round ${round})`);
      const r = await run(running, `${PROBE}; cat /proc/meminfo >/dev/null && cat /proc/uptime >/dev/null && echo reads ok`);
      assert.equal(r.exitCode, 0, r.stderr.join('\n'));
      assert.equal(r.stdout.at(-1), 'reads ok', `round ${round}: ${r.stderr.join('\n')}`);
      assertView(parse(r.stdout.slice(0, -1)), 512, 1);
      // The mount is the new one alone (the dead one was detached, not stacked under it).
      const mounts = await run(running, 'grep -c " /proc/meminfo " /proc/self/mountinfo');
      assert.equal(mounts.stdout[0], '1', `mounts at /proc/meminfo: ${mounts.stdout.join(' ')}`);
    }
    // exec thaws the frozen one: it was repaired while frozen.
    const f = await run(frozen, PROBE);
    assert.equal(f.exitCode, 0, f.stderr.join('\n'));
    assertView(parse(f.stdout), 512, 1);
  });

  it('lxcfs killed while a sandbox is created: the create waits for the restart (bounded) and the sandbox gets the view', async () => {
    const pid = view().pid;
    assert.ok(pid, 'lxcfs runs');
    const generation = view().generation;
    process.kill(pid, 'SIGKILL');
    const sb = await make({ memoryMb: 512, vcpus: 1 });
    for (const deadline = Date.now() + 15_000; !(view().active && view().generation > generation) && Date.now() < deadline; ) await new Promise((res) => setTimeout(res, 20));
    assert.ok(view().active && view().generation > generation, 'lxcfs came back');
    await repair().repairAll();
    assertView(parse((await run(sb, PROBE)).stdout), 512, 1);
  });

  it('lxcfs down for longer than a create waits: the sandbox starts without the view (procfs\'s own files, no error) and gets it once lxcfs is back', async () => {
    // lxcfs cannot start while its binary is missing: the supervisor's attempts fail and back off.
    const opts = (view() as unknown as { opts: { binary?: string } }).opts;
    const pid = view().pid;
    assert.ok(pid, 'lxcfs runs');
    opts.binary = '/nonexistent/lxcfs';
    try {
      process.kill(pid, 'SIGKILL');
      const t0 = Date.now();
      const sb = await make({ memoryMb: 512, vcpus: 1 });
      const waitedMs = Date.now() - t0;
      assert.ok(waitedMs < 10_000, `the create waited ${waitedMs} ms for lxcfs`);
      assert.equal(view().active, false, 'lxcfs is still down');
      assert.equal(repair().generationOf(sb.id), 0, 'started without the view');
      const r = await run(sb, "awk '/^MemTotal/ {print int($2/1024)}' /proc/meminfo; nproc");
      assert.equal(r.exitCode, 0, `procfs's own files answer: ${r.stderr.join('\n')}`);
      assert.notEqual(Number(r.stdout[0]), 512, 'the host total, not the view');
      assert.equal(r.stdout[1], '1', 'the cpuset still gives nproc');
      opts.binary = undefined;
      for (const deadline = Date.now() + 30_000; !view().active && Date.now() < deadline; ) await new Promise((res) => setTimeout(res, 50));
      assert.equal(view().active, true, 'lxcfs is back once its binary is');
      const report = await repair().repairAll();
      assert.deepEqual(report.failed, []);
      assert.equal(repair().generationOf(sb.id), view().generation);
      assertView(parse((await run(sb, PROBE)).stdout), 512, 1);
    } finally {
      opts.binary = undefined;
    }
  });

  it('lxcfs dies between the OCI config and crun\'s bind mounts: the create restarts crun without the view, which comes once lxcfs is back', async () => {
    // The moment is made exact by killing lxcfs (and keeping it down) just before crun runs.
    const driver = t.driver as unknown as { crunRun: (id: string, bundle: string) => Promise<void> };
    const opts = (view() as unknown as { opts: { binary?: string } }).opts;
    const original = driver.crunRun;
    let crunRuns = 0;
    driver.crunRun = async function (this: unknown, id: string, bundle: string) {
      if (crunRuns++ === 0) {
        opts.binary = '/nonexistent/lxcfs';
        process.kill(view().pid!, 'SIGKILL');
        for (const deadline = Date.now() + 5_000; view().active && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 5));
      }
      return original.call(this, id, bundle);
    };
    try {
      const sb = await make({ memoryMb: 512, vcpus: 1 });
      if (crunRuns === 2) {
        // crun failed on the dead files and ran again without them: procfs's own files answer.
        assert.equal(repair().generationOf(sb.id), 0);
        const r = await run(sb, 'cat /proc/meminfo >/dev/null && echo ok');
        assert.equal(r.stdout[0], 'ok', r.stderr.join('\n'));
      } else {
        // The kernel still had the files' entries cached, so crun bound the dead files: the sandbox
        // is tracked with the dead generation and the repair below replaces them.
        assert.equal(crunRuns, 1);
      }
      opts.binary = undefined;
      for (const deadline = Date.now() + 30_000; !view().active && Date.now() < deadline; ) await new Promise((res) => setTimeout(res, 50));
      assert.equal(view().active, true, 'lxcfs is back');
      await repair().repairAll();
      assertView(parse((await run(sb, PROBE)).stdout), 512, 1);
    } finally {
      driver.crunRun = original;
      opts.binary = undefined;
    }
  });
});
