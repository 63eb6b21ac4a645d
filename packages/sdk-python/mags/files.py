"""Files of a persistent job's sandbox (``mags.files``): read, write, list, remove, mkdir, move and
watch through ``/api/v1/mags-jobs/{id}/files...`` (docs/files.md). Paths are absolute or relative to
/root and resolve inside the sandbox; bytes travel unchanged and large files are streamed."""
import http.client
import os
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Union

from ._http import Transport, quote_segment
from .errors import MagsError

CHUNK = 1024 * 1024

#: What ``write`` accepts: bytes, text (UTF-8), a binary file object, or an iterable of byte chunks.
WriteData = Union[bytes, bytearray, memoryview, str, Any, Iterable[bytes]]


def _path(job: str, op: str = "") -> str:
    if not job:
        raise MagsError("A job name or request id is required", code="VALIDATION_ERROR")
    return f"/api/v1/mags-jobs/{quote_segment(job)}/files{op}"


def _range(offset: Optional[int], length: Optional[int]) -> Optional[Dict[str, str]]:
    if offset is None and length is None:
        return None
    start = offset or 0
    return {"Range": f"bytes={start}-" if length is None else f"bytes={start}-{start + length - 1}"}


def _body(data: WriteData):
    """``(chunks, length or None, content type)`` for the transport."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        return ([raw] if raw else [], len(raw), "application/octet-stream")
    if hasattr(data, "read"):
        length: Optional[int] = None
        try:
            length = os.fstat(data.fileno()).st_size - data.tell()
        except (AttributeError, OSError, ValueError):
            length = None

        def chunks() -> Iterator[bytes]:
            while True:
                block = data.read(CHUNK)
                if not block:
                    return
                yield block

        return (chunks(), length, "application/octet-stream")
    return (iter(data), None, "application/octet-stream")


class Files:
    """The files API; every method takes the job (name or request id) first."""

    def __init__(self, http: Transport) -> None:
        self._http = http

    def read_stream(self, job: str, path: str, *, offset: Optional[int] = None, length: Optional[int] = None,
                    timeout: Optional[float] = None) -> Iterator[bytes]:
        """A file's bytes in chunks (never whole in memory); ``offset``/``length`` read a range."""
        response, _ = self._http._open("GET", _path(job), {"path": path}, None, timeout, "*/*", extra_headers=_range(offset, length))
        with response:
            while True:
                try:
                    block = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise self._http._transport_error(exc, f"GET {path}", timeout or self._http.timeout) from None
                if not block:
                    return
                yield block

    def read(self, job: str, path: str, *, offset: Optional[int] = None, length: Optional[int] = None,
             timeout: Optional[float] = None) -> bytes:
        """A file's bytes (whole, or ``length`` bytes from ``offset``)."""
        return b"".join(self.read_stream(job, path, offset=offset, length=length, timeout=timeout))

    def read_text(self, job: str, path: str, *, timeout: Optional[float] = None) -> str:
        """A file as text (UTF-8)."""
        return self.read(job, path, timeout=timeout).decode("utf-8")

    def write(self, job: str, path: str, data: WriteData, *, mode: Optional[int] = None, parents: bool = True,
              timeout: Optional[float] = None) -> Dict[str, Any]:
        """Replace (or create) a file with ``data``; the entry written. ``mode``: e.g. ``0o755``."""
        query = {"path": path, "mode": None if mode is None else format(mode, "o"), "parents": None if parents else "0"}
        return self._http.request("PUT", _path(job), query=query, raw_body=_body(data), timeout=timeout)

    def write_text(self, job: str, path: str, text: str, *, mode: Optional[int] = None, parents: bool = True,
                   timeout: Optional[float] = None) -> Dict[str, Any]:
        """Write text as UTF-8."""
        return self.write(job, path, text, mode=mode, parents=parents, timeout=timeout)

    def list(self, job: str, path: str, *, depth: Optional[int] = None, timeout: Optional[float] = None) -> Dict[str, Any]:
        """``{"path", "entries": [...], "truncated"}``: entries below ``path`` down to ``depth`` levels."""
        return self._http.request("GET", _path(job, "/list"), query={"path": path, "depth": depth}, timeout=timeout)

    def remove(self, job: str, path: str, *, recursive: bool = False, timeout: Optional[float] = None) -> None:
        """Remove a file, symlink or empty directory; ``recursive`` removes a tree."""
        self._http.request("DELETE", _path(job), query={"path": path, "recursive": "1" if recursive else None}, timeout=timeout)

    def mkdir(self, job: str, path: str, *, parents: bool = False, mode: Optional[int] = None,
              timeout: Optional[float] = None) -> Dict[str, Any]:
        """Create a directory; ``parents`` creates missing parents and accepts an existing one."""
        body: Dict[str, Any] = {"path": path, "parents": parents}
        if mode is not None:
            body["mode"] = format(mode, "o")
        return self._http.request("POST", _path(job, "/mkdir"), body=body, timeout=timeout)

    def move(self, job: str, src: str, dst: str, *, overwrite: bool = False, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Move or rename; an existing ``dst`` is replaced only with ``overwrite``."""
        return self._http.request("POST", _path(job, "/move"), body={"from": src, "to": dst, "overwrite": overwrite}, timeout=timeout)

    def read_workspace(self, workspace: str, path: str, *, offset: Optional[int] = None, length: Optional[int] = None,
                       timeout: Optional[float] = None) -> bytes:
        """A file of a stored workspace (by id), from its newest synced version (read-only)."""
        response, _ = self._http._open("GET", f"/api/v1/workspaces/{quote_segment(workspace)}/files", {"path": path}, None, timeout, "*/*",
                                       extra_headers=_range(offset, length))
        with response:
            return response.read()

    def list_workspace(self, workspace: str, path: str, *, depth: Optional[int] = None, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Lists a stored workspace (by id), from its newest synced version."""
        return self._http.request("GET", f"/api/v1/workspaces/{quote_segment(workspace)}/files/list", query={"path": path, "depth": depth}, timeout=timeout)

    def watch(self, job: str, path: str, *, recursive: bool = False, on_ready: Optional[Callable[[], None]] = None,
              timeout: Optional[float] = None) -> Iterator[Dict[str, Any]]:
        """Yield the changes below a directory (``{"type": "create"|"modify"|"delete"|"move"|"overflow",
        "path", "dir", "from"?}``) until the loop stops or the sandbox goes away. ``on_ready`` is
        called once the watch is set up in the sandbox: changes from then on are reported, earlier
        ones are not. ``timeout`` bounds each wait for a line (keep-alives arrive every 15 s)."""
        query = {"path": path, "recursive": "1" if recursive else None}
        for event, data in self._http.stream_events(_path(job, "/watch"), query=query, timeout=timeout):
            if event == "end":
                return
            if not isinstance(data, dict):
                continue
            if data.get("type") == "ready":
                if on_ready is not None:
                    on_ready()
            else:
                yield data


__all__ = ["Files", "WriteData"]
