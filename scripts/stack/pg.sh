# shellcheck shell=bash
# scripts/stack/pg.sh — PostgreSQL service for scripts/stack.sh (sourced, not run):
# its PG_* settings, pg_up/pg_down/pg_status and helpers (install, initdb,
# config, roles). Needs scripts/stack/common.sh; sets SHOP_DB_PASSWORD, which
# connect.sh passes to the Connect worker.

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

PG_PORT="${PG_PORT:-55432}"
PG_SUPERUSER_PASSWORD="${PG_SUPERUSER_PASSWORD:-postgres}"
SHOP_DB_PASSWORD="${SHOP_DB_PASSWORD:-loader}"
PG_START_TIMEOUT="${PG_START_TIMEOUT:-30}"
PG_STOP_TIMEOUT="${PG_STOP_TIMEOUT:-20}"   # seconds for the fast stop before an immediate one

PG_ROOT="$STACK_DIR/pg"
PG_DATA="$PG_ROOT/data"
PG_LOG="$PG_ROOT/postgres.log"
PG_RUN="$PG_ROOT/run"          # unix socket directory
PG_OS_USER=postgres            # postgres refuses to run as root

PG_BIN=""                      # set by pg_find_bin

# Locate the newest installed server binaries, e.g. /usr/lib/postgresql/15/bin.
pg_find_bin() {
    local ctl
    ctl="$(ls -1d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1 || true)"
    [[ -n "$ctl" ]] && PG_BIN="$(dirname "$ctl")"
    [[ -n "$PG_BIN" ]]
}

# Install the server via apt if it is missing (fresh CI machines).
# Note: on Debian the package's postinst creates a default "main" cluster on
# port 5432 (and starts it if an init system allows). We do not use it; our
# cluster is completely separate (own data dir, port $PG_PORT).
pg_ensure_installed() {
    pg_find_bin && return 0
    log "PostgreSQL server binaries not found; installing via apt-get ..."
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends postgresql postgresql-contrib
    pg_find_bin || die "apt-get install postgresql did not provide /usr/lib/postgresql/*/bin/pg_ctl"
}

# When running as root, server processes run as the `postgres` OS user.
pg_ensure_os_user() {
    [[ $EUID -eq 0 ]] || return 0
    if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
        log "creating system user $PG_OS_USER"
        useradd --system --home-dir /var/lib/postgresql --shell /bin/bash "$PG_OS_USER"
    fi
}

# Run a command as the postgres OS user (or as ourselves when not root).
# cd to $PG_ROOT first: initdb/pg_ctl complain if the cwd is not accessible.
as_pg() {
    if [[ $EUID -eq 0 ]]; then
        (cd "$PG_ROOT" && runuser -u "$PG_OS_USER" -- "$@")
    else
        (cd "$PG_ROOT" && "$@")
    fi
}

# The postgres user must be able to traverse every parent directory of
# $STACK_DIR/pg. Choice made here: if it cannot, we FIX it by adding only the
# "search" bit for others (chmod o+x — does not make directory listings or
# files readable) on the offending directories, and log each change. This is
# what typically bites on CI where the checkout lives under a 0700 $HOME.
pg_ensure_traversable() {
    [[ $EUID -eq 0 ]] || return 0
    local dir="$PG_ROOT"
    local -a chain=()
    while [[ "$dir" != "/" ]]; do
        dir="$(dirname "$dir")"
        chain=("$dir" "${chain[@]}")
    done
    for dir in "${chain[@]}"; do
        if ! runuser -u "$PG_OS_USER" -- test -x "$dir"; then
            log "chmod o+x $dir (so the $PG_OS_USER user can reach $PG_ROOT)"
            chmod o+x "$dir"
        fi
    done
    runuser -u "$PG_OS_USER" -- test -x "$PG_ROOT" \
        || die "$PG_ROOT is not reachable by the $PG_OS_USER user; check permissions of its parent directories"
}

