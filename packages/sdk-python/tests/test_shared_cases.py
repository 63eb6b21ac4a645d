"""Drives the SDK through packages/shared/sdk-cases.json, the table the Node SDK's tests read too:
each case's call must put exactly the expected request on the wire and turn the canned answer into
the expected result or exception."""
from __future__ import annotations

import json
import os
from typing import Any, Dict

import pytest

import mags
from conftest import TEST_TOKEN
from recorder import Recorder, body_of, json_reply

CASES_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "sdk-cases.json")
with open(CASES_PATH, encoding="utf-8") as fh:
    CASES = json.load(fh)


def assert_subset(expected: Any, actual: Any, where: str = "result") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing from {actual!r}"
            assert_subset(value, actual[key], f"{where}.{key}")
    else:
        assert actual == expected, f"{where}: expected {expected!r}, got {actual!r}"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_shared_case(case: Dict[str, Any], recorder: Recorder, clean_env: Any) -> None:
    response = case.get("response") or {"status": 200, "body": {}}
    recorder.reply = lambda req: json_reply(response.get("status", 200), response.get("body", {}))
    client = mags.Mags(api_token=TEST_TOKEN, api_url=recorder.url + case.get("api_url_suffix", ""), timeout=5)
    call = getattr(client, case["method"])

    if "error" in case:
        with pytest.raises(mags.MagsError) as info:
            call(*case.get("args", []), **case.get("kwargs", {}))
        err = info.value
        spec = case["error"]
        assert type(err).__name__ == spec["class"], f"raised {err!r}"
        for field in ("code", "status", "message", "hint"):
            if field in spec:
                assert getattr(err, field) == spec[field], f"{field} of {err!r}"
    else:
        result = call(*case.get("args", []), **case.get("kwargs", {}))
        if "result" in case:
            if case["result"] is None:
                assert result is None
            else:
                assert_subset(case["result"], result)

    assert len(recorder.requests) == 1, [r["path"] for r in recorder.requests]
    req = recorder.requests[0]
    expected = case["request"]
    assert req["method"] == expected["method"]
    assert req["path"] == expected["path"]
    assert req["query"] == expected.get("query", {})
    assert body_of(req) == expected.get("body")
    if "body" in expected:
        assert req["headers"].get("content-type") == "application/json"
    if expected.get("auth", True):
        assert req["headers"].get("authorization") == f"Bearer {TEST_TOKEN}"


def test_cases_cover_every_public_method() -> None:
    """Each REST method of the client has at least one shared case. Left out: methods that span
    several requests (tested in test_client.py and end to end), enable_url (enable_access under
    Mags' older name), url_alias_list (not in the Node SDK, tested in test_client.py),
    upload_file (a streamed multipart body, tested end to end), the streamed send_stdin,
    stream_raw and raw_output (tested in test_raw_stdin.py and end to end) and exec_stream
    (tested in test_exec_stream.py and end to end)."""
    public = {
        name for name in dir(mags.Mags)
        if not name.startswith("_") and callable(getattr(mags.Mags, name))
    } - {"run_and_wait", "wait_for", "stream_logs", "new", "enable_url", "url_alias_list", "upload_file",
          "send_stdin", "stream_raw", "raw_output", "exec_stream"}
    covered = {c["method"] for c in CASES}
    assert public - covered == set()
