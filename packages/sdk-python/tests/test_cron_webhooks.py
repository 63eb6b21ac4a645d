"""The cron and webhook methods against the local recorder: paths, methods, bodies (snake_case,
``None`` left out), unknown keywords refused, error codes mapped to typed errors."""
from __future__ import annotations

import json
from typing import Any

import pytest

import mags
from conftest import TEST_TOKEN
from recorder import Recorder, json_reply


def client_for(recorder: Recorder) -> mags.Mags:
    return mags.Mags(api_token=TEST_TOKEN, api_url=recorder.url)


def test_cron_methods_send_the_documented_requests(recorder: Recorder, clean_env: Any) -> None:
    recorder.reply = lambda req: json_reply(200, {"ok": True})
    c = client_for(recorder)
    c.cron_create("nightly", "0 3 * * *", "echo hi", timezone="Europe/Berlin", workspace_id="ws", overlap="queue", jitter_seconds=None)
    c.cron_list()
    c.cron_get("nightly")
    c.cron_update("nightly", enabled=False)
    c.cron_run_now("nightly")
    c.cron_runs("nightly", limit=5)
    c.cron_delete("nightly")
    got = [(r["method"], r["path"]) for r in recorder.requests]
    assert got == [
        ("POST", "/api/v1/mags-cron"),
        ("GET", "/api/v1/mags-cron"),
        ("GET", "/api/v1/mags-cron/nightly"),
        ("PATCH", "/api/v1/mags-cron/nightly"),
        ("POST", "/api/v1/mags-cron/nightly/run"),
        ("GET", "/api/v1/mags-cron/nightly/runs"),
        ("DELETE", "/api/v1/mags-cron/nightly"),
    ]
    assert json.loads(recorder.requests[0]["raw_body"]) == {
        "name": "nightly", "cron_expression": "0 3 * * *", "script": "echo hi",
        "timezone": "Europe/Berlin", "workspace_id": "ws", "overlap": "queue",
    }
    assert json.loads(recorder.requests[3]["raw_body"]) == {"enabled": False}
    assert recorder.requests[5]["query"] == {"limit": "5"}


def test_webhook_methods_send_the_documented_requests(recorder: Recorder, clean_env: Any) -> None:
    recorder.reply = lambda req: json_reply(200, {"ok": True})
    c = client_for(recorder)
    c.webhook_create("https://hooks.example.com/x", events=["job.failed"])
    c.webhook_list()
    c.webhook_update("ep_1", enabled=True)
    c.webhook_test("ep_1")
    c.webhook_deliveries("ep_1")
    c.webhook_redeliver("ep_1", "msg_2")
    c.webhook_signing_key()
    c.webhook_delete("ep_1")
    got = [(r["method"], r["path"]) for r in recorder.requests]
    assert got == [
        ("POST", "/api/v1/webhooks"),
        ("GET", "/api/v1/webhooks"),
        ("PATCH", "/api/v1/webhooks/ep_1"),
        ("POST", "/api/v1/webhooks/ep_1/test"),
        ("GET", "/api/v1/webhooks/ep_1/deliveries"),
        ("POST", "/api/v1/webhooks/ep_1/deliveries/msg_2/redeliver"),
        ("POST", "/api/v1/webhooks/signing-key"),
        ("DELETE", "/api/v1/webhooks/ep_1"),
    ]
    assert json.loads(recorder.requests[0]["raw_body"]) == {"url": "https://hooks.example.com/x", "events": ["job.failed"]}


def test_unknown_keywords_and_error_codes(recorder: Recorder, clean_env: Any) -> None:
    c = client_for(recorder)
    with pytest.raises(mags.ValidationError) as err:
        c.cron_create("n", "* * * * *", "x", time_zone="UTC")
    assert "timezone" in str(err.value.hint)
    recorder.reply = lambda req: json_reply(404, {"error": 'No schedule of yours has id or name "x"', "code": "SCHEDULE_NOT_FOUND"})
    with pytest.raises(mags.NotFoundError) as nf:
        c.cron_get("x")
    assert nf.value.code == "SCHEDULE_NOT_FOUND"
    recorder.reply = lambda req: json_reply(400, {"error": "url: localhost resolves to 127.0.0.1, ...", "code": "WEBHOOK_TARGET_REFUSED"})
    with pytest.raises(mags.ValidationError) as refused:
        c.webhook_create("http://localhost/")
    assert refused.value.code == "WEBHOOK_TARGET_REFUSED"
