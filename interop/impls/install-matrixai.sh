#!/usr/bin/env bash
# Install @matrixai/quic (Cloudflare quiche as a prebuilt Node addon) for the interop matrix,
# outside purequic's dependencies: into $CACHE/matrixai with
# $CACHE = ${PURQUIC_CACHE:-<repo>/.cache}/interop. Unattended and idempotent: does nothing when
# the pinned version is already there. Needs the npm registry (npm's own cache is used when warm).
#
#   interop/impls/install-matrixai.sh
set -euo pipefail

VERSION=2.0.9
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${PURQUIC_CACHE:-$REPO/.cache}/interop
PREFIX=$CACHE/matrixai
PKG=$PREFIX/node_modules/@matrixai/quic/package.json

installed_version() { [ -f "$PKG" ] && node -p "require('$PKG').version" 2>/dev/null || true; }

if [ "$(installed_version)" = "$VERSION" ] && [ "${FORCE:-0}" != 1 ]; then
  echo "install-matrixai.sh: @matrixai/quic $VERSION up to date ($PREFIX)" >&2
  exit 0
fi
mkdir -p "$PREFIX" "$CACHE/logs"
t0=$(date +%s.%N)
# A package.json of its own, so that npm never walks up to purequic's.
[ -f "$PREFIX/package.json" ] || echo '{ "name": "purequic-interop-matrixai", "private": true }' >"$PREFIX/package.json"
if ! npm install --prefix "$PREFIX" --no-audit --no-fund --no-save "@matrixai/quic@$VERSION" \
  >"$CACHE/logs/matrixai-install.log" 2>&1; then
  tail -20 "$CACHE/logs/matrixai-install.log" >&2
  echo "install-matrixai.sh: ERROR: npm install @matrixai/quic@$VERSION failed (log: $CACHE/logs/matrixai-install.log)" >&2
  exit 1
fi
[ "$(installed_version)" = "$VERSION" ] || {
  echo "install-matrixai.sh: ERROR: @matrixai/quic $VERSION not found in $PREFIX after npm install" >&2
  exit 1
}
# The native addon must load (prebuilt for linux-x64 glibc).
(cd "$PREFIX" && node --input-type=module -e "await import('@matrixai/quic')") ||
  { echo "install-matrixai.sh: ERROR: @matrixai/quic does not load on this machine" >&2; exit 1; }
echo "install-matrixai.sh: @matrixai/quic $VERSION installed in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s -> $PREFIX" >&2
