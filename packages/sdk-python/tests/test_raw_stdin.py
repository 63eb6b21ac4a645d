"""send_stdin, stream_raw and raw_output against the local recorder: what goes on the wire, how
frames are parsed and how a malformed or missing raw answer is reported. The real server is
exercised in test_e2e_raw_stdin.py."""
from __future__ import annotations

import hashlib
import json
import socket
import threading
import tracemalloc
from typing import Any, Iterator, List

import pytest

import mags
from conftest import TEST_TOKEN
from mags import RawOutput
from mags.raw import RAW_STREAM_TYPE
from recorder import Recorder, json_reply

MiB = 1024 * 1024


def client_for(recorder: Recorder) -> mags.Mags:
    return mags.Mags(api_token=TEST_TOKEN, api_url=recorder.url, max_retries=0)


def frame(kind: int, payload: bytes) -> bytes:
    return bytes([kind, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


def framed(*chunks: Any) -> Any:
    """A raw answer of both streams, streamed chunk by chunk (so a frame may be split)."""
    return 200, {"Content-Type": RAW_STREAM_TYPE}, iter(chunks)


# ---- send_stdin ----------------------------------------------------------------------------

def test_send_stdin_streams_a_generator_chunked_and_returns_the_answer(recorder: Recorder) -> None:
    recorder.reply = lambda req: json_reply(200, {"bytes": len(req["raw_body"])})
    pulled: List[int] = []

    def gen() -> Iterator[bytes]:
        for i in range(4):
            pulled.append(i)
            yield bytes([i]) * 1000
        yield b""  # an empty chunk is skipped, never sent as the chunked terminator

    answer = client_for(recorder).send_stdin("job 1", gen())
    assert answer == {"bytes": 4000}
    req = recorder.requests[-1]
    assert req["method"] == "PUT"
    assert req["path"] == "/api/v1/mags-jobs/job%201/stdin"
    assert req["headers"]["transfer-encoding"] == "chunked"
    assert "content-length" not in req["headers"]
    assert req["headers"]["content-type"] == "application/octet-stream"
    assert req["headers"]["authorization"] == f"Bearer {TEST_TOKEN}"
    assert req["raw_body"] == b"".join(bytes([i]) * 1000 for i in range(4))
    assert recorder.chunk_sizes == [1000] * 4
    assert pulled == [0, 1, 2, 3]


def test_send_stdin_sends_bytes_and_text_with_their_length(recorder: Recorder) -> None:
    recorder.reply = lambda req: json_reply(200, {"bytes": len(req["raw_body"])})
    client = client_for(recorder)
    assert client.send_stdin("j", b"\x00\xffno newline") == {"bytes": 12}
    assert recorder.requests[-1]["headers"]["content-length"] == "12"
    assert client.send_stdin("j", "héllo") == {"bytes": 6}
    assert recorder.requests[-1]["raw_body"] == "héllo".encode("utf-8")
    assert client.send_stdin("j", b"") == {"bytes": 0}
    assert recorder.requests[-1]["headers"]["content-length"] == "0"


def test_send_stdin_reads_a_file_a_block_at_a_time(recorder: Recorder, tmp_path: Any) -> None:
    """A 24 MiB file goes out with its remaining length and is never read whole."""
    recorder.reply = lambda req: json_reply(200, {"bytes": len(req["raw_body"])})
    path = tmp_path / "big.bin"
    want = hashlib.sha256()
    with open(path, "wb") as fh:
        for i in range(24):
            block = hashlib.sha256(bytes([i])).digest() * (MiB // 32)
            want.update(block)
            fh.write(block)
    with open(path, "rb") as fh:
        fh.read(10)
        tracemalloc.start()
        try:
            answer = client_for(recorder).send_stdin("j", fh)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert answer == {"bytes": 24 * MiB - 10}
    req = recorder.requests[-1]
    assert req["headers"]["content-length"] == str(24 * MiB - 10)
    with open(path, "rb") as fh:
        fh.read(10)
        assert hashlib.sha256(req["raw_body"]).digest() == hashlib.sha256(fh.read()).digest()
    # The recorder (same process) holds the body it received; the client side adds one block or so.
    assert peak < 24 * MiB + 8 * MiB, f"peak {peak} bytes while sending 24 MiB"


def test_send_stdin_refuses_text_chunks_and_other_types(recorder: Recorder, tmp_path: Any) -> None:
    recorder.reply = lambda req: json_reply(200, {"bytes": 0})
    client = client_for(recorder)
    with pytest.raises(mags.ValidationError) as err:
        client.send_stdin("j", iter([b"ok", "text"]))
    assert err.value.code == "VALIDATION_ERROR"
    (tmp_path / "t.txt").write_text("abc")
    with open(tmp_path / "t.txt", "r") as fh, pytest.raises(mags.ValidationError) as err2:
        client.send_stdin("j", fh)
    assert "binary mode" in (err2.value.hint or "")
    with pytest.raises(mags.ValidationError):
        client.send_stdin("j", 42)  # type: ignore[arg-type]


def test_send_stdin_raises_the_servers_error_codes(recorder: Recorder) -> None:
    replies = {
        "a": (422, "INVALID_STATE"),
        "b": (409, "CONFLICT"),
        "c": (409, "JOB_NOT_RUNNING"),
    }

    def reply(req: Any) -> Any:
        status, code = replies[req["path"].split("/")[4]]
        return json_reply(status, {"error": f"refused: {code}", "code": code})

    recorder.reply = reply
    client = client_for(recorder)
    for job, (status, code) in replies.items():
        with pytest.raises(mags.MagsError) as err:
            client.send_stdin(job, iter([b"x"]))
        assert (err.value.status, err.value.code) == (status, code)


class EarlyAnswerServer:
    """Reads a request's head and ``take`` bytes of its body, then answers ``answer`` and closes
    the connection on the rest (a script that stopped reading its stdin); with ``answer=None`` it
    reads nothing more and never answers."""

    def __init__(self, take: int, answer: "bytes | None") -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.head = b""
        self.take, self.answer = take, answer
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < self.take:
                data += conn.recv(4096)
            self.head = data.split(b"\r\n\r\n", 1)[0]
            if self.answer is None:
                self.done.wait(10)
                return
            body = self.answer
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    def close(self) -> None:
        self.done.set()
        self.listener.close()
        self.thread.join(5)


def test_send_stdin_returns_an_early_answer_and_sends_no_more(clean_env: Any) -> None:
    server = EarlyAnswerServer(take=10, answer=b'{"bytes": 10}')
    pulled = 0

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        for _ in range(256):
            pulled += 1
            yield b"y" * MiB

    try:
        client = mags.Mags(api_token=TEST_TOKEN, api_url=server.url)
        assert client.send_stdin("j", endless()) == {"bytes": 10}
        assert pulled < 256, "the body went on after the answer"
        assert b"PUT /api/v1/mags-jobs/j/stdin HTTP/1.1" in server.head
        assert b"Transfer-Encoding: chunked" in server.head
        assert f"Authorization: Bearer {TEST_TOKEN}".encode() in server.head
    finally:
        server.close()


def test_send_stdin_to_a_server_that_stops_reading_times_out(clean_env: Any) -> None:
    server = EarlyAnswerServer(take=0, answer=None)
    try:
        client = mags.Mags(api_token=TEST_TOKEN, api_url=server.url)
        with pytest.raises(mags.TimeoutError):
            client.send_stdin("j", iter([b"z" * MiB] * 64), timeout=0.5)
    finally:
        server.close()


def test_run_accepts_stdin_and_tty(recorder: Recorder) -> None:
    recorder.reply = lambda req: json_reply(202, {"request_id": "r1", "status": "accepted"})
    client_for(recorder).run("cat", stdin=True, tty={"cols": 80, "rows": 24})
    assert json.loads(recorder.requests[-1]["raw_body"]) == {"script": "cat", "type": "inline", "stdin": True, "tty": {"cols": 80, "rows": 24}}


# ---- stream_raw ----------------------------------------------------------------------------

def test_stream_raw_parses_frames_split_anywhere(recorder: Recorder) -> None:
    end = {"status": "error", "exit_code": 3, "end_reason": "exited", "error_message": None}
    wire = frame(1, b"out\x00\r") + frame(2, b"err") + frame(3, b"woke up\n") + frame(1, b"") + frame(4, json.dumps(end).encode())
    # Split at every third byte: headers and payloads arrive in pieces.
    recorder.reply = lambda req: framed(*[wire[i:i + 3] for i in range(0, len(wire), 3)])
    items = list(client_for(recorder).stream_raw("j1", follow=True))
    assert items == [
        RawOutput("stdout", b"out\x00\r"),
        RawOutput("stderr", b"err"),
        RawOutput("system", b"woke up\n"),
        RawOutput("end", end=end),
    ]
    req = recorder.requests[-1]
    assert req["path"] == "/api/v1/mags-jobs/j1/logs"
    assert req["query"] == {"format": "raw", "stream": "both", "follow": "1"}


def test_stream_raw_without_follow_ends_with_the_answer(recorder: Recorder) -> None:
    recorder.reply = lambda req: framed(frame(1, b"a"), frame(1, b"b"))
    items = list(client_for(recorder).stream_raw("j1"))
    assert [i.data for i in items] == [b"a", b"b"]
    assert recorder.requests[-1]["query"]["follow"] == "0"


def test_stream_raw_hands_out_a_long_frame_in_blocks(recorder: Recorder) -> None:
    payload = bytes(range(256)) * (3 * MiB // 256)
    recorder.reply = lambda req: framed(frame(1, payload))
    items = list(client_for(recorder).stream_raw("j1"))
    assert all(i.stream == "stdout" and len(i.data) <= MiB for i in items)
    assert b"".join(i.data for i in items) == payload


@pytest.mark.parametrize(
    "wire",
    [
        frame(9, b"x"),  # unknown type
        frame(1, b"abc")[:-1],  # ends inside a payload
        frame(1, b"abc")[:5],  # ends inside a header
        frame(4, b"not json"),
        frame(4, b'{"no":"status"}'),
        bytes([4, 0, 0, 0]) + (1 << 30).to_bytes(4, "big"),  # an end frame of 1 GiB
    ],
)
def test_stream_raw_reports_a_malformed_stream(recorder: Recorder, wire: bytes) -> None:
    recorder.reply = lambda req: framed(frame(1, b"ok"), wire)
    seen: List[RawOutput] = []
    with pytest.raises(mags.MagsError) as err:
        for item in client_for(recorder).stream_raw("j1", follow=True):
            seen.append(item)
    assert err.value.code == "INVALID_RESPONSE"
    assert seen[:1] == [RawOutput("stdout", b"ok")]


def test_raw_forms_on_a_server_without_them_raise_feature_not_available(recorder: Recorder) -> None:
    """A Mags server ignores format=raw and answers the JSON logs."""
    recorder.reply = lambda req: json_reply(200, {"logs": []})
    client = client_for(recorder)
    with pytest.raises(mags.MagsError) as err:
        list(client.stream_raw("j1"))
    assert err.value.code == "FEATURE_NOT_AVAILABLE"
    with pytest.raises(mags.MagsError) as err2:
        list(client.raw_output("j1"))
    assert err2.value.code == "FEATURE_NOT_AVAILABLE"


def test_raw_output_of_an_unknown_job_raises_not_found(recorder: Recorder) -> None:
    recorder.reply = lambda req: json_reply(404, {"error": "Job not found", "code": "JOB_NOT_FOUND"})
    with pytest.raises(mags.NotFoundError) as err:
        list(client_for(recorder).raw_output("nope"))
    assert err.value.code == "JOB_NOT_FOUND"


# ---- raw_output ----------------------------------------------------------------------------

def test_raw_output_yields_one_streams_bytes_as_they_arrive(recorder: Recorder) -> None:
    recorder.reply = lambda req: (200, {"Content-Type": "application/octet-stream"}, iter([b"\x00\x01", 0.3, b"\xff no newline"]))
    blocks = client_for(recorder).raw_output("j1", "stderr", follow=True)
    assert next(blocks) == b"\x00\x01"  # handed out before the rest arrives
    assert b"".join(blocks) == b"\xff no newline"
    assert recorder.requests[-1]["query"] == {"format": "raw", "stream": "stderr", "follow": "1"}


def test_raw_output_refuses_an_unknown_stream(recorder: Recorder) -> None:
    with pytest.raises(mags.ValidationError):
        list(client_for(recorder).raw_output("j1", "both"))
    assert recorder.requests == []


def test_a_silent_follower_waits_past_the_call_timeout(recorder: Recorder) -> None:
    """Following without timeout= waits for output without limit (a raw answer has no keep-alive)."""
    recorder.reply = lambda req: (200, {"Content-Type": "application/octet-stream"}, iter([1.5, b"late"]))
    client = mags.Mags(api_token=TEST_TOKEN, api_url=recorder.url, timeout=0.5)
    assert b"".join(client.raw_output("j1", follow=True)) == b"late"
    with pytest.raises(mags.TimeoutError):
        b"".join(client.raw_output("j1", follow=True, timeout=0.5))
