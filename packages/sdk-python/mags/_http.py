"""The request layer: one JSON call or one Server-Sent Events stream over urllib, with timeouts and
error mapping. Standard library only."""
from __future__ import annotations

import http.client
import ipaddress
import json
import random
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

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
#: Methods that may be sent again: repeating them has the effect of sending them once.
IDEMPOTENT = frozenset({"GET", "PUT", "DELETE"})
#: Statuses that say "try again later".
RETRY_STATUSES = frozenset({429, 503})
#: Default retries of an idempotent call, and the longest wait before one retry (seconds).
DEFAULT_MAX_RETRIES = 3
MAX_RETRY_DELAY = 30.0
_RETRY_BASE = 0.25
_RESETS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


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


def url_problem(url: str) -> Optional[str]:
    """Why ``url`` cannot be a server URL (not a URL, not http(s), no host); ``None`` when it can."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "not a URL"
    if not parts.scheme:
        return "not a URL"
    if parts.scheme not in ("http", "https"):
        return f"scheme {parts.scheme}: is not http: or https:"
    if not parts.hostname:
        return "no host"
    return None


def parse_retry_after(value: str, now: Optional[float] = None) -> Optional[float]:
    """``Retry-After`` in seconds: delta seconds or an HTTP date; ``None`` when unreadable."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        at = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, at - (time.time() if now is None else now))


def retry_delay(exc: BaseException, attempt: int, cap: float) -> Optional[float]:
    """Seconds to wait before retrying after ``exc``, or ``None`` when it is not worth a retry:
    ``Retry-After`` when the answer had one, else exponential backoff with jitter; at most ``cap``."""
    if not isinstance(exc, MagsError):
        return None
    if not getattr(exc, "_reset", False) and exc.status not in RETRY_STATUSES:
        return None
    header = getattr(exc, "_retry_after", None)
    asked = parse_retry_after(header) if header is not None else None
    if asked is not None:
        return min(asked, cap)
    backoff = _RETRY_BASE * 2 ** attempt
    return min(cap, backoff / 2 + random.random() * backoff / 2)


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, (socket.timeout, BuiltinTimeoutError)) or "timed out" in str(exc)


class Transport:
    """Sends requests to one Mags server with one token."""

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float,
        max_retries: int = DEFAULT_MAX_RETRIES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.timeout = timeout
        #: Retries of an idempotent call after 429, 503 or a reset connection.
        self.max_retries = max(0, int(max_retries))
        self.max_retry_delay = MAX_RETRY_DELAY
        self._sleep = sleep
        self._url_problem = url_problem(base_url)
        handlers: List[urllib.request.BaseHandler] = []
        if base_url.startswith("https:"):
            handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context()))
        # Proxy variables (http_proxy, ...) apply, except to a server on this machine: a
        # corporate proxy cannot reach the caller's loopback.
        if _is_loopback(urllib.parse.urlsplit(base_url).hostname or ""):
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    def url(self, path: str, query: Optional[Mapping[str, Any]] = None) -> str:
        """The full URL of ``path``; a ``ConnectionError`` naming the base URL when it is unusable."""
        if self._url_problem:
            raise ConnectionError(
                f"Invalid Mags server URL {self.base_url!r} ({self._url_problem})",
                hint="Use an http:// or https:// address such as http://127.0.0.1:8090 "
                "(Mags(api_url=...), MAGS_API_URL or `mags login --url <url>`).",
            )
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
        raw_body: Optional[Tuple[Any, Optional[int], str]] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
    ) -> Tuple[http.client.HTTPResponse, float]:
        url = self.url(path, query)
        seconds = self.timeout if timeout is None else timeout
        headers = {"Accept": accept, "User-Agent": USER_AGENT, **(extra_headers or {})}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data: Any = None
        if raw_body is not None:
            # An iterable of byte chunks with its exact length (None: sent with chunked encoding).
            data, length, content_type = raw_body
            headers["Content-Type"] = content_type
            if length is not None:
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
            err = error_from_response(exc.code, payload, what)
            err._retry_after = exc.headers.get("Retry-After") if exc.headers else None  # type: ignore[attr-defined]
            raise err from None
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
        err = ConnectionError(
            f"Cannot reach the Mags server at {self.base_url} ({reason}); is it running? "
            "Set MAGS_API_URL (or Mags(api_url=...)) to its address",
            hint="Is the server running (`mags server`)? Point clients at it with MAGS_API_URL "
            "(or Mags(api_url=...)) or `mags login --url <url>`.",
        )
        err._reset = isinstance(reason, _RESETS)  # type: ignore[attr-defined]
        return err

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
        ``raw_body`` is ``(chunks, length, content_type)`` for a streamed non-JSON body.

        An idempotent call (GET, PUT, DELETE) is sent again after 429, 503 or a reset connection,
        up to ``max_retries`` times (see ``retry_delay``); when the last try fails too, its error
        is raised."""
        retries = self.max_retries if method in IDEMPOTENT and raw_body is None else 0
        attempt = 0
        while True:
            try:
                return self._request_once(method, path, query, body, timeout, auth, raw_body)
            except MagsError as exc:
                delay = retry_delay(exc, attempt, self.max_retry_delay) if attempt < retries else None
                if delay is None:
                    raise
            self._sleep(delay)
            attempt += 1

    def _request_once(
        self,
        method: str,
        path: str,
        query: Optional[Mapping[str, Any]],
        body: Any,
        timeout: Optional[float],
        auth: bool,
        raw_body: Optional[Tuple[Any, int, str]],
    ) -> Dict[str, Any]:
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


__all__ = ["Transport", "quote_segment", "BuiltinConnectionError", "parse_retry_after", "retry_delay", "url_problem"]
