"""The request layer: one JSON call or one Server-Sent Events stream over urllib, with timeouts and
error mapping. Standard library only."""
from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from .errors import (
    BuiltinConnectionError,
    BuiltinTimeoutError,
    ConnectionError,
    MagsError,
    TimeoutError,
    error_from_response,
)

USER_AGENT = "magpie-mags/0.1.0 (python)"
#: Longest silence accepted on an event stream (the server sends a keep-alive comment every 15 s).
STALL_SECONDS = 45.0


def quote_segment(value: Any) -> str:
    """Percent-encode one path segment exactly like JavaScript's ``encodeURIComponent``."""
    return urllib.parse.quote(str(value), safe="!'()*")


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, (socket.timeout, BuiltinTimeoutError)) or "timed out" in str(exc)


class Transport:
    """Sends requests to one Mags server with one token."""

    def __init__(self, base_url: str, token: str, timeout: float) -> None:
        self.base_url = base_url
        self.token = token
        self.timeout = timeout
        handlers: List[urllib.request.BaseHandler] = []
        if base_url.startswith("https:"):
            handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context()))
        # Proxy variables (http_proxy, ...) apply, except to a server on this machine: a
        # corporate proxy cannot reach the caller's loopback.
        if _is_loopback(urllib.parse.urlsplit(base_url).hostname or ""):
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    def url(self, path: str, query: Optional[Mapping[str, Any]] = None) -> str:
        url = self.base_url + path
        if query:
            pairs = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in query.items() if v is not None]
            if pairs:
                url += "?" + urllib.parse.urlencode(pairs)
        return url

    def _open(
        self,
        method: str,
        path: str,
        query: Optional[Mapping[str, Any]],
        body: Any,
        timeout: Optional[float],
        accept: str,
        auth: bool = True,
        raw_body: Optional[Tuple[Any, int, str]] = None,
    ) -> Tuple[http.client.HTTPResponse, float]:
        url = self.url(path, query)
        seconds = self.timeout if timeout is None else timeout
        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data: Any = None
        if raw_body is not None:
            # An iterable of byte chunks with its exact length: http.client sends it chunk by chunk.
            data, length, content_type = raw_body
            headers["Content-Type"] = content_type
            headers["Content-Length"] = str(length)
        elif body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        what = f"{method} {url}"
        try:
            response = self._opener.open(request, timeout=seconds)
        except urllib.error.HTTPError as exc:
            try:
                payload = exc.read()
            except Exception:  # the error body is best effort; the status alone still maps
                payload = b""
            finally:
                exc.close()
            raise error_from_response(exc.code, payload, what) from None
        except urllib.error.URLError as exc:
            raise self._transport_error(exc.reason, what, seconds) from None
        except (OSError, http.client.HTTPException) as exc:
            raise self._transport_error(exc, what, seconds) from None
        return response, seconds

    def _transport_error(self, reason: Any, what: str, seconds: float) -> MagsError:
        if isinstance(reason, BaseException) and _is_timeout(reason):
            return TimeoutError(
                f"{what} got no answer within {seconds:g} s",
                hint="Pass a larger timeout= (seconds) or check the server's load.",
            )
        return ConnectionError(
            f"Cannot reach the Mags server at {self.base_url} ({reason}); is it running? "
            "Set MAGS_API_URL (or Mags(api_url=...)) to its address",
            hint="Is the server running (`mags server`)? Point clients at it with MAGS_API_URL "
            "(or Mags(api_url=...)) or `mags login --url <url>`.",
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, Any]] = None,
        body: Any = None,
        timeout: Optional[float] = None,
        auth: bool = True,
        raw_body: Optional[Tuple[Any, int, str]] = None,
    ) -> Dict[str, Any]:
        """Send one request and return the parsed JSON object (``{}`` for an empty body).
        ``raw_body`` is ``(chunks, length, content_type)`` for a streamed non-JSON body."""
        response, seconds = self._open(method, path, query, body, timeout, "application/json", auth, raw_body)
        what = f"{method} {self.url(path, query)}"
        try:
            with response:
                raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self._transport_error(exc, what, seconds) from None
        if not raw.strip():
            return {}
        try:
            parsed = json.loads(raw.decode("utf-8"))
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
        raise MagsError(
            f"{what} answered HTTP {response.status} with a body that is not a JSON object",
            code="INVALID_RESPONSE",
            status=response.status,
            hint="Check that MAGS_API_URL points at a Mags server.",
        )

    def stream_events(
        self,
        path: str,
        *,
        query: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
        deadline: Optional[float] = None,
    ) -> Iterator[Tuple[str, Any]]:
        """Open a Server-Sent Events stream and yield ``(event, data)`` pairs, ``data`` JSON-decoded
        when it is JSON. ``timeout`` bounds opening the stream and each wait for a line;
        with ``deadline`` (a ``time.monotonic()`` value) each wait may last up to
        ``STALL_SECONDS`` but never past the deadline, and reading stops with ``TimeoutError``
        once it has passed. Raises ``MagsError`` with code ``NOT_A_STREAM`` when
        the server answers something other than ``text/event-stream``."""
        response, seconds = self._open("GET", path, query, None, timeout, "text/event-stream")
        what = f"GET {self.url(path, query)}"
        with response:
            content_type = response.headers.get("Content-Type", "")
            if "text/event-stream" not in content_type:
                raise MagsError(
                    f"{what} did not answer an event stream (Content-Type {content_type or 'none'})",
                    code="NOT_A_STREAM",
                    status=response.status,
                )
            event: str = "message"
            data_lines: List[str] = []
            try:
                while True:
                    if deadline is not None:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise socket.timeout("timed out")
                        _set_read_timeout(response, min(max(seconds, STALL_SECONDS), remaining))
                    raw_line = response.readline()
                    if not raw_line:
                        break
                    line = raw_line.decode("utf-8", errors="replace").rstrip("\r\n")
                    if line == "":
                        if data_lines:
                            yield event, _decode_data("\n".join(data_lines))
                        event, data_lines = "message", []
                    elif line.startswith(":"):
                        continue
                    else:
                        field, _, value = line.partition(":")
                        if value.startswith(" "):
                            value = value[1:]
                        if field == "event":
                            event = value
                        elif field == "data":
                            data_lines.append(value)
            except (OSError, http.client.HTTPException) as exc:
                raise self._transport_error(exc, what, seconds) from None
            if data_lines:
                yield event, _decode_data("\n".join(data_lines))


def _set_read_timeout(response: http.client.HTTPResponse, seconds: float) -> None:
    """Shorten the socket timeout of an open response so a read cannot outlive a deadline."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        try:
            sock.settimeout(max(seconds, 0.01))
        except OSError:
            pass


def _decode_data(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


__all__ = ["Transport", "quote_segment", "BuiltinConnectionError"]
