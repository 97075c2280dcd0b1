#!/bin/sh
# tests/db/pg_server.sh: a throwaway PostgreSQL for the db tests, one per
# test run (initdb costs seconds, so not one per test).
#
#   tests/db/pg_server.sh run CMD [ARG...]   start a server, run CMD, stop it
#   tests/db/pg_server.sh spare start|stop   the spare cluster (inside run)
#   tests/db/pg_server.sh start              start one and leave it running:
#                                            prints its EDDY_PG_* variables,
#                                            one NAME=VALUE a line
#   tests/db/pg_server.sh stop DIR           stop it (DIR: its EDDY_PG_DIR)
#
# run: initdb into a fresh directory under /tmp (as the `postgres` user when
# running as root: initdb and postgres refuse root), with trust for the
# superuser `postgres` and scram-sha-256 for the role eddy_pw (password
# eddy-secret), a database eddy_test, no fsync; copies that cluster into a
# spare one (another port) that the fault tests stop and start at will
# without disturbing the tests that run beside them; starts the main one
# listening on a Unix socket in that directory and on 127.0.0.1 at a free
# port; runs CMD with
#   EDDY_PG_CONNINFO     conninfo of eddy_test as postgres, over the socket
#   EDDY_PG_HOST         the socket directory (the data directory); EDDY_PG_PORT
#                        the TCP port
#   EDDY_PG_SPARE_HOST   the spare's socket directory; EDDY_PG_SPARE_PORT
#   EDDY_PG_SERVER       this script (for `spare start|stop`)
# and stops every server and removes the directory when CMD ends, also on
# Ctrl-C (trap). When no server can be started, CMD still runs, with
# EDDY_PG_SKIP set to the reason: the db tests report themselves skipped.
# CMD's exit status is the script's.
set -u

log() { echo "pg_server: $*" >&2; }

bindir() {
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
    done
    return 1
}

# Runs a command as the cluster's owner.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# configure DATADIR PORT: this cluster's listening places and test settings.
configure() {
    cat >> "$1/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $2
unix_socket_directories = '$1'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 120
shared_buffers = 16MB
password_encryption = scram-sha-256
EOF
}

setup() {
    BIN=$(bindir) || { SKIP="no PostgreSQL server (Debian package postgresql: make deps-test)"; return 1; }
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        SKIP="running as root and there is no postgres user to run the server as"
        return 1
    fi
    DIR=$(mktemp -d /tmp/eddy-pg.XXXXXX) || { SKIP="mktemp failed"; return 1; }
    chmod 755 "$DIR"
    [ "$(id -u)" -eq 0 ] && chown postgres "$DIR"
    if ! as_owner "$BIN/initdb" -D "$DIR/main" -U postgres -A trust -E UTF8 --locale=C \
        --no-sync --no-instructions >"$DIR/initdb.log" 2>&1; then
        SKIP="initdb failed: $(tail -n 1 "$DIR/initdb.log")"
        return 1
    fi
    cat > "$DIR/main/pg_hba.conf" <<EOF
local all eddy_pw scram-sha-256
host all eddy_pw 127.0.0.1/32 scram-sha-256
local all all trust
host all all 127.0.0.1/32 trust
EOF
    # The role and the database, in single-user mode: no server to start
    # and stop before the copy.
    if ! printf '%s\n' "CREATE ROLE eddy_pw LOGIN PASSWORD 'eddy-secret'" \
        "CREATE DATABASE eddy_test" "GRANT ALL ON SCHEMA public TO eddy_pw" |
        as_owner "$BIN/postgres" --single -D "$DIR/main" postgres >"$DIR/single.log" 2>&1 ||
        grep -q ERROR "$DIR/single.log"; then
        SKIP="could not create the test role and database: $(grep ERROR "$DIR/single.log" | head -n 1)"
        return 1
    fi
    as_owner cp -a "$DIR/main" "$DIR/spare" || { SKIP="could not copy the cluster"; return 1; }
    SPARE_PORT=$(free_port) && configure "$DIR/spare" "$SPARE_PORT"
    for attempt in 1 2 3; do
        PORT=$(free_port) || { SKIP="no free port (python3 missing?)"; return 1; }
        configure "$DIR/main" "$PORT"
        if as_owner "$BIN/pg_ctl" -D "$DIR/main" -l "$DIR/main.log" -w -t 30 start >/dev/null 2>&1; then
            return 0
        fi
        log "start attempt $attempt failed: $(tail -n 2 "$DIR/main.log" | tr '\n' ' ')"
    done
    SKIP="postgres did not start: $(tail -n 1 "$DIR/main.log")"
    return 1
}

