"""A tiny HTTP server on 127.0.0.1 that records each request and answers a canned response; the
unit-test double for the request layer."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

Reply = Tuple[int, Dict[str, str], bytes]


class Recorder:
    """Records requests; ``reply`` (set per test) turns a recorded request into an answer."""

    def __init__(self) -> None:
        self.requests: List[Dict[str, Any]] = []
        self.reply: Callable[[Dict[str, Any]], Reply] = lambda req: json_reply(200, {})
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
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
                if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)
                self.wfile.flush()

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