# Create $STACK_DIR/pg/{data,run} owned by the postgres user.
pg_prepare_dirs() {
    mkdir -p "$PG_DATA" "$PG_RUN"
    touch "$PG_LOG"
    if [[ $EUID -eq 0 ]]; then
        chown "$PG_OS_USER": "$PG_ROOT" "$PG_DATA" "$PG_RUN" "$PG_LOG"
    fi
    chmod 0700 "$PG_DATA"
    pg_ensure_traversable
    # Unix socket paths are limited to ~107 bytes (sun_path).
    local sock="$PG_RUN/.s.PGSQL.$PG_PORT"
    (( ${#sock} < 100 )) || die "socket path too long (${#sock} chars): $sock — use a shorter STACK_DIR"
}

# Pick the initdb locale: C.UTF-8 if the system has it, else plain C.
pg_locale() {
    if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
        echo "C.UTF-8"
    else
        echo "C"
    fi
}

# Initialise the cluster once (no-op if $PG_DATA already holds one).
pg_init() {
    [[ -f "$PG_DATA/PG_VERSION" ]] && return 0
    local loc
    loc="$(pg_locale)"
    log "initdb $PG_DATA (locale $loc)"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" --username=postgres \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale="$loc" \
        >"$PG_ROOT/initdb.log" 2>&1 \
        || { cat "$PG_ROOT/initdb.log" >&2; die "initdb failed"; }
    # Our settings live in stack.conf (rewritten on every start); include it last
    # so it overrides the defaults written by initdb.
    printf "\n# Managed by scripts/stack.sh\ninclude = 'stack.conf'\n" >>"$PG_DATA/postgresql.conf"
}

# (Re)write server settings and pg_hba.conf. Called only while stopped, so a
# changed PG_PORT etc. takes effect on the next `up` after a `down`.
pg_write_config() {
    local run_escaped="${PG_RUN//\'/\'\'}"
    cat >"$PG_DATA/stack.conf" <<EOF
# Generated by scripts/stack.sh — edits are overwritten on every start.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$run_escaped'

# logical replication (CDC)
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_connections = 200

# small-machine settings
shared_buffers = 256MB
work_mem = 8MB
maintenance_work_mem = 64MB
max_wal_size = 1GB

timezone = 'UTC'
log_timezone = 'UTC'
log_min_messages = warning
EOF
    cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# Generated by scripts/stack.sh — edits are overwritten on every start.
# TYPE  DATABASE     USER  ADDRESS       METHOD
local   all          all                 trust
local   replication  all                 trust
host    all          all   127.0.0.1/32  scram-sha-256
host    replication  all   127.0.0.1/32  scram-sha-256
EOF
    if [[ $EUID -eq 0 ]]; then
        chown "$PG_OS_USER": "$PG_DATA/stack.conf" "$PG_DATA/pg_hba.conf"
    fi
}

# True if a postmaster is running on our data directory.
pg_is_running() {
    [[ -n "$PG_BIN" && -f "$PG_DATA/PG_VERSION" ]] || return 1
    as_pg "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

# Port the running server actually uses (line 4 of postmaster.pid).
pg_running_port() {
    sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null || true
}

pg_fail_with_log() {
    printf '[stack] ---- last 40 lines of %s ----\n' "$PG_LOG" >&2
    tail -n 40 "$PG_LOG" >&2 || true
    die "$*"
}

# Run SQL as the postgres superuser over the unix socket.
pg_psql() {
    as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
        -h "$PG_RUN" -p "$(pg_running_port)" -U postgres -d postgres "$@"
}

# Idempotently set passwords, create role `loader` and database `shop`.
# Passwords go in as psql variables (:'var' quotes them safely).
pg_ensure_roles() {
    pg_psql -v pg_pw="$PG_SUPERUSER_PASSWORD" -v loader_pw="$SHOP_DB_PASSWORD" <<'SQL'
ALTER ROLE postgres WITH PASSWORD :'pg_pw';
SELECT 'CREATE ROLE loader'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'loader') \gexec
ALTER ROLE loader WITH LOGIN REPLICATION CREATEDB PASSWORD :'loader_pw';
SELECT 'CREATE DATABASE shop OWNER loader'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'shop') \gexec
SQL
}

pg_up() {
    local t0 deadline
    t0="$(now_ms)"
    pg_ensure_installed
    pg_ensure_os_user

    if pg_is_running; then
        local port
        port="$(pg_running_port)"
        [[ "$port" == "$PG_PORT" ]] \
            || warn "server is running on port $port, not PG_PORT=$PG_PORT (run 'down' then 'up' to change)"
        pg_ensure_roles
        log "postgres: already running (port $port, data $PG_DATA)"
        return 0
    fi

    pg_prepare_dirs
    pg_init
    pg_write_config

    log "postgres: starting on 127.0.0.1:$PG_PORT (log $PG_LOG)"
    deadline=$(( $(date +%s) + PG_START_TIMEOUT ))
    # -w: wait until the postmaster reports ready (also detects early exit,
    # e.g. port already in use).
    as_pg "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t "$PG_START_TIMEOUT" >/dev/null 2>&1 \
        || pg_fail_with_log "postgres failed to start"
    # Confirm TCP connectivity on the configured address/port.
    until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; do
        if (( $(date +%s) >= deadline )) || ! pg_is_running; then
            pg_fail_with_log "postgres not accepting connections on 127.0.0.1:$PG_PORT within ${PG_START_TIMEOUT}s"
        fi
        sleep 0.5
    done

    pg_ensure_roles
    local ms=$(( $(now_ms) - t0 ))
    log "postgres: up on 127.0.0.1:$PG_PORT in $((ms / 1000)).$(printf '%03d' $((ms % 1000)))s (db shop, user loader)"
}

pg_down() {
    pg_find_bin || { log "postgres: not installed, nothing to stop"; return 0; }
    if ! pg_is_running; then
        log "postgres: not running"
        return 0
    fi
    local t0
    t0="$(now_ms)"
    # Fast first (rolls back sessions, checkpoints). It can hang: a walsender whose
    # client (a Debezium task) never reads its socket keeps the shutdown waiting
    # Then immediate: no checkpoint, crash recovery on the next start,
    # no committed data lost.
    if as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t "$PG_STOP_TIMEOUT" >/dev/null 2>&1; then
        log "postgres: stopped (fast, $(elapsed "$t0")s)"
        return 0
    fi
    warn "postgres: fast shutdown did not finish within ${PG_STOP_TIMEOUT}s (a connection keeps it waiting); escalating to an immediate shutdown (crash recovery on next start, committed data is kept)"
    if as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m immediate -w -t "$PG_STOP_TIMEOUT" >/dev/null 2>&1; then
        log "postgres: stopped (immediate, $(elapsed "$t0")s)"
        return 0
    fi
    # Last resort: SIGKILL the postmaster of our data directory (its pid is line 1 of postmaster.pid).
    local pid
    pid="$(sed -n 1p "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
        local children
        children="$(pgrep -P "$pid" 2>/dev/null | tr '\n' ' ' || true)"
        warn "postgres: immediate shutdown did not finish either; sending SIGKILL to postmaster pid $pid and its children ${children:-none}"
        # shellcheck disable=SC2086  # word splitting of the pid list is intended
        kill -KILL "$pid" $children 2>/dev/null || true
        local deadline=$(( $(date +%s) + 10 ))
        while pg_is_running && (( $(date +%s) < deadline )); do sleep 0.2; done
    fi
    pg_is_running && die "postgres: still running after fast, immediate and SIGKILL (data $PG_DATA)"
    log "postgres: stopped (killed, $(elapsed "$t0")s)"
}

# Returns 0 if running, 3 otherwise.
pg_status() {
    pg_find_bin || true
    if pg_is_running; then
        log "postgres: running  port=$(pg_running_port)  data=$PG_DATA  log=$PG_LOG"
        return 0
    fi
    log "postgres: stopped  port=$PG_PORT  data=$PG_DATA"
    return 3
}
