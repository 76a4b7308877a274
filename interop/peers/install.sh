#!/usr/bin/env bash
# Install and build the real QUIC peers of purequic's interop suite, offline,
# unattended and idempotently.
#
#   interop/peers/install.sh [quinn|quic-go|ngtcp2|matrixai|all]...     (default: all)
#
# Everything it builds goes under $CACHE = ${PURQUIC_CACHE:-<repo>/.cache}/interop
# (never into git):
#   $CACHE/bin/quinn-peer              our hq-interop peer on quinn 0.9 (Rust)
#   $CACHE/bin/quicgo-peer             our hq-interop peer on quic-go 0.29 (Go)
#   $CACHE/bin/quicgo-interop-server   quic-go's own interop-runner endpoints
#   $CACHE/bin/quicgo-interop-client
#   $CACHE/peers.env                   shell-sourceable paths of every built peer
#   $CACHE/logs/*.log                  build logs
# ngtcp2 comes from Debian as /usr/bin/gtlsclient and /usr/sbin/gtlsserver.
# matrixai: @matrixai/quic (quiche) from npm into $CACHE/matrixai, by
# interop/impls/install-matrixai.sh (under `all` a failure there is only a warning).
#
# A peer is rebuilt only when its binary is missing or its stamp changed; the
# stamp hashes our peer sources, the toolchain version and the versions of the
# Debian packages it builds from. FORCE=1 rebuilds anyway.
# Needs root (or sudo) only when Debian packages are missing.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE_ROOT=${PURQUIC_CACHE:-$REPO/.cache}
CACHE=$CACHE_ROOT/interop
BIN=$CACHE/bin
LOGS=$CACHE/logs
STAMPS=$CACHE/stamps
# Bump when the build recipe below changes in a way that needs a rebuild.
RECIPE=1

die() {
  echo "install.sh: ERROR: $*" >&2
  exit 1
}
note() { echo "install.sh: $*" >&2; }

usage() {
  sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

# ------------------------------------------------------------------ apt

APT_UPDATED=0
SUDO=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); fi
fi

pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

apt_ensure() {
  local missing=() p
  for p in "$@"; do
    pkg_installed "$p" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] && [ ${#SUDO[@]} -eq 0 ]; then
    die "Debian packages missing (${missing[*]}) and not root: run as root or install them: apt-get install -y ${missing[*]}"
  fi
  note "apt-get install ${missing[*]}"
  mkdir -p "$LOGS"
  if [ "$APT_UPDATED" = 0 ]; then
    "${SUDO[@]}" apt-get update >"$LOGS/apt-update.log" 2>&1 ||
      { tail -20 "$LOGS/apt-update.log" >&2; die "apt-get update failed (log: $LOGS/apt-update.log)"; }
    APT_UPDATED=1
  fi
  if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" \
    >"$LOGS/apt-install.log" 2>&1; then
    tail -20 "$LOGS/apt-install.log" >&2
    die "apt-get install ${missing[*]} failed (log: $LOGS/apt-install.log)"
  fi
  for p in "${missing[@]}"; do
    pkg_installed "$p" || die "package $p still not installed after apt-get install"
  done
}

pkg_versions() { dpkg-query -W -f='${Package} ${Version}\n' "$@" 2>/dev/null | sort; }

# ------------------------------------------------------------------ stamps

# stamp NAME: prints the wanted stamp content on stdin -> compares with the stored one
stamp_ok() { # NAME WANTED_HASH BINARY...
  local name=$1 want=$2 b
  shift 2
  [ "${FORCE:-0}" = 1 ] && return 1
  for b in "$@"; do [ -x "$b" ] || return 1; done
  [ -f "$STAMPS/$name" ] && [ "$(cat "$STAMPS/$name")" = "$want" ]
}
stamp_write() { mkdir -p "$STAMPS" && echo "$2" >"$STAMPS/$1"; }

hash_files() { # DIR FILE... -> one hash over names and contents
  local dir=$1
  shift
  (cd "$dir" && sha256sum -- "$@") | sha256sum | cut -d' ' -f1
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ------------------------------------------------------------------ quinn

find_cargo() {
  if command -v cargo >/dev/null 2>&1; then
    command -v cargo
  elif [ -x "$HOME/.cargo/bin/cargo" ]; then
    echo "$HOME/.cargo/bin/cargo"
  else
    return 1
  fi
}

build_quinn() {
  apt_ensure librust-quinn-dev librust-rustls-pemfile-dev librust-anyhow-dev librust-bytes-dev librust-tokio-dev
  local cargo
  if ! cargo=$(find_cargo); then
    note "no cargo on PATH: installing Debian's cargo"
    apt_ensure cargo
    cargo=$(find_cargo) || die "cargo not found even after installing Debian's cargo"
  fi
  [ -d /usr/share/cargo/registry/quinn-0.9.3 ] || ls -d /usr/share/cargo/registry/quinn-0.9* >/dev/null 2>&1 ||
    die "Debian's quinn 0.9 crate sources are not in /usr/share/cargo/registry"

  local src=$HERE/quinn
  local files=(Cargo.toml .cargo/config.toml src/main.rs)
  local rustc=rustc
  [ -x "$(dirname "$cargo")/rustc" ] && rustc=$(dirname "$cargo")/rustc
  local rustc_v
  rustc_v=$("$cargo" --version && "$rustc" --version) || die "quinn: '$cargo --version' / '$rustc --version' failed"
  local want
  want=$(
    {
      echo "recipe $RECIPE"
      hash_files "$src" "${files[@]}"
      echo "$rustc_v"
      pkg_versions librust-quinn-dev librust-quinn-proto-dev librust-rustls-dev librust-ring-dev \
        librust-tokio-dev librust-rustls-pemfile-dev librust-webpki-dev
    } | sha256sum | cut -d' ' -f1
  )
  if stamp_ok quinn "$want" "$BIN/quinn-peer"; then
    note "quinn: up to date ($BIN/quinn-peer)"
    return 0
  fi
  note "quinn: building quinn-peer (clean build takes 1-3 min on 2 cores; log: $LOGS/quinn-build.log)"
  # Build from a copy, so that Cargo.lock and target/ never land in the work tree.
  local work=$CACHE/src/quinn
  rm -rf "$work"
  mkdir -p "$work/src" "$work/.cargo" "$BIN" "$LOGS"
  cp "$src/Cargo.toml" "$work/"
  cp "$src/.cargo/config.toml" "$work/.cargo/"
  cp "$src/src/main.rs" "$work/src/"
  local t0
  t0=$(now)
  if ! (cd "$work" && CARGO_TARGET_DIR=$CACHE/quinn-target "$cargo" build --release --offline) \
    >"$LOGS/quinn-build.log" 2>&1; then
    tail -30 "$LOGS/quinn-build.log" >&2
    die "quinn: cargo build failed (log: $LOGS/quinn-build.log)"
  fi
  install -m 0755 "$CACHE/quinn-target/release/quinn-peer" "$BIN/quinn-peer"
  "$BIN/quinn-peer" --help >/dev/null || die "quinn: built binary does not run"
  stamp_write quinn "$want"
  note "quinn: built in $(since "$t0") s -> $BIN/quinn-peer"
}

# ------------------------------------------------------------------ quic-go

find_go() {
  # quic-go 0.29 (qtls-go1-19) only builds with Go 1.19: prefer Debian's.
  local g
  for g in /usr/lib/go-1.19/bin/go "$(command -v go 2>/dev/null || true)"; do
    [ -n "$g" ] && [ -x "$g" ] && "$g" version 2>/dev/null | grep -q ' go1\.19' && { echo "$g"; return 0; }
  done
  return 1
}

build_quicgo() {
  apt_ensure golang-go golang-github-lucas-clemente-quic-go-dev
  local go
  go=$(find_go) || die "quic-go: Go 1.19 not found (Debian 12's golang-go is 1.19; quic-go 0.29 refuses newer Go)"
  local qsrc=/usr/share/gocode/src/github.com/lucas-clemente/quic-go
  [ -d "$qsrc/interop/server" ] || die "quic-go: $qsrc/interop/server missing (package golang-github-lucas-clemente-quic-go-dev)"

  local want
  want=$(
    {
      echo "recipe $RECIPE"
      hash_files "$HERE/quicgo" main.go
      "$go" version
      dpkg-query -W -f='${Package} ${Version}\n' 'golang-*' 2>/dev/null | sort
    } | sha256sum | cut -d' ' -f1
  )
  local bins=("$BIN/quicgo-peer" "$BIN/quicgo-interop-server" "$BIN/quicgo-interop-client")
  if stamp_ok quic-go "$want" "${bins[@]}"; then
    note "quic-go: up to date ($BIN/quicgo-peer, quicgo-interop-server, quicgo-interop-client)"
    return 0
  fi
  note "quic-go: building (log: $LOGS/quic-go-build.log)"
  mkdir -p "$BIN" "$LOGS" "$CACHE/gopath"
  local t0
  t0=$(now)
  local env=(env GO111MODULE=off GOPATH="$CACHE/gopath:/usr/share/gocode" GOCACHE="$CACHE/gocache"
    GOFLAGS= CGO_ENABLED=0 GOTOOLCHAIN=local)
  {
    (cd "$HERE/quicgo" && "${env[@]}" "$go" build -o "$BIN/quicgo-peer" main.go) &&
      (cd "$CACHE" && "${env[@]}" "$go" build -o "$BIN/quicgo-interop-server" github.com/lucas-clemente/quic-go/interop/server) &&
      (cd "$CACHE" && "${env[@]}" "$go" build -o "$BIN/quicgo-interop-client" github.com/lucas-clemente/quic-go/interop/client)
  } >"$LOGS/quic-go-build.log" 2>&1 || {
    tail -30 "$LOGS/quic-go-build.log" >&2
    die "quic-go: go build failed (log: $LOGS/quic-go-build.log)"
  }
  "$BIN/quicgo-peer" --help >/dev/null || die "quic-go: built quicgo-peer does not run"
  stamp_write quic-go "$want"
  note "quic-go: built in $(since "$t0") s -> $BIN/quicgo-peer, $BIN/quicgo-interop-server, $BIN/quicgo-interop-client"
}

# ------------------------------------------------------------------ ngtcp2

check_ngtcp2() {
  apt_ensure ngtcp2-client ngtcp2-server
  local b
  for b in /usr/bin/gtlsclient /usr/sbin/gtlsserver; do
    [ -x "$b" ] || die "ngtcp2: $b missing after installing ngtcp2-client/ngtcp2-server"
    "$b" --help >/dev/null 2>&1 || die "ngtcp2: '$b --help' failed"
  done
  note "ngtcp2: ok ($(pkg_versions ngtcp2-client | cut -d' ' -f2)): /usr/bin/gtlsclient, /usr/sbin/gtlsserver (h3 only)"
}

# ------------------------------------------------------------------ main

write_env() {
  local f=$CACHE/peers.env
  {
    echo "# Written by interop/peers/install.sh; source it to find the peers."
    echo "PURQUIC_INTEROP_CACHE='$CACHE'"
    [ -x "$BIN/quinn-peer" ] && echo "QUINN_PEER='$BIN/quinn-peer'"
    [ -x "$BIN/quicgo-peer" ] && echo "QUICGO_PEER='$BIN/quicgo-peer'"
    [ -x "$BIN/quicgo-interop-server" ] && echo "QUICGO_INTEROP_SERVER='$BIN/quicgo-interop-server'"
    [ -x "$BIN/quicgo-interop-client" ] && echo "QUICGO_INTEROP_CLIENT='$BIN/quicgo-interop-client'"
    [ -x /usr/bin/gtlsclient ] && echo "NGTCP2_CLIENT='/usr/bin/gtlsclient'"
    [ -x /usr/sbin/gtlsserver ] && echo "NGTCP2_SERVER='/usr/sbin/gtlsserver'"
  } >"$f.tmp"
  mv "$f.tmp" "$f"
}

main() {
  local targets=("$@") t
  [ ${#targets[@]} -eq 0 ] && targets=(all)
  for t in "${targets[@]}"; do
    case $t in
      quinn | quic-go | quicgo | ngtcp2 | matrixai | all) ;;
      -h | --help) usage 0 ;;
      *) note "unknown peer '$t'"; usage 2 ;;
    esac
  done
  mkdir -p "$CACHE" "$BIN" "$LOGS" || die "cannot create $CACHE"
  command -v flock >/dev/null 2>&1 || die "flock (util-linux) is needed"
  exec 9>"$CACHE/.install.lock"
  flock -w 1800 9 || die "another install.sh holds $CACHE/.install.lock"

  local t0
  t0=$(now)
  for t in "${targets[@]}"; do
    case $t in
      quinn) build_quinn ;;
      quic-go | quicgo) build_quicgo ;;
      ngtcp2) check_ngtcp2 ;;
      matrixai) bash "$REPO/interop/impls/install-matrixai.sh" || die "matrixai: install-matrixai.sh failed" ;;
      all)
        build_quinn; build_quicgo; check_ngtcp2
        bash "$REPO/interop/impls/install-matrixai.sh" || note "WARNING: @matrixai/quic not installed (the matrix skips it)"
        ;;
    esac
  done
  write_env
  note "done in $(since "$t0") s; peers listed in $CACHE/peers.env:"
  sed -n "s/^\([A-Z0-9_]*\)=/  \1=/p" "$CACHE/peers.env"
}

main "$@"
