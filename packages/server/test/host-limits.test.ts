import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CpuPlacer, formatCpuList, parseCpuList } from '../src/runtime/drivers/container/cpus.js';
import { fitReport, parentLimits } from '../src/runtime/drivers/container/host-limits.js';
import { ociConfig } from '../src/runtime/drivers/container/oci.js';
import { slotUserLimits } from '../src/runtime/drivers/container/slots.js';

const GiB = 1024 ** 3;

describe('host-wide limit formulas (docs/security.md)', () => {
  it('the parent cgroup keeps max(1 GiB, 10%) memory and max(1024, 1/8) pids for the host and weighs its CPU like one default cgroup', () => {
    assert.deepEqual(parentLimits({ memTotalBytes: 24 * GiB, cpus: 2, pidMax: 32768, fileMax: 2466186 }), {
      memoryBytes: 24 * GiB - Math.floor((24 * GiB) / 10),
      cpuWeight: 100,
      pids: 28672,
    });
    assert.deepEqual(parentLimits({ memTotalBytes: 4 * GiB, cpus: 64, pidMax: 4194304, fileMax: 1e9 }), {
      memoryBytes: 3 * GiB,
      cpuWeight: 100,
      pids: 4194304 - 524288,
    });
  });

  it('reports whether sandboxes x pids and the open-file worst case fit pid_max and fs.file-max', () => {
    const host = { memTotalBytes: 24 * GiB, cpus: 2, pidMax: 32768, fileMax: 2466186 };
    const parent = parentLimits(host);
    const big = fitReport(host, parent, { maxSandboxes: 42, pids: 1024, nofile: 1024 });
    assert.equal(big.pidsNeeded, 43008);
    assert.equal(big.pidsFit, false);
    assert.equal(big.filesNeeded, 28672 * 1024, 'bounded by the parent pids.max');
    assert.equal(big.filesFit, false);
    const small = fitReport({ ...host, fileMax: 64 * 1024 * 1024 }, parent, { maxSandboxes: 4, pids: 1024, nofile: 1024 });
    assert.equal(small.pidsFit, true);
    assert.equal(small.filesFit, true);
  });
});

describe('CPU placement of sandboxes (cpuset sized to vcpus)', () => {
  it('gives ceil(vcpus) CPUs, at most the host\'s, the least used first, and takes them back', () => {
    const p = new CpuPlacer([0, 1, 2, 3]);
    assert.equal(p.place('a', 1), '0');
    assert.equal(p.place('b', 1), '1');
    assert.equal(p.place('c', 1.5), '2-3');
    assert.equal(p.place('d', 64), '0-3', 'more vcpus than CPUs: all of them');
    p.release('a');
    p.release('d');
    assert.equal(p.place('e', 0.25), '0', 'a fraction is one CPU, the freed one');
    // b (CPU 1) is placed again: its old CPU counts as free, so it gets the two least used.
    assert.equal(p.place('b', 2), '0-1');
  });

  it('parses and formats cpuset lists', () => {
    assert.deepEqual(parseCpuList('0-2,5,7-8\n'), [0, 1, 2, 5, 7, 8]);
    assert.equal(formatCpuList([0, 1, 2, 5, 7, 8]), '0-2,5,7-8');
    assert.equal(formatCpuList([3]), '3');
  });
});

describe('sandbox uid slots and their OCI config', () => {
  it('limits every slot user namespace: no nested user namespaces, bounded inotify, namespaces for crun', () => {
    const own = Object.fromEntries(slotUserLimits().split(',').map((kv) => kv.split('=')));
    assert.equal(own.max_user_namespaces, '0');
    assert.equal(own.max_inotify_instances, '128');
    assert.ok(Number(own.max_mnt_namespaces) >= 1 && Number(own.max_net_namespaces) >= 1);
  });

  it('joins the slot\'s user namespace, maps its range, pins the cpuset and binds the /proc view', () => {
    const cfg = ociConfig({
      rootfs: '/r', hostname: 'h', runDir: '/run', agentPath: '/a', cgroupsPath: '/i/x', nofileHard: 4096, swapLimit: true,
      limits: { vcpus: 1, memoryMb: 512, diskGb: 1, pids: 1024 },
      idMap: { base: 1_000_065_536, count: 65536 },
      userNamespacePath: '/run/mags/i/slots/1.userns',
      cpus: '1',
      extraMounts: [{ destination: '/proc/meminfo', type: 'bind', source: '/v/proc/meminfo', options: ['bind', 'ro'] }],
    }) as { linux: { namespaces: Array<{ type: string; path?: string }>; uidMappings: unknown[]; resources: { cpu: { cpus?: string } } }; mounts: Array<{ destination: string }> };
    assert.deepEqual(cfg.linux.namespaces.find((n) => n.type === 'user'), { type: 'user', path: '/run/mags/i/slots/1.userns' });
    assert.deepEqual(cfg.linux.uidMappings, [{ containerID: 0, hostID: 1_000_065_536, size: 65536 }]);
    assert.equal(cfg.linux.resources.cpu.cpus, '1');
    const dest = cfg.mounts.map((m) => m.destination);
    assert.ok(dest.indexOf('/proc/meminfo') > dest.indexOf('/proc'), 'the view is bound over the sandbox\'s own procfs');
  });
});
