"""Shapes of the dicts the client returns (the server's snake_case JSON). They are plain dicts at
run time; the types only help editors and type checkers. Servers may add keys.

The wire types mirror the schemas of spec/openapi.json (``WIRE_SCHEMAS`` names which);
tests/test_spec_types.py fails when a field or an enum value differs from the spec, so a field the
server adds is added here by hand, under the same name."""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, TypedDict

JobStatusValue = Literal["pending", "running", "sleeping", "completed", "error"]
EndReason = Literal["exited", "timeout", "oom", "signaled", "cancelled", "sandbox_failed", "server_shutdown"]


class SubmitResult(TypedDict, total=False):
    request_id: str
    status: Literal["accepted"]
    message: str


class LogEntry(TypedDict, total=False):
    timestamp: str
    level: Literal["info", "error"]
    message: str
    stream: Literal["stdout", "stderr", "system"]
    seq: int


class Logs(TypedDict):
    logs: List[LogEntry]


class Job(TypedDict, total=False):
    request_id: str
    name: Optional[str]
    status: JobStatusValue
    vm_id: Optional[str]
    workspace_id: Optional[str]
    base_workspace_id: Optional[str]
    exit_code: Optional[int]
    end_reason: Optional[EndReason]
    subdomain: Optional[str]
    url: Optional[str]
    script_duration_ms: Optional[int]
    created_at: str
    started_at: Optional[str]
    completed_at: Optional[str]
    persistent: bool
    no_sleep: bool
    startup_command: Optional[str]
    error_message: Optional[str]
    #: Where a persistent job's sandbox is (ours); None for other jobs.
    sandbox_state: Optional[Literal["running", "frozen", "starting", "sleeping"]]


class JobList(TypedDict, total=False):
    jobs: List[Job]
    page: int
    page_size: int
    total: int


class PoolStatus(TypedDict):
    idle_vms: int
    busy_vms: int
    total_vms: int
    min_pool_size: int
    max_pool_size: int


class Me(TypedDict, total=False):
    id: str
    name: str
    admin: bool
    created_at: str


class TokenCreated(TypedDict, total=False):
    id: str
    name: str
    token: str
    created_at: str


class TokenInfo(TypedDict, total=False):
    id: str
    name: str
    created_at: str
    last_used_at: Optional[str]


class RunResult(TypedDict):
    request_id: str
    status: Optional[JobStatusValue]
    exit_code: Optional[int]
    logs: List[LogEntry]
    end_reason: Optional[EndReason]
    error_message: Optional[str]
    script_duration_ms: Optional[int]


class ExecResult(TypedDict, total=False):
    exit_code: int
    output: str
    stderr: str
    truncated: bool
    timed_out: bool
    duration_ms: int


class StdinAnswer(TypedDict):
    #: Bytes the script's stdin took.
    bytes: int


class LogEnd(TypedDict, total=False):
    """How a followed job ended (the last item of its raw output)."""

    status: JobStatusValue
    exit_code: Optional[int]
    end_reason: Optional[EndReason]
    error_message: Optional[str]


#: Any other answer object (stop, access, health, workspaces, aliases).
Answer = Dict[str, Any]

#: Which schema of spec/openapi.json (``components.schemas``) each wire type mirrors.
WIRE_SCHEMAS: Dict[str, str] = {
    "SubmitResult": "SubmitJobAnswer",
    "LogEntry": "LogEntry",
    "Logs": "JobLogs",
    "Job": "JobStatus",
    "JobList": "JobList",
    "PoolStatus": "PoolStatus",
    "Me": "Me",
    "TokenCreated": "CreatedToken",
    "TokenInfo": "TokenInfo",
    "StdinAnswer": "StdinAnswer",
}
