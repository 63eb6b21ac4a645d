import { ERROR_CODES, type ErrorCode } from '@mags/shared';

/**
 * An error with a stable code from the shared registry; the API turns it into
 * `{"error": message, "code", "hint"?}` with the registry's HTTP status. Services throw these.
 */
export class AppError extends Error {
  readonly statusCode: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'AppError';
    this.statusCode = ERROR_CODES[code].status;
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}