stop_all() {
    [ -n "${DIR:-}" ] || return 0
    for c in main spare; do
        if [ -f "$DIR/$c/postmaster.pid" ]; then
            as_owner "$BIN/pg_ctl" -D "$DIR/$c" -m immediate -w -t 10 stop >/dev/null 2>&1 ||
                log "could not stop the $c cluster in $DIR"
        fi
    done
    rm -rf "$DIR"
}

case "${1:-}" in
start)
    DIR= SKIP= BIN= PORT= SPARE_PORT=
    if ! setup; then
        echo "pg_server: $SKIP" >&2
        stop_all
        exit 1
    fi
    echo "EDDY_PG_DIR=$DIR"
    echo "EDDY_PG_CONNINFO=host=$DIR/main port=$PORT dbname=eddy_test user=postgres"
    echo "EDDY_PG_HOST=$DIR/main"
    echo "EDDY_PG_PORT=$PORT"
    echo "EDDY_PG_BIN=$BIN"
    ;;
stop)
    DIR=${2:-}
    case "$DIR" in /tmp/eddy-pg.*) ;; *) echo "stop: not a pg_server.sh directory: $DIR" >&2; exit 2 ;; esac
    BIN=$(bindir) || exit 1
    stop_all
    ;;
run)
    shift
    [ $# -gt 0 ] || { echo "usage: $0 run CMD [ARG...]" >&2; exit 2; }
    DIR= SKIP= BIN= PORT= SPARE_PORT=
    trap 'stop_all' EXIT
    trap 'exit 130' INT TERM
    if setup; then
        export EDDY_PG_CONNINFO="host=$DIR/main port=$PORT dbname=eddy_test user=postgres"
        export EDDY_PG_HOST="$DIR/main" EDDY_PG_PORT="$PORT"
        export EDDY_PG_SPARE_HOST="$DIR/spare" EDDY_PG_SPARE_PORT="$SPARE_PORT"
        export EDDY_PG_SERVER="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
        export EDDY_PG_BIN="$BIN"
        unset EDDY_PG_SKIP
    else
        log "the db tests will be skipped: $SKIP"
        export EDDY_PG_SKIP="$SKIP"
        unset EDDY_PG_CONNINFO
    fi
    "$@"
    exit $?
    ;;
spare)
    [ -n "${EDDY_PG_SPARE_HOST:-}" ] || { echo "spare: not inside pg_server.sh run" >&2; exit 2; }
    BIN=$EDDY_PG_BIN
    case "${2:-}" in
    start) as_owner "$BIN/pg_ctl" -D "$EDDY_PG_SPARE_HOST" -l "$EDDY_PG_SPARE_HOST.log" -w -t 30 start >/dev/null ;;
    stop) as_owner "$BIN/pg_ctl" -D "$EDDY_PG_SPARE_HOST" -m fast -w -t 30 stop >/dev/null ;;
    *) echo "usage: $0 spare start|stop" >&2; exit 2 ;;
    esac
    ;;
*)
    echo "usage: $0 run CMD [ARG...] | spare start|stop | start | stop DIR" >&2
    exit 2
    ;;
esac
