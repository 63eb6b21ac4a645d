#!/bin/sh
# Builds the guest agent as a static binary: native/build/mags-guest (PID 1 of every sandbox, and
# on the host the process spawner and root helpers). With `--test`, also builds and prints the
# golden-frame checker native/build/frames-test (same frame.c, run by test/guest-frames.test.ts).
# Uses musl-gcc when installed (apt-get install musl-tools; smaller binary), else gcc -static.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/build"
if command -v musl-gcc >/dev/null 2>&1; then cc=musl-gcc; else cc="${CC:-gcc}"; fi
flags="-static -O2 -Wall -Wextra -Wno-unused-parameter"
libs="-pthread"

out="$here/build/mags-guest"
tmp="$out.tmp.$$"
$cc $flags -o "$tmp" "$here/guest-agent.c" "$here/frame.c" "$here/host-helpers.c" "$here/guest-fs.c" "$here/guest-fs-serve.c" $libs
strip "$tmp" 2>/dev/null || true
mv -f "$tmp" "$out"
echo "$out"

if [ "${1:-}" = "--test" ]; then
  out="$here/build/frames-test"
  tmp="$out.tmp.$$"
  $cc $flags -I"$here" -o "$tmp" "$here/test/frames-test.c" "$here/frame.c"
  mv -f "$tmp" "$out"
  echo "$out"
fi
