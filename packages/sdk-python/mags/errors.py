"""Exceptions raised by the SDK; the same class names as the Node SDK's.

Every error the server answers carries a stable ``code`` (see docs/errors.md) and the HTTP ``status``;
the class tells the broad kind so callers can ``except NotFoundError`` without reading codes.
"""
from __future__ import annotations

import builtins
import json
from typing import Any, Dict, Literal, Optional, Union

__all__ = [
    "MagsError",
    "AuthenticationError",
    "NotFoundError",
    "ValidationError",
    "TimeoutError",
    "ConnectionError",
    "error_from_response",
    "AUTH_HINT",
    "ErrorCode",
    "ClientErrorCode",
]

#: Every code the server sends: the enum of the ``Error`` schema in spec/openapi.json, which the
#: server builds from its error registry (tests/test_spec_types.py checks that they agree).
ErrorCode = Literal[
    "VALIDATION_ERROR",
    "INVALID_JSON",
    "MEMORY_EXCEEDS_HOST",
    "VCPUS_EXCEED_HOST",
    "DISK_EXCEEDS_HOST",
    "HEADERS_TOO_LARGE",
    "REQUEST_TIMEOUT",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "AUTH_REQUIRED",
    "INVALID_TOKEN",
    "INVALID_CREDENTIALS",
    "FORBIDDEN",
    "CSRF_REJECTED",
    "NOT_FOUND",
    "JOB_NOT_FOUND",
    "TOKEN_NOT_FOUND",
    "USER_NOT_FOUND",
    "WORKSPACE_NOT_FOUND",
    "VERSION_NOT_FOUND",
    "INVITE_NOT_FOUND",
    "FILE_NOT_FOUND",
    "SCHEDULE_NOT_FOUND",
    "WEBHOOK_NOT_FOUND",
    "WEBHOOK_TARGET_REFUSED",
    "PATH_NOT_FOUND",
    "URL_ALIAS_NOT_FOUND",
    "URL_NOT_FOUND",
    "JOB_ENDED",
    "BAD_REQUEST",
    "METHOD_NOT_ALLOWED",
    "CONFLICT",
    "WORKSPACE_BUSY",
    "PATH_EXISTS",
    "IS_A_DIRECTORY",
    "NOT_A_DIRECTORY",
    "DIRECTORY_NOT_EMPTY",
    "NOT_A_REGULAR_FILE",
    "JOB_NOT_RUNNING",
    "INVALID_STATE",
    "QUOTA_EXCEEDED",
    "RANGE_NOT_SATISFIABLE",
    "RATE_LIMITED",
    "CAPACITY_EXHAUSTED",
    "SANDBOX_START_TIMEOUT",
    "SANDBOX_FAILED",
    "APP_NOT_LISTENING",
    "APP_WAKE_TIMEOUT",
    "INTERNAL_ERROR",
    "DISK_FULL",
    "FEATURE_NOT_AVAILABLE",
    "SERVICE_UNAVAILABLE",
]

#: Codes the SDK raises itself (no answer, or an answer it cannot use; NOT_A_STREAM is Python only).
ClientErrorCode = Literal[
    "AUTH_REQUIRED", "CONNECTION_FAILED", "TIMEOUT", "INVALID_RESPONSE", "HTTP_ERROR", "JOB_FAILED", "NOT_A_STREAM"
]

#: The ``code`` of a MagsError (as in the Node SDK's ``MagsErrorCode``). A newer server's unknown
#: code is passed through as sent.
Code = Union[ErrorCode, ClientErrorCode]


