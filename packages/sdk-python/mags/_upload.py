"""A streamed request body that stops as soon as the server answers: the stdin upload, whose answer
may come before the body ends (the script stopped reading its stdin). urllib sends the whole body
before it reads an answer, and fails when the server closes the connection on the rest; here each
piece is sent only while no answer has arrived. Standard library only."""
from __future__ import annotations

import http.client
import io
import json
import select
import socket
import ssl
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterator, Optional

from ._http import USER_AGENT, Transport, _is_loopback
from .errors import MagsError, error_from_response

#: Bytes of an early answer read at once while sending.
_PEEK = 64 * 1024


def put_stream(
    transport: Transport, path: str, chunks: Iterator[bytes], length: Optional[int], content_type: str, timeout: Optional[float]
) -> Dict[str, Any]:
    """``PUT path`` with ``chunks`` as the body (``Content-Length`` when ``length`` is known, else
    chunked); the JSON object answered. ``timeout`` bounds connecting and each wait on the socket.
    Through an HTTP proxy (``http_proxy`` and friends) it falls back to urllib, which sends the whole
    body before it reads the answer."""
    url = transport.url(path)
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if not _is_loopback(host) and urllib.request.getproxies().get(parts.scheme) and not urllib.request.proxy_bypass(host):
        return transport.request("PUT", path, raw_body=(chunks, length, content_type), timeout=timeout)  # type: ignore[arg-type]
    seconds = transport.timeout if timeout is None else timeout
    what = f"PUT {url}"
    try:
        sock = _connect(parts, seconds)
    except (OSError, ssl.SSLError) as exc:
        raise transport._transport_error(exc, what, seconds) from None
    try:
        try:
            sock.sendall(_head(parts, transport.token, length, content_type))
            answer = _send_body(sock, chunks, length is None, seconds)
            response = http.client.HTTPResponse(_Prefixed(sock, answer), method="PUT")  # type: ignore[arg-type]
            response.begin()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise transport._transport_error(exc, what, seconds) from None
    finally:
        _close(sock)
    if response.status >= 400:
        raise error_from_response(response.status, payload, what)
    try:
        parsed = json.loads(payload.decode("utf-8")) if payload.strip() else {}
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise MagsError(f"{what} answered HTTP {response.status} with a body that is not a JSON object", code="INVALID_RESPONSE",
                        status=response.status)
    return parsed


def _connect(parts: urllib.parse.SplitResult, seconds: float) -> socket.socket:
    https = parts.scheme == "https"
    host = parts.hostname or ""
    sock = socket.create_connection((host, parts.port or (443 if https else 80)), timeout=seconds)
    if https:
        sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
    return sock


def _head(parts: urllib.parse.SplitResult, token: str, length: Optional[int], content_type: str) -> bytes:
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"PUT {target} HTTP/1.1",
        f"Host: {parts.netloc.rsplit('@', 1)[-1]}",
        f"Authorization: Bearer {token}",
        f"User-Agent: {USER_AGENT}",
        "Accept: application/json",
        f"Content-Type: {content_type}",
        "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}",
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _send_body(sock: socket.socket, chunks: Iterator[bytes], chunked: bool, seconds: float) -> bytes:
    """Sends the body until it ends or an answer arrives; the answer's first bytes (``b""`` when
    none came before the body ended)."""
    for chunk in chunks:
        pieces = [b"%X\r\n" % len(chunk), chunk, b"\r\n"] if chunked else [chunk]
        for piece in pieces:
            early = _send_piece(sock, piece, seconds)
            if early is not None:
                return early
    if chunked:
        early = _send_piece(sock, b"0\r\n\r\n", seconds)
        if early is not None:
            return early
    return b""


def _send_piece(sock: socket.socket, data: bytes, seconds: float) -> Optional[bytes]:
    """Sends ``data`` while the server sends nothing; what it sent (``b""`` once it closed the
    connection) as soon as it does, else ``None``."""
    view = memoryview(data)
    while view:
        readable, writable, _ = select.select([sock], [sock], [], seconds)
        if not readable and not writable:
            raise socket.timeout("timed out")
        if readable:
            early = _read_available(sock, seconds)
            if early is not None:
                return early
        if writable:
            try:
                view = view[sock.send(view):]
            except (BrokenPipeError, ConnectionResetError):
                # Closed on the rest of the body: the answer, if any, is already here.
                return _read_available(sock, seconds) or b""
    return None


def _read_available(sock: socket.socket, seconds: float) -> Optional[bytes]:
    """Bytes of the answer already received (``b""``: the server closed), or ``None`` when there are
    none (a TLS record that is not application data, such as a session ticket)."""
    sock.setblocking(False)
    try:
        return sock.recv(_PEEK)
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return None
    except ConnectionResetError:
        return b""
    finally:
        sock.settimeout(seconds)


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass  # the connection is gone either way


class _Prefixed:
    """The socket as ``HTTPResponse`` reads it, with the answer's first bytes (read while sending)
    put back in front."""

    def __init__(self, sock: socket.socket, prefix: bytes) -> None:
        self._sock = sock
        self._prefix = prefix

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_PrefixedRaw(self._sock, self._prefix))


class _PrefixedRaw(io.RawIOBase):
    def __init__(self, sock: socket.socket, prefix: bytes) -> None:
        self._sock = sock
        self._prefix = memoryview(prefix)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        return self._sock.recv_into(buffer)


__all__ = ["put_stream"]
