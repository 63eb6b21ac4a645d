# Shared steps of install.sh and test.sh: each is idempotent and prints what it does on stderr.
# Sourced, not run. Expects REPO to be the repository root.

# Debian packages the daemon needs on a host (see docs/self-hosting.md).
HOST_PACKAGES="crun lxcfs debootstrap erofs-utils nftables iproute2 openssh-client musl-tools util-linux e2fsprogs ca-certificates attr"

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "This needs root (it installs Debian packages and creates cgroups, namespaces and mounts)." >&2
    echo "Run it again with sudo: sudo $0 $*" >&2
    exit 1
  fi
}

# ensure_packages PKG...: installs the Debian packages that are missing, nothing else.
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  step "Installing Debian packages: ${missing[*]}"
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n1)" ]; then
    apt-get update -q >&2
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

ensure_node() {
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -lt 20 ]; then
    echo "Node.js 20 or newer is required (found: $(node -v 2>/dev/null || echo none))." >&2
    echo "Install it from your distribution or https://nodejs.org, then run this again." >&2
    exit 1
  fi
}

# npm_install: installs npm dependencies exactly as locked (compiles better-sqlite3 from source).
npm_install() {
  local want have
  want=$(cat "$REPO/package-lock.json" "$REPO/package.json" "$REPO"/packages/*/package.json | sha256sum | cut -c1-16)
  have=$(cat "$REPO/node_modules/.mags-installed" 2>/dev/null || true)
  if [ "$want" = "$have" ] && [ -f "$REPO/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ]; then
    return 0
  fi
  step "Installing npm packages (the first time compiles better-sqlite3 from source: about a minute)"
  (cd "$REPO" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$want" > "$REPO/node_modules/.mags-installed"
}

build_ts() {
  step "Compiling TypeScript and building the dashboard"
  (cd "$REPO" && npm run --silent build >&2)
  step "Packing the client downloads (CLI, Node SDK, Python wheel)"
  (cd "$REPO" && node scripts/build-downloads.mjs >&2)
}

build_agent() {
  step "Building the guest agent"
  bash "$REPO/packages/server/native/build.sh" >&2
}

# build_image DIR: builds the Debian base image into DIR unless it is already there.
build_image() {
  step "Preparing the sandbox base image in $1 (the first build downloads Debian packages: several minutes)"
  MAGS_IMAGE_DIR="$1" node "$REPO/packages/server/dist/src/main.js" image build >&2
}

# ensure_moto: finds a python3 that runs moto's S3 server (the S3 blob store tests talk to it) and
# exports it as MAGS_TEST_PYTHON; installs Debian's python3-moto where the release has one.
ensure_moto() {
  local py
  for py in "${MAGS_TEST_PYTHON:-}" python3 /usr/bin/python3; do
    { [ -n "$py" ] && command -v "$py" >/dev/null 2>&1; } || continue
    if "$py" -c 'import moto.server' 2>/dev/null; then
      MAGS_TEST_PYTHON=$(command -v "$py")
      export MAGS_TEST_PYTHON
      return 0
    fi
  done
  if apt-cache show python3-moto >/dev/null 2>&1 || { apt-get update -q >&2 && apt-cache show python3-moto >/dev/null 2>&1; }; then
    ensure_packages python3-moto python3-flask python3-flask-cors
    if /usr/bin/python3 -c 'import moto.server' 2>/dev/null; then
      export MAGS_TEST_PYTHON=/usr/bin/python3
      return 0
    fi
  fi
  echo "The S3 blob store tests need moto's S3 server, and no python3 here can import moto.server" >&2
  echo "(this Debian release has no python3-moto package). Install it with: python3 -m pip install 'moto[server]'" >&2
  echo "or set MAGS_TEST_PYTHON to a Python that has it, then run this again." >&2
  exit 1
}

link_cli() {
  step "Linking the mags command into /usr/local/bin"
  chmod +x "$REPO/packages/cli/bin/mags.js"
  ln -sf "$REPO/packages/cli/bin/mags.js" /usr/local/bin/mags
}