class MagsError(Exception):
    """Any failure of a Mags call: ``code`` (stable, SCREAMING_SNAKE), ``status`` (HTTP status or
    None for client-side failures), ``message`` (what happened and what to do) and ``hint``."""

    def __init__(
        self,
        message: str,
        code: Optional[Code] = None,
        status: Optional[int] = None,
        hint: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.hint = hint

    def __repr__(self) -> str:
        return f"{type(self).__name__}(message={self.message!r}, code={self.code!r}, status={self.status!r})"


class AuthenticationError(MagsError):
    """The API token is missing, unknown or revoked (HTTP 401)."""


class NotFoundError(MagsError):
    """No job, workspace or other object of yours has this id or name (HTTP 404)."""


class ValidationError(MagsError):
    """The request is malformed (HTTP 400, or code PAYLOAD_TOO_LARGE / UNSUPPORTED_MEDIA_TYPE)."""


class TimeoutError(MagsError):  # noqa: A001 - exported as mags.TimeoutError, kept out of `import *`
    """A call got no answer in time, or ``run_and_wait`` gave up waiting for the job.

    ``request_id`` is set when a submitted job was still unfinished; the job keeps running on the
    server (stop it with ``Mags.stop``)."""

    def __init__(
        self,
        message: str,
        code: Optional[Code] = "TIMEOUT",
        status: Optional[int] = None,
        hint: Optional[str] = None,
        request_id: Optional[str] = None,
    ) -> None:
        super().__init__(message, code, status, hint)
        self.request_id = request_id


class ConnectionError(MagsError):  # noqa: A001 - exported as mags.ConnectionError, kept out of `import *`
    """The server could not be reached at all (refused, unknown host, connection dropped)."""

    def __init__(self, message: str, code: Optional[Code] = "CONNECTION_FAILED", status: Optional[int] = None,
                 hint: Optional[str] = None) -> None:
        super().__init__(message, code, status, hint)


# Codes for error answers that carry no `code` of their own (for example the Mags cloud's plain
# `{"error": "..."}`); other statuses of 500 and above become INTERNAL_ERROR, the rest HTTP_ERROR.
# The Node SDK uses the same table.
_DEFAULT_CODES: Dict[int, ErrorCode] = {
    400: "VALIDATION_ERROR",
    401: "INVALID_TOKEN",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}

# Codes that mean "the request itself is wrong", raised as ValidationError whatever their status.
_VALIDATION_CODES = frozenset({"VALIDATION_ERROR", "INVALID_JSON", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"})

#: How to get a token; the hint of every authentication error that brings none of its own.
AUTH_HINT = (
    "Get a token from the server host ($MAGS_DATA_DIR/admin-token) or create one with `mags token create`, "
    "then set MAGS_API_TOKEN or run `mags login`."
)


def _default_code(status: int) -> Code:
    if status in _DEFAULT_CODES:
        return _DEFAULT_CODES[status]
    return "INTERNAL_ERROR" if status >= 500 else "HTTP_ERROR"


def error_from_response(status: int, body: bytes, what: str) -> MagsError:
    """Build the exception for a non-2xx answer. ``what`` names the call (``GET <url>``)."""
    text = body.decode("utf-8", errors="replace")
    parsed: Any = None
    try:
        parsed = json.loads(text) if text.strip() else None
    except ValueError:
        parsed = None
    obj: Dict[str, Any] = parsed if isinstance(parsed, dict) else {}
    message = obj.get("error") or obj.get("message")
    if not isinstance(message, str) or not message:
        snippet = " ".join(text.split())[:200]
        message = f"{what} answered HTTP {status}" + (f": {snippet}" if snippet else "")
    code = obj.get("code") if isinstance(obj.get("code"), str) and obj.get("code") else _default_code(status)
    hint = obj.get("hint") if isinstance(obj.get("hint"), str) and obj.get("hint") else None
    if status == 401:
        return AuthenticationError(message, code=code, status=status, hint=hint or AUTH_HINT)
    if status == 404:
        return NotFoundError(message, code=code, status=status, hint=hint)
    if status == 400 or code in _VALIDATION_CODES:
        return ValidationError(message, code=code, status=status, hint=hint)
    return MagsError(message, code=code, status=status, hint=hint)


# The builtins these classes share names with, for code in this package that needs the real ones.
BuiltinTimeoutError = builtins.TimeoutError
BuiltinConnectionError = builtins.ConnectionError
