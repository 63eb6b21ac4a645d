"""A job's stdin upload and its raw output (ours), the Python side of the Node SDK's ``sendStdin`` and
``streamRaw`` (packages/sdk/src/raw.ts).

Stdin: ``PUT /api/v1/mags-jobs/{id}/stdin`` with the bytes as a streamed body (chunked transfer
unless the length is known), read a block at a time, never whole.

Raw output: ``GET /api/v1/mags-jobs/{id}/logs?format=raw``. One stream comes as
``application/octet-stream``, its bytes as they are; both streams come as frames of
``application/vnd.mags.stream``: an 8-byte header (type: 1 stdout, 2 stderr, 3 system, 4 end; three
zero bytes; big-endian payload length), then the payload; the ``end`` frame, sent when following,
holds the outcome JSON (docs/api.md, "Raw output")."""
from __future__ import annotations

import http.client
import json
import os
import stat
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Literal, Optional, Tuple, Union, cast

from ._http import Transport
from ._upload import put_stream
from .errors import MagsError, ValidationError
from .types import LogEnd, StdinAnswer

#: Content type of framed raw output (both streams).
RAW_STREAM_TYPE = "application/vnd.mags.stream"
#: Content type of one stream's raw output.
OCTET_STREAM = "application/octet-stream"
#: Bytes read from a file, or handed out from a frame, at once.
BLOCK = 1024 * 1024
#: Longest ``end`` frame accepted (its JSON is a few hundred bytes).
MAX_END_BYTES = 64 * 1024
_FRAME_STREAMS = {1: "stdout", 2: "stderr", 3: "system"}
_END_FRAME = 4

#: What ``send_stdin`` accepts: bytes, text (sent as UTF-8), a binary file object (read a block at a
#: time) or an iterable (a generator, say) of byte chunks.
StdinData = Union[bytes, bytearray, memoryview, str, Any, Iterable[bytes]]


@dataclass(frozen=True)
class RawOutput:
    """One piece of a job's raw output: ``stream`` is ``"stdout"``, ``"stderr"`` or ``"system"`` and
    ``data`` its bytes; when following, the last item has ``stream == "end"`` and the job's outcome
    in ``end`` (``{"status", "exit_code", "end_reason", "error_message"}``)."""

    stream: Literal["stdout", "stderr", "system", "end"]
    data: bytes = b""
    end: Optional[LogEnd] = None


def stdin_body(data: StdinData) -> Tuple[Iterator[bytes], Optional[int], str]:
    """``(chunks, length or None, content type)`` of a stdin upload. A regular file's remaining
    length is sent as ``Content-Length``; anything else of unknown length goes chunked."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        return (iter([raw] if raw else []), len(raw), OCTET_STREAM)
    if hasattr(data, "read"):
        return (_checked(_blocks(data)), _remaining_length(data), OCTET_STREAM)
    if isinstance(data, Iterable):
        return (_checked(iter(data)), None, OCTET_STREAM)
    raise ValidationError(
        f"send_stdin() takes bytes, str, a binary file or an iterable of bytes, not {type(data).__name__}",
        code="VALIDATION_ERROR",
    )


def _blocks(fh: Any) -> Iterator[bytes]:
    while True:
        block = fh.read(BLOCK)
        if not block:
            return
        yield block


def _remaining_length(fh: Any) -> Optional[int]:
    """Bytes left in a regular file from its position; ``None`` for pipes, sockets and devices."""
    try:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None
        return max(0, info.st_size - fh.tell())
    except (AttributeError, OSError, ValueError):
        return None


def _checked(chunks: Iterator[Any]) -> Iterator[bytes]:
    """The chunks as bytes; a chunk of any other type stops the upload with ``ValidationError``."""
    for chunk in chunks:
        if isinstance(chunk, (bytes, bytearray, memoryview)):
            if len(chunk):
                yield bytes(chunk)
            continue
        hint = "Open the file in binary mode ('rb')." if isinstance(chunk, str) else "Yield bytes."
        raise ValidationError(f"stdin chunks must be bytes, not {type(chunk).__name__}", code="VALIDATION_ERROR", hint=hint)


def send_stdin(http: Transport, path: str, data: StdinData, timeout: Optional[float]) -> StdinAnswer:
    """Streams ``data`` as the body of ``PUT path``; the answer once the script's stdin reached EOF.
    A script that stops reading early gets the server's answer at once: the rest is not sent."""
    chunks, length, content_type = stdin_body(data)
    return cast(StdinAnswer, put_stream(http, path, chunks, length, content_type, timeout))


