/**
 * The blob store interface: opaque byte blobs under relative slash-separated keys. Workspace sync
 * keeps its content-addressed layer chunks and manifests here. Concrete drivers (fs-store.ts on a
 * local directory, s3-store.ts on any S3-compatible service) pass the same conformance suite in
 * test/blob-store.test.ts.
 */
import type { Readable } from 'node:stream';

/** What `head` knows about a stored blob. */
export interface BlobHead {
  /** Size in bytes. */
  size: number;
  /** When the blob was last written, where the backend tracks it. */
  lastModified?: Date;
}

/** Options of `put`. */
export interface BlobPutOptions {
  /**
   * The exact byte length of a streamed body when the caller knows it. Drivers may use it to
   * upload in one request; a body of another length fails the put.
   */
  size?: number;
  /** Aborts the upload; the blob keeps its previous value (or stays absent). */
  signal?: AbortSignal;
}

/** A byte range of a blob: `length` bytes from `offset` (to the end when `length` is absent). */
export interface BlobRange {
  offset: number;
  length?: number;
}

/** Options of `get`. */
export interface BlobGetOptions {
  /** Read only part of the blob; a range past the end is cut at the end (possibly to nothing). */
  range?: BlobRange;
}

/**
 * A store of blobs. Every method validates its key first and throws `InvalidBlobKeyError` for a
 * hostile one. Writes are atomic: a reader sees either the previous value or the complete new one.
 * One key cannot also be the "directory" of another (`a` and `a/b`): the filesystem driver refuses
 * that, so callers lay keys out as files in a tree.
 */
export interface BlobStore {
  /** Which driver this is (`fs` or `s3`), for logs. */
  readonly driver: string;
  /** Stores `data` under `key`, replacing any previous value. Streams: never holds a whole large blob in memory. */
  put(key: string, data: Readable | Uint8Array, opts?: BlobPutOptions): Promise<void>;
  /** The blob's bytes as a stream, or undefined when there is no blob under `key`. */
  get(key: string, opts?: BlobGetOptions): Promise<Readable | undefined>;
  /** Size (and time) of the blob, or undefined when there is none. */
  head(key: string): Promise<BlobHead | undefined>;
  /**
   * Every key that starts with `prefix` (a plain string prefix, `''` for all), in no particular
   * order. Pages through the backend lazily; keys written during the walk may or may not appear.
   */
  list(prefix: string): AsyncIterable<string>;
  /** Removes the blob; removing a missing key succeeds. */
  delete(key: string): Promise<void>;
  /** Releases connections and handles; the store is unusable afterwards. */
  close(): Promise<void>;
}

/** Thrown for a key (or list prefix) no driver may use: it says which rule the key breaks. */
export class InvalidBlobKeyError extends Error {
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`invalid blob key ${JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}...` : key)}: ${reason}`);
    this.name = 'InvalidBlobKeyError';
  }
}

/** A backend failure (I/O, network, permissions) with the driver, operation and key it concerns. */
export class BlobStoreError extends Error {
  constructor(
    readonly driver: string,
    readonly op: string,
    readonly key: string,
    cause: unknown,
  ) {
    super(`blob store (${driver}) ${op} ${JSON.stringify(key)} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'BlobStoreError';
  }
}

/** Longest key in UTF-8 bytes (S3's limit). */
export const MAX_BLOB_KEY_BYTES = 1024;
/** Longest key segment in UTF-8 bytes (a file name on Linux file systems). */
export const MAX_BLOB_SEGMENT_BYTES = 255;
/**
 * Segments starting with this are reserved: the filesystem driver names its temporary files so,
 * and a key that could collide with one would be portable to one driver only.
 */
export const RESERVED_SEGMENT_PREFIX = '.blobtmp.';

// C0 control characters and DEL, NUL included.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
// Half of a UTF-16 surrogate pair: it has no UTF-8 form, so two such keys would collide.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkText(value: string, what: string): void {
  if (CONTROL.test(value)) throw new InvalidBlobKeyError(value, `${what} contains a NUL or control character`);
  if (value.includes('\\')) throw new InvalidBlobKeyError(value, `${what} contains a backslash; separate segments with "/"`);
  if (Buffer.byteLength(value, 'utf8') > MAX_BLOB_KEY_BYTES) throw new InvalidBlobKeyError(value, `${what} is longer than ${MAX_BLOB_KEY_BYTES} bytes`);
  if (LONE_SURROGATE.test(value)) throw new InvalidBlobKeyError(value, `${what} is not well-formed Unicode`);
}

function checkSegment(key: string, segment: string, last: boolean): void {
  if (segment === '') {
    throw new InvalidBlobKeyError(key, last ? 'it ends with "/"' : 'it has an empty segment ("//" or a leading "/": keys are relative)');
  }
  if (segment === '.' || segment === '..') throw new InvalidBlobKeyError(key, `it has a "${segment}" segment`);
  if (Buffer.byteLength(segment, 'utf8') > MAX_BLOB_SEGMENT_BYTES) throw new InvalidBlobKeyError(key, `a segment is longer than ${MAX_BLOB_SEGMENT_BYTES} bytes`);
  if (segment.startsWith(RESERVED_SEGMENT_PREFIX)) throw new InvalidBlobKeyError(key, `segments starting with "${RESERVED_SEGMENT_PREFIX}" are reserved`);
}

/** Returns `key` when every driver can store it safely; throws `InvalidBlobKeyError` otherwise. */
export function validateBlobKey(key: string): string {
  if (typeof key !== 'string' || key === '') throw new InvalidBlobKeyError(String(key), 'it is empty');
  checkText(key, 'it');
  const segments = key.split('/');
  segments.forEach((s, i) => checkSegment(key, s, i === segments.length - 1 && i > 0));
  return key;
}

/**
 * Returns `prefix` when it is a valid list prefix: `''`, or text that every key starting with it
 * could have (so its complete segments follow the key rules; the last one may be partial or empty).
 */
export function validateBlobPrefix(prefix: string): string {
  if (typeof prefix !== 'string') throw new InvalidBlobKeyError(String(prefix), 'the prefix is not a string');
  if (prefix === '') return prefix;
  checkText(prefix, 'the prefix');
  const segments = prefix.split('/');
  segments.slice(0, -1).forEach((s) => checkSegment(prefix, s, false));
  return prefix;
}

/** Throws a RangeError unless `range` has a non-negative integer offset and length. */
export function validateBlobRange(range: BlobRange): BlobRange {
  const ok = (n: number) => Number.isSafeInteger(n) && n >= 0;
  if (!ok(range.offset) || (range.length !== undefined && !ok(range.length))) {
    throw new RangeError(`invalid blob range ${JSON.stringify(range)}: offset and length must be non-negative integers`);
  }
  return range;
}
