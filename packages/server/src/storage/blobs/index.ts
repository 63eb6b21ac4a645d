/**
 * Picks a blob store driver from typed options: `{ driver: 'fs', root }` (the default on one host,
 * rooted in the data directory) or `{ driver: 's3', bucket, ... }` (many hosts sharing one bucket).
 */
import type { BlobStore } from './blob-store.js';
import { FsBlobStore, type FsBlobStoreOptions } from './fs-store.js';
import { S3BlobStore, type S3BlobStoreOptions } from './s3-store.js';

export * from './blob-store.js';
export { FsBlobStore, type FsBlobStoreOptions } from './fs-store.js';
export { S3BlobStore, type S3BlobStoreOptions } from './s3-store.js';

/** Options of `createBlobStore`: the driver's name plus that driver's own options. */
export type BlobStoreOptions = ({ driver: 'fs' } & FsBlobStoreOptions) | ({ driver: 's3' } & S3BlobStoreOptions);

/** Opens the blob store the options name. */
export async function createBlobStore(options: BlobStoreOptions): Promise<BlobStore> {
  switch (options.driver) {
    case 'fs':
      return FsBlobStore.open(options);
    case 's3':
      return new S3BlobStore(options);
    default: {
      const never: never = options;
      throw new Error(`unknown blob store driver ${JSON.stringify((never as { driver: unknown }).driver)}: use "fs" or "s3"`);
    }
  }
}
