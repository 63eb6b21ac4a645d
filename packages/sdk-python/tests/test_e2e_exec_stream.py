"""End to end: exec_stream against a real Mags server running a real persistent sandbox (see
conftest.server): interleaved streams, exit codes, timeouts, 50 MB in bounded memory and a slow
consumer."""
from __future__ import annotations

import time
import tracemalloc
import uuid
from typing import Iterator, List

import pytest

import mags
from conftest import persistent_sandbox

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def sandbox(server: object) -> Iterator[str]:
    """A persistent job's sandbox (its name), shared by this module's tests and stopped afterwards."""
    client = mags.Mags(api_token=server.token, api_url=server.url, timeout=30)  # type: ignore[attr-defined]
    with persistent_sandbox(client, "py-exec") as name:
        yield name


def test_interleaved_stdout_and_stderr_arrive_in_order_and_exit_code_3_comes_back(client: mags.Mags, sandbox: str) -> None:
    command = "for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.3; done; exit 3"
    items = list(client.exec_stream(sandbox, command, timeout=60))
    end = items[-1]
    assert (end.stream, end.exit_code, end.timed_out) == ("exit", 3, False), items
    out = "".join(i.data for i in items if i.stream == "stdout")
    err = "".join(i.data for i in items if i.stream == "stderr")
    assert (out, err) == ("out1\nout2\nout3\n", "err1\nerr2\nerr3\n")
    # Each round's output comes before the next round's (they are 0.3 s apart).
    rounds = [int(i.data.strip()[-1]) for i in items[:-1] for _ in i.data.strip().splitlines()]
    assert rounds == sorted(rounds), items


def test_a_timeout_is_reported_in_the_exit_item(client: mags.Mags, sandbox: str) -> None:
    started = time.monotonic()
    items = list(client.exec_stream(sandbox, "echo begun; sleep 60", timeout=1))
    assert time.monotonic() - started < 30
    assert items[0] == mags.ExecOutput("stdout", "begun\n")
    assert (items[-1].stream, items[-1].exit_code, items[-1].timed_out) == ("exit", 124, True)


def test_an_unknown_sandbox_raises_the_code_exec_raises(client: mags.Mags) -> None:
    with pytest.raises(mags.NotFoundError) as streamed:
        client.exec_stream(f"no-such-{uuid.uuid4().hex[:8]}", "true")
    with pytest.raises(mags.NotFoundError) as buffered:
        client.exec(f"no-such-{uuid.uuid4().hex[:8]}", "true")
    assert streamed.value.code == buffered.value.code


def test_50_mb_stream_through_in_bounded_memory(client: mags.Mags, sandbox: str) -> None:
    size = 50_000_000
    total = 0
    began = time.monotonic()
    tracemalloc.start()
    try:
        for item in client.exec_stream(sandbox, f"yes 0123456789abcdef | head -c {size}", timeout=240):
            if item.stream == "stdout":
                total += len(item.data)
            elif item.stream == "exit":
                assert (item.exit_code, item.timed_out) == (0, False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"50 MB in {time.monotonic() - began:.1f} s, client peak {peak / MiB:.2f} MiB")
    assert total == size
    assert peak < 16 * MiB, f"the client held {peak} bytes while streaming {size}"


def test_a_slow_consumer_still_gets_every_byte(client: mags.Mags, sandbox: str) -> None:
    want = "".join(f"{i}\n" for i in range(1, 400_001))  # ~2.7 MB, more than the pipes and sockets hold
    got: List[str] = []
    exits: List[mags.ExecOutput] = []
    for n, item in enumerate(client.exec_stream(sandbox, "seq 1 400000", timeout=120)):
        if item.stream == "exit":
            exits.append(item)
            continue
        got.append(item.data)
        if n == 2:
            time.sleep(3)  # a long pause: the command is held back, nothing is lost
        elif n < 40:
            time.sleep(0.05)
    assert [(e.exit_code, e.timed_out) for e in exits] == [(0, False)]
    joined = "".join(got)
    assert len(joined) == len(want) and joined == want
