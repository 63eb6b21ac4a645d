"""End to end: the SDK against a real Mags server running real sandboxes (see conftest.server)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from typing import Any, List

import pytest

import mags
from live_server import ServerProcess

pytestmark = pytest.mark.e2e


def messages(result: Any, level: str = "") -> List[str]:
    return [l["message"] for l in result["logs"] if not level or l.get("level") == level]


def test_echo_completes_with_output(client: mags.Mags, started: List[str]) -> None:
    begun = time.monotonic()
    result = client.run_and_wait("echo hi", timeout=60)
    started.append(result["request_id"])
    assert result["status"] == "completed", result
    assert result["exit_code"] == 0
    assert "hi" in messages(result, "info")
    # The live stream ends the wait as soon as the job ends, far below the timeout.
    assert time.monotonic() - begun < 30


def test_exit_code_is_reported(client: mags.Mags, started: List[str]) -> None:
    result = client.run_and_wait("echo before; exit 3", timeout=60)
    started.append(result["request_id"])
    assert result["status"] == "error", result
    assert result["exit_code"] == 3
    assert "before" in messages(result)


def test_stderr_lines_have_level_error(client: mags.Mags, started: List[str]) -> None:
    result = client.run_and_wait("echo out; echo oops >&2", timeout=60)
    started.append(result["request_id"])
    assert "oops" in messages(result, "error")
    assert "out" in messages(result, "info")
    assert "oops" not in messages(result, "info")


def test_environment_reaches_the_script(client: mags.Mags, started: List[str]) -> None:
    result = client.run_and_wait('echo "greeting=$GREETING"', environment={"GREETING": "hello env"}, timeout=60)
    started.append(result["request_id"])
    assert result["status"] == "completed", result
    assert "greeting=hello env" in messages(result)


def test_status_logs_list_find_and_stop(client: mags.Mags, started: List[str]) -> None:
    name = f"py-e2e-{uuid.uuid4().hex[:8]}"
    submitted = client.run("echo started; sleep 120", name=name)
    request_id = submitted["request_id"]
    started.append(request_id)
    assert submitted["status"] == "accepted"

    deadline = time.monotonic() + 60
    while client.status(request_id)["status"] != "running":
        assert time.monotonic() < deadline, "job never reached running"
        time.sleep(0.2)
    job = client.status(request_id)
    assert job["request_id"] == request_id and job["name"] == name

    listing = client.list(page=1, page_size=50)
    assert request_id in [j["request_id"] for j in listing["jobs"]]
    assert client.list(page=1, page_size=1)["page_size"] == 1

    found = client.find_job(name)
    assert found is not None and found["request_id"] == request_id
    assert client.find_job(f"missing-{uuid.uuid4().hex}") is None

    deadline = time.monotonic() + 30
    while "started" not in [l["message"] for l in client.logs(request_id)["logs"]]:
        assert time.monotonic() < deadline, "log line never arrived"
        time.sleep(0.2)

    stopped = client.stop(request_id)
    assert stopped["success"] is True
    deadline = time.monotonic() + 30
    while client.status(request_id)["status"] not in ("completed", "error"):
        assert time.monotonic() < deadline, "job did not end after stop"
        time.sleep(0.2)


def test_logs_after_returns_only_later_lines(client: mags.Mags, started: List[str]) -> None:
    result = client.run_and_wait("echo one; echo two; echo three", timeout=60)
    started.append(result["request_id"])
    all_lines = client.logs(result["request_id"])["logs"]
    first = next(l for l in all_lines if l["message"] == "one")
    later = client.logs(result["request_id"], after=first["seq"])["logs"]
    assert "one" not in [l["message"] for l in later]
    assert {"two", "three"} <= {l["message"] for l in later}


def test_run_and_wait_timeout_raises_and_job_keeps_running(client: mags.Mags, started: List[str]) -> None:
    begun = time.monotonic()
    with pytest.raises(mags.TimeoutError) as info:
        client.run_and_wait("sleep 60", timeout=3)
    elapsed = time.monotonic() - begun
    request_id = info.value.request_id
    assert request_id
    started.append(request_id)
    assert 2.5 < elapsed < 15
    assert client.status(request_id)["status"] in ("pending", "running")


def test_bad_token_raises_authentication_error(server: ServerProcess) -> None:
    bad = mags.Mags(api_token="mags_" + "x" * 40, api_url=server.url, timeout=10)
    with pytest.raises(mags.AuthenticationError) as info:
        bad.whoami()
    assert info.value.status == 401


def test_unknown_id_raises_not_found(client: mags.Mags) -> None:
    with pytest.raises(mags.NotFoundError) as info:
        client.status(str(uuid.uuid4()))
    assert info.value.status == 404
    with pytest.raises(mags.NotFoundError):
        client.logs("no such job/with slash")


def test_submit_without_script_is_a_validation_error(client: mags.Mags) -> None:
    with pytest.raises(mags.ValidationError) as info:
        client.run(None)  # type: ignore[arg-type]
    assert info.value.status == 400


def test_whoami_health_and_pool_status(client: mags.Mags) -> None:
    me = client.whoami()
    assert me["admin"] is True and me["name"]
    assert client.health()["status"] == "ok"
    pool = client.pool_status()
    for key in ("idle_vms", "busy_vms", "total_vms", "min_pool_size", "max_pool_size"):
        assert isinstance(pool[key], int), pool


def test_server_down_raises_connection_error(server_build: str) -> None:
    """A server that ran a job and stopped: calls fail with ConnectionError naming the URL, and the
    server left none of its host resources behind."""
    proc = ServerProcess(start_timeout=300)
    try:
        url, token = proc.url, proc.token
        client = mags.Mags(api_token=token, api_url=url, timeout=10)
        assert client.run_and_wait("echo before-shutdown", timeout=60)["status"] == "completed"
    finally:
        proc.stop()
    with pytest.raises(mags.ConnectionError) as info:
        client.whoami()
    assert url in str(info.value) and "MAGS_API_URL" in str(info.value)
    assert info.value.code == "CONNECTION_FAILED"
    assert proc.leftovers() == []


def test_persistent_job_wait_ends_when_it_goes_idle(client: mags.Mags, started: List[str]) -> None:
    result = client.run_and_wait("echo up", persistent=True, name=f"py-e2e-p-{uuid.uuid4().hex[:6]}", timeout=60)
    started.append(result["request_id"])
    assert result["status"] in ("sleeping", "running"), result
    assert result["exit_code"] == 0
    assert "up" in messages(result)
    job = client.status(result["request_id"])
    assert job["persistent"] is True


def test_update_job_changes_no_sleep_and_startup_command(client: mags.Mags, started: List[str]) -> None:
    submitted = client.run("sleep 60", persistent=True)
    started.append(submitted["request_id"])
    updated = client.update_job(submitted["request_id"], no_sleep=True, startup_command="echo woke")
    assert updated["success"] is True
    job = client.status(submitted["request_id"])
    assert job["no_sleep"] is True
    assert job.get("startup_command") == "echo woke"


def test_job_time_limit_ends_it_with_error(client: mags.Mags, started: List[str]) -> None:
    result = client.run_and_wait("sleep 30", timeout_seconds=1, timeout=60)
    started.append(result["request_id"])
    assert result["status"] == "error"
    assert "timed out" in (result["error_message"] or "")


def test_v2_fields_and_sandbox_identity(client: mags.Mags, started: List[str]) -> None:
    result = client.run_and_wait("hostname; whoami; pwd", vcpus=1, memory_mb=512, timeout=60)
    started.append(result["request_id"])
    assert result["status"] == "completed", result
    assert messages(result, "info")[:3] == ["mags-vm", "root", "/root"]


def test_url_access_answers_a_url(client: mags.Mags, started: List[str]) -> None:
    """enable_access on a running persistent job answers the proxy URL; status shows it; aliases
    list, conflict and delete."""
    submitted = client.run("sleep 60", persistent=True, workspace_id="py-url")
    started.append(submitted["request_id"])
    deadline = time.time() + 60
    while client.status(submitted["request_id"])["status"] != "running":
        assert time.time() < deadline, "the job did not start"
        time.sleep(0.2)
    access = client.enable_access(submitted["request_id"], 8080)
    assert access["success"] is True and access["url"].startswith("http://") and len(access["subdomain"]) == 12
    assert client.status(submitted["request_id"])["url"] == access["url"]
    private = client.url(submitted["request_id"], 8080, auth="token")
    assert private["auth"] == "token" and "/__mags/login?token=" in private["login_url"]
    alias = client.url_alias_create("py-url-alias", "py-url", port=8080)
    assert alias["url"].startswith("http://py-url-alias.apps.")
    with pytest.raises(mags.MagsError) as taken:
        client.url_alias_create("py-url-alias", "py-url")
    assert taken.value.status == 409 and "already in use" in str(taken.value)
    assert [a["subdomain"] for a in client.url_alias_list()["aliases"]] == ["py-url-alias"]
    assert client.url_alias_delete("py-url-alias")["success"] is True


def test_config_file_written_by_the_server_is_enough(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no MAGS_* variables, Mags() finds the server through the ~/.mags/config.json it wrote."""
    for key in ("MAGS_API_TOKEN", "MAGS_TOKEN", "MAGS_API_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", server.home)
    client = mags.Mags()
    assert client.api_url == server.url
    assert client.whoami()["admin"] is True


