"""Starts a real Mags server (``node packages/server/dist/src/main.js``) for the end-to-end tests,
on free ports with a temp data dir and temp HOME, and stops it again."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import List, Optional

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
MAIN_JS = os.path.join(REPO, "packages", "server", "dist", "src", "main.js")
READY = re.compile(r"Mags server ready at (http://\S+)")


class ServerProcess:
    """One running server: ``url``, ``token`` (the admin token), ``data_dir``, ``home``."""

    def __init__(self, start_timeout: float = 180.0, extra_env: Optional[dict] = None) -> None:
        self.tmp = tempfile.mkdtemp(prefix="mags-py-e2e-")
        self.data_dir = os.path.join(self.tmp, "data")
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.data_dir)
        os.makedirs(self.home)
        env = dict(os.environ)
        for key in ("MAGS_API_TOKEN", "MAGS_TOKEN", "MAGS_API_URL"):
            env.pop(key, None)
        env.update(
            MAGS_PORT="0",
            MAGS_PROXY_PORT="0",
            MAGS_SSH_PORT="0",
            MAGS_DATA_DIR=self.data_dir,
            MAGS_IMAGE_DIR=os.environ.get("MAGS_IMAGE_DIR") or "/var/cache/mags/images",
            MAGS_POOL_MIN_SIZE="1",
            HOME=self.home,
        )
        env.update(extra_env or {})
        self.stdout: List[str] = []
        self.stderr: List[str] = []
        self._ready = threading.Event()
        self.url = ""
        self.proc = subprocess.Popen(
            ["node", MAIN_JS],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr), daemon=True).start()
        try:
            self._wait_ready(start_timeout)
            with open(os.path.join(self.data_dir, "admin-token"), encoding="utf-8") as fh:
                self.token = fh.read().strip()
        except BaseException:
            self.stop()
            raise

    def _pump(self, stream, sink: List[str]) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            sink.append(line.rstrip("\n"))

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.stdout.append(line)
            match = READY.search(line)
            if match and not self._ready.is_set():
                self.url = match.group(1)
                self._ready.set()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Mags server exited with {self.proc.returncode} before it was ready:\n{self.output_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Mags server was not ready within {timeout:g} s:\n{self.output_tail()}")

    def output_tail(self, lines: int = 60) -> str:
        time.sleep(0.2)  # let the pumps catch the last lines
        return "--- stderr ---\n" + "\n".join(self.stderr[-lines:]) + "\n--- stdout ---\n" + "\n".join(self.stdout[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, SIGKILL after ``timeout`` seconds, then remove the temp dirs."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
