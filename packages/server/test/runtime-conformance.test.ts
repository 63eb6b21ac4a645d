/**
 * The runtime conformance suite (conformance/runtime.ts) on the container driver: real crun, the
 * real image, every capability, and the host leak checks of helpers/container-runtime.ts. Needs root.
 * Re-exports the container test helpers, which the hostile, pool, agent and sweep tests import from here.
 */
import { pathToFileURL } from 'node:url';
import { runtimeConformance, run, SMALL, testLog, type Collected, type DriverFactory } from './conformance/runtime.js';
import { containerTestDriver, ensureImage, IMAGE_DIR, instanceLeftovers, sandboxLeftovers, type ContainerTestDriver } from './helpers/container-runtime.js';

export { containerTestDriver, ensureImage, IMAGE_DIR, instanceLeftovers, run, runtimeConformance, sandboxLeftovers, SMALL, testLog };
/** The container driver under test (what the tests importing from here call TestDriver). */
export type TestDriver = ContainerTestDriver;
export type { Collected, ContainerTestDriver, DriverFactory };

/** Everything the crun driver can do. */
export const CONTAINER_CAPABILITIES = {
  debianGuest: true,
  pause: true,
  spawn: true,
  pty: true,
  internet: true,
  cgroupLimits: true,
  diskLimit: true,
  workspaceLayer: true,
  outputFlow: true,
} as const;

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  runtimeConformance('container (crun)', () => containerTestDriver(), CONTAINER_CAPABILITIES);
}
