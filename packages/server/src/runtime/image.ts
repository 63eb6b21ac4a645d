import type { Logger } from 'pino';

/** Options of {@link buildImage}. */
export interface BuildImageOptions {
  /** Directory holding one sub-directory per image version. */
  imageDir: string;
  /** Rebuild even when the current version exists. */
  force?: boolean;
  /** Progress lines for people ("fetching", "installing 12/180", "packing"). */
  onProgress?: (message: string) => void;
  /** Debian mirror (config: MAGS_DEBIAN_MIRROR); default http://deb.debian.org/debian. */
  mirror?: string;
  log?: Logger;
}

/** A built base image. */
export interface BuiltImage {
  version: string;
  /** Path of the read-only erofs root file system. */
  path: string;
}

/** Builds the base image unless its current version already exists (or `force`). */
export async function buildImage(opts: BuildImageOptions): Promise<BuiltImage> {
  throw new Error(`buildImage(${opts.imageDir}) is not implemented yet`);
}
