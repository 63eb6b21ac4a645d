import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fitReport, parentLimits } from '../src/runtime/drivers/container/host-limits.js';

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
