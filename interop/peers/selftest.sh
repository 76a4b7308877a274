#!/usr/bin/env bash
# Smoke test of the interop peers against each other, on loopback only.
#
#   interop/peers/selftest.sh [--no-install] [--no-runner] [--size BYTES] [--keep]
#
# 1. Builds the peers if needed (install.sh quinn quic-go; --no-install skips it).
# 2. Makes a throw-away ECDSA P-256 certificate (CN/SAN localhost, 127.0.0.1) and a
#    random file of --size bytes (default 10 MiB) plus a 1 KiB file.
# 3. For each pair client -> server of {quinn-peer, quicgo-peer} (4 pairs): starts the
#    server on 127.0.0.1 with an ephemeral port, fetches both files on one
#    connection with certificate verification (--ca, --server-name localhost),
#    checks the sha256 of each, checks that SSLKEYLOGFILE got a
#    SERVER_HANDSHAKE_TRAFFIC_SECRET line, and checks that a missing file makes
#    the client exit non-zero.
# 4. Unless --no-runner (or not root / no unshare, chroot, ip): runs quic-go's own
#    interop-runner endpoints (they insist on :443, /certs, /www, /downloads,
#    /logs) in a private network namespace, each in a chroot jail: quic-go
#    interop client -> quic-go interop server, quinn-peer client -> quic-go
#    interop server, quic-go interop client -> quinn-peer server.
# Every client runs under a timeout; all processes are killed at the end.
# Ends with "selftest: N passed, M failed"; exit status 0 only if all passed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${PURQUIC_CACHE:-$REPO/.cache}/interop

INSTALL=1
RUNNER=1
KEEP=0
SIZE=$((10 * 1024 * 1024))
CLIENT_TIMEOUT=60
while [ $# -gt 0 ]; do
  case $1 in
    --no-install) INSTALL=0 ;;
    --no-runner) RUNNER=0 ;;
    --keep) KEEP=1 ;;
    --size) SIZE=${2:?--size needs a value}; shift ;;
    -h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "selftest.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

