/** The cgroup layout detection for v2, v1 and hybrid hosts (pure parsing; the real host is covered elsewhere). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cgroupMode, parseCgroupMounts } from '../src/runtime/drivers/container/cgroups.js';

const HYBRID = `
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,pids
`;
const V2 = `
30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;
const V1 = HYBRID.split('\n').filter((l) => !l.includes('cgroup2')).join('\n');

describe('cgroup layout detection', () => {
  it('hybrid: v1 controllers beside a cgroup2 mount', () => {
    const h = parseCgroupMounts(HYBRID);
    assert.equal(cgroupMode(h), 'hybrid');
    assert.deepEqual(h.find((x) => x.mountPoint === '/sys/fs/cgroup/cpu,cpuacct')?.controllers, ['cpu', 'cpuacct']);
    assert.deepEqual(h.find((x) => x.v2)?.mountPoint, '/sys/fs/cgroup/unified');
  });

  it('pure v2 and pure v1', () => {
    assert.equal(cgroupMode(parseCgroupMounts(V2)), 'v2');
    assert.equal(cgroupMode(parseCgroupMounts(V1)), 'v1');
  });

  it('a named-only v1 hierarchy (name=systemd) beside cgroup2 is still v2', () => {
    const text = V2 + '32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n';
    assert.equal(cgroupMode(parseCgroupMounts(text)), 'v2');
  });
});
