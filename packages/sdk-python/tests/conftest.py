from __future__ import annotations

import os
from typing import Iterator

import pytest

from recorder import Recorder

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
