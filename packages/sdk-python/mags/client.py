"""The ``Mags`` client: the methods of the Mags Python SDK, as calls to a Mags server's REST API."""
from __future__ import annotations

import difflib
import os
import time
import urllib.parse
import uuid
from typing import Any, Callable, Dict, Generator, Iterable, Iterator, List, Mapping, Optional, cast

from . import config
from ._http import DEFAULT_MAX_RETRIES, Transport, quote_segment
from .types import ExecResult, Job, JobList, LogEntry, Logs, RunResult, StdinAnswer, SubmitResult
from .files import Files
from .exec import ExecOutput, exec_body, read_exec_stream
from .raw import RawOutput, StdinData, read_frames, read_stream, send_stdin
from .errors import AUTH_HINT, AuthenticationError, MagsError, NotFoundError, TimeoutError, ValidationError

JOBS = "/api/v1/mags-jobs"
JOBS_V2 = "/api/v2/mags-jobs"
WORKSPACES = "/api/v1/workspaces"
FILES = "/api/v1/mags-files"
URL_ALIASES = "/api/v2/mags-url-aliases"
CRON = "/api/v1/mags-cron"
WEBHOOKS = "/api/v1/webhooks"

#: Default seconds to wait for any one HTTP call.
DEFAULT_TIMEOUT = 30.0
#: Statuses after which a job never runs its script again.
TERMINAL_STATUSES = frozenset({"completed", "error"})
_ACTIVE_STATUSES = frozenset({"pending", "running", "sleeping"})
_V2_FIELDS = ("vcpus", "memory_mb", "rootfs_type")
#: Keyword arguments of ``run``: its named options and the submit fields it sends as given.
_RUN_OPTIONS = (
    "name", "workspace_id", "base_workspace_id", "persistent", "no_sleep", "startup_command",
    "environment", "file_ids", "files", "disk_gb", "vcpus", "memory_mb", "rootfs_type", "timeout",
    "timeout_seconds", "webhook_url", "stdin", "tty",
)
_RUN_AND_WAIT_OPTIONS = _RUN_OPTIONS + ("poll_interval", "on_output")
_CRON_OPTIONS = (
    "timezone", "enabled", "overlap", "catch_up", "jitter_seconds", "workspace_id", "base_workspace_id",
    "persistent", "no_sleep", "startup_command", "environment", "file_ids", "disk_gb", "vcpus", "memory_mb",
    "timeout_seconds", "webhook_url",
)


def _reject_unknown(where: str, names: Iterable[str], known: Iterable[str]) -> None:
    """Raise ``ValidationError`` (code ``VALIDATION_ERROR``) for a keyword ``known`` does not
    name, with the closest valid one as the hint (``workspace`` -> ``workspace_id``)."""
    valid = list(known)
    for key in names:
        if key in valid:
            continue
        near = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        raise ValidationError(
            f"Unknown option {key!r} for {where}",
            code="VALIDATION_ERROR",
            hint=f"Did you mean {near[0]}?" if near else f"Valid options: {', '.join(valid)}.",
        )


def _job_path(request_id: str, suffix: str = "") -> str:
    return f"{JOBS}/{quote_segment(request_id)}{suffix}"


def _deadline(timeout: Optional[float]) -> float:
    """``time.monotonic()`` value after ``timeout`` seconds; ``None`` waits without limit."""
    return float("inf") if timeout is None else time.monotonic() + float(timeout)


