/**
 * The one registry of error codes: every error the server sends carries one of these codes, its HTTP
 * status comes from here, and docs/errors.md has one row per code (a test checks that).
 * Add a code here first, then document it.
 */
export const ERROR_CODES = {
  VALIDATION_ERROR: { status: 400, summary: 'The request body, query or path is malformed or has a field of the wrong type.' },
  INVALID_JSON: { status: 400, summary: 'The request body is not valid JSON.' },
  MEMORY_EXCEEDS_HOST: { status: 400, summary: 'memory_mb is more than this host can give one sandbox; the message names the host maximum.' },
  VCPUS_EXCEED_HOST: { status: 400, summary: 'vcpus is more than this host has CPUs; the message names the host maximum.' },
  DISK_EXCEEDS_HOST: { status: 400, summary: 'disk_gb is more than the free space of the server\'s data directory; the message names the host maximum.' },
  HEADERS_TOO_LARGE: { status: 431, summary: "The request's header fields are larger than the server accepts (Node's 16 KiB)." },
  REQUEST_TIMEOUT: { status: 408, summary: 'The client did not send its whole request in time (slow sender).' },
  PAYLOAD_TOO_LARGE: { status: 413, summary: 'The request body (for example the script) is larger than the server accepts.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, summary: 'The request body is not sent as application/json.' },
  AUTH_REQUIRED: { status: 401, summary: 'No API token was sent.' },
  INVALID_TOKEN: { status: 401, summary: 'The API token is unknown or was revoked.' },
  INVALID_CREDENTIALS: { status: 401, summary: 'Sign-in failed: unknown user, wrong password or token, or a disabled user.' },
  FORBIDDEN: { status: 403, summary: 'The token is valid but may not do this (for example an admin-only call).' },
  CSRF_REJECTED: { status: 403, summary: 'A write authenticated by the session cookie came from another site or without the X-CSRF-Token header.' },
  NOT_FOUND: { status: 404, summary: 'The path does not exist.' },
  JOB_NOT_FOUND: { status: 404, summary: 'No job of yours has this request id, name or workspace id.' },
  TOKEN_NOT_FOUND: { status: 404, summary: 'No token of yours has this id.' },
  USER_NOT_FOUND: { status: 404, summary: 'No user has this id or name.' },
  WORKSPACE_NOT_FOUND: { status: 404, summary: 'No workspace of yours has this id.' },
  VERSION_NOT_FOUND: { status: 404, summary: 'The workspace has no stored version with this id.' },
  INVITE_NOT_FOUND: { status: 404, summary: 'The invite link is unknown, was already used or has expired.' },
  FILE_NOT_FOUND: { status: 404, summary: 'No uploaded file of yours has this id.' },
  SCHEDULE_NOT_FOUND: { status: 404, summary: 'No cron schedule of yours has this id or name.' },
  WEBHOOK_NOT_FOUND: { status: 404, summary: 'No webhook endpoint (or delivery) of yours has this id.' },
  WEBHOOK_TARGET_REFUSED: { status: 400, summary: 'A webhook URL points at an address the server refuses to call (loopback, private, link-local, its own) or is not http(s).' },
  PATH_NOT_FOUND: { status: 404, summary: 'The files API found no file or directory at this path inside the sandbox or workspace.' },
  URL_ALIAS_NOT_FOUND: { status: 404, summary: 'No URL alias of yours has this subdomain.' },
  URL_NOT_FOUND: { status: 404, summary: 'The proxy knows no public URL for this host name.' },
  JOB_ENDED: { status: 410, summary: 'The proxy reached a URL whose job has ended (stopped or failed); start the job again.' },
  BAD_REQUEST: { status: 400, summary: 'The proxy refused a malformed or ambiguous request (bad Host header, conflicting Content-Length and Transfer-Encoding, an absolute-form target).' },
  METHOD_NOT_ALLOWED: { status: 405, summary: 'The path exists but not with this HTTP method.' },
  CONFLICT: { status: 409, summary: 'The request conflicts with the current state (for example a name already taken).' },
  WORKSPACE_BUSY: { status: 409, summary: 'The workspace is already in use by a pending or running job.' },
  PATH_EXISTS: { status: 409, summary: 'The target path of a move or mkdir already exists (pass overwrite: true to replace it).' },
  IS_A_DIRECTORY: { status: 409, summary: 'The path is a directory where the files API needs a file (read, write, remove without recursive=1).' },
  NOT_A_DIRECTORY: { status: 409, summary: 'The path, or a component of it, is not a directory where the files API needs one.' },
  DIRECTORY_NOT_EMPTY: { status: 409, summary: 'The directory to remove is not empty (pass recursive=1).' },
  NOT_A_REGULAR_FILE: { status: 409, summary: 'The path is a FIFO, socket or device; the files API reads and replaces regular files only.' },
  JOB_NOT_RUNNING: { status: 409, summary: 'The job is not in a state that allows this call (for example it already ended).' },
  INVALID_STATE: { status: 422, summary: 'The request is well-formed but not valid for this job (for example URL access on a non-persistent job).' },
  QUOTA_EXCEEDED: { status: 429, summary: 'A quota the admin set for you (concurrent sandboxes, sandbox hours per month, storage) is used up; the message names it.' },
  RANGE_NOT_SATISFIABLE: { status: 416, summary: 'The Range header of a file read starts past the end of the file.' },
  RATE_LIMITED: { status: 429, summary: 'Too many requests or too many jobs at once; retry later.' },
  CAPACITY_EXHAUSTED: { status: 503, summary: 'The server cannot start another sandbox now (host limits reached); retry later.' },
  SANDBOX_START_TIMEOUT: { status: 504, summary: 'A sandbox did not start or wake in time (for example waking a sleeping persistent job); the start goes on in the background.' },
  SANDBOX_FAILED: { status: 500, summary: 'The sandbox could not be created or failed while running the job.' },
  APP_NOT_LISTENING: { status: 502, summary: 'The job behind a public URL runs, but nothing in its sandbox accepts connections on the URL\'s port.' },
  APP_WAKE_TIMEOUT: { status: 504, summary: 'The proxy woke the job behind a public URL, but its app did not accept connections within MAGS_PROXY_WAKE_TIMEOUT_SECONDS.' },
  INTERNAL_ERROR: { status: 500, summary: 'An unexpected server error; the server log has the details under the request id.' },
  DISK_FULL: { status: 507, summary: "The sandbox's disk (its disk_gb) is full; the message names the limit." },
  FEATURE_NOT_AVAILABLE: { status: 501, summary: 'The feature (for example URL or SSH access, file uploads) is not available on this server yet.' },
  SERVICE_UNAVAILABLE: { status: 503, summary: 'The server is starting or shutting down.' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The JSON body of every error response: the Mags `error` message plus our stable `code`. */
export interface ErrorBody {
  error: string;
  code: ErrorCode;
  hint?: string;
}

/** HTTP status for an error code. */
export function statusForCode(code: ErrorCode): number {
  return ERROR_CODES[code].status;
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}