class _RawReader:
    """One open raw answer: reads with the transport's error mapping. While following without a
    ``timeout`` it waits for output without limit (a raw answer has no keep-alive)."""

    def __init__(self, http: Transport, path: str, query: dict, accept: str, follow: bool, timeout: Optional[float]) -> None:
        self._http = http
        self.what = f"GET {http.url(path, query)}"
        self.response, self.seconds = http._open("GET", path, query, None, timeout, accept)
        if follow and timeout is None:
            sock = getattr(getattr(getattr(self.response, "fp", None), "raw", None), "_sock", None)
            if sock is not None:
                sock.settimeout(None)

    def content_type(self) -> str:
        return self.response.headers.get("Content-Type", "") or ""

    def read(self, size: int, some: bool = False) -> bytes:
        """Up to ``size`` bytes; with ``some`` whatever has arrived (at least one byte), else ``size``
        unless the answer ends first. ``b""`` at its end."""
        try:
            return self.response.read1(size) if some else self.response.read(size)
        except (OSError, http.client.HTTPException) as exc:
            raise self._http._transport_error(exc, self.what, self.seconds) from None

    def close(self) -> None:
        self.response.close()


def _not_raw(reader: _RawReader) -> MagsError:
    return MagsError(
        f"This server does not offer raw job output ({reader.what} answered {reader.content_type() or 'no content type'})",
        code="FEATURE_NOT_AVAILABLE",
        hint="Read the lines with logs() or stream_logs().",
    )


def _invalid(message: str) -> MagsError:
    return MagsError(message, code="INVALID_RESPONSE")


def read_frames(http: Transport, path: str, follow: bool, timeout: Optional[float]) -> Iterator[RawOutput]:
    """Yields the framed raw output of both streams; with ``follow`` until the ``end`` item. A frame
    longer than ``BLOCK`` comes as several items of its stream."""
    query = {"format": "raw", "stream": "both", "follow": 1 if follow else 0}
    reader = _RawReader(http, path, query, RAW_STREAM_TYPE, follow, timeout)
    try:
        if not reader.content_type().startswith(RAW_STREAM_TYPE):
            raise _not_raw(reader)
        while True:
            head = reader.read(8)
            if not head:
                return
            if len(head) < 8:
                raise _invalid("The raw output stream ended inside a frame header")
            kind, length = head[0], int.from_bytes(head[4:8], "big")
            if kind == _END_FRAME:
                yield RawOutput("end", end=_end_of(reader, length))
                return
            name = _FRAME_STREAMS.get(kind)
            if name is None:
                raise _invalid(f"Unknown raw output frame type {kind}")
            while length > 0:
                piece = reader.read(min(BLOCK, length))
                if not piece:
                    raise _invalid("The raw output stream ended inside a frame")
                length -= len(piece)
                yield RawOutput(cast(Any, name), piece)
    finally:
        reader.close()


def _end_of(reader: _RawReader, length: int) -> LogEnd:
    if length > MAX_END_BYTES:
        raise _invalid(f"The raw output end frame is {length} bytes long (at most {MAX_END_BYTES})")
    payload = reader.read(length)
    if len(payload) < length:
        raise _invalid("The raw output stream ended inside its end frame")
    try:
        end = json.loads(payload.decode("utf-8"))
    except ValueError:
        end = None
    if not isinstance(end, dict) or not isinstance(end.get("status"), str):
        raise _invalid("The raw output end frame is not the job's outcome")
    return cast(LogEnd, end)


def read_stream(http: Transport, path: str, stream: str, follow: bool, timeout: Optional[float]) -> Iterator[bytes]:
    """Yields one stream's raw bytes as they arrive; with ``follow`` until the job ends."""
    if stream not in ("stdout", "stderr"):
        raise ValidationError(f"stream must be 'stdout' or 'stderr', not {stream!r}", code="VALIDATION_ERROR",
                              hint="Use stream_raw() for both streams in frames.")
    query = {"format": "raw", "stream": stream, "follow": 1 if follow else 0}
    reader = _RawReader(http, path, query, OCTET_STREAM, follow, timeout)
    try:
        if not reader.content_type().startswith(OCTET_STREAM):
            raise _not_raw(reader)
        while True:
            block = reader.read(BLOCK, some=True)
            if not block:
                return
            yield block
    finally:
        reader.close()


__all__ = ["RawOutput", "StdinData", "RAW_STREAM_TYPE", "read_frames", "read_stream", "send_stdin", "stdin_body"]
