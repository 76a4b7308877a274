#!/usr/bin/env bash
# Install what interop/chromium/*.ts needs, unattended and idempotently:
#   - Debian's `chromium` package (apt). The scripts drive the real binary
#     /usr/lib/chromium/chromium, not the /usr/bin/chromium shell wrapper.
#   - the npm devDependency `playwright-core` (pinned in package.json). It ships
#     no browser and downloads nothing when installed; this script only checks
#     that it is present in node_modules (run `npm ci` / `npm install` first)
#     and never runs `playwright install`.
#
#   interop/chromium/install.sh
#
# Needs root (or passwordless sudo) only when the chromium package is missing.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CHROMIUM_BIN=/usr/lib/chromium/chromium

die() {
  echo "chromium/install.sh: ERROR: $*" >&2
  exit 1
}
note() { echo "chromium/install.sh: $*" >&2; }

SUDO=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot install Debian packages"
  SUDO=(sudo -n)
fi

pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

if pkg_installed chromium && [ -x "$CHROMIUM_BIN" ]; then
  note "chromium already installed"
else
  note "installing Debian chromium (apt)"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold chromium
fi
[ -x "$CHROMIUM_BIN" ] || die "$CHROMIUM_BIN missing after installing chromium"
note "$("$CHROMIUM_BIN" --version 2>/dev/null || echo 'chromium (version unknown)')"

PW=$REPO/node_modules/playwright-core/package.json
if [ ! -f "$PW" ]; then
  die "playwright-core missing from node_modules: run 'npm ci' (or 'npm install') in $REPO"
fi
note "playwright-core $(node -p "require('$PW').version") present"
