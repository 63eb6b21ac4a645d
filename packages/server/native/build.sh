#!/bin/sh
# Builds the guest agent as a static binary: native/build/mags-agent.
# Uses musl-gcc when installed (apt-get install musl-tools; smaller binary), else gcc -static.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/build"
out="$here/build/mags-agent"
tmp="$out.tmp.$$"
if command -v musl-gcc >/dev/null 2>&1; then cc=musl-gcc; else cc="${CC:-gcc}"; fi
$cc -static -O2 -Wall -Wextra -Wno-unused-parameter -o "$tmp" "$here/mags-agent.c" "$here/host-helpers.c"
strip "$tmp" 2>/dev/null || true
mv -f "$tmp" "$out"
echo "$out"
