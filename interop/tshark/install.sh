#!/usr/bin/env bash
# Install Debian's `tshark` (Wireshark's terminal front end) for interop/tshark/decrypt.ts,
# unattended and idempotently.
#
#   interop/tshark/install.sh
#
# The wireshark-common package asks (debconf) whether non-root users may capture; the
# answer is preseeded to "no" so the install never prompts. decrypt.ts captures on the
# loopback interface and so must run as root (or with CAP_NET_RAW on dumpcap).
# Needs root (or passwordless sudo) only when tshark is missing.
set -euo pipefail

die() {
  echo "tshark/install.sh: ERROR: $*" >&2
  exit 1
}
note() { echo "tshark/install.sh: $*" >&2; }

SUDO=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot install Debian packages"
  SUDO=(sudo -n)
fi

pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

if pkg_installed tshark && command -v tshark >/dev/null 2>&1; then
  note "tshark already installed"
else
  note "installing Debian tshark (apt)"
  echo "wireshark-common wireshark-common/install-setuid boolean false" |
    "${SUDO[@]}" debconf-set-selections
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold tshark
fi
command -v tshark >/dev/null 2>&1 || die "tshark missing after installing it"
command -v dumpcap >/dev/null 2>&1 || die "dumpcap missing after installing tshark"
note "$(tshark -v 2>/dev/null | head -1)"