def _drop_none(values: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class Mags:
    """Client of one Mags server.

    ``api_token`` falls back to ``MAGS_API_TOKEN``, ``MAGS_TOKEN``, then ``~/.mags/config.json``;
    ``api_url`` to ``MAGS_API_URL``, the config file, then ``http://127.0.0.1:8090``. ``timeout`` is
    the default number of seconds for each HTTP call; every method also takes ``timeout=``.
    """

    def __init__(
        self,
        api_token: Optional[str] = None,
        api_url: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        token, url = config.resolve(api_token, api_url)
        if not token:
            raise AuthenticationError(
                "API token required: set MAGS_API_TOKEN or run `mags login`",
                code="AUTH_REQUIRED",
                hint=AUTH_HINT,
            )
        self.api_url = url
        self.timeout = float(timeout)
        self._http = Transport(url, token, self.timeout, max_retries=max_retries)
        #: Token management (``/api/v1/tokens``): ``create(name)``, ``list()``, ``revoke(id)``.
        self.tokens = Tokens(self._http)
        #: Files of persistent jobs' sandboxes: ``read``, ``write``, ``list``, ``remove``, ``mkdir``,
        #: ``move``, ``watch`` (and ``read_text``, ``write_text``, ``read_stream``).
        self.files = Files(self._http)

    def __repr__(self) -> str:
        return f"Mags(api_url={self.api_url!r})"

    # ---- jobs -------------------------------------------------------------------------------

    def run(
        self,
        script: str,
        *,
        name: Optional[str] = None,
        workspace_id: Optional[str] = None,
        base_workspace_id: Optional[str] = None,
        persistent: Optional[bool] = None,
        no_sleep: Optional[bool] = None,
        startup_command: Optional[str] = None,
        environment: Optional[Mapping[str, str]] = None,
        file_ids: Optional[List[str]] = None,
        files: Optional[List[str]] = None,
        disk_gb: Optional[int] = None,
        vcpus: Optional[int] = None,
        memory_mb: Optional[int] = None,
        rootfs_type: Optional[str] = None,
        timeout: Optional[float] = None,
        **fields: Any,
    ) -> SubmitResult:
        """Submit ``script`` and return at once: ``{"request_id", "status": "accepted", "message"}``.

        Options left as ``None`` are not sent. ``vcpus``/``memory_mb``/``rootfs_type`` send the
        job to ``/api/v2/mags-jobs``. ``timeout_seconds`` (the server's job limit) is sent as
        given; any other keyword raises ``ValidationError`` naming the closest valid one.
        ``timeout`` bounds this HTTP call only (seconds). ``files`` are local paths uploaded
        first (``upload_file``); the job finds each at ``/root/<base name>``."""
        _reject_unknown("run()", fields, _RUN_OPTIONS)
        if files:
            file_ids = list(file_ids or []) + [self.upload_file(f)["file_id"] for f in files]
        body: Dict[str, Any] = {"script": script, "type": "inline"}
        body.update(
            _drop_none(
                {
                    "name": name,
                    "workspace_id": workspace_id,
                    "base_workspace_id": base_workspace_id,
                    "persistent": persistent,
                    "no_sleep": no_sleep,
                    "startup_command": startup_command,
                    "environment": dict(environment) if environment is not None else None,
                    "file_ids": list(file_ids) if file_ids is not None else None,
                    "disk_gb": disk_gb,
                    "vcpus": vcpus,
                    "memory_mb": memory_mb,
                    "rootfs_type": rootfs_type,
                }
            )
        )
        body.update(_drop_none(fields))
        path = JOBS_V2 if any(body.get(f) is not None for f in _V2_FIELDS) else JOBS
        return cast(SubmitResult, self._http.request("POST", path, body=body, timeout=timeout))

    def run_and_wait(
        self,
        script: str,
        timeout: Optional[float] = 30,
        *,
        poll_interval: float = 1.0,
        on_output: Optional[Callable[[LogEntry], None]] = None,
        **options: Any,
    ) -> RunResult:
        """Submit ``script``, wait until the job ends and return
        ``{"request_id", "status", "exit_code", "logs", "end_reason", "error_message", "script_duration_ms"}``
        (``logs``: the log entries, oldest first).

        Follows the live log stream so it returns as soon as the job ends; when the server offers
        no stream it polls ``status`` every ``poll_interval`` seconds. A persistent job counts as
        done when its script has finished and it goes idle (``sleeping``). After ``timeout``
        seconds (``None``: no limit) it raises ``mags.TimeoutError`` (with ``request_id``); the job
        keeps running on the server, so call ``stop(request_id)`` if it should not.
        ``on_output`` is called with each log entry as it arrives (when polling, once the job has
        ended). Other keyword arguments are the options of ``run``."""
        _reject_unknown("run_and_wait()", options, _RUN_AND_WAIT_OPTIONS)
        deadline = _deadline(timeout)
        submitted = self.run(script, timeout=self._call_timeout(deadline), **options)
        return self._wait(str(submitted.get("request_id")), deadline, timeout, poll_interval, on_output)

    def wait_for(
        self,
        request_id: str,
        timeout: Optional[float] = 30,
        *,
        poll_interval: float = 1.0,
        on_output: Optional[Callable[[LogEntry], None]] = None,
    ) -> RunResult:
        """Wait for an already submitted job like the second half of ``run_and_wait`` and return
        the same dict (its ``logs`` hold every line of the job)."""
        return self._wait(request_id, _deadline(timeout), timeout, poll_interval, on_output)

    def status(self, request_id: str, *, timeout: Optional[float] = None) -> Job:
        """The job's status object (``request_id``, ``status``, ``exit_code``, ``vm_id``, ...).
        ``request_id`` may also be a job name or workspace id."""
        return cast(Job, self._http.request("GET", _job_path(request_id, "/status"), timeout=timeout))

    def logs(
        self, request_id: str, *, after: Optional[int] = None, tail: Optional[int] = None, timeout: Optional[float] = None
    ) -> Logs:
        """``{"logs": [{"timestamp", "level", "message", "stream", "seq"}, ...]}``; ``after`` returns
        only entries with a larger ``seq``; ``tail`` (ours) only the last n."""
        query = _drop_none({"after": after, "tail": tail}) or None
        return cast(Logs, self._http.request("GET", _job_path(request_id, "/logs"), query=query, timeout=timeout))

    def stream_logs(
        self, request_id: str, *, after: Optional[int] = None, timeout: Optional[float] = None
    ) -> Iterator[LogEntry]:
        """Yield log entries live as the job writes them, until the job ends (or a persistent job
        goes idle). ``timeout`` bounds each wait for the next line (seconds)."""
        query: Dict[str, Any] = {"follow": 1}
        if after is not None:
            query["after"] = after
        for event, data in self._http.stream_events(_job_path(request_id, "/logs"), query=query, timeout=timeout):
            if event == "log" and isinstance(data, dict):
                yield cast(LogEntry, data)
            elif event == "end":
                return

    def stream_raw(
        self, name_or_id: str, *, follow: bool = False, timeout: Optional[float] = None
    ) -> Iterator[RawOutput]:
        """Yield a job's output exactly as written (ours): ``RawOutput(stream, data)`` items with
        ``stream`` ``"stdout"``, ``"stderr"`` or ``"system"`` and ``data`` bytes, in the order the
        output was read. Without ``follow`` it ends after what exists so far; with ``follow`` it
        waits for more and its last item is ``RawOutput("end", end={"status", "exit_code", ...})``
        when the job ends (or a persistent job goes idle). ``timeout`` bounds opening and each wait
        for bytes; when following without one it waits without limit. A server without raw output
        (a Mags server) raises ``MagsError`` with code ``FEATURE_NOT_AVAILABLE``; a malformed
        stream raises code ``INVALID_RESPONSE``."""
        return read_frames(self._http, _job_path(name_or_id, "/logs"), follow, timeout)

    def raw_output(
        self,
        name_or_id: str,
        stream: str = "stdout",
        *,
        follow: bool = False,
        timeout: Optional[float] = None,
    ) -> Iterator[bytes]:
        """Yield one stream's bytes (``"stdout"`` or ``"stderr"``) exactly as the script wrote them
        (ours): binary data, NUL, ``\\r`` and a missing final newline come back unchanged, in blocks
        as they arrive (``b"".join(...)`` for all of it). ``follow`` and ``timeout`` as in
        ``stream_raw``; the job's outcome is then in ``status()``."""
        return read_stream(self._http, _job_path(name_or_id, "/logs"), stream, follow, timeout)

    def send_stdin(self, name_or_id: str, data: StdinData, *, timeout: Optional[float] = None) -> StdinAnswer:
        """Stream the stdin of a job submitted with ``stdin=True`` (ours): ``data`` is bytes, text
        (UTF-8), a binary file object or an iterable of byte chunks (a generator, say), sent as it
        is read (chunked) and never held whole; the script reads it at its own pace. Returns
        ``{"bytes": n}``, the bytes the script's stdin took, once it reached EOF or the job ended.
        ``timeout`` bounds each wait on the connection (a script that pauses reading pauses the
        upload). Raises code ``INVALID_STATE`` (422) for a job without ``stdin=True``, ``CONFLICT``
        (409) for a second upload or one later than 60 s after the script started, and
        ``JOB_NOT_RUNNING`` (409) once the job ended."""
        return send_stdin(self._http, _job_path(name_or_id, "/stdin"), data, timeout)

    def list(
        self,
        page: Optional[int] = None,
        page_size: Optional[int] = None,
        *,
        status: Optional[str] = None,
        since: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> JobList:
        """One page of your jobs, newest first: ``{"jobs", "page", "page_size", "total"}``. The
        server's defaults are page 1 of 20. Ours: ``status`` (comma-separated statuses) and
        ``since`` (ISO 8601 creation time) filter them."""
        query = _drop_none({"page": page, "page_size": page_size, "status": status, "since": since})
        return cast(JobList, self._http.request("GET", JOBS, query=query or None, timeout=timeout))

    def stop(self, request_id: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Stop the job (a workspace is synced first): ``{"success", "request_id", "status"}``."""
        return self._http.request("POST", _job_path(request_id, "/stop"), body={}, timeout=timeout)

    def resize_tty(self, name_or_id: str, cols: int, rows: int, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """New terminal size of a job submitted with ``tty`` (ours): ``{"success": True}``."""
        return self._http.request("POST", _job_path(name_or_id, "/resize"), body={"cols": cols, "rows": rows}, timeout=timeout)

    def delete_job(self, name_or_id: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Delete a job that ended and its output (ours): ``{"success", "request_id"}``; a queued,
        running or sleeping job raises ``MagsError`` with code ``CONFLICT``."""
        return self._http.request("DELETE", _job_path(name_or_id), timeout=timeout)

    def find_job(self, name_or_id: str, *, timeout: Optional[float] = None) -> Optional[Job]:
        """The job with this request id, or the pending/running/sleeping job with this name or
        workspace id; ``None`` when there is none."""
        try:
            job = self.status(name_or_id, timeout=timeout)
            if job.get("request_id") == name_or_id or job.get("status") in _ACTIVE_STATUSES:
                return job
        except NotFoundError:
            pass
        for page in range(1, 11):
            listing = self.list(page=page, page_size=100, timeout=timeout)
            jobs = listing.get("jobs") or []
            for job in jobs:
                if name_or_id in (job.get("name"), job.get("workspace_id")) and job.get("status") in _ACTIVE_STATUSES:
                    return job
            if len(jobs) < 100:
                break
        return None

    def update_job(
        self,
        request_id: str,
        *,
        no_sleep: Optional[bool] = None,
        startup_command: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Change a job's ``no_sleep`` and/or ``startup_command`` (only the ones given are sent)."""
        body = _drop_none({"startup_command": startup_command, "no_sleep": no_sleep})
        return self._http.request("PATCH", _job_path(request_id), body=body, timeout=timeout)

    def enable_access(
        self, request_id: str, port: int = 8080, *, auth: Optional[str] = None, timeout: Optional[float] = None
    ) -> Dict[str, Any]:
        """Open a public URL to ``port`` of a persistent job (``{"success", "url", "subdomain", "port"}``),
        or SSH access for ``port=22`` (``{"success", "ssh_host", "ssh_port", "ssh_private_key"}``).
        Wakes a sleeping job. ``auth="token"`` (ours) makes the URL private: only the owner's API
        token passes, and the answer carries a one-time ``login_url`` for a browser."""
        body = _drop_none({"port": port, "auth": auth})
        return self._http.request("POST", _job_path(request_id, "/access"), body=body, timeout=timeout)

    def enable_url(self, request_id: str, port: int = 8080, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Same as ``enable_access`` (Mags' older name)."""
        return self.enable_access(request_id, port, timeout=timeout)

    def url(
        self, name_or_id: str, port: int = 8080, *, auth: Optional[str] = None, timeout: Optional[float] = None
    ) -> Dict[str, Any]:
        """Enable URL access to ``port`` of the job with this name or id and return the access
        object; its ``url`` is the public address (``auth="token"``: private, see ``enable_access``)."""
        return self.enable_access(name_or_id, port, auth=auth, timeout=timeout)

    def pool_status(self, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """The warm pool: ``idle_vms``, ``busy_vms``, ``total_vms``, ``min_pool_size``, ``max_pool_size``."""
        return self._http.request("GET", f"{JOBS}/pool-status", timeout=timeout)

    def usage(
        self,
        *,
        from_: Optional[str] = None,
        to: Optional[str] = None,
        group_by: Optional[str] = None,
        user_id: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Usage in ``[from_, to)`` (ISO 8601 dates; default the last 30 days) grouped by ``"day"``
        (default), ``"job"`` or ``"user"``: ``{"from", "to", "group_by", "rows": [{"key", "jobs",
        "wall_seconds", "vcpu_seconds", "memory_mb_seconds", "peak_memory_mb", "egress_bytes",
        "ingress_bytes", "storage_bytes"}], "totals": {...}}``. An admin sees every user's unless
        ``user_id`` is given."""
        query = {k: v for k, v in (("from", from_), ("to", to), ("group_by", group_by), ("user_id", user_id)) if v is not None}
        path = "/api/v1/usage" + ("?" + urllib.parse.urlencode(query) if query else "")
        return self._http.request("GET", path, timeout=timeout)

    def quota(self, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Your quotas and what is used of them: ``{"quota": {...}, "used": {...}}``."""
        return self._http.request("GET", "/api/v1/quota", timeout=timeout)

    def whoami(self, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """The user this token belongs to: ``{"id", "name", "admin", "created_at"}``."""
        return self._http.request("GET", "/api/v1/me", timeout=timeout)

    def health(self, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """``{"status": "ok", "version"}`` when the server is up (sent without the token)."""
        return self._http.request("GET", "/health", timeout=timeout, auth=False)

    # ---- workspaces, exec, URL aliases (need the matching server features) --------------------

    def new(
        self,
        name: str,
        *,
        persistent: bool = False,
        base_workspace_id: Optional[str] = None,
        disk_gb: Optional[int] = None,
        timeout: float = 120,
        wait: Optional[float] = None,
        poll_interval: float = 0.5,
    ) -> Dict[str, Any]:
        """Start a sandbox named ``name`` that stays up (for SSH, exec and URLs) and wait up to
        ``timeout`` seconds (Mags' meaning; ``wait`` is the same) until it runs: the submit answer's
        fields plus ``{"request_id", "name", "workspace_id", "status"}``. With ``persistent=True``
        its ``/root`` is kept as workspace ``name``."""
        submitted = self.run(
            "true",
            name=name,
            persistent=True,
            workspace_id=name if persistent else None,
            base_workspace_id=base_workspace_id,
            disk_gb=disk_gb,
        )
        request_id = str(submitted.get("request_id"))
        limit = float(wait if wait is not None else timeout)
        deadline = time.monotonic() + limit
        while True:
            job = self.status(request_id)
            state = job.get("status")
            if state in ("running", "sleeping"):
                return {**submitted, "request_id": request_id, "name": name, "workspace_id": job.get("workspace_id"), "status": state}
            if state in TERMINAL_STATUSES:
                detail = f": {job['error_message']}" if job.get("error_message") else ""
                raise MagsError(f"Sandbox {name} ended while starting ({state}{detail})", code="JOB_FAILED")
            if time.monotonic() > deadline:
                raise TimeoutError(f"Sandbox {name} was not up within {limit:g} s", request_id=request_id)
            time.sleep(max(0.05, poll_interval))

    def exec(
        self,
        name_or_id: str,
        command: str,
        *,
        timeout: Optional[float] = None,
        env: Optional[Dict[str, str]] = None,
        cwd: Optional[str] = None,
        stdin: Optional[str] = None,
    ) -> ExecResult:
        """Run ``command`` (by ``/bin/bash -c``) in the job's running, frozen or sleeping sandbox,
        waking it: ``{"exit_code", "output", "stderr", "truncated", "timed_out"}``. ``timeout`` is
        the command's limit in seconds (default 300 on the server): past it the command is killed,
        ``exit_code`` is 124 and ``timed_out`` True. The HTTP call waits 30 s longer."""
        body, http_timeout = exec_body(command, timeout, env, cwd, stdin)
        return cast(ExecResult, self._http.request("POST", _job_path(name_or_id, "/exec"), body=body, timeout=http_timeout))

    def exec_stream(
        self,
        name_or_id: str,
        command: str,
        *,
        timeout: Optional[float] = None,
        env: Optional[Dict[str, str]] = None,
        cwd: Optional[str] = None,
        stdin: Optional[str] = None,
    ) -> Generator[ExecOutput, None, None]:
        """Run ``command`` as ``exec`` does and yield its output as it arrives (ours):
        ``ExecOutput("stdout" | "stderr", data)`` items (UTF-8 text, never a split character, of any
        size), then ``ExecOutput("exit", exit_code=..., timed_out=...)``. Nothing is buffered: the
        connection is read only when the next item is asked for, so a slow consumer holds the
        command back (it blocks writing) and output of any length streams in bounded memory.
        Breaking out of the loop (or ``close()``) ends the call and the server kills the command.
        Errors as ``exec``; an ``error`` line raises ``MagsError`` with its code, a stream cut
        before the exit raises code ``INVALID_RESPONSE``. ``timeout`` is the command's limit in
        seconds; each wait for output may last 30 s longer."""
        body, http_timeout = exec_body(command, timeout, env, cwd, stdin)
        return read_exec_stream(self._http, _job_path(name_or_id, "/exec"), body, http_timeout)

    def sync(self, name_or_id: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Sync a workspace now without stopping its job (``name_or_id``: workspace id, or a job's
        request id or name): ``{"success", "workspace_id", "synced", "message"}``; ``synced`` is
        False when the server keeps workspaces on its own disk only."""
        return self._http.request("POST", _job_path(name_or_id, "/sync"), body={}, timeout=timeout)

    def list_workspaces(self, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """``{"workspaces": [...]}``: your saved workspaces."""
        return self._http.request("GET", WORKSPACES, timeout=timeout)

    def upload_file(self, path: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Upload a local file (streamed, never read whole) under its base name:
        ``{"file_id", "name", "size", "sha256", "created_at"}``. Pass ``file_id`` in ``file_ids``."""
        name = os.path.basename(path)
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            raise MagsError(f"Cannot read {path}: {exc}", code="VALIDATION_ERROR", hint="Check the path of the file to upload.") from None
        boundary = "----mags" + uuid.uuid4().hex
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode("utf-8")
        tail = f"\r\n--{boundary}--\r\n".encode("ascii")

        def chunks() -> Iterator[bytes]:
            yield head
            with open(path, "rb") as f:
                while True:
                    block = f.read(1024 * 1024)
                    if not block:
                        break
                    yield block
            yield tail

        raw = (chunks(), len(head) + size + len(tail), f"multipart/form-data; boundary={boundary}")
        return self._http.request("POST", FILES, raw_body=raw, timeout=timeout)

    def list_files(self, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """``{"files": [...]}``: your uploaded files, newest first."""
        return self._http.request("GET", FILES, timeout=timeout)

    def delete_file(self, file_id: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Delete an uploaded file (404 ``FILE_NOT_FOUND`` when it is not yours)."""
        return self._http.request("DELETE", f"{FILES}/{quote_segment(file_id)}", timeout=timeout)

    def delete_workspace(self, workspace_id: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Delete a workspace and its stored files (409 ``WORKSPACE_BUSY`` while a job uses it)."""
        return self._http.request("DELETE", f"{WORKSPACES}/{quote_segment(workspace_id)}", timeout=timeout)

    def workspace_history(self, workspace_id: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """``{"workspace_id", "versions": [...]}``: the workspace's stored versions, newest first
        (each ``{"version", "created_at", "files", "bytes", "image_version"}``)."""
        return self._http.request("GET", f"{WORKSPACES}/{quote_segment(workspace_id)}/history", timeout=timeout)

    def restore_workspace(self, workspace_id: str, version: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Rebuild a workspace from a stored version; that state becomes its newest version:
        ``{"success", "workspace_id", "restored_version", "version"}`` (404 ``VERSION_NOT_FOUND``,
        409 ``WORKSPACE_BUSY`` while a job uses it)."""
        return self._http.request("POST", f"{WORKSPACES}/{quote_segment(workspace_id)}/restore", body={"version": version}, timeout=timeout)

    def resize_workspace(self, workspace_id: str, disk_gb: int, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Grow a workspace's disk to ``disk_gb`` GB (it never shrinks):
        ``{"success", "workspace_id", "disk_gb", "grown"}``."""
        return self._http.request("PATCH", f"{WORKSPACES}/{quote_segment(workspace_id)}", body={"disk_gb": disk_gb}, timeout=timeout)

    def url_alias_create(
        self,
        subdomain: str,
        workspace_id: str,
        domain: Optional[str] = None,
        *,
        port: Optional[int] = None,
        auth: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Route ``<subdomain>.apps.<domain>`` to the newest running/sleeping job of the workspace
        (stable across sleeps and restarts), on ``port`` (default 8080): ``{"url", ...}``. A
        subdomain someone else has raises a 409 ``CONFLICT`` ("already in use")."""
        body = _drop_none({"subdomain": subdomain, "workspace_id": workspace_id, "domain": domain, "port": port, "auth": auth})
        return self._http.request("POST", URL_ALIASES, body=body, timeout=timeout)

    def url_alias_list(self, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Your URL aliases."""
        return self._http.request("GET", URL_ALIASES, timeout=timeout)

    def url_alias_delete(self, subdomain: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Remove a URL alias."""
        return self._http.request("DELETE", f"{URL_ALIASES}/{quote_segment(subdomain)}", timeout=timeout)

    # ---- cron schedules (ours) ----------------------------------------------------------------

    def cron_create(
        self,
        name: str,
        cron_expression: str,
        script: str,
        *,
        timeout: Optional[float] = None,
        **options: Any,
    ) -> Dict[str, Any]:
        """Create a schedule: ``timezone`` (IANA, default UTC), ``enabled``, ``overlap``
        (``skip``/``queue``/``replace``), ``catch_up`` (``one``/``none``), ``jitter_seconds`` and the
        job options of ``run`` (``workspace_id``, ``environment``, ``webhook_url``, ...). The answer
        lists ``next_runs``; a bad expression or time zone raises ``ValidationError`` naming the field."""
        _reject_unknown("cron_create()", options, _CRON_OPTIONS)
        body = {"name": name, "cron_expression": cron_expression, "script": script, **_drop_none(options)}
        return self._http.request("POST", CRON, body=body, timeout=timeout)

    def cron_list(self, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """``{"schedules": [...]}``: your schedules."""
        return self._http.request("GET", CRON, timeout=timeout)

    def cron_get(self, id_or_name: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """One schedule by id or name (``NotFoundError``, code ``SCHEDULE_NOT_FOUND``, otherwise)."""
        return self._http.request("GET", f"{CRON}/{quote_segment(id_or_name)}", timeout=timeout)

    def cron_update(self, id_or_name: str, *, timeout: Optional[float] = None, **changes: Any) -> Dict[str, Any]:
        """Change a schedule, e.g. ``cron_update("nightly", enabled=False)``."""
        _reject_unknown("cron_update()", changes, _CRON_OPTIONS + ("name", "cron_expression", "script"))
        return self._http.request("PATCH", f"{CRON}/{quote_segment(id_or_name)}", body=_drop_none(changes), timeout=timeout)

    def cron_delete(self, id_or_name: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Delete a schedule; the jobs it ran stay."""
        return self._http.request("DELETE", f"{CRON}/{quote_segment(id_or_name)}", timeout=timeout)

    def cron_run_now(self, id_or_name: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Fire a schedule now (its overlap policy applies): the firing with its ``job_id``."""
        return self._http.request("POST", f"{CRON}/{quote_segment(id_or_name)}/run", timeout=timeout)

    def cron_runs(self, id_or_name: str, limit: Optional[int] = None, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """``{"runs": [...]}``: the schedule's firings, newest first (``limit``: server default 50),
        with each job's status."""
        query = f"?limit={int(limit)}" if limit is not None else ""
        return self._http.request("GET", f"{CRON}/{quote_segment(id_or_name)}/runs{query}", timeout=timeout)

    # ---- webhooks (ours) ----------------------------------------------------------------------

    def webhook_create(
        self,
        url: str,
        events: Optional[List[str]] = None,
        description: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Add an endpoint; the answer's ``secret`` (``whsec_...``) is shown only here."""
        body = _drop_none({"url": url, "events": events, "description": description})
        return self._http.request("POST", WEBHOOKS, body=body, timeout=timeout)

    def webhook_list(self, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """``{"webhooks": [...]}``: your endpoints (without secrets), each with its ``status``."""
        return self._http.request("GET", WEBHOOKS, timeout=timeout)

    def webhook_update(self, webhook_id: str, *, timeout: Optional[float] = None, **changes: Any) -> Dict[str, Any]:
        """Change ``url``, ``events``, ``description``; ``enabled=True`` re-enables a disabled endpoint."""
        _reject_unknown("webhook_update()", changes, ("url", "events", "description", "enabled"))
        return self._http.request("PATCH", f"{WEBHOOKS}/{quote_segment(webhook_id)}", body=_drop_none(changes), timeout=timeout)

    def webhook_delete(self, webhook_id: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Remove an endpoint."""
        return self._http.request("DELETE", f"{WEBHOOKS}/{quote_segment(webhook_id)}", timeout=timeout)

    def webhook_test(self, webhook_id: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Send a ``webhook.test`` event to an endpoint; answers the queued delivery."""
        return self._http.request("POST", f"{WEBHOOKS}/{quote_segment(webhook_id)}/test", timeout=timeout)

    def webhook_deliveries(self, webhook_id: str, limit: Optional[int] = None, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """``{"deliveries": [...]}``: the endpoint's delivery log, newest first (``limit``: server default 50)."""
        query = f"?limit={int(limit)}" if limit is not None else ""
        return self._http.request("GET", f"{WEBHOOKS}/{quote_segment(webhook_id)}/deliveries{query}", timeout=timeout)

    def webhook_redeliver(self, webhook_id: str, delivery_id: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Send a delivery again, with the same ``webhook-id``."""
        path = f"{WEBHOOKS}/{quote_segment(webhook_id)}/deliveries/{quote_segment(delivery_id)}/redeliver"
        return self._http.request("POST", path, timeout=timeout)

    def webhook_signing_key(self, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Create or replace the key that signs deliveries to jobs' own ``webhook_url``: ``{"secret"}``, shown once."""
        return self._http.request("POST", f"{WEBHOOKS}/signing-key", timeout=timeout)

    # ---- helpers ------------------------------------------------------------------------------

    def _call_timeout(self, deadline: float, minimum: float = 0.5) -> float:
        """Seconds for one call inside a wait: the default, but never far beyond the deadline."""
        return max(min(self.timeout, deadline - time.monotonic()), minimum)

    def _wait_timeout(self, request_id: str, timeout: Optional[float]) -> TimeoutError:
        return TimeoutError(
            f"Job {request_id} did not finish within {float(timeout or 0):g} s; it is still running",
            hint=f"Pass a larger timeout= to run_and_wait, or stop it with stop({request_id!r}).",
            request_id=request_id,
        )

    def _wait(
        self,
        request_id: str,
        deadline: float,
        timeout: Optional[float],
        poll_interval: float,
        on_output: Optional[Callable[[LogEntry], None]] = None,
    ) -> RunResult:
        logs: List[LogEntry] = []
        streamed = False
        try:
            streamed = self._follow(request_id, deadline, logs, on_output)
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise self._wait_timeout(request_id, timeout) from None
            streamed = False  # a stalled stream: polling takes over
        except (MagsError, OSError):
            # The stream is a convenience: any failure of it (an older server, a dropped
            # connection) falls back to polling, which needs nothing but the status path.
            streamed = False
        if not streamed:
            self._poll_until_done(request_id, deadline, poll_interval, timeout)
        job = self.status(request_id, timeout=self._call_timeout(deadline, minimum=5.0))
        if not streamed:
            shown = len(logs)  # lines the stream passed to on_output before it failed
            logs = self._all_logs(request_id, deadline)
            if on_output is not None:
                for entry in logs[shown:]:
                    on_output(entry)
        return {
            "request_id": request_id,
            "status": job.get("status"),
            "exit_code": job.get("exit_code"),
            "logs": logs,
            "end_reason": job.get("end_reason"),
            "error_message": job.get("error_message"),
            "script_duration_ms": job.get("script_duration_ms"),
        }

    def _follow(
        self,
        request_id: str,
        deadline: float,
        logs: List[LogEntry],
        on_output: Optional[Callable[[LogEntry], None]] = None,
    ) -> bool:
        """Collect log lines from the live stream until its ``end`` event; True when it came."""
        events = self._http.stream_events(
            _job_path(request_id, "/logs"),
            query={"follow": 1},
            timeout=self._call_timeout(deadline),
            deadline=deadline,
        )
        for event, data in events:
            if event == "log" and isinstance(data, dict):
                logs.append(cast(LogEntry, data))
                if on_output is not None:
                    on_output(cast(LogEntry, data))
            elif event == "end":
                return True
        return False

    def _poll_until_done(self, request_id: str, deadline: float, interval: float, timeout: Optional[float]) -> None:
        while True:
            try:
                job = self.status(request_id, timeout=self._call_timeout(deadline))
            except TimeoutError:
                raise self._wait_timeout(request_id, timeout) from None
            state = job.get("status")
            if state in TERMINAL_STATUSES:
                return
            # A persistent job's script is done once it sleeps or has an exit code while it stays up.
            if job.get("persistent") and (state == "sleeping" or job.get("exit_code") is not None):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._wait_timeout(request_id, timeout)
            time.sleep(min(max(interval, 0.05), remaining))

    def _all_logs(self, request_id: str, deadline: float) -> List[LogEntry]:
        entries: List[LogEntry] = []
        after: Optional[int] = None
        while True:
            page = self.logs(request_id, after=after, timeout=self._call_timeout(deadline, minimum=5.0))
            batch = page.get("logs") or []
            if after is not None:  # a server that ignores `after` must not duplicate lines
                batch = [e for e in batch if not isinstance(e.get("seq"), int) or e["seq"] > after]
            entries.extend(batch)
            last = batch[-1].get("seq") if batch else None
            # Servers that page their logs answer with later lines on `after`; one without `seq`
            # returned everything at once.
            if not batch or not isinstance(last, int) or last == after:
                return entries
            after = last


class Tokens:
    """API tokens of the caller (this server's own endpoints, also in the Node SDK as ``tokens``)."""

    def __init__(self, http: Transport) -> None:
        self._http = http

    def create(self, name: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """A new token: ``{"id", "name", "token", "created_at"}``; ``token`` is shown only here."""
        return self._http.request("POST", "/api/v1/tokens", body={"name": name}, timeout=timeout)

    def list(self, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """``{"tokens": [{"id", "name", "created_at", "last_used_at"}]}`` (never the secrets)."""
        return self._http.request("GET", "/api/v1/tokens", timeout=timeout)

    def revoke(self, token_id: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Revoke a token by id; calls with it then raise ``AuthenticationError``."""
        return self._http.request("DELETE", f"/api/v1/tokens/{quote_segment(token_id)}", timeout=timeout)
