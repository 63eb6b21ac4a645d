"""Behaviour that spans several requests or none (config, run_and_wait, timeouts, connection
failures), against the local recorder. The real server is exercised in test_e2e.py."""
from __future__ import annotations

import json
import os
import socket
import time
from typing import Any, Dict

import pytest

import mags
from conftest import TEST_TOKEN
from mags.config import resolve
from recorder import Recorder, json_reply, sse_reply


def client_for(recorder: Recorder, **kwargs: Any) -> mags.Mags:
    return mags.Mags(api_token=TEST_TOKEN, api_url=recorder.url, **kwargs)


def write_config(home: Any, data: Dict[str, Any]) -> None:
    os.makedirs(os.path.join(str(home), ".mags"), exist_ok=True)
    with open(os.path.join(str(home), ".mags", "config.json"), "w") as fh:
        json.dump(data, fh)


# ---- configuration -------------------------------------------------------------------------

def test_missing_token_raises_authentication_error(clean_env: Any) -> None:
    with pytest.raises(mags.AuthenticationError) as info:
        mags.Mags()
    assert str(info.value) == "API token required: set MAGS_API_TOKEN or run `mags login`"
    assert info.value.code == "AUTH_REQUIRED"


def test_token_precedence(clean_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(clean_env, {"api_token": "from-config", "api_url": "http://config:1"})
    assert resolve() == ("from-config", "http://config:1")
    monkeypatch.setenv("MAGS_TOKEN", "from-mags-token")
    assert resolve()[0] == "from-mags-token"
    monkeypatch.setenv("MAGS_API_TOKEN", "from-api-token")
    assert resolve()[0] == "from-api-token"
    assert resolve(api_token="explicit")[0] == "explicit"


def test_config_accepts_camel_case_keys(clean_env: Any) -> None:
    write_config(clean_env, {"apiToken": "camel", "apiUrl": "http://camel:2/"})
    assert resolve() == ("camel", "http://camel:2")


def test_url_precedence_and_default(clean_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve(api_token="t")[1] == "http://127.0.0.1:8090"
    write_config(clean_env, {"api_url": "http://config:1"})
    assert resolve(api_token="t")[1] == "http://config:1"
    monkeypatch.setenv("MAGS_API_URL", "http://env:3/api/v1/")
    assert resolve(api_token="t")[1] == "http://env:3"
    assert resolve(api_token="t", api_url="http://arg:4")[1] == "http://arg:4"


def test_env_token_is_sent(recorder: Recorder, clean_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAGS_TOKEN", "mags_envtoken")
    monkeypatch.setenv("MAGS_API_URL", recorder.url)
    recorder.reply = lambda req: json_reply(200, {"id": "u1", "name": "admin", "admin": True})
    assert mags.Mags().whoami()["name"] == "admin"
    assert recorder.requests[0]["headers"]["authorization"] == "Bearer mags_envtoken"


def test_star_import_does_not_shadow_builtins() -> None:
    namespace: Dict[str, Any] = {}
    exec("from mags import *", namespace)
    assert "TimeoutError" not in namespace and "ConnectionError" not in namespace
    assert issubclass(mags.TimeoutError, mags.MagsError) and issubclass(mags.ConnectionError, mags.MagsError)


# ---- run_and_wait -------------------------------------------------------------------------

LINES = [
    {"timestamp": "2026-11-26T05:00:00.000Z", "level": "info", "message": "hi", "stream": "stdout", "seq": 1},
    {"timestamp": "2026-11-26T05:00:00.001Z", "level": "error", "message": "oops", "stream": "stderr", "seq": 2},
]


def job_server(recorder: Recorder, logs_reply: Any, statuses: Any = None) -> None:
    """Answer submit, the log stream (``logs_reply(req)``), status (successive values) and logs."""
    states = list(statuses or [{"request_id": "r1", "status": "completed", "exit_code": 0}])

    def reply(req: Dict[str, Any]) -> Any:
        if req["method"] == "POST" and req["path"] == "/api/v1/mags-jobs":
            return json_reply(202, {"request_id": "r1", "status": "accepted", "message": "ok"})
        if req["path"] == "/api/v1/mags-jobs/r1/logs":
            return logs_reply(req)
        if req["path"] == "/api/v1/mags-jobs/r1/status":
            return json_reply(200, states.pop(0) if len(states) > 1 else states[0])
        return json_reply(404, {"error": "no", "code": "NOT_FOUND"})

    recorder.reply = reply


def test_run_and_wait_follows_the_stream(recorder: Recorder) -> None:
    job_server(recorder, lambda req: sse_reply(("log", LINES[0]), ("log", LINES[1]), ("end", {"status": "completed", "exit_code": 0})))
    result = client_for(recorder).run_and_wait("echo hi", environment={"A": "1"})
    assert result["request_id"] == "r1"
    assert result["status"] == "completed" and result["exit_code"] == 0
    assert [l["message"] for l in result["logs"]] == ["hi", "oops"]
    submit, stream = recorder.requests[0], recorder.requests[1]
    assert json.loads(submit["raw_body"]) == {"script": "echo hi", "type": "inline", "environment": {"A": "1"}}
    assert stream["query"] == {"follow": "1"}
    assert stream["headers"]["accept"] == "text/event-stream"


def test_run_and_wait_returns_at_the_end_event_without_waiting_for_close(recorder: Recorder) -> None:
    job_server(recorder, lambda req: sse_reply(("log", LINES[0]), ("end", {"status": "completed", "exit_code": 0}), 5.0))
    started = time.monotonic()
    result = client_for(recorder).run_and_wait("echo hi", timeout=10)
    assert time.monotonic() - started < 2.5
    assert result["status"] == "completed"


def test_run_and_wait_polls_when_the_server_has_no_stream(recorder: Recorder) -> None:
    def logs(req: Dict[str, Any]) -> Any:
        if req["query"].get("follow"):
            return json_reply(200, {"logs": []})  # a server that ignores ?follow=1
        after = int(req["query"].get("after", 0))
        return json_reply(200, {"logs": [l for l in LINES if l["seq"] > after]})

    job_server(recorder, logs, [
        {"request_id": "r1", "status": "running", "exit_code": None},
        {"request_id": "r1", "status": "error", "exit_code": 3, "error_message": "exited with code 3"},
    ])
    result = client_for(recorder).run_and_wait("exit 3", poll_interval=0.05)
    assert result["status"] == "error" and result["exit_code"] == 3
    assert result["error_message"] == "exited with code 3"
    assert [l["seq"] for l in result["logs"]] == [1, 2]


def test_run_and_wait_times_out_with_request_id(recorder: Recorder) -> None:
    job_server(recorder, lambda req: sse_reply(("log", LINES[0]), 10.0))
    started = time.monotonic()
    with pytest.raises(mags.TimeoutError) as info:
        client_for(recorder).run_and_wait("sleep 100", timeout=1)
    assert 0.8 < time.monotonic() - started < 4
    assert info.value.request_id == "r1" and info.value.code == "TIMEOUT"


def test_run_and_wait_polling_times_out(recorder: Recorder) -> None:
    job_server(recorder, lambda req: json_reply(200, {"logs": []}), [{"request_id": "r1", "status": "running"}])
    with pytest.raises(mags.TimeoutError) as info:
        client_for(recorder).run_and_wait("sleep 100", timeout=0.6, poll_interval=0.05)
    assert info.value.request_id == "r1"


def test_stream_logs_yields_lines_until_end(recorder: Recorder) -> None:
    job_server(recorder, lambda req: sse_reply(("log", LINES[0]), ("log", LINES[1]), ("end", {"status": "completed"})))
    assert [l["seq"] for l in client_for(recorder).stream_logs("r1", after=0)] == [1, 2]
    assert recorder.requests[0]["query"] == {"follow": "1", "after": "0"}


# ---- timeouts and connection failures --------------------------------------------------------

def test_call_timeout_raises_mags_timeout_error(recorder: Recorder) -> None:
    def slow(req: Dict[str, Any]) -> Any:
        time.sleep(1.5)
        return json_reply(200, {})

    recorder.reply = slow
    with pytest.raises(mags.TimeoutError):
        client_for(recorder, timeout=5).status("r1", timeout=0.3)
    with pytest.raises(mags.TimeoutError):
        client_for(recorder, timeout=0.3).status("r1")


def test_unreachable_server_raises_connection_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on this port now
    client = mags.Mags(api_token=TEST_TOKEN, api_url=f"http://127.0.0.1:{port}", timeout=3)
    with pytest.raises(mags.ConnectionError) as info:
        client.status("r1")
    assert f"http://127.0.0.1:{port}" in str(info.value)
    assert "MAGS_API_URL" in str(info.value)
    assert info.value.code == "CONNECTION_FAILED"


def test_error_without_hint_on_401_gets_the_auth_hint(recorder: Recorder) -> None:
    recorder.reply = lambda req: json_reply(401, {"error": "Invalid API token", "code": "INVALID_TOKEN"})
    with pytest.raises(mags.AuthenticationError) as info:
        client_for(recorder).whoami()
    assert "MAGS_API_TOKEN" in (info.value.hint or "")


# ---- find_job and new ------------------------------------------------------------------------

def test_find_job_scans_the_list_for_an_active_job_of_that_name(recorder: Recorder) -> None:
    def reply(req: Dict[str, Any]) -> Any:
        if req["path"].endswith("/status"):
            return json_reply(404, {"error": "No job", "code": "JOB_NOT_FOUND"})
        return json_reply(200, {"jobs": [
            {"request_id": "a", "name": "web", "status": "completed"},
            {"request_id": "b", "workspace_id": "web", "status": "sleeping"},
        ], "page": 1, "page_size": 100, "total": 2})

    recorder.reply = reply
    assert client_for(recorder).find_job("web")["request_id"] == "b"
    assert recorder.requests[1]["query"] == {"page": "1", "page_size": "100"}


def test_find_job_returns_none_when_nothing_matches(recorder: Recorder) -> None:
    def reply(req: Dict[str, Any]) -> Any:
        if req["path"].endswith("/status"):
            return json_reply(404, {"error": "No job", "code": "JOB_NOT_FOUND"})
        return json_reply(200, {"jobs": [], "page": 1, "page_size": 100, "total": 0})

    recorder.reply = reply
    assert client_for(recorder).find_job("ghost") is None


def test_new_starts_a_persistent_sandbox_and_waits_until_it_runs(recorder: Recorder) -> None:
    states = [{"request_id": "r1", "status": "pending"}, {"request_id": "r1", "status": "running", "workspace_id": "dev"}]

    def reply(req: Dict[str, Any]) -> Any:
        if req["method"] == "POST":
            return json_reply(202, {"request_id": "r1", "status": "accepted"})
        return json_reply(200, states.pop(0) if len(states) > 1 else states[0])

    recorder.reply = reply
    result = client_for(recorder).new("dev", persistent=True)
    assert result == {"request_id": "r1", "name": "dev", "workspace_id": "dev", "status": "running"}
    assert json.loads(recorder.requests[0]["raw_body"]) == {
        "script": "true", "type": "inline", "name": "dev", "persistent": True, "workspace_id": "dev",
    }


def test_wait_for_follows_an_already_submitted_job(recorder: Recorder) -> None:
    job_server(recorder, lambda req: sse_reply(("log", LINES[0]), ("end", {"status": "completed", "exit_code": 0})))
    result = client_for(recorder).wait_for("r1", timeout=10)
    assert result["status"] == "completed" and [l["seq"] for l in result["logs"]] == [1]
    assert [r["method"] for r in recorder.requests] == ["GET", "GET"]


def test_a_stalled_stream_falls_back_to_polling(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    import mags._http

    monkeypatch.setattr(mags._http, "STALL_SECONDS", 0.3)

    def logs(req: Dict[str, Any]) -> Any:
        if req["query"].get("follow"):
            return sse_reply(("log", LINES[0]), 5.0)  # then silence, no keep-alive
        return json_reply(200, {"logs": LINES})

    job_server(recorder, logs, [{"request_id": "r1", "status": "completed", "exit_code": 0}])
    started = time.monotonic()
    result = client_for(recorder, timeout=0.3).run_and_wait("echo hi", timeout=10, poll_interval=0.05)
    assert time.monotonic() - started < 4
    assert result["status"] == "completed" and [l["seq"] for l in result["logs"]] == [1, 2]


def test_polling_treats_a_finished_persistent_script_as_done(recorder: Recorder) -> None:
    job_server(recorder, lambda req: json_reply(200, {"logs": []}), [
        {"request_id": "r1", "status": "running", "persistent": True, "exit_code": None},
        {"request_id": "r1", "status": "running", "persistent": True, "exit_code": 0, "no_sleep": True},
    ])
    result = client_for(recorder).run_and_wait("serve", persistent=True, no_sleep=True, timeout=5, poll_interval=0.05)
    assert result["status"] == "running" and result["exit_code"] == 0


def test_proxy_variables_do_not_apply_to_a_loopback_server(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    recorder.reply = lambda req: json_reply(200, {"status": "ok"})
    assert client_for(recorder).health()["status"] == "ok"


def test_url_alias_list(recorder: Recorder) -> None:
    recorder.reply = lambda req: json_reply(200, {"aliases": []})
    assert client_for(recorder).url_alias_list() == {"aliases": []}
    assert (recorder.requests[0]["method"], recorder.requests[0]["path"]) == ("GET", "/api/v2/mags-url-aliases")


def test_exec_sends_the_timeout_in_whole_seconds_and_returns_the_answer(recorder: Recorder) -> None:
    recorder.reply = lambda req: json_reply(200, {"exit_code": 124, "output": "", "stderr": "", "truncated": False, "timed_out": True})
    result = client_for(recorder).exec("dev", "sleep 9", timeout=1.5, env={"A": "b"}, cwd="/tmp", stdin="x")
    assert result["exit_code"] == 124 and result["timed_out"] is True
    assert recorder.requests[0]["path"].endswith("/api/v1/mags-jobs/dev/exec")
    assert json.loads(recorder.requests[0]["raw_body"]) == {"command": "sleep 9", "timeout_seconds": 2, "env": {"A": "b"}, "cwd": "/tmp", "stdin": "x"}
def test_url_alias_create_and_access_send_port_and_auth(recorder: Recorder) -> None:
    recorder.reply = lambda req: json_reply(200, {"success": True, "url": "http://shop.apps.localhost:8091"})
    client = client_for(recorder)
    client.url_alias_create("shop", "ws", port=3000, auth="token")
    client.url_alias_create("shop", "ws", "apps.localhost")
    client.enable_access("web", 8080, auth="token")
    client.url("web")
    assert [json.loads(r["raw_body"]) for r in recorder.requests] == [
        {"subdomain": "shop", "workspace_id": "ws", "port": 3000, "auth": "token"},
        {"subdomain": "shop", "workspace_id": "ws", "domain": "apps.localhost"},
        {"port": 8080, "auth": "token"},
        {"port": 8080},
    ]


def test_files_watch_calls_on_ready_once_before_the_first_change(recorder: Recorder) -> None:
    order = []
    recorder.reply = lambda req: sse_reply(
        ("message", {"type": "ready"}),
        ("message", {"type": "create", "path": "/root/a", "dir": False}),
        ("message", {"type": "modify", "path": "/root/a", "dir": False}),
        ("end", {}),
    )
    client = client_for(recorder)
    for event in client.files.watch("j", "/root", recursive=True, on_ready=lambda: order.append("ready")):
        order.append(event["type"])
    assert order == ["ready", "create", "modify"]
    assert recorder.requests[-1]["query"] == {"path": "/root", "recursive": "1"}
