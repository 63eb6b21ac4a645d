"""Exec in a persistent sandbox: the request body of ``exec`` / ``exec_stream`` and the reader of the
streamed answer, the Python side of the Node SDK's ``execStream`` (packages/sdk/src/exec.ts).

The streamed answer of ``POST /api/v1/mags-jobs/{id}/exec?stream=1`` is NDJSON: one JSON object per
line, ``{"type": "stdout"|"stderr", "data": "<utf-8>"}`` as output arrives, then
``{"type": "exit", "exit_code", "timed_out", "duration_ms"}`` or ``{"type": "error", "error", "code"}``.
The reader is a generator: a line is read from the socket only when the caller asks for the next
item, so a consumer that is slow (or stops advancing) holds the server back, which pauses the
command instead of buffering its output."""
from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any, Dict, Generator, Literal, Optional, Tuple

from ._http import Transport
from .errors import MagsError

#: Longest NDJSON line accepted; the server sends output in pieces far below this.
MAX_LINE = 16 * 1024 * 1024
#: What the streamed answer is sent as.
NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class ExecOutput:
    """One item of ``exec_stream``: ``stream`` ``"stdout"`` or ``"stderr"`` with ``data``, the text
    as it arrived (UTF-8, never a split character); the last item has ``stream == "exit"``, the
    command's ``exit_code`` (124 on timeout, 128+n when killed by signal n), ``timed_out`` and
    ``duration_ms``."""

    stream: Literal["stdout", "stderr", "exit"]
    data: str = ""
    exit_code: Optional[int] = None
    timed_out: bool = False
    duration_ms: Optional[int] = None


def exec_body(
    command: str,
    timeout: Optional[float],
    env: Optional[Dict[str, str]],
    cwd: Optional[str],
    stdin: Optional[str],
) -> Tuple[Dict[str, Any], float]:
    """The exec body and the HTTP limit in seconds: ``timeout`` (seconds) is sent as whole
    ``timeout_seconds``; the HTTP call waits 30 s longer than the command may run."""
    body: Dict[str, Any] = {"command": command}
    if timeout is not None:
        body["timeout_seconds"] = max(1, int(-(-float(timeout) // 1)))
    if env is not None:
        body["env"] = env
    if cwd is not None:
        body["cwd"] = cwd
    if stdin is not None:
        body["stdin"] = stdin
    return body, float(body.get("timeout_seconds", 300) + 30)


def read_exec_stream(http: Transport, path: str, body: Dict[str, Any], seconds: float) -> Generator[ExecOutput, None, None]:
    """Start a streamed exec and return the generator of its items. Errors before the command
    started (no such job, not persistent, bad input) raise here, as ``exec`` raises them; an
    ``error`` line raises ``MagsError`` with its code; a stream that ends without an ``exit`` line
    or holds a line that is not an event raises code ``INVALID_RESPONSE``. Closing the generator
    early closes the connection, and the server kills the command."""
    query = {"stream": 1}
    what = f"POST {http.url(path, query)}"
    response, seconds = http._open("POST", path, query, body, seconds, NDJSON)
    content_type = response.headers.get("Content-Type", "")
    if NDJSON not in content_type:
        response.close()
        raise MagsError(
            f"{what} did not answer an NDJSON stream (Content-Type {content_type or 'none'})",
            code="INVALID_RESPONSE",
            status=response.status,
            hint="Check that MAGS_API_URL points at a Mags server with streamed exec.",
        )
    return _events(http, response, what, seconds)


def _events(transport: Transport, response: http.client.HTTPResponse, what: str, seconds: float) -> Generator[ExecOutput, None, None]:
    with response:
        while True:
            try:
                raw = response.readline(MAX_LINE + 1)
            except (OSError, http.client.HTTPException) as exc:
                raise transport._transport_error(exc, what, seconds) from None
            if not raw:
                break
            if len(raw) > MAX_LINE:
                raise MagsError(f"{what} sent a line longer than {MAX_LINE} bytes", code="INVALID_RESPONSE")
            if not raw.strip():
                continue
            item = _event(raw, what)
            yield item
            if item.stream == "exit":
                return
    raise MagsError(
        f"{what}: the exec stream ended before the command did (connection lost)",
        code="INVALID_RESPONSE",
        hint="Run it again; `exec` answers once the command ended.",
    )


def _event(raw: bytes, what: str) -> ExecOutput:
    try:
        ev = json.loads(raw.decode("utf-8"))
    except ValueError:
        ev = None
    if not isinstance(ev, dict):
        raise MagsError(f"{what} sent a line that is not a JSON object", code="INVALID_RESPONSE")
    kind = ev.get("type")
    if kind in ("stdout", "stderr"):
        data = ev.get("data", "")
        return ExecOutput(kind, data if isinstance(data, str) else str(data))
    if kind == "exit":
        code = ev.get("exit_code")
        duration = ev.get("duration_ms")
        return ExecOutput(
            "exit",
            exit_code=code if isinstance(code, int) else 255,
            timed_out=ev.get("timed_out") is True,
            duration_ms=duration if isinstance(duration, int) else None,
        )
    if kind == "error":
        raise MagsError(str(ev.get("error") or "exec failed"), code=str(ev.get("code") or "INTERNAL_ERROR"))
    raise MagsError(f"{what} sent an event of unknown type {kind!r}", code="INVALID_RESPONSE")
