"""A tiny HTTP server on 127.0.0.1 that records each request and answers a canned response; the
unit-test double for the request layer."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

Reply = Tuple[int, Dict[str, str], Any]


class Recorder:
    """Records requests; ``reply`` (set per test) turns a recorded request into an answer."""

    def __init__(self) -> None:
        self.requests: List[Dict[str, Any]] = []
        #: Sizes of the chunks of chunked request bodies, in the order they came.
        self.chunk_sizes: List[int] = []
        self.reply: Callable[[Dict[str, Any]], Reply] = lambda req: json_reply(200, {})
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    raw = self._read_chunked()
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    raw = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                req = {
                    "method": self.command,
                    "path": split.path,
                    "query": {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()},
                    "raw_body": raw,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                }
                recorder.requests.append(req)
                status, headers, body = recorder.reply(req)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if isinstance(body, (bytes, bytearray)):
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    try:
                        self.wfile.write(body)
                        self.wfile.flush()
                    except OSError:
                        pass  # the client gave up (a timeout test)
                    return
                # An iterable body streams chunk by chunk (chunked encoding); a float chunk is a
                # pause in seconds, so tests can hold a stream open.
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for chunk in body:
                        if isinstance(chunk, float):
                            time.sleep(chunk)
                            continue
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except OSError:
                    pass  # the client went away, as it may once it has what it needs

            def _read_chunked(self) -> bytes:
                """A chunked request body (streamed uploads), decoded; each chunk's size is kept
                in ``chunk_sizes`` of the recorder."""
                out = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return bytes(out)
                    recorder.chunk_sizes.append(size)
                    out += self.rfile.read(size)
                    self.rfile.readline()

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def start(self) -> "Recorder":
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def json_reply(status: int, body: Any) -> Reply:
    if isinstance(body, str):
        return status, {"Content-Type": "text/plain"}, body.encode("utf-8")
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode("utf-8")


def body_of(req: Dict[str, Any]) -> Optional[Any]:
    raw = req["raw_body"]
    return json.loads(raw.decode("utf-8")) if raw else None


def sse_reply(*items: Any) -> Reply:
    """A text/event-stream answer: ``(event, data)`` tuples become events, floats are pauses."""
    def chunks() -> Any:
        for item in items:
            if isinstance(item, float):
                yield item
            else:
                event, data = item
                yield f"event: {event}\ndata: {json.dumps(data)}\n\n".encode("utf-8")
    return 200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}, chunks()
