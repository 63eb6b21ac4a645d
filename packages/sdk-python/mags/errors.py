"""Exceptions raised by the SDK; the same class names as the Node SDK's.

Every error the server answers carries a stable ``code`` (see docs/errors.md) and the HTTP ``status``;
the class tells the broad kind so callers can ``except NotFoundError`` without reading codes.
"""
from __future__ import annotations

import builtins
import json
from typing import Any, Dict, Optional, Type

__all__ = [
    "MagsError",
    "AuthenticationError",
    "NotFoundError",
    "ValidationError",
    "TimeoutError",
    "ConnectionError",
    "error_from_response",
]


class MagsError(Exception):
    """Any failure of a Mags call: ``code`` (stable, SCREAMING_SNAKE), ``status`` (HTTP status or
    None for client-side failures), ``message`` (what happened and what to do) and ``hint``."""

    def __init__(
        self,
        message: str,
        code: Optional[str] = None,
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
    """The request is malformed (HTTP 400) or not valid for the job's state (HTTP 422)."""


class TimeoutError(MagsError):  # noqa: A001 - exported as mags.TimeoutError, kept out of `import *`
    """A call got no answer in time, or ``run_and_wait`` gave up waiting for the job.

    ``request_id`` is set when a submitted job was still unfinished; the job keeps running on the
    server (stop it with ``Mags.stop``)."""

    def __init__(
        self,
        message: str,
        code: Optional[str] = "TIMEOUT",
        status: Optional[int] = None,
        hint: Optional[str] = None,
        request_id: Optional[str] = None,
    ) -> None:
        super().__init__(message, code, status, hint)
        self.request_id = request_id


class ConnectionError(MagsError):  # noqa: A001 - exported as mags.ConnectionError, kept out of `import *`
    """The server could not be reached at all (refused, unknown host, connection dropped)."""

    def __init__(self, message: str, code: Optional[str] = "CONNECTION_ERROR", status: Optional[int] = None,
                 hint: Optional[str] = None) -> None:
        super().__init__(message, code, status, hint)


# Codes for error answers that carry no `code` of their own (for example the Mags cloud's plain
# `{"error": "..."}`); any other status becomes `HTTP_<status>`.
_DEFAULT_CODES: Dict[int, str] = {
    400: "VALIDATION_ERROR",
    401: "INVALID_TOKEN",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    422: "INVALID_STATE",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}

_CLASS_BY_STATUS: Dict[int, Type[MagsError]] = {
    400: ValidationError,
    401: AuthenticationError,
    404: NotFoundError,
    422: ValidationError,
}


def error_from_response(status: int, body: bytes, what: str) -> MagsError:
    """Build the exception for a non-2xx answer. ``what`` names the call (``GET <url>``)."""
    text = body.decode("utf-8", errors="replace")
    parsed: Any = None
    try:
        parsed = json.loads(text) if text.strip() else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error") or parsed.get("message"), str):
        message = parsed.get("error") or parsed.get("message")
        code = parsed.get("code") if isinstance(parsed.get("code"), str) else _DEFAULT_CODES.get(status)
        hint = parsed.get("hint") if isinstance(parsed.get("hint"), str) else None
        if code is None:
            code = f"HTTP_{status}"
    else:
        snippet = " ".join(text.split())[:200]
        message = f"{what} answered HTTP {status}" + (f": {snippet}" if snippet else "")
        code = f"HTTP_{status}"
        hint = "Check that MAGS_API_URL points at a Mags server and not at a proxy or another service."
    cls = _CLASS_BY_STATUS.get(status, MagsError)
    return cls(str(message), code=code, status=status, hint=hint)


# The builtins these classes share names with, for code in this package that needs the real ones.
BuiltinTimeoutError = builtins.TimeoutError
BuiltinConnectionError = builtins.ConnectionError
