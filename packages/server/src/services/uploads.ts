import { createHash } from 'node:crypto';
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream';
import type { Logger } from 'pino';
import type { BlobStore } from '../storage/blobs/blob-store.js';
import type { User } from '../storage/metadata/store.js';
import type { UploadRecord, UploadStore } from '../storage/metadata/uploads.js';
import { AppError } from './errors.js';
import { newId } from './tokens.js';

/** Largest upload when the daemon sets no other limit (100 MiB). */
export const DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024;
/** Longest file name in UTF-8 bytes (a file name on Linux file systems). */
export const MAX_FILE_NAME_BYTES = 255;

/** What clients see of an uploaded file. */
export interface UploadInfo {
  file_id: string;
  name: string;
  size: number;
  sha256: string;
  created_at: string;
}

// C0 control characters and DEL, NUL included.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Checks a client's file name: it becomes `/root/<name>` in jobs, so it must be one plain path
 * segment. Returns the name or throws VALIDATION_ERROR saying which rule it breaks.
 */
export function checkFileName(name: string | undefined): string {
  const bad = (why: string): never => {
    throw new AppError('VALIDATION_ERROR', `file name ${JSON.stringify((name ?? '').slice(0, 80))} ${why}`, 'Send the base name of the file (e.g. data.csv) as the filename of the "file" part.');
  };
  if (name === undefined || name === '') return bad('is empty');
  if (name === '.' || name === '..') return bad('is not a file name');
  if (name.includes('/')) return bad('contains "/"');
  if (CONTROL.test(name)) return bad('contains a NUL or control character');
  if (Buffer.byteLength(name, 'utf8') > MAX_FILE_NAME_BYTES) return bad(`is longer than ${MAX_FILE_NAME_BYTES} bytes`);
  return name;
}

/** Counts and hashes the bytes passing through; fails with PAYLOAD_TOO_LARGE past `limit`. */
class Meter extends Transform {
  size = 0;
  private readonly hash = createHash('sha256');
  sha256 = '';
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.limit) return done(tooLarge(this.limit));
    this.hash.update(chunk);
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    this.sha256 = this.hash.digest('hex');
    done();
  }
}

function tooLarge(limit: number): AppError {
  return new AppError('PAYLOAD_TOO_LARGE', `The file is larger than this server accepts (${limit} bytes)`, 'Fetch large data from inside the script, or ask the operator to raise MAGS_MAX_UPLOAD_BYTES.');
}

/**
 * Uploaded files: bytes in the blob store under `uploads/<id>`, a row in the metadata store. A
 * failed upload leaves neither. Jobs name files in `file_ids`; the scheduler places them in `/root`.
 */
export class UploadsService {
  constructor(
    private readonly store: UploadStore,
    /** Absent: the server has no blob store and uploads answer FEATURE_NOT_AVAILABLE. */
    private readonly blobs: BlobStore | undefined,
    private readonly log: Logger,
    readonly maxBytes: number = DEFAULT_MAX_UPLOAD_BYTES,
  ) {}

  private requireBlobs(): BlobStore {
    if (!this.blobs) throw new AppError('FEATURE_NOT_AVAILABLE', 'File uploads are not available: this server has no blob store', 'Fetch files from inside the script (curl, git).');
    return this.blobs;
  }

  /**
   * Streams `data` to the blob store while counting and hashing it. On any failure (too large,
   * client gone, store error) the blob is removed and no row is written.
   */
  async upload(user: User, name: string | undefined, data: Readable): Promise<UploadInfo> {
    const blobs = this.requireBlobs();
    const fileName = checkFileName(name);
    const id = newId();
    const key = `uploads/${id}`;
    const meter = new Meter(this.maxBytes);
    // Both streams get their error handlers now: bytes flow before the store starts reading, and the
    // first failure (size limit, a truncated part, a reset connection) is the one reported.
    let failure: unknown;
    pipeline(data, meter, (err) => {
      if (err) failure ??= err;
    });
    try {
      await blobs.put(key, meter);
      const row: UploadRecord = { id, user_id: user.id, name: fileName, size: meter.size, sha256: meter.sha256, blob_key: key, created_at: new Date().toISOString() };
      await this.store.insertUpload(row);
      this.log.debug({ fileId: id, userId: user.id, size: row.size }, 'file uploaded');
      return infoOf(row);
    } catch (err) {
      meter.destroy();
      data.resume();
      await blobs.delete(key).catch((e: unknown) => this.log.error({ err: e, key }, 'could not remove the blob of a failed upload'));
      // The store's error may wrap the meter's own (size limit) or only say the stream ended early.
      throw findAppError(failure) ?? findAppError(err) ?? err;
    }
  }

  async list(user: User): Promise<UploadInfo[]> {
    return (await this.store.listUploads(user.id)).map(infoOf);
  }

  /** Removes the file's row, then its bytes. */
  async delete(user: User, id: string): Promise<void> {
    const row = await this.get(user.id, id);
    await this.store.deleteUpload(user.id, id);
    await this.requireBlobs().delete(row.blob_key);
  }

  /** FILE_NOT_FOUND naming the first id that is not one of the user's files. */
  async checkIds(userId: string, ids: readonly string[]): Promise<void> {
    for (const id of ids) await this.get(userId, id);
  }

  /** The file's name and a stream of its bytes, for placing it in a job's sandbox. */
  async open(userId: string, id: string): Promise<{ name: string; size: number; data: Readable }> {
    const row = await this.get(userId, id);
    const data = await this.requireBlobs().get(row.blob_key);
    if (!data) throw new AppError('FILE_NOT_FOUND', `the bytes of file ${id} (${row.name}) are missing from the blob store`);
    return { name: row.name, size: row.size, data };
  }

  private async get(userId: string, id: string): Promise<UploadRecord> {
    const row = id === '' ? undefined : await this.store.getUpload(userId, id);
    if (!row) {
      throw new AppError('FILE_NOT_FOUND', `No file of yours has id "${id.length > 80 ? `${id.slice(0, 80)}...` : id}"`, 'List your files with GET /api/v1/mags-files, or upload it again.');
    }
    return row;
  }
}

function infoOf(r: UploadRecord): UploadInfo {
  return { file_id: r.id, name: r.name, size: r.size, sha256: r.sha256, created_at: r.created_at };
}

function findAppError(err: unknown): AppError | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof AppError) return e;
  }
  return undefined;
}
