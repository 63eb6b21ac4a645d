/**
 * The runtime driver registry: `MAGS_RUNTIME` names one entry, the composition root asks for it.
 * Each entry loads its driver module only when chosen, so a driver's host dependencies (crun,
 * a hypervisor) never load for another. A new driver is one folder under drivers/ plus one line here.
 */
import type { Logger } from 'pino';
import type { RuntimeDriver } from './driver.js';

/** What every runtime driver is created with; a driver ignores what it does not need. */
export interface RuntimeDriverOptions {
  /** Daemon state directory (MAGS_DATA_DIR). */
  dataDir: string;
  /** Where sandbox base images are built and cached (MAGS_IMAGE_DIR). */
  imageDir: string;
  /** Instance prefix from instancePrefix(dataDir); every host resource carries it. */
  instance: string;
  log: Logger;
  /** Debian mirror for image builds (MAGS_DEBIAN_MIRROR). */
  debianMirror?: string;
}

/** Creates a driver of one kind; loads the driver's module on first use. */
export type RuntimeFactory = (opts: RuntimeDriverOptions) => Promise<RuntimeDriver>;

/** Every runtime driver by the name `MAGS_RUNTIME` selects it with. */
const RUNTIMES = {
  container: async (opts) => (await import('./drivers/container/driver.js')).createContainerDriver(opts),
} as const satisfies Record<string, RuntimeFactory>;

export type RuntimeName = keyof typeof RUNTIMES;

/** Names of the known runtime drivers, in registration order (the first is the default). */
export const RUNTIME_NAMES: readonly RuntimeName[] = Object.keys(RUNTIMES) as RuntimeName[];

/** The default runtime driver. */
export const DEFAULT_RUNTIME: RuntimeName = 'container';

/** A runtime name the registry does not know; the message lists the known ones. */
export class UnknownRuntimeError extends Error {
  constructor(readonly runtime: string) {
    super(`unknown runtime driver "${runtime}"; the known runtime drivers are: ${RUNTIME_NAMES.join(', ')} (set MAGS_RUNTIME to one of them).`);
    this.name = 'UnknownRuntimeError';
  }
}

/** Whether `name` is a registered runtime driver. */
export function isRuntimeName(name: string): name is RuntimeName {
  return Object.hasOwn(RUNTIMES, name);
}

/** Creates the runtime driver registered as `name`; UnknownRuntimeError for any other name. */
export async function createRuntimeDriver(name: string, opts: RuntimeDriverOptions): Promise<RuntimeDriver> {
  if (!isRuntimeName(name)) throw new UnknownRuntimeError(name);
  return RUNTIMES[name](opts);
}
