#!/bin/sh
# Installs the Debian packages a make target needs, when they are missing.
# As root it runs apt-get itself (apt-get update once, on a fresh machine);
# otherwise it prints the exact command and fails.
# Usage: scripts/deps.sh GROUP... where GROUP is build, test, bench,
# format, fuzz, cross, jemalloc, mimalloc, libc, or peers (the servers and
# clients the benchmark suites measure eddy against: make bench-deps).
set -eu
pkgs=""
for group in "$@"; do
    case "$group" in
        build) pkgs="$pkgs gcc make pkg-config zlib1g-dev libpq-dev" ;;
        jemalloc) pkgs="$pkgs libjemalloc-dev" ;;
        mimalloc) pkgs="$pkgs libmimalloc-dev" ;;
        libc) ;;
        format) pkgs="$pkgs clang-format" ;;
        cross) pkgs="$pkgs gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" ;;
        test) pkgs="$pkgs libcriterion-dev valgrind python3 curl wrk python3-aiohttp postgresql" ;;
        bench) pkgs="$pkgs g++ libbenchmark-dev libboost-context-dev valgrind python3 python3-aiofiles" ;;
        # the serve suite's load generator and peers, the plots, and the db
        # suite's asyncpg and server (which also gives it pgbench)
        peers) pkgs="$pkgs wrk nginx-light h2o python3-aiohttp python3-uvloop python3-requests gnuplot-nox python3-asyncpg postgresql" ;;
        fuzz) pkgs="$pkgs clang libclang-rt-dev" ;;
        *) echo "deps.sh: unknown group '$group'" >&2; exit 2 ;;
    esac
done
missing=""
for p in $pkgs; do
    case " $missing " in *" $p "*) continue ;; esac
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "eddy needs these Debian packages. Install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing" >&2
# A fresh machine has empty package lists: update once before installing.
if ! apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi
