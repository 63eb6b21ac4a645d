#!/usr/bin/env bash
# Installs everything a Mags server needs on this Debian/Ubuntu host and starts it in the foreground.
#   sudo ./install.sh              install, then run `mags server`
#   sudo ./install.sh --no-start   install only
# Every step is idempotent: running it again only does what is missing.
set -euo pipefail
REPO=$(cd "$(dirname "$0")" && pwd)
. "$REPO/scripts/lib.sh"
need_root "$@"
ensure_node
ensure_packages $HOST_PACKAGES
npm_install
build_ts
build_agent
build_image "${MAGS_IMAGE_DIR:-${MAGS_DATA_DIR:-/var/lib/mags}/images}"
link_cli
if [ "${1:-}" = "--no-start" ]; then
  step "Installed. Start the server with: mags server"
  exit 0
fi
step "Starting the server (Ctrl-C stops it; configuration: docs/configuration.md)"
exec node "$REPO/packages/cli/bin/mags.js" server
