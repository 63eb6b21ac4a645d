from __future__ import annotations

import contextlib
import os
import uuid
import warnings
from typing import TYPE_CHECKING, Iterator, List

import pytest

from recorder import Recorder

if TYPE_CHECKING:
    import mags
    from live_server import ServerProcess

TEST_TOKEN = "mags_" + "a" * 40


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder().start()
    try:
        yield rec
    finally:
        rec.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: "os.PathLike[str]") -> "os.PathLike[str]":
    """No MAGS_* variables and a temp HOME, so the real ~/.mags is never read."""
    for key in ("MAGS_API_TOKEN", "MAGS_TOKEN", "MAGS_API_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def server_build() -> str:
    """Path of the server's entry point; skips the e2e tests only when the build is missing."""
    from live_server import MAIN_JS

    if not os.path.exists(MAIN_JS):
        pytest.skip(f"server build missing ({MAIN_JS}): run `npm run build` at the repo root")
    return MAIN_JS


@pytest.fixture(scope="session")
def server(server_build: str) -> "Iterator[ServerProcess]":
    """A real Mags server with real sandboxes, shared by the e2e tests of one session."""
    from live_server import ServerProcess

    proc = ServerProcess(start_timeout=float(os.environ.get("MAGS_E2E_START_TIMEOUT", "300")))
    try:
        yield proc
    finally:
        proc.stop()
        left = proc.leftovers()
        if left:  # the server's own cleanup failed; test_e2e asserts this for a fresh server
            warnings.warn("the Mags server left host resources behind:\n" + "\n".join(left))


@pytest.fixture
def client(server: "ServerProcess") -> "mags.Mags":
    """A client of the shared e2e server with the admin token."""
    import mags

    return mags.Mags(api_token=server.token, api_url=server.url, timeout=30)


@pytest.fixture
def started(client: "mags.Mags") -> "Iterator[List[str]]":
    """Request ids of jobs a test started; any still running are stopped afterwards."""
    import mags

    ids: List[str] = []
    try:
        yield ids
    finally:
        for request_id in ids:
            try:
                job = client.status(request_id)
                if job.get("status") not in ("completed", "error"):
                    client.stop(request_id)
            except mags.MagsError:
                pass


@contextlib.contextmanager
def persistent_sandbox(client: "mags.Mags", prefix: str) -> Iterator[str]:
    """A persistent job's sandbox under a fresh name starting with ``prefix``; stopped on exit."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    job = client.new(name, timeout=120)
    try:
        yield name
    finally:
        client.stop(job["request_id"])