die() {
  echo "selftest.sh: ERROR: $*" >&2
  exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

if [ "$INSTALL" = 1 ]; then
  "$HERE/install.sh" quinn quic-go >&2 || die "install.sh failed"
fi
[ -f "$CACHE/peers.env" ] || die "$CACHE/peers.env missing: run interop/peers/install.sh first"
# shellcheck disable=SC1091
. "$CACHE/peers.env"
: "${QUINN_PEER:?quinn-peer not built}" "${QUICGO_PEER:?quicgo-peer not built}"
for b in "$QUINN_PEER" "$QUICGO_PEER"; do [ -x "$b" ] || die "$b missing: run install.sh"; done
command -v openssl >/dev/null || die "openssl is needed"

T=$(mktemp -d "${TMPDIR:-/tmp}/purquic-peers-selftest.XXXXXX")
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  if [ "$KEEP" = 1 ]; then echo "selftest.sh: kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ fixtures

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -addext basicConstraints=critical,CA:FALSE \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -days 10 -nodes -subj /CN=localhost \
  -keyout "$T/key.pem" -out "$T/cert.pem" >"$T/openssl.log" 2>&1 || {
  cat "$T/openssl.log" >&2
  die "openssl req failed"
}
mkdir -p "$T/www"
BIG=random-$SIZE.bin
head -c "$SIZE" /dev/urandom >"$T/www/$BIG"
head -c 1024 /dev/urandom >"$T/www/small-1k.bin"
declare -A WANT
for f in "$BIG" small-1k.bin; do WANT[$f]=$(sha256sum "$T/www/$f" | cut -d' ' -f1); done

PASS=0
FAIL=0
ROWS=()
result() { # OK|FAIL text
  if [ "$1" = OK ]; then PASS=$((PASS + 1)); else FAIL=$((FAIL + 1)); fi
  ROWS+=("$(printf '%-4s %s' "$1" "$2")")
  printf '%-4s %s\n' "$1" "$2" >&2
}

# check_downloads DIR -> "ok" or a description of what is wrong
check_downloads() {
  local dir=$1 f got bad=""
  for f in "$BIG" small-1k.bin; do
    if [ ! -f "$dir/$f" ]; then
      bad+=" $f:missing"
      continue
    fi
    got=$(sha256sum "$dir/$f" | cut -d' ' -f1)
    [ "$got" = "${WANT[$f]}" ] || bad+=" $f:sha256-mismatch($(stat -c %s "$dir/$f")B)"
  done
  if [ -z "$bad" ]; then echo ok; else echo "${bad# }"; fi
}

# ------------------------------------------------------------------ our peers

SERVER_PID=
SERVER_PORT=
start_server() { # NAME BINARY
  local name=$1 bin=$2 log=$T/server-$1.log i
  "$bin" server --listen 127.0.0.1:0 --cert "$T/cert.pem" --key "$T/key.pem" --root "$T/www" \
    >"$log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  SERVER_PORT=
  for i in $(seq 1 100); do
    SERVER_PORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$log" | head -1)
    [ -n "$SERVER_PORT" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$log" >&2
  return 1
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null
}

run_pair() { # CLIENT_NAME CLIENT_BIN SERVER_NAME
  local cname=$1 cbin=$2 sname=$3 port=$SERVER_PORT
  local tag=$cname-to-$sname out=$T/out-$1-to-$3 keys=$T/keys-$1-to-$3.log
  local url=https://127.0.0.1:$port t0 rc wall res files keylog missing
  t0=$(now)
  SSLKEYLOGFILE=$keys timeout -k 5 "$CLIENT_TIMEOUT" "$cbin" client --ca "$T/cert.pem" \
    --server-name localhost --timeout $((CLIENT_TIMEOUT - 5)) --output "$out" \
    "$url/$BIG" "$url/small-1k.bin" >"$T/client-$tag.log" 2>&1
  rc=$?
  wall=$(since "$t0")
  res=$(grep '^RESULT ' "$T/client-$tag.log" | tail -1)
  files=$(check_downloads "$out")
  keylog=missing
  grep -q '^SERVER_HANDSHAKE_TRAFFIC_SECRET ' "$keys" 2>/dev/null && keylog=ok
  # A missing file must make the client fail (server resets the stream).
  timeout -k 5 30 "$cbin" client --insecure --timeout 20 "$url/small-1k.bin" "$url/no-such-file" \
    >"$T/client-$tag-missing.log" 2>&1
  if [ $? -ne 0 ] && grep -q 'ok=0 files=1/2' "$T/client-$tag-missing.log"; then missing=ok; else missing=bad; fi
  local elapsed mbit
  elapsed=$(sed -n 's/.* elapsed_s=\([0-9.]*\).*/\1/p' <<<"$res")
  mbit=$(sed -n 's/.* mbit_s=\([0-9.]*\).*/\1/p' <<<"$res")
  local text
  text=$(printf '%-32s exit=%s wall=%5ss transfer=%ss (%s Mbit/s) sha256=%s keylog=%s missing-file=%s' \
    "$cname client -> $sname server" "$rc" "$wall" "${elapsed:-?}" "${mbit:-?}" "$files" "$keylog" "$missing")
  if [ "$rc" = 0 ] && [ "$files" = ok ] && [ "$keylog" = ok ] && [ "$missing" = ok ]; then
    result OK "$text"
  else
    result FAIL "$text"
    sed 's/^/    client: /' "$T/client-$tag.log" | tail -20 >&2
  fi
}

echo "selftest.sh: file $BIG sha256 ${WANT[$BIG]}" >&2
declare -A PEER=([quinn]=$QUINN_PEER [quic-go]=$QUICGO_PEER)
for sname in quinn quic-go; do
  if ! start_server "$sname" "${PEER[$sname]}"; then
    result FAIL "$sname server did not start (log above)"
    continue
  fi
  echo "selftest.sh: $sname server on 127.0.0.1:$SERVER_PORT (pid $SERVER_PID)" >&2
  for cname in quinn quic-go; do
    run_pair "$cname" "${PEER[$cname]}" "$sname"
  done
  kill -0 "$SERVER_PID" 2>/dev/null || result FAIL "$sname server died during the run"
  stop_server
done

# ------------------------------------------------------------------ quic-go's interop endpoints

runner_endpoints() {
  local why=""
  [ "$(id -u)" = 0 ] || why="not root"
  for c in unshare chroot ip; do command -v "$c" >/dev/null 2>&1 || why+=" no $c"; done
  [ -x "${QUICGO_INTEROP_SERVER:-}" ] && [ -x "${QUICGO_INTEROP_CLIENT:-}" ] || why+=" quic-go interop endpoints not built"
  if [ -n "$why" ]; then
    echo "selftest.sh: skipping quic-go interop endpoints:$why" >&2
    ROWS+=("SKIP quic-go interop endpoints ($why)")
    return 0
  fi
  # Jails with the runner's layout; the Go binaries are static (CGO_ENABLED=0).
  local j
  for j in jail-server jail-client; do
    mkdir -p "$T/$j"/{bin,certs,www,downloads,logs}
    cp "$T/cert.pem" "$T/$j/certs/cert.pem"
    cp "$T/key.pem" "$T/$j/certs/priv.key"
    cp "$T/cert.pem" "$T/$j/certs/ca.pem"
  done
  cp "$QUICGO_INTEROP_SERVER" "$T/jail-server/bin/server"
  cp "$QUICGO_INTEROP_CLIENT" "$T/jail-client/bin/client"
  cp "$T/www/"* "$T/jail-server/www/"
  cat >"$T/netns.sh" <<'EOF'
# Runs inside a private network namespace (only lo) and PID namespace.
set -u
ip link set lo up || exit 99
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
wait_udp443() {
  for i in $(seq 1 100); do
    ss -Huln 'sport = :443' 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  return 1
}
U=https://127.0.0.1:443
# A: quic-go interop server (TESTCASE=transfer, /www, /certs, :443)
( cd / && TESTCASE=transfer QLOGDIR=/logs/qlog exec chroot "$T/jail-server" /bin/server ) >"$T/runner-server.log" 2>&1 &
SP=$!
if wait_udp443; then
  t0=$(now)
  rm -rf "$T/jail-client/downloads/"*
  TESTCASE=transfer QLOGDIR=/logs/qlog SSLKEYLOGFILE=/logs/keys.log timeout -k 5 "$CLIENT_TIMEOUT" \
    chroot "$T/jail-client" /bin/client "$U/$BIG" "$U/small-1k.bin" >"$T/runner-client-A.log" 2>&1
  echo "A rc=$? wall=$(since "$t0")"
  mkdir -p "$T/runner-A" && mv "$T/jail-client/downloads/"* "$T/runner-A/" 2>/dev/null
  cp "$T/jail-client/logs/keys.log" "$T/runner-A.keys" 2>/dev/null
  t0=$(now)
  timeout -k 5 "$CLIENT_TIMEOUT" "$QUINN_PEER" client --ca "$T/cert.pem" --server-name localhost \
    --timeout $((CLIENT_TIMEOUT - 5)) --output "$T/runner-B" "$U/$BIG" "$U/small-1k.bin" >"$T/runner-client-B.log" 2>&1
  echo "B rc=$? wall=$(since "$t0")"
else
  echo "A rc=server-did-not-start wall=0"
  echo "B rc=server-did-not-start wall=0"
fi
kill "$SP" 2>/dev/null; wait "$SP" 2>/dev/null
# C: quinn-peer server on :443 <- quic-go interop client
"$QUINN_PEER" server --listen 127.0.0.1:443 --cert "$T/cert.pem" --key "$T/key.pem" --root "$T/www" \
  >"$T/runner-quinn-server.log" 2>&1 &
SP=$!
if wait_udp443; then
  t0=$(now)
  rm -rf "$T/jail-client/downloads/"*
  TESTCASE=transfer QLOGDIR=/logs/qlog timeout -k 5 "$CLIENT_TIMEOUT" \
    chroot "$T/jail-client" /bin/client "$U/$BIG" "$U/small-1k.bin" >"$T/runner-client-C.log" 2>&1
  echo "C rc=$? wall=$(since "$t0")"
  mkdir -p "$T/runner-C" && mv "$T/jail-client/downloads/"* "$T/runner-C/" 2>/dev/null
else
  echo "C rc=server-did-not-start wall=0"
fi
kill "$SP" 2>/dev/null; wait "$SP" 2>/dev/null
# Unsupported test case must exit 127 (the runner's image check).
TESTCASE=no-such-test QLOGDIR=/logs/qlog timeout 10 chroot "$T/jail-client" /bin/client >/dev/null 2>&1
echo "D rc=$? wall=0"
exit 0
EOF
  local out
  out=$(T=$T BIG=$BIG QUINN_PEER=$QUINN_PEER CLIENT_TIMEOUT=$CLIENT_TIMEOUT \
    timeout -k 5 $((4 * CLIENT_TIMEOUT)) unshare --net --pid --fork --kill-child bash "$T/netns.sh" 2>&1)
  local line rc wall name dir files failed=0
  for key in A B C D; do
    line=$(grep "^$key rc=" <<<"$out" | tail -1)
    rc=$(sed -n 's/.* rc=\([^ ]*\).*/\1/p' <<<"$line")
    wall=$(sed -n 's/.* wall=\([^ ]*\).*/\1/p' <<<"$line")
    case $key in
      A) name="quic-go interop client -> quic-go interop server"; dir=$T/runner-A ;;
      B) name="quinn client -> quic-go interop server"; dir=$T/runner-B ;;
      C) name="quic-go interop client -> quinn server"; dir=$T/runner-C ;;
      D) name="quic-go interop client, unknown TESTCASE -> exit 127" ;;
    esac
    if [ "$key" = D ]; then
      if [ "$rc" = 127 ]; then result OK "$name"; else result FAIL "$name (got ${rc:-none})"; fi
      continue
    fi
    files=$(check_downloads "$dir")
    local text
    text=$(printf '%-50s exit=%s wall=%5ss sha256=%s' "$name" "${rc:-none}" "${wall:-?}" "$files")
    if [ "$key" = A ]; then
      if grep -q '^SERVER_HANDSHAKE_TRAFFIC_SECRET ' "$T/runner-A.keys" 2>/dev/null; then
        text+=" keylog=ok"
      else
        text+=" keylog=missing"
        files=bad
      fi
    fi
    if [ "$rc" = 0 ] && [ "$files" = ok ]; then
      result OK "$text"
    else
      result FAIL "$text"
      failed=1
    fi
  done
  if [ "$failed" = 1 ]; then
    sed 's/^/    netns: /' <<<"$out" >&2
    for f in "$T"/runner-*.log; do [ -f "$f" ] && head -5 "$f" | sed "s|^|    $(basename "$f"): |" >&2; done
  fi
}

if [ "$RUNNER" = 1 ]; then runner_endpoints; fi

echo
echo "interop peers selftest ($((SIZE)) bytes + 1 KiB per run, loopback):"
for r in "${ROWS[@]}"; do echo "  $r"; done
echo "selftest: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
