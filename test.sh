#!/usr/bin/env bash
# Installs whatever the tests need and runs the whole suite: TypeScript tests (node:test) of every
# package against real sandboxes, real SQLite and a throwaway PostgreSQL, then the Python SDK's pytest.
#   sudo ./test.sh
# The same files split into tiers (unit / integration / e2e): scripts/test-tier.mjs, npm run test:unit.
set -euo pipefail
REPO=$(cd "$(dirname "$0")" && pwd)
. "$REPO/scripts/lib.sh"
need_root "$@"
ensure_node
# tmux: the SSH gateway's interactive test; chromium: the browser tests (playwright-core drives it);
# openssl: the proxy's TLS test makes a certificate.
ensure_packages $HOST_PACKAGES postgresql-15 python3-venv jq tmux chromium openssl
# The Python SDK's tests run on whichever python3 has pytest; Debian's own otherwise.
PYTHON=python3
if ! "$PYTHON" -c 'import pytest' 2>/dev/null; then
  ensure_packages python3-pytest
  PYTHON=/usr/bin/python3
fi
# The S3 blob store tests run against moto's S3 server (exports MAGS_TEST_PYTHON).
ensure_moto
npm_install
build_ts
build_agent
# One image cache for every test server on this machine, built once.
export MAGS_IMAGE_DIR="${MAGS_IMAGE_DIR:-/var/cache/mags/images}"
build_image "$MAGS_IMAGE_DIR"

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
status=0

step "Running the TypeScript test suites"
# Test files only (*.test.js): helpers beside them (e.g. child processes a test starts) are not tests.
test_files=()
for d in "$REPO"/packages/*/dist/test; do
  [ -d "$d" ] && while IFS= read -r f; do test_files+=("$f"); done < <(find "$d" -name '*.test.js' | sort)
done
node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$results/node.tap" "${test_files[@]}" || status=1

step "Running the Python SDK tests"
(cd "$REPO/packages/sdk-python" && "$PYTHON" -m pytest -q tests 2>&1 | tee "$results/pytest.txt") || status=1

node_pass=$(grep -E '^# pass ' "$results/node.tap" | awk '{print $3}' || true)
node_fail=$(grep -E '^# fail ' "$results/node.tap" | awk '{print $3}' || true)
py_pass=$(grep -oE '[0-9]+ passed' "$results/pytest.txt" | tail -n1 | awk '{print $1}' || true)
py_fail=$(grep -oE '[0-9]+ (failed|error)' "$results/pytest.txt" | awk '{s+=$1} END {print s+0}' || true)
passed=$(( ${node_pass:-0} + ${py_pass:-0} ))
failed=$(( ${node_fail:-0} + ${py_fail:-0} ))
if [ "$passed" -eq 0 ]; then
  echo "No test ran: that is a failure." >&2
  status=1
fi
echo
echo "total: $passed passed, $failed failed"
exit $status
