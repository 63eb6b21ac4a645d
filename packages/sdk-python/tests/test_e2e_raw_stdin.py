"""End to end: send_stdin, stream_raw and raw_output against a real Mags server running real
sandboxes (see conftest.server)."""
from __future__ import annotations

import hashlib
import random
import time
import tracemalloc
from typing import Iterator, List

import pytest

import mags

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024


def wait_done(client: mags.Mags, request_id: str, seconds: float = 120) -> mags.types.Job:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = client.status(request_id)
        if job.get("status") in ("completed", "error"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {request_id} did not end within {seconds:g} s")


def test_20_mib_of_stdin_from_a_generator_arrives_intact(client: mags.Mags, started: List[str]) -> None:
    submitted = client.run("sha256sum | cut -c1-64", stdin=True)
    started.append(submitted["request_id"])
    rng = random.Random(20)
    want = hashlib.sha256()
    pulled = 0

    def blocks() -> Iterator[bytes]:
        nonlocal pulled
        for _ in range(20):
            block = rng.randbytes(MiB)
            want.update(block)
            pulled += 1
            yield block

    tracemalloc.start()
    try:
        answer = client.send_stdin(submitted["request_id"], blocks())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer == {"bytes": 20 * MiB}
    assert pulled == 20
    assert peak < 8 * MiB, f"the client held {peak} bytes while streaming 20 MiB"
    job = wait_done(client, submitted["request_id"])
    assert (job["status"], job["exit_code"]) == ("completed", 0), job
    assert b"".join(client.raw_output(submitted["request_id"])).decode().strip() == want.hexdigest()


def test_raw_output_of_a_megabyte_of_random_bytes_is_byte_exact(client: mags.Mags, started: List[str]) -> None:
    script = "head -c 1048576 /dev/urandom | tee /tmp/x; sha256sum /tmp/x | cut -c1-64 >&2"
    submitted = client.run(script)
    request_id = submitted["request_id"]
    started.append(request_id)
    # Followed live from the submit: frames of both streams, then the end.
    items = list(client.stream_raw(request_id, follow=True, timeout=120))
    assert items[-1].stream == "end"
    assert items[-1].end is not None and items[-1].end["status"] == "completed" and items[-1].end["exit_code"] == 0
    out = b"".join(i.data for i in items if i.stream == "stdout")
    err = b"".join(i.data for i in items if i.stream == "stderr")
    assert len(out) == MiB
    assert hashlib.sha256(out).hexdigest() == err.decode().strip()
    # Read again after the end, one stream at a time: the same bytes.
    assert b"".join(client.raw_output(request_id)) == out
    assert b"".join(client.raw_output(request_id, "stderr")).decode().strip() == hashlib.sha256(out).hexdigest()


def test_binary_stdin_without_a_final_newline_round_trips(client: mags.Mags, started: List[str]) -> None:
    payload = bytes(range(256)) * 3 + b"\r\n\x00tail without newline"
    submitted = client.run("cat; printf '\\000\\001\\377end'", stdin=True)
    started.append(submitted["request_id"])
    assert client.send_stdin(submitted["request_id"], payload) == {"bytes": len(payload)}
    wait_done(client, submitted["request_id"])
    assert b"".join(client.raw_output(submitted["request_id"])) == payload + b"\x00\x01\xffend"
    frames = [i for i in client.stream_raw(submitted["request_id"]) if i.stream == "stdout"]
    assert b"".join(i.data for i in frames) == payload + b"\x00\x01\xffend"


def test_stdin_misuse_gets_the_servers_codes(client: mags.Mags, started: List[str]) -> None:
    plain = client.run("sleep 30")["request_id"]
    started.append(plain)
    with pytest.raises(mags.MagsError) as not_stdin:
        client.send_stdin(plain, b"x")
    assert (not_stdin.value.status, not_stdin.value.code) == (422, "INVALID_STATE")

    once = client.run("cat", stdin=True)["request_id"]
    started.append(once)
    assert client.send_stdin(once, iter([b"a", b"b"])) == {"bytes": 2}
    wait_done(client, once)
    with pytest.raises(mags.MagsError) as ended:
        client.send_stdin(once, b"again")
    assert (ended.value.status, ended.value.code) == (409, "JOB_NOT_RUNNING")

    with pytest.raises(mags.NotFoundError):
        list(client.raw_output("no-such-job-" + "0" * 8))
    client.stop(plain)


def test_a_script_that_reads_only_part_of_its_stdin_answers_what_it_took(client: mags.Mags, started: List[str]) -> None:
    """The server answers once the script's stdin reached EOF (here: the script ended) and closes
    the connection on the rest of the body."""
    submitted = client.run("head -c 5", stdin=True)
    started.append(submitted["request_id"])

    def endless() -> Iterator[bytes]:
        for _ in range(64):
            yield b"y" * MiB

    try:
        answer = client.send_stdin(submitted["request_id"], endless())
        assert answer["bytes"] >= 5
    except mags.ConnectionError:
        pytest.fail("the early answer was lost")
    job = wait_done(client, submitted["request_id"])
    assert job["status"] == "completed", job
    assert b"".join(client.raw_output(submitted["request_id"])) == b"yyyyy"
