import { AsyncLocalStorage } from 'node:async_hooks';

const lane = new AsyncLocalStorage<'background'>();

/**
 * Runs `fn` as background work: host commands it starts (directly or through anything it awaits)
 * run at a low CPU weight. The warm pool creates and tears down sandboxes this way, so a job that
 * starts meanwhile gets the CPU first instead of sharing it with crun, `ip` and the mount helpers.
 */
export function inBackground<T>(fn: () => Promise<T>): Promise<T> {
  return lane.run('background', fn);
}

/** Whether the caller runs inside `inBackground`. */
export function isBackground(): boolean {
  return lane.getStore() === 'background';
}
