"""``exec_stream`` against the local recorder: the request, the NDJSON reading, errors, a cut
stream and reading only as the caller advances. The real server is exercised in
test_e2e_exec_stream.py."""
from __future__ import annotations

import json
import threading
from typing import Any, Iterator, List

import pytest

import mags
from conftest import TEST_TOKEN
from recorder import Recorder, Reply, json_reply

NDJSON = {"Content-Type": "application/x-ndjson; charset=utf-8"}


def client_for(recorder: Recorder) -> mags.Mags:
    return mags.Mags(api_token=TEST_TOKEN, api_url=recorder.url, timeout=5)


def lines(*events: Any) -> Reply:
    """An NDJSON answer: dicts become lines, bytes are sent as they are, floats are pauses."""
    def chunks() -> Iterator[Any]:
        for ev in events:
            if isinstance(ev, (float, bytes)):
                yield ev
            else:
                yield (json.dumps(ev) + "\n").encode("utf-8")
    return 200, NDJSON, chunks()


def test_exec_stream_sends_the_streamed_request_and_yields_output_then_the_exit(recorder: Recorder) -> None:
    recorder.reply = lambda req: lines(
        {"type": "stdout", "data": "a\n"},
        {"type": "stderr", "data": "é"},
        {"type": "stdout", "data": "b"},
        {"type": "exit", "exit_code": 3, "timed_out": False, "duration_ms": 12},
    )
    items = list(client_for(recorder).exec_stream("dev", "run", timeout=1.5, env={"A": "b"}, cwd="/tmp", stdin="x"))
    assert items == [
        mags.ExecOutput("stdout", "a\n"),
        mags.ExecOutput("stderr", "é"),
        mags.ExecOutput("stdout", "b"),
        mags.ExecOutput("exit", exit_code=3, timed_out=False, duration_ms=12),
    ]
    req = recorder.requests[0]
    assert (req["method"], req["path"], req["query"]) == ("POST", "/api/v1/mags-jobs/dev/exec", {"stream": "1"})
    assert "application/x-ndjson" in req["headers"]["accept"]
    assert json.loads(req["raw_body"]) == {"command": "run", "timeout_seconds": 2, "env": {"A": "b"}, "cwd": "/tmp", "stdin": "x"}


def test_exec_stream_reports_a_timeout_in_the_exit_item(recorder: Recorder) -> None:
    recorder.reply = lambda req: lines({"type": "exit", "exit_code": 124, "timed_out": True, "duration_ms": 1000})
    (end,) = list(client_for(recorder).exec_stream("dev", "sleep 9", timeout=1))
    assert (end.stream, end.exit_code, end.timed_out) == ("exit", 124, True)


def test_exec_stream_raises_errors_before_the_command_started_like_exec(recorder: Recorder) -> None:
    recorder.reply = lambda req: json_reply(404, {"error": "Job not found: nope", "code": "JOB_NOT_FOUND"})
    with pytest.raises(mags.NotFoundError) as info:
        client_for(recorder).exec_stream("nope", "true")  # raises at the call, before any iteration
    assert info.value.code == "JOB_NOT_FOUND" and info.value.status == 404
    recorder.reply = lambda req: json_reply(422, {"error": "not persistent", "code": "INVALID_STATE"})
    with pytest.raises(mags.MagsError) as state:
        client_for(recorder).exec_stream("j", "true")
    assert state.value.code == "INVALID_STATE"


def test_exec_stream_raises_an_error_line_with_its_code(recorder: Recorder) -> None:
    recorder.reply = lambda req: lines({"type": "stdout", "data": "x"}, {"type": "error", "error": "agent gone", "code": "SANDBOX_ERROR"})
    stream = client_for(recorder).exec_stream("dev", "true")
    assert next(stream) == mags.ExecOutput("stdout", "x")
    with pytest.raises(mags.MagsError) as info:
        next(stream)
    assert (info.value.code, info.value.message) == ("SANDBOX_ERROR", "agent gone")


@pytest.mark.parametrize(
    "body",
    [
        [{"type": "stdout", "data": "x"}],  # cut before the exit line
        [b"not json\n"],
        [b"[1, 2]\n"],
        [{"type": "bogus"}],
    ],
)
def test_exec_stream_refuses_a_cut_or_malformed_stream(recorder: Recorder, body: List[Any]) -> None:
    recorder.reply = lambda req: lines(*body)
    with pytest.raises(mags.MagsError) as info:
        list(client_for(recorder).exec_stream("dev", "true"))
    assert info.value.code == "INVALID_RESPONSE"


def test_exec_stream_refuses_an_answer_that_is_not_ndjson(recorder: Recorder) -> None:
    recorder.reply = lambda req: json_reply(200, {"exit_code": 0, "output": "", "stderr": "", "truncated": False, "timed_out": False})
    with pytest.raises(mags.MagsError) as info:
        client_for(recorder).exec_stream("dev", "true")
    assert info.value.code == "INVALID_RESPONSE"


def test_exec_stream_reads_only_as_the_caller_advances(recorder: Recorder) -> None:
    """The server side counts what it could send; a client that does not advance leaves the rest
    unsent (blocked in the socket) instead of reading it into memory."""
    sent = [0]
    release = threading.Event()
    piece = (json.dumps({"type": "stdout", "data": "x" * 65536}) + "\n").encode("utf-8")

    def chunks() -> Iterator[bytes]:
        for _ in range(400):  # ~26 MB: far more than the socket buffers hold
            yield piece
            sent[0] += 1
        release.set()
        yield (json.dumps({"type": "exit", "exit_code": 0, "timed_out": False}) + "\n").encode("utf-8")

    recorder.reply = lambda req: (200, NDJSON, chunks())
    stream = client_for(recorder).exec_stream("dev", "yes")
    first = next(stream)
    assert first.stream == "stdout"
    assert not release.wait(1.0), "the whole stream was sent although the client read one item"
    assert sent[0] < 200
    rest = list(stream)
    assert sum(len(i.data) for i in [first, *rest]) == 400 * 65536
    assert rest[-1].stream == "exit"


def test_exec_stream_closed_early_closes_the_connection(recorder: Recorder) -> None:
    recorder.reply = lambda req: lines({"type": "stdout", "data": "a"}, 0.2, {"type": "stdout", "data": "b"}, {"type": "exit", "exit_code": 0, "timed_out": False})
    stream = client_for(recorder).exec_stream("dev", "true")
    assert next(stream).data == "a"
    stream.close()
    with pytest.raises(StopIteration):
        next(stream)
