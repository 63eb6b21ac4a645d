"""Quickstart: run `echo Hello World` in a fresh sandbox and print its output.

    MAGS_API_URL=http://127.0.0.1:8090 MAGS_API_TOKEN=mags_... python3 examples/quickstart.py

Without the variables it uses ~/.mags/config.json (written by `mags login` or by the server's first
start on the same host).
"""
import sys

from mags import Mags, MagsError


def main() -> int:
    try:
        mags = Mags()
        result = mags.run_and_wait("echo Hello World")
    except MagsError as err:
        print(f"error: {err}" + (f"\nhint: {err.hint}" if err.hint else ""), file=sys.stderr)
        return 1
    for line in result["logs"]:
        if line.get("stream", "stdout") != "system":
            print(line["message"])
    print(f"status={result['status']} exit_code={result['exit_code']}", file=sys.stderr)
    return result["exit_code"] if isinstance(result["exit_code"], int) else 1


if __name__ == "__main__":
    sys.exit(main())
