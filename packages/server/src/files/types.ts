/** Shared types of the files API: entries, and the errors of file operations before they become AppErrors. */

/** One file, directory or other entry, as the files API lists it. */
export interface FileEntry {
  name: string;
  /** Absolute path inside the sandbox. */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** Bytes (of the link text for a symlink). */
  size: number;
  /** Permission bits (e.g. 0o644 = 420). */
  mode: number;
  /** Modification time, ISO 8601. */
  mtime: string;
  /** A symlink's target, as stored (not resolved). */
  target?: string;
}

/**
 * What went wrong, by errno name as the guest reports it, plus ENOTREG (not a regular file, e.g. a
 * FIFO or device) and ESHORT (a body or file ended before its announced length).
 */
export type FsErrorKind =
  | 'ENOENT' | 'ENOTDIR' | 'EISDIR' | 'EEXIST' | 'ENOTEMPTY' | 'ENOSPC' | 'EACCES' | 'EPERM' | 'EROFS'
  | 'ELOOP' | 'ENAMETOOLONG' | 'EXDEV' | 'EINVAL' | 'EBUSY' | 'EMFILE' | 'ENOTREG' | 'ESHORT' | 'EIO';

/** A failed file operation (the service maps `kind` to a registry code). */
export class FsError extends Error {
  constructor(
    readonly kind: FsErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'FsError';
  }
}
