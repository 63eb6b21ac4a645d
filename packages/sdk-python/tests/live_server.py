"""Starts a real Mags server (``node packages/server/dist/src/main.js``) for the end-to-end tests,
on free ports with a temp data dir and temp HOME, and stops it again."""
from __future__ import annotations

import collections
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import Deque, List, Optional

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
            MAGS_DATA_DIR=self.data_dir,
            MAGS_IMAGE_DIR=os.environ.get("MAGS_IMAGE_DIR") or "/var/cache/mags/images",
            MAGS_POOL_MIN_SIZE="1",
            HOME=self.home,
        )
        env.update(extra_env or {})
        # Only the tail matters for error messages; keep memory bounded in long sessions.
        self.stdout: Deque[str] = collections.deque(maxlen=2000)
        self.stderr: Deque[str] = collections.deque(maxlen=2000)
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

    def _pump(self, stream, sink: Deque[str]) -> None:  # type: ignore[no-untyped-def]
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
        err, out = list(self.stderr)[-lines:], list(self.stdout)[-lines:]
        return "--- stderr ---\n" + "\n".join(err) + "\n--- stdout ---\n" + "\n".join(out)

    @property
    def instance(self) -> str:
        """The server's instance prefix: every host resource it creates starts with it."""
        return "mg" + hashlib.sha256(os.path.abspath(self.data_dir).encode()).hexdigest()[:6]

    def leftovers(self) -> List[str]:
        """Host resources of this server still present (network namespaces, links, nftables
        tables, cgroups, mounts); empty after a clean shutdown."""
        found: List[str] = []
        commands = {
            "netns": ["ip", "netns", "list"],
            "link": ["ip", "-o", "link"],
            "nft": ["nft", "list", "tables"],
        }
        for kind, cmd in commands.items():
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            found += [f"{kind}: {line.strip()[:120]}" for line in out.splitlines() if self.instance in line]
        with open("/proc/mounts", encoding="utf-8") as fh:
            found += [f"mount: {line.split()[1]}" for line in fh if self.instance in line or self.data_dir in line]
        # The server's cgroups sit at /sys/fs/cgroup[/<controller>]/<instance>/...
        for base in ["/sys/fs/cgroup"] + [os.path.join("/sys/fs/cgroup", c) for c in _listdir("/sys/fs/cgroup")]:
            found += [f"cgroup: {os.path.join(base, d)}" for d in _listdir(base) if d.startswith(self.instance)]
        return found

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


def _listdir(path: str) -> List[str]:
    try:
        return [d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d))]
    except OSError:
        return []
