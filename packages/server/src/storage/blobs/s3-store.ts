/**
 * The S3 blob store: one object per key under an optional prefix in one bucket, on AWS S3 or any
 * S3-compatible service (MinIO, Cloudflare R2, Ceph). Credentials and, unless given, the region come
 * from the AWS SDK's standard chain (env vars, shared config and credentials files, SSO, web
 * identity, instance metadata). Large blobs go up as multipart uploads of bounded parts; S3 makes an
 * object visible only once its upload completes, so readers never see part of one.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import {
  BlobStoreError,
  validateBlobKey,
  validateBlobPrefix,
  validateBlobRange,
  type BlobGetOptions,
  type BlobHead,
  type BlobPutOptions,
  type BlobStore,
} from './blob-store.js';

/** Options of the S3 driver. */
export interface S3BlobStoreOptions {
  bucket: string;
  /** Key prefix inside the bucket (e.g. `mags/`), so one bucket can serve several installations. */
  prefix?: string;
  /** Endpoint URL of an S3-compatible service (`http://minio:9000`); absent = AWS. */
  endpoint?: string;
  /** Region; absent = the SDK's chain (`AWS_REGION`, `~/.aws/config`). R2 wants `auto`. */
  region?: string;
  /** Address buckets as `endpoint/bucket` instead of `bucket.endpoint` (MinIO and most self-hosted services). */
  forcePathStyle?: boolean;
  /** Explicit credentials; absent = the SDK's standard chain. */
  credentials?: S3ClientConfig['credentials'];
  /** Part size of multipart uploads in bytes (S3's minimum, 5 MiB, and up). Default 8 MiB. */
  partSizeBytes?: number;
  /** Parts uploaded at once; a put holds at most `queueSize * partSizeBytes` in memory. Default 4. */
  queueSize?: number;
  /** Attempts per request, retries of throttling and 5xx answers included (the SDK's default, 3, when absent). */
  maxAttempts?: number;
  /** Keys per list request (S3's maximum and default is 1000). */
  listPageSize?: number;
}

const MIB = 1024 * 1024;

/** Passes bytes through and fails at the end when their count is not the announced size. */
class LengthCheck extends Transform {
  private seen = 0;
  constructor(private readonly expected: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    done(this.seen === this.expected ? null : new Error(`the body has ${this.seen} bytes but the caller said ${this.expected}`));
  }
}

function errorName(err: unknown): string | undefined {
  return (err as { name?: string } | undefined)?.name;
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

/** A `BlobStore` on an S3 bucket. */
export class S3BlobStore implements BlobStore {
  readonly driver = 's3';
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly listPageSize: number | undefined;

  constructor(opts: S3BlobStoreOptions) {
    if (!opts.bucket) throw new Error('the S3 blob store needs a bucket name');
    const prefix = (opts.prefix ?? '').replace(/\/+$/, '');
    if (prefix !== '') validateBlobKey(prefix);
    this.bucket = opts.bucket;
    this.prefix = prefix === '' ? '' : `${prefix}/`;
    this.partSize = Math.max(opts.partSizeBytes ?? 8 * MIB, 5 * MIB);
    this.queueSize = Math.max(opts.queueSize ?? 4, 1);
    this.listPageSize = opts.listPageSize;
    this.client = new S3Client({
      region: opts.region,
      endpoint: opts.endpoint,
      forcePathStyle: opts.forcePathStyle,
      credentials: opts.credentials,
      maxAttempts: opts.maxAttempts,
      // Checksums only where S3 requires them: many S3-compatible services reject the default
      // trailing CRC32 checksums of newer SDKs.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  private objectKey(key: string): string {
    return this.prefix + key;
  }

  async put(key: string, data: Readable | Uint8Array, opts: BlobPutOptions = {}): Promise<void> {
    validateBlobKey(key);
    opts.signal?.throwIfAborted();
    let body: Readable | Uint8Array = data;
    if (opts.size !== undefined && data instanceof Uint8Array && data.length !== opts.size) {
      throw new BlobStoreError(this.driver, 'put', key, new Error(`the body has ${data.length} bytes but the caller said ${opts.size}`));
    }
    if (opts.size !== undefined && !(data instanceof Uint8Array)) {
      const check = new LengthCheck(opts.size);
      data.on('error', (err) => check.destroy(err));
      body = data.pipe(check);
    }
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: this.objectKey(key), Body: body },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    const onAbort = () => void upload.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await upload.done();
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw new BlobStoreError(this.driver, 'put', key, err);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  async get(key: string, opts: BlobGetOptions = {}): Promise<Readable | undefined> {
    validateBlobKey(key);
    const range = opts.range && validateBlobRange(opts.range);
    if (range?.length === 0) return (await this.head(key)) ? Readable.from([]) : undefined;
    const bytes = range && `bytes=${range.offset}-${range.length === undefined ? '' : range.offset + range.length - 1}`;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Range: bytes }));
      return out.Body as Readable;
    } catch (err) {
      if (errorName(err) === 'NoSuchKey') return undefined;
      // A range that starts at or past the end: the blob exists, the part asked for is empty.
      if (errorName(err) === 'InvalidRange' || httpStatus(err) === 416) {
        return (await this.head(key)) ? Readable.from([]) : undefined;
      }
      throw new BlobStoreError(this.driver, 'get', key, err);
    }
  }

  async head(key: string): Promise<BlobHead | undefined> {
    validateBlobKey(key);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return { size: out.ContentLength ?? 0, lastModified: out.LastModified };
    } catch (err) {
      if (errorName(err) === 'NotFound' || errorName(err) === 'NoSuchKey') return undefined;
      throw new BlobStoreError(this.driver, 'head', key, err);
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    validateBlobPrefix(prefix);
    const pages = paginateListObjectsV2({ client: this.client, pageSize: this.listPageSize }, { Bucket: this.bucket, Prefix: this.objectKey(prefix) });
    try {
      for await (const page of pages) {
        for (const obj of page.Contents ?? []) {
          if (obj.Key !== undefined) yield obj.Key.slice(this.prefix.length);
        }
      }
    } catch (err) {
      throw new BlobStoreError(this.driver, 'list', prefix, err);
    }
  }

  async delete(key: string): Promise<void> {
    validateBlobKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
    } catch (err) {
      throw new BlobStoreError(this.driver, 'delete', key, err);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
