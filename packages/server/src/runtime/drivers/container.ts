import type { Logger } from 'pino';
import type { RuntimeDriver } from '../driver.js';

/** Options of the crun container driver. */
export interface ContainerDriverOptions {
  /** Daemon state directory (MAGS_DATA_DIR); sandbox state lives under it. */
  dataDir: string;
  /** Where base images are built and cached (MAGS_IMAGE_DIR). */
  imageDir: string;
  /** Instance prefix from instancePrefix(dataDir); every host resource carries it. */
  instance: string;
  log: Logger;
  /** Debian mirror used when the image has to be built (MAGS_DEBIAN_MIRROR). */
  debianMirror?: string;
}

/** Creates the crun-based runtime driver. */
export function createContainerDriver(opts: ContainerDriverOptions): RuntimeDriver {
  throw new Error(`container driver for ${opts.instance} is not implemented yet`);
}
