#!/usr/bin/env bash
# Runs the HTTP Working Group's cache test suite (github.com/http-tests/cache-tests,
# the suite behind cache-tests.fyi) against `netrun proxy`, at a pinned version,
# and prints netrun's figures beside the published nginx, Varnish, Squid and
# Traffic Server results of that same version. Loopback only.
#
#   bench/cache-tests.sh                      # default proxy flags
#   bench/cache-tests.sh --cache-ttl 60s      # extra flags go to `netrun proxy`
#   bench/cache-tests.sh -i freshness-none    # one test, with the suite's request/response dump
#
# Environment:
#   CACHE_TESTS_DIR   where the suite is installed (default target/cache-tests)
#   CACHE_TESTS_SRC   where to take the suite from when github.com cannot be reached:
#                     a local git clone or mirror of http-tests/cache-tests (the pinned
#                     commit is taken from it), or a plain copy of the suite's files at
#                     that commit (a folder with tests/index.mjs; its SNAPSHOT file, if
#                     any, must name the pinned commit)
#   CACHE_TESTS_MIN_PASS  fail (exit 1) when fewer required tests pass (default 0: only
#                     a required test that fails outright fails the run)
#   NETRUN            the netrun binary to test (default: cargo build, target/debug/netrun)
#   CACHE_TESTS_UPSTREAM_H2  1: the proxy fetches from the origin over HTTP/2 (h2c by
#                     prior knowledge, through bench/cache-tests-h2-relay.mjs, a
#                     transparent HTTP/2 front for the suite's HTTP/1.1 origin)
#   CACHE_TESTS_CLIENT_H2  the suite's client speaks HTTP/2 to the proxy under test:
#                     1 or h2c: h2c by prior knowledge (undici's H2CClient); tls: HTTPS
#                     with ALPN h2 only (the proxy runs with --tls, the client trusts
#                     its CA). Combines with CACHE_TESTS_UPSTREAM_H2=1 (HTTP/2 end to end).
#
# Exit status: 0 when no required test fails outright (and at least
# CACHE_TESTS_MIN_PASS pass), 1 when one does (or fewer pass), 3 when the suite
# cannot be installed or started.
set -euo pipefail
cd "$(dirname "$0")/.."

# The suite's version: package.json says 0.4.5 for years, so the commit pins it.
SUITE_REPO=https://github.com/http-tests/cache-tests
SUITE_COMMIT=b55b8bda3dbb8c927c04e85bd8d496a8caa3e4ba # 2026-07-20, version 0.4.5
# The one package its command-line client needs (for the interim-response tests).
UNDICI_VERSION=7.30.2

DIR=${CACHE_TESTS_DIR:-target/cache-tests}
SUITE=$DIR/suite-$SUITE_COMMIT
ONE_TEST=""
if [[ ${1:-} == "-i" ]]; then
    ONE_TEST=${2:?"-i needs a test id, e.g. -i freshness-none"}
    shift 2
fi

die() { echo "cache-tests: $*" >&2; exit 3; }

# node 20.18 or later (undici 7); as root on Debian, install it when missing.
node_ok() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
        node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=18)?0:1)'
}
if ! node_ok; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    fi
    node_ok || die "needs node 20.18 or later and npm on PATH (https://nodejs.org)"
fi

install_suite() {
    [[ -f $SUITE/.installed ]] && return 0
    rm -rf "$SUITE" && mkdir -p "$SUITE"
    local src=${CACHE_TESTS_SRC:-}
    if [[ -n $src && ( -e $src/.git || ( -f $src/HEAD && -d $src/objects ) ) ]]; then
        # A git clone or a bare mirror: take the pinned commit from it.
        git -C "$src" archive "$SUITE_COMMIT" | tar -x -C "$SUITE" ||
            die "commit $SUITE_COMMIT not found in CACHE_TESTS_SRC=$src"
    elif [[ -n $src ]]; then
        # A plain copy of the suite's files: it must be the pinned commit.
        [[ -f $src/tests/index.mjs ]] ||
            die "CACHE_TESTS_SRC=$src is neither a git clone nor a copy of the suite (no tests/index.mjs)"
        if [[ -f $src/SNAPSHOT ]] && ! grep -q "$SUITE_COMMIT" "$src/SNAPSHOT"; then
            die "CACHE_TESTS_SRC=$src/SNAPSHOT does not name the pinned commit $SUITE_COMMIT"
        fi
        cp -R "$src/." "$SUITE/" && chmod -R u+w "$SUITE" || die "could not copy CACHE_TESTS_SRC=$src"
    else
        curl -fsSL --retry 2 "https://codeload.github.com/http-tests/cache-tests/tar.gz/$SUITE_COMMIT" |
            tar -xz --strip-components=1 -C "$SUITE" ||
            die "could not download $SUITE_REPO at $SUITE_COMMIT; set CACHE_TESTS_SRC to a local clone"
    fi
    [[ -f $SUITE/tests/index.mjs ]] || die "$SUITE holds no tests/index.mjs: not the cache-tests suite"
    # undici goes next to the suite, not into it: node finds it walking up, and
    # the suite's own package.json (linters, site tooling) is never installed.
    echo '{"private": true}' >"$DIR/package.json"
    (cd "$DIR" && npm install --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
        --loglevel=error "undici@$UNDICI_VERSION" >/dev/null) || die "npm could not install undici@$UNDICI_VERSION"
    touch "$SUITE/.installed"
}
install_suite
DIR=$(cd "$DIR" && pwd)
SUITE=$DIR/suite-$SUITE_COMMIT

