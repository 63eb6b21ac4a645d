/**
 * Hostile scripts against what sandboxes share with the host (issue 15): socket families outside
 * the sandbox's needs, the host's view through /sys, the OOM order, per-process and per-sandbox
 * limits, and the parent cgroup that keeps a reserve for the host. Real crun sandboxes with
 * networking (the /sys view depends on the sandbox's network namespace).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Sandbox, SandboxLimits } from '../src/runtime/driver.js';
import { SANDBOX_OOM_SCORE_ADJ } from '../src/runtime/drivers/container/driver.js';
import { SANDBOX_NOFILE } from '../src/runtime/drivers/container/oci.js';
import { containerTestDriver, run, SMALL, type TestDriver } from './runtime-conformance.test.js';

const isRoot = process.getuid?.() === 0;

describe('hostile scripts against host-wide resources', { skip: isRoot ? false : 'needs root', timeout: 300_000 }, () => {
  let t: TestDriver;
  const created: Sandbox[] = [];
  const make = async (limits: Partial<SandboxLimits> = {}, network = true) => {
    const sb = await t.driver.create({ limits: { ...SMALL, ...limits }, network });
    created.push(sb);
    return sb;
  };

  before(async () => {
    t = await containerTestDriver();
    await t.driver.init();
  });
  after(async () => {
    await Promise.allSettled(created.map((s) => s.destroy()));
    await t?.close();
  });

  it('socket(AF_VSOCK) and other unneeded families fail; unix, inet, inet6 and netlink work', async () => {
    const sb = await make();
    const py = [
      'import socket, errno',
      'def tryfam(name, fam, typ):',
      '    try:',
      '        socket.socket(fam, typ).close(); print(name, "ok")',
      '    except OSError as e:',
      '        print(name, errno.errorcode.get(e.errno, e.errno))',
      'tryfam("vsock", 40, socket.SOCK_STREAM)',
      'tryfam("vsock-dgram", 40, socket.SOCK_DGRAM)',
      'tryfam("packet", 17, socket.SOCK_RAW)',
      'tryfam("alg", 38, socket.SOCK_SEQPACKET)',
      'tryfam("bluetooth", 31, socket.SOCK_STREAM)',
      'tryfam("key", 15, socket.SOCK_RAW)',
      'tryfam("unix", socket.AF_UNIX, socket.SOCK_STREAM)',
      'tryfam("inet", socket.AF_INET, socket.SOCK_STREAM)',
      'tryfam("inet6", socket.AF_INET6, socket.SOCK_DGRAM)',
      'tryfam("netlink", 16, socket.SOCK_RAW)',
    ].join('\n');
    const r = await run(sb, `python3 - <<'EOF'\n${py}\nEOF`);
    assert.deepEqual(r.stdout, [
      'vsock EPERM',
      'vsock-dgram EPERM',
      'packet EPERM',
      'alg EPERM',
      'bluetooth EPERM',
      'key EPERM',
      'unix ok',
      'inet ok',
      'inet6 ok',
      'netlink ok',
    ], r.stderr.join('\n'));
    // A raw syscall with high bits set above AF_VSOCK's number is refused too (the kernel reads an int).
    const raw = await run(sb, 'python3 -c "import ctypes; libc = ctypes.CDLL(None, use_errno=True); print(libc.syscall(41, ctypes.c_long((1 << 32) | 40), 1, 0), ctypes.get_errno())"');
    assert.deepEqual(raw.stdout, ['-1 1']);
  });

  it('/sys shows the sandbox\'s own interfaces and no host block devices or paths', async () => {
    const sb = await make();
    const r = await run(sb, 'ls /sys/class/net | sort | tr "\\n" " "; echo; ls /sys/devices/virtual/block | wc -l; cat /sys/block/loop*/loop/backing_file 2>/dev/null | wc -l');
    const own = r.stdout[0]!.trim().split(' ');
    assert.deepEqual(own, ['eth0', 'lo'], `interfaces seen: ${r.stdout[0]}`);
    assert.deepEqual(r.stdout.slice(1), ['0', '0']);
    // The host may have an eth0 too: the sandbox's is another device (its veth, another address).
    const mac = (await run(sb, 'cat /sys/class/net/eth0/address')).stdout[0];
    const hostMacs = Object.values(networkInterfaces()).flat().map((a) => a?.mac);
    assert.ok(mac && !hostMacs.includes(mac), `eth0 in /sys is a host device (${mac})`);
    // Its counters are its own: the sandbox sent nothing yet on a fresh veth.
    const stats = await run(sb, 'cat /sys/class/net/lo/statistics/tx_packets; grep -rl "/var/lib\\|/tmp/\\|/work" /sys/class/net/ /sys/fs/ext4 2>/dev/null | head -3; echo done');
    assert.equal(stats.stdout.at(-1), 'done');
    assert.deepEqual(stats.stdout.slice(1, -1), [], 'host paths in /sys');
  });

  it('a sandbox without networking also sees only its loopback in /sys/class/net', async () => {
    const sb = await make({}, false);
    const r = await run(sb, 'ls /sys/class/net | tr "\\n" " "');
    assert.deepEqual(r.stdout.map((l) => l.trim()), ['lo']);
  });

  it('oom_score_adj is pinned: a script cannot lower its own below the sandbox floor', async (ctx) => {
    const sb = await make();
    // Setting the floor (oom_score_adj_min) needs CAP_SYS_RESOURCE, which some hosts withhold from root.
    const capEff = BigInt('0x' + /^CapEff:\s+([0-9a-f]+)/m.exec(await readFile('/proc/self/status', 'utf8'))![1]);
    const canPin = (capEff & (1n << 24n)) !== 0n;
    const floor = String(SANDBOX_OOM_SCORE_ADJ);
    const start = await run(sb, 'cat /proc/self/oom_score_adj /proc/1/oom_score_adj');
    if (!canPin) {
      ctx.diagnostic('the daemon lacks CAP_SYS_RESOURCE here: no floor; scripts start above the agent and cannot go below it (0)');
      assert.deepEqual(start.stdout, [floor, '0'], 'scripts start at the sandbox score, the agent at 0');
      const low = await run(sb, 'echo -1 > /proc/self/oom_score_adj 2>/dev/null && echo below-zero; echo 0 > /proc/self/oom_score_adj && echo to-zero; cat /proc/self/oom_score_adj');
      assert.deepEqual(low.stdout, ['to-zero', '0']);
      return;
    }
    assert.deepEqual(start.stdout, [floor, floor], 'the agent and its scripts start at the sandbox score');
    const r = await run(sb, [
      'echo -1000 > /proc/self/oom_score_adj 2>/dev/null && echo lowered-to-min',
      'echo 0 > /proc/self/oom_score_adj 2>/dev/null && echo lowered-to-zero',
      'echo 900 > /proc/self/oom_score_adj && echo raised-self',
      'cat /proc/self/oom_score_adj',
    ].join('; '));
    assert.deepEqual(r.stdout, ['raised-self', '900']);
  });

  it('per-process open files and per-sandbox processes are bounded', async () => {
    const sb = await make({ pids: 1024 });
    const r = await run(sb, 'ulimit -Sn; ulimit -Hn; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; ulimit -n 100000 2>/dev/null && echo raised');
    assert.deepEqual(r.stdout, [String(SANDBOX_NOFILE), String(SANDBOX_NOFILE), '1024']);
  });

  it('all sandboxes sit in one parent cgroup whose pids, memory and CPU weight leave a reserve for the host', async () => {
    await make();
    const pidMax = Number((await readFile('/proc/sys/kernel/pid_max', 'utf8')).trim());
    const memTotal = Number(/MemTotal:\s+(\d+)/.exec(await readFile('/proc/meminfo', 'utf8'))![1]) * 1024;
    const v1 = existsSync('/sys/fs/cgroup/pids/cgroup.procs');
    const pidsFile = v1 ? `/sys/fs/cgroup/pids/${t.instance}/pids.max` : `/sys/fs/cgroup/${t.instance}/pids.max`;
    const memFile = v1 ? `/sys/fs/cgroup/memory/${t.instance}/memory.limit_in_bytes` : `/sys/fs/cgroup/${t.instance}/memory.max`;
    const pids = Number((await readFile(pidsFile, 'utf8')).trim());
    const mem = Number((await readFile(memFile, 'utf8')).trim());
    assert.ok(pids > 0 && pids < pidMax, `parent pids.max ${pids} vs pid_max ${pidMax}`);
    assert.ok(mem > 0 && mem < memTotal, `parent memory limit ${mem} vs MemTotal ${memTotal}`);
    // CPU is weighed, not capped: all sandboxes together count as one default cgroup.
    const cpuFile = v1 ? join('/sys/fs/cgroup/cpu', t.instance, 'cpu.shares') : join('/sys/fs/cgroup', t.instance, 'cpu.weight');
    assert.equal((await readFile(cpuFile, 'utf8')).trim(), v1 ? '1024' : '100');
  });
});
