"""End to end: the files API's watch against a real Mags server running a real persistent sandbox
(see conftest.server)."""
from __future__ import annotations

import threading
from typing import Any, Dict, Iterator, List

import pytest

import mags
from conftest import persistent_sandbox

pytestmark = pytest.mark.e2e


@pytest.fixture
def sandbox(client: mags.Mags) -> Iterator[str]:
    """A persistent job's sandbox (its name), stopped afterwards."""
    with persistent_sandbox(client, "py-watch") as name:
        yield name


def test_watch_reports_a_file_written_in_the_sandbox(client: mags.Mags, sandbox: str) -> None:
    client.files.mkdir(sandbox, "/root/watched", parents=True)
    ran: List[Dict[str, Any]] = []
    threads: List[threading.Thread] = []

    def write_in_the_sandbox() -> None:
        # A process inside the sandbox writes the file, once the watch is set up.
        command = "printf 'made by the sandbox' > /root/watched/made-here.txt"
        thread = threading.Thread(target=lambda: ran.append(client.exec(sandbox, command, timeout=30)))
        thread.start()
        threads.append(thread)

    # Should no event come, stopping the job ends the watch (event: end) and the test fails below.
    watchdog = threading.Timer(90, lambda: client.stop(sandbox))
    watchdog.start()
    seen: List[Dict[str, Any]] = []
    try:
        for event in client.files.watch(sandbox, "/root/watched", on_ready=write_in_the_sandbox, timeout=60):
            seen.append(event)
            if event.get("type") == "modify" and str(event.get("path", "")).endswith("/made-here.txt"):
                break
    finally:
        watchdog.cancel()
        for thread in threads:
            thread.join(60)
    assert len(threads) == 1, "on_ready is called once"
    assert ran and ran[0]["exit_code"] == 0, ran
    created = [e for e in seen if e.get("type") == "create"]
    assert created and created[0]["path"] == "/root/watched/made-here.txt", seen
    assert created[0]["dir"] is False
    assert client.files.read_text(sandbox, "/root/watched/made-here.txt") == "made by the sandbox"