if [[ -z ${NETRUN:-} ]]; then
    cargo build --quiet --locked
    NETRUN=${CARGO_TARGET_DIR:-target}/debug/netrun
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Waits (up to 10 s) for a line matching $2 in log $1 and prints it.
wait_line() {
    for _ in $(seq 100); do
        if grep -m1 -E "$2" "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "cache-tests: gave up waiting for '$2' in $1:" >&2
    cat "$1" >&2
    exit 3
}

# The suite's origin listens on every interface when given a port; a preload
# keeps it on loopback.
cat >"$WORK/loopback.mjs" <<'EOF'
import net from 'node:net'
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  const portOnly = ['number', 'string'].includes(typeof args[0]) && typeof args[1] !== 'string'
  if (portOnly) args.splice(1, 0, '127.0.0.1')
  return listen.apply(this, args)
}
EOF
(cd "$SUITE" && exec env npm_config_protocol=http npm_config_port=0 npm_config_pidfile="$WORK/server.pid" \
    node --import "$WORK/loopback.mjs" test-engine/server/server.mjs) >"$WORK/origin.log" 2>&1 &
PIDS+=($!)
ORIGIN=$(wait_line "$WORK/origin.log" '^Listening on' | sed -E 's#.*//([^/]+)/.*#\1#')

UPSTREAM=$ORIGIN
UPSTREAM_FLAGS=()
if [[ ${CACHE_TESTS_UPSTREAM_H2:-0} == 1 ]]; then
    # The suite's origin speaks HTTP/1.1 only: a transparent relay in front
    # of it takes HTTP/2 (h2c by prior knowledge), so the proxy under test
    # fetches, revalidates and streams over HTTP/2. The relay passes 1xx on
    # and resets the stream when the origin closes without answering, as an
    # HTTP/2 origin would (a 502 from a proxy would hide the close).
    node bench/cache-tests-h2-relay.mjs "$ORIGIN" >"$WORK/relay.log" 2>&1 &
    PIDS+=($!)
    UPSTREAM=$(wait_line "$WORK/relay.log" '^relay h2c://' | sed -E 's#^relay h2c://([^ ]+).*#\1#')
    UPSTREAM_FLAGS=(--upstream-http2)
    echo "upstream over HTTP/2 (h2c): through bench/cache-tests-h2-relay.mjs at $UPSTREAM"
fi
SCHEME=http
CLIENT_FLAGS=()
NODE_CLIENT=(node --no-warnings)
CLIENT_H2=${CACHE_TESTS_CLIENT_H2:-0}
case $CLIENT_H2 in
0) ;;
1 | h2c) CLIENT_H2=h2c ;;
tls)
    SCHEME=https
    CLIENT_FLAGS=(--tls --ca-out "$WORK/ca.pem")
    ;;
*) die "CACHE_TESTS_CLIENT_H2=$CLIENT_H2: use 1 (or h2c) or tls" ;;
esac
if [[ $CLIENT_H2 != 0 ]]; then
    NODE_CLIENT+=(--import "$PWD/bench/cache-tests-h2-client.mjs")
    export CACHE_TESTS_UNDICI=$DIR/node_modules/undici/index.js CACHE_TESTS_CA=$WORK/ca.pem \
        CACHE_TESTS_CLIENT_H2=$CLIENT_H2
fi
"$NETRUN" proxy --http 127.0.0.1:0 --udp 127.0.0.1:0 --upstream "$UPSTREAM" "${UPSTREAM_FLAGS[@]}" \
    "${CLIENT_FLAGS[@]}" --udp-upstream 127.0.0.1:9 "$@" >"$WORK/proxy.log" 2>&1 &
PIDS+=($!)
PROXY=$(wait_line "$WORK/proxy.log" "^proxy $SCHEME://" | sed -E 's#^proxy https?://([^ ]+) .*#\1#')
echo "suite $SUITE_REPO at ${SUITE_COMMIT:0:7} (0.4.5, 2026-07-20); origin $ORIGIN; netrun proxy $SCHEME://$PROXY ${*:-(default flags)}"
if [[ $CLIENT_H2 != 0 ]]; then echo "client to proxy over HTTP/2 ($CLIENT_H2)"; fi

RESULTS=$DIR/results.json
cd "$SUITE"
if [[ -n $ONE_TEST ]]; then
    npm_config_base="$SCHEME://$PROXY" npm_config_id="$ONE_TEST" timeout 120 "${NODE_CLIENT[@]}" test-engine/cli.mjs
    exit 0
fi
start=$(date +%s)
npm_config_base="$SCHEME://$PROXY" npm_package_config_id="" timeout 600 \
    "${NODE_CLIENT[@]}" test-engine/cli.mjs >"$RESULTS" || die "the suite's client failed; see $RESULTS"
echo "ran in $(($(date +%s) - start)) s; results in $RESULTS"
echo
node "$OLDPWD/bench/cache-tests-summary.mjs" "$SUITE" "$RESULTS" "netrun proxy ${*:-}" "${CACHE_TESTS_MIN_PASS:-0}"
