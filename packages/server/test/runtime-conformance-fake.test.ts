/**
 * The runtime conformance suite on the in-memory fake driver (helpers/fake-runtime.ts), without
 * root: the generic contract plus pause and spawn, which the fake implements with signals and
 * child processes. The fake is what the pool, scheduler and API unit tests run on.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runtimeConformance } from './conformance/runtime.js';
import { FakeRuntimeDriver, type FakeSandbox } from './helpers/fake-runtime.js';

runtimeConformance(
  'fake (child processes)',
  async () => {
    // Its own directory, so shutdown() leaves it for the leftovers check below.
    const driver = new FakeRuntimeDriver({ dataDir: mkdtempSync(join(tmpdir(), 'mags-fake-rt-')) });
    return {
      driver,
      dataDir: driver.dataDir,
      leftovers: async (id, sb) => driver.leftovers(id, sb as FakeSandbox),
      async close() {
        try {
          const held = driver.list() as FakeSandbox[];
          await driver.shutdown();
          const left = held.flatMap((sb) => driver.leftovers(sb.id, sb));
          assert.deepEqual(left, [], `the fake driver left processes or directories behind: ${left.join(', ')}`);
        } finally {
          await rm(driver.dataDir, { recursive: true, force: true });
        }
      },
    };
  },
  { debianGuest: false, pause: true, spawn: true, pty: false, outputFlow: false, internet: false, cgroupLimits: false, diskLimit: false, workspaceLayer: true },
);
