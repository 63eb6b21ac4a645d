"""Throughput of the Python SDK's stdin upload and raw output read against a real server (real
sandboxes), beside baselines from the same run: the same upload through urllib (the transport the
other SDK calls use, which cannot stop at an early answer) and `curl -T`; the raw read beside
`curl` of the same URL.

    MAGS_IMAGE_DIR=/var/cache/mags/images python3 bench/sdk-python-stdin.py [--mib 100] [--runs 5]

Prints MiB/s medians and p95 (the slowest run of five is the p95) and writes
bench/sdk-python-stdin.results.json."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, Iterator, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "packages", "sdk-python"), os.path.join(HERE, "..", "packages", "sdk-python", "tests")]

import mags  # noqa: E402
from live_server import ServerProcess  # noqa: E402
from mags.raw import stdin_body  # noqa: E402

MiB = 1024 * 1024


def option(name: str, default: int) -> int:
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def blocks(mib: int) -> Iterator[bytes]:
    block = os.urandom(MiB)
    for _ in range(mib):
        yield block


def wait_done(client: mags.Mags, request_id: str) -> None:
    while client.status(request_id).get("status") not in ("completed", "error"):
        time.sleep(0.05)


def rates(runs: int, once: Callable[[], int]) -> Dict[str, float]:
    """MiB/s of ``once`` (which returns the bytes it moved), per run."""
    samples: List[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        moved = once()
        samples.append(moved / MiB / (time.perf_counter() - t0))
    ordered = sorted(samples)
    # Throughput: the p95 is the slow end, the 5th percentile of the rates.
    return {"p50": round(statistics.median(ordered), 1), "p95": round(ordered[max(0, int(0.05 * len(ordered)))], 1), "n": len(ordered)}


def main() -> None:
    mib, runs = option("--mib", 100), option("--runs", 5)
    # The output cap above the raw read's size, so the read moves all of it.
    server = ServerProcess(extra_env={"MAGS_POOL_MIN_SIZE": "2", "MAGS_MAX_OUTPUT_BYTES": str(2 * mib * MiB)})
    try:
        client = mags.Mags(api_token=server.token, api_url=server.url, timeout=120)
        results: Dict[str, Dict[str, float]] = {}

        def upload(send: Callable[[str], object]) -> Callable[[], int]:
            def once() -> int:
                job = client.run("cat > /dev/null", stdin=True)["request_id"]
                send(job)
                wait_done(client, job)
                return mib * MiB
            return once

        results["send_stdin (SDK)"] = rates(runs, upload(lambda job: client.send_stdin(job, blocks(mib))))
        results["urllib PUT (baseline)"] = rates(runs, upload(lambda job: client._http.request(
            "PUT", f"/api/v1/mags-jobs/{job}/stdin", raw_body=stdin_body(blocks(mib)), timeout=120)))
        with tempfile.NamedTemporaryFile() as fh:
            for block in blocks(mib):
                fh.write(block)
            fh.flush()
            results["curl -T file (baseline)"] = rates(runs, upload(lambda job: subprocess.run(
                ["curl", "-sf", "-X", "PUT", "-H", f"Authorization: Bearer {server.token}", "-H", "content-type: application/octet-stream",
                 "-T", fh.name, f"{server.url}/api/v1/mags-jobs/{job}/stdin"], check=True, stdout=subprocess.DEVNULL)))

        job = client.run(f"head -c {mib * MiB} /dev/urandom")["request_id"]
        wait_done(client, job)
        results["raw_output read (SDK)"] = rates(runs, lambda: sum(len(b) for b in client.raw_output(job)))
        url = f"{server.url}/api/v1/mags-jobs/{job}/logs?format=raw&stream=stdout"
        results["curl raw read (baseline)"] = rates(runs, lambda: int(subprocess.run(
            ["curl", "-sf", "-H", f"Authorization: Bearer {server.token}", "-o", "/dev/null", "-w", "%{size_download}", url],
            check=True, capture_output=True, text=True).stdout))
        size = sum(len(b) for b in client.raw_output(job))
        assert size == mib * MiB, f"the raw read moved {size} bytes, not {mib} MiB"
    finally:
        server.stop()
    print(f"{mib} MiB per run, {runs} runs; MiB/s")
    print(f"{'case':28} {'p50':>8} {'p95':>8}")
    for name, r in results.items():
        print(f"{name:28} {r['p50']:>8} {r['p95']:>8}")
    with open(os.path.join(HERE, "sdk-python-stdin.results.json"), "w") as out:
        json.dump({"mib": mib, "runs": runs, "results": results}, out, indent=2)
        out.write("\n")


if __name__ == "__main__":
    main()