def test_quickstart_example_prints_hello_world(server: ServerProcess) -> None:
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "quickstart.py")
    env = dict(os.environ, MAGS_API_URL=server.url, MAGS_API_TOKEN=server.token)
    env["PYTHONPATH"] = os.path.join(os.path.dirname(__file__), "..")
    done = subprocess.run([sys.executable, example], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello World\n"
    assert "status=completed exit_code=0" in done.stderr


def test_tokens_create_list_revoke(client: mags.Mags, server: ServerProcess) -> None:
    created = client.tokens.create(f"py-e2e-{uuid.uuid4().hex[:6]}")
    try:
        assert created["token"].startswith("mags_") and len(created["token"]) == 45
        other = mags.Mags(api_token=created["token"], api_url=server.url, timeout=10)
        assert other.whoami()["admin"] is True
        assert created["id"] in [t["id"] for t in client.tokens.list()["tokens"]]
        assert "token" not in client.tokens.list()["tokens"][0]
    finally:
        assert client.tokens.revoke(created["id"])["success"] is True
    with pytest.raises(mags.AuthenticationError):
        other.whoami()


def test_new_starts_a_sandbox_that_stays_up(client: mags.Mags, started: List[str]) -> None:
    name = f"py-e2e-box-{uuid.uuid4().hex[:6]}"
    box = client.new(name)
    started.append(box["request_id"])
    assert box["name"] == name and box["status"] in ("running", "sleeping")
    found = client.find_job(name)
    assert found is not None and found["request_id"] == box["request_id"]
    assert client.stop(name)["request_id"] == box["request_id"]


def test_later_features_answer_for_real_or_raise_the_servers_error(client: mags.Mags, started: List[str]) -> None:
    """exec and URL aliases: a real answer once the server has the feature, until then the
    server's 501 (or 404 from a server without the route), never a made-up result."""
    submitted = client.run("sleep 60", persistent=True)
    request_id = submitted["request_id"]
    started.append(request_id)
    calls: List[Any] = [
        ("exec", lambda: client.exec(request_id, "echo from-exec"), lambda r: r["exit_code"] == 0 and "from-exec" in r["output"]),
        ("url_alias_list", client.url_alias_list, lambda r: isinstance(r, dict)),
    ]
    for name, call, check in calls:
        try:
            answer = call()
        except mags.MagsError as err:
            assert (err.status, err.code) in ((501, "FEATURE_NOT_AVAILABLE"), (404, "NOT_FOUND")), f"{name}: {err!r}"
        else:
            assert check(answer), f"{name}: {answer!r}"


def test_workspace_keeps_root_and_is_listed_synced_and_deleted(client: mags.Mags, started: List[str]) -> None:
    ws = f"py-ws-{uuid.uuid4().hex[:6]}"
    first = client.run_and_wait("echo kept > /root/k.txt", timeout=120, workspace_id=ws)
    started.append(first["request_id"])
    assert first["status"] == "completed", first
    second = client.run_and_wait("cat /root/k.txt", timeout=120, workspace_id=ws)
    started.append(second["request_id"])
    assert "kept" in messages(second)
    assert ws in [w["workspace_id"] for w in client.list_workspaces()["workspaces"]]
    synced = client.sync(ws)
    assert synced["success"] is True and synced["workspace_id"] == ws, synced

    busy = client.run("sleep 30", workspace_id=ws)
    started.append(busy["request_id"])
    with pytest.raises(mags.MagsError) as second_run:
        client.run("true", workspace_id=ws)
    assert second_run.value.status == 409 and second_run.value.code == "WORKSPACE_BUSY"
    assert "already" in str(second_run.value) or "in use" in str(second_run.value)
    with pytest.raises(mags.MagsError) as delete_busy:
        client.delete_workspace(ws)
    assert delete_busy.value.status == 409
    client.stop(busy["request_id"])
    assert client.delete_workspace(ws)["success"] is True
    with pytest.raises(mags.NotFoundError):
        client.delete_workspace(ws)


def test_upload_file_lands_in_root(client: mags.Mags, tmp_path: Any) -> None:
    import hashlib
    import os as _os

    data = _os.urandom(3 * 1024 * 1024 + 7)
    path = tmp_path / "py-upload.bin"
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    up = client.upload_file(str(path))
    try:
        assert (up["name"], up["size"], up["sha256"]) == ("py-upload.bin", len(data), digest)
        result = client.run_and_wait("sha256sum /root/py-upload.bin", timeout=120, file_ids=[up["file_id"]])
        assert [line["message"] for line in result["logs"]] == [f"{digest}  /root/py-upload.bin"]
        again = client.run_and_wait("sha256sum py-upload.bin", timeout=120, files=[str(path)])
        assert [line["message"] for line in again["logs"]] == [f"{digest}  py-upload.bin"]
    finally:
        for f in client.list_files()["files"]:
            client.delete_file(f["file_id"])
    assert client.list_files()["files"] == []


def test_workspace_history_restore_and_resize(client: mags.Mags, started: List[str]) -> None:
    ws = f"py-ver-{uuid.uuid4().hex[:6]}"
    try:
        for text in ("one", "two"):
            r = client.run_and_wait(f"echo {text} > /root/v.txt", timeout=120, workspace_id=ws)
            started.append(r["request_id"])
            assert r["status"] == "completed", r
        history = client.workspace_history(ws)
        deadline = time.time() + 30
        while len(history["versions"]) < 2 and time.time() < deadline:  # the last sync ends after the job
            time.sleep(0.2)
            history = client.workspace_history(ws)
        assert history["workspace_id"] == ws and len(history["versions"]) == 2, history
        older = history["versions"][1]["version"]
        with pytest.raises(mags.NotFoundError) as unknown:
            client.restore_workspace(ws, "000000000000001-abcdef")
        assert unknown.value.code == "VERSION_NOT_FOUND"
        restored = client.restore_workspace(ws, older)
        assert restored["restored_version"] == older
        assert client.workspace_history(ws)["versions"][0]["version"] == restored["version"]
        with pytest.raises(mags.MagsError) as shrink:
            client.resize_workspace(ws, 1)
        assert shrink.value.code == "INVALID_STATE"
        assert client.resize_workspace(ws, 3)["disk_gb"] == 3
        after = client.run_and_wait("cat /root/v.txt; df -BG --output=size /root | tail -1 | tr -d ' '", timeout=120, workspace_id=ws)
        started.append(after["request_id"])
        assert messages(after, "info") == ["one", "3G"], after
    finally:
        try:
            client.delete_workspace(ws)
        except mags.NotFoundError:
            pass


def test_usage_and_quota(client: mags.Mags, started: List[str]) -> None:
    result = client.run_and_wait("echo metered", timeout=60)
    assert result["status"] == "completed"
    usage = client.usage(group_by="job")
    assert usage["group_by"] == "job"
    row = next(r for r in usage["rows"] if r["key"] == result["request_id"])
    assert row["jobs"] == 1 and row["wall_seconds"] > 0
    assert usage["totals"]["jobs"] >= 1
    with pytest.raises(mags.MagsError) as err:
        client.usage(group_by="week")
    assert err.value.code == "VALIDATION_ERROR"
    q = client.quota()
    assert q["quota"]["max_concurrent_sandboxes"] is None
    assert q["used"]["sandbox_hours_this_month"] > 0
