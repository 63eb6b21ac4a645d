import type { Logger } from 'pino';
import type { RuntimeDriver, SandboxLimits, SandboxPool } from '../runtime/driver.js';

/** Options of the warm pool. */
export interface PoolOptions {
  /** Idle sandboxes kept ready. */
  minSize: number;
  /** Upper bound of sandboxes handed out plus idle ones that the pool reports. */
  maxSize: number;
  /** Limits pooled sandboxes are created with. */
  defaultLimits: SandboxLimits;
  log: Logger;
}

/** Creates the warm pool of pre-started sandboxes on top of a runtime driver. */
export function createPool(driver: RuntimeDriver, opts: PoolOptions): SandboxPool {
  throw new Error(`pool on ${driver.name} (min ${opts.minSize}) is not implemented yet`);
}
