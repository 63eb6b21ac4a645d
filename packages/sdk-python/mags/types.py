"""Shapes of the dicts the client returns (the server's snake_case JSON). They are plain dicts at
run time; the types only help editors and type checkers. Servers may add keys."""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, TypedDict

JobStatusValue = Literal["pending", "running", "sleeping", "completed", "error"]


class SubmitResult(TypedDict, total=False):
    request_id: str
    status: str
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
    exit_code: Optional[int]
    subdomain: Optional[str]
    url: Optional[str]
    script_duration_ms: Optional[int]
    created_at: str
    started_at: Optional[str]
    completed_at: Optional[str]
    persistent: bool
    no_sleep: bool
    error_message: Optional[str]


class JobList(TypedDict, total=False):
    jobs: List[Job]
    page: int
    page_size: int
    total: int


class RunResult(TypedDict):
    request_id: str
    status: Optional[JobStatusValue]
    exit_code: Optional[int]
    logs: List[LogEntry]
    error_message: Optional[str]
    script_duration_ms: Optional[int]


class ExecResult(TypedDict, total=False):
    exit_code: int
    output: str
    stderr: str


#: Any other answer object (stop, access, pool status, whoami, health, workspaces, aliases).
Answer = Dict[str, Any]
