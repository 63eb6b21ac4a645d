/** An uploaded file: its name in `/root` of the jobs that use it and where its bytes are. */
export interface UploadRecord {
  /** The file id clients send in `file_ids`. */
  id: string;
  user_id: string;
  /** Base name the file gets in `/root`. */
  name: string;
  /** Size in bytes. */
  size: number;
  /** Hex SHA-256 of the bytes. */
  sha256: string;
  /** Key of the bytes in the blob store. */
  blob_key: string;
  created_at: string;
}

/**
 * Upload rows. `KyselyUploadStore` implements it on SQLite and PostgreSQL (one code path); reads and
 * deletes are scoped to one user, so another user's file is invisible.
 */
export interface UploadStore {
  insertUpload(row: UploadRecord): Promise<void>;
  getUpload(userId: string, id: string): Promise<UploadRecord | undefined>;
  /** The user's files, newest first. */
  listUploads(userId: string): Promise<UploadRecord[]>;
  /** Removes the row; false when the user has no such file. */
  deleteUpload(userId: string, id: string): Promise<boolean>;
}
