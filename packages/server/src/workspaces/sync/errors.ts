/**
 * Typed errors of workspace sync and restore. Callers decide on `code` and `retryable`, never on
 * the message: a retryable error (the blob store is down or timed out) is worth a retry with
 * backoff; the others need a person (a corrupt blob, an unsafe manifest, a bad argument).
 */

/** What went wrong, stable for programs. */
export type WorkspaceSyncErrorCode =
  /** The blob store failed (network, I/O, permissions): retry later. */
  | 'STORE_UNAVAILABLE'
  /** A blob's bytes do not hash to the manifest's hash (or have the wrong length). */
  | 'CORRUPT_BLOB'
  /** A blob the manifest needs is not in the store. */
  | 'MISSING_BLOB'
  /** A manifest is malformed or names an unsafe path (absolute, `..`, empty segment, NUL, under a non-directory). */
  | 'UNSAFE_MANIFEST'
  /** The workspace has no such version (or no version at all). */
  | 'VERSION_NOT_FOUND'
  /** The layer directory is missing, not a directory, a symlink, or (for restore) not empty. */
  | 'INVALID_LAYER'
  /** The workspace key or an option is malformed. */
  | 'INVALID_ARGUMENT'
  /** The caller's AbortSignal fired; the previous version is untouched. */
  | 'ABORTED';

const RETRYABLE: ReadonlySet<WorkspaceSyncErrorCode> = new Set(['STORE_UNAVAILABLE']);

/** An error of `WorkspaceSync` with a stable code; `path` names the workspace file it concerns, when one does. */
export class WorkspaceSyncError extends Error {
  readonly retryable: boolean;
  constructor(
    readonly code: WorkspaceSyncErrorCode,
    message: string,
    opts: { cause?: unknown; path?: string } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'WorkspaceSyncError';
    this.path = opts.path;
    this.retryable = RETRYABLE.has(code);
  }
  readonly path: string | undefined;
}
