"""URL forms, retries, misspelled options, bad URLs and on_output, against the local recorder."""
from __future__ import annotations

import time
from email.utils import formatdate
from typing import Any, Callable, Dict, List

import pytest

import mags
from conftest import TEST_TOKEN
from mags._http import parse_retry_after
from recorder import Recorder, Reply, json_reply, sse_reply

BUSY = {"error": "busy", "code": "SERVICE_UNAVAILABLE"}


def test_api_url_with_or_without_api_v1_reaches_api_paths(recorder: Recorder, clean_env: Any) -> None:
    recorder.reply = lambda req: json_reply(200, {"jobs": [], "request_id": "r", "status": "accepted"})
    for suffix in ("", "/", "/api/v1", "/api/v1/"):
        client = mags.Mags(api_token=TEST_TOKEN, api_url=recorder.url + suffix)
        assert client.api_url == recorder.url
        client.list()
        client.run("true", vcpus=2)
    assert [r["path"] for r in recorder.requests] == ["/api/v1/mags-jobs", "/api/v2/mags-jobs"] * 4


def scripted(recorder: Recorder, replies: List[Callable[[], Reply]]) -> None:
    def reply(req: Dict[str, Any]) -> Reply:
        assert replies, "more requests than answers"
        return replies.pop(0)()
    recorder.reply = reply


def busy(status: int, retry_after: Any = None) -> Callable[[], Reply]:
    def make() -> Reply:
        code, headers, body = json_reply(status, dict(BUSY, code="RATE_LIMITED" if status == 429 else BUSY["code"]))
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return code, headers, body
    return make


def reset() -> Reply:
    raise ConnectionResetError("the test drops this connection")


def client_with_waits(recorder: Recorder, **kwargs: Any) -> "tuple[mags.Mags, List[float]]":
    client = mags.Mags(api_token=TEST_TOKEN, api_url=recorder.url, **kwargs)
    waits: List[float] = []
    client._http._sleep = waits.append
    return client, waits


def test_get_is_retried_after_429_503_and_reset_with_backoff(recorder: Recorder, clean_env: Any) -> None:
    scripted(recorder, [busy(429), reset, busy(503), lambda: json_reply(200, {"status": "ok"})])
    client, waits = client_with_waits(recorder)
    assert client.health() == {"status": "ok"}
    assert len(recorder.requests) == 4
    assert len(waits) == 3
    for i, seconds in enumerate(waits):
        assert 0.125 * 2 ** i <= seconds <= 0.25 * 2 ** i, (i, seconds)


def test_retry_after_seconds_and_http_date_capped(recorder: Recorder, clean_env: Any) -> None:
    date = formatdate(time.time() + 5, usegmt=True)
    scripted(recorder, [busy(503, 2), busy(429, date), busy(429, 3600), lambda: json_reply(200, {"success": True})])
    client, waits = client_with_waits(recorder)
    client.tokens.revoke("t1")  # DELETE
    assert waits[0] == 2.0
    assert 3.0 < waits[1] <= 5.0
    assert waits[2] == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412420.0) == 60.0
    assert parse_retry_after("soon") is None


def test_still_failing_raises_the_last_typed_error(recorder: Recorder, clean_env: Any) -> None:
    scripted(recorder, [busy(429), busy(429), busy(503)])
    client, waits = client_with_waits(recorder, max_retries=2)
    with pytest.raises(mags.MagsError) as info:
        client.status("r1")
    assert info.value.status == 503 and info.value.code == "SERVICE_UNAVAILABLE"
    assert len(recorder.requests) == 3 and len(waits) == 2


def test_submit_and_other_errors_are_not_retried(recorder: Recorder, clean_env: Any) -> None:
    scripted(recorder, [busy(503)])
    client, waits = client_with_waits(recorder)
    with pytest.raises(mags.MagsError) as info:
        client.run("true")
    assert info.value.status == 503 and len(recorder.requests) == 1
    scripted(recorder, [lambda: json_reply(500, {"error": "x", "code": "INTERNAL_ERROR"})])
    with pytest.raises(mags.MagsError):
        client.status("r1")
    scripted(recorder, [busy(429)])
    off, _ = client_with_waits(recorder, max_retries=0)
    with pytest.raises(mags.MagsError):
        off.status("r1")
    assert len(recorder.requests) == 3 and waits == []


def test_misspelled_option_names_the_closest(recorder: Recorder, clean_env: Any) -> None:
    client = mags.Mags(api_token=TEST_TOKEN, api_url=recorder.url)
    with pytest.raises(mags.ValidationError) as info:
        client.run("true", workspace="x")
    assert "'workspace'" in str(info.value) and info.value.hint == "Did you mean workspace_id?"
    assert info.value.code == "VALIDATION_ERROR"
    with pytest.raises(mags.ValidationError) as info:
        client.run_and_wait("true", on_ouput=print)
    assert info.value.hint == "Did you mean on_output?"
    assert recorder.requests == []


@pytest.mark.parametrize("url,shown", [("not a url", "not a url"), ("ftp://x", "ftp://x"), ("http://", "http:")])
def test_bad_url_is_a_connection_error_naming_it(clean_env: Any, url: str, shown: str) -> None:
    client = mags.Mags(api_token=TEST_TOKEN, api_url=url)
    with pytest.raises(mags.ConnectionError) as info:
        client.health()
    assert repr(shown) in str(info.value) and info.value.code == "CONNECTION_FAILED"


def test_run_and_wait_on_output_streams_each_line(recorder: Recorder, clean_env: Any) -> None:
    line = {"timestamp": "t", "level": "info", "message": "hi", "stream": "stdout", "seq": 1}

    def reply(req: Dict[str, Any]) -> Reply:
        if req["method"] == "POST":
            return json_reply(202, {"request_id": "r1", "status": "accepted"})
        if req["path"].endswith("/logs"):
            return sse_reply(("log", line), ("end", {"status": "completed", "exit_code": 0}))
        return json_reply(200, {"request_id": "r1", "status": "completed", "exit_code": 0})

    recorder.reply = reply
    seen: List[Any] = []
    result = mags.Mags(api_token=TEST_TOKEN, api_url=recorder.url).run_and_wait("echo hi", on_output=seen.append)
    assert seen == [line] and result["logs"] == [line]
