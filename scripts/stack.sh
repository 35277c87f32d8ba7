#!/usr/bin/env bash
# scripts/stack.sh — start/stop the local development stack (no Docker, no systemd).
#
# Usage:  scripts/stack.sh {up|down|status} [service ...]
#         services: pg kafka connect (default: all, in that order), e.g.
#         `scripts/stack.sh up pg` starts only PostgreSQL.
#
# Every service is implemented by three functions <svc>_up, <svc>_down and
# <svc>_status, and listed in SERVICES below. To add a service (e.g. Kafka,
# Kafka Connect) write those three functions and append its name to SERVICES;
# the dispatcher at the bottom does the rest. `up` starts services in list
# order, `down` stops them in reverse order.
#
# All state (data, logs, sockets) lives under $STACK_DIR (default <repo>/.stack),
# so `scripts/stack.sh down && rm -rf .stack` is a full reset.
#
# Environment variables (all optional):
#   STACK_DIR              state directory                    (default <repo>/.stack)
#   PG_PORT                PostgreSQL TCP port, 127.0.0.1 only (default 55432)
#   PG_SUPERUSER_PASSWORD  password of the `postgres` role    (default postgres)
#   SHOP_DB_PASSWORD       password of the `loader` role      (default loader)
#   PG_START_TIMEOUT       seconds to wait for startup        (default 30)
#   KAFKA_PORT             Kafka listener, 127.0.0.1 only     (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener          (default 9093)
#   KAFKA_HEAP_OPTS        broker JVM heap                    (default -Xms256m -Xmx512m)
#   KAFKA_RETENTION_HOURS  topic retention                    (default 8760)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker     (default 60)
#   CONNECT_PORT           Kafka Connect REST, 127.0.0.1 only (default 8083)
#   CONNECT_HEAP_OPTS      Connect worker JVM heap            (default -Xms256m -Xmx768m)
#   CONNECT_START_TIMEOUT  seconds to wait for the worker     (default 90)
#   JAVA_HOME              JDK/JRE >= 17 to use (else `java` on PATH)
#
# Kafka and Kafka Connect jars (and the Debezium plugin archive) are resolved
# from Maven Central via stack/pom.xml into stack/lib and stack/dist on the
# first `up` (needs mvn; git-ignored).
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${STACK_DIR:-$REPO_DIR/.stack}"

SERVICES=(pg kafka connect)

# ---------------------------------------------------------------------------
# Generic helpers
# ---------------------------------------------------------------------------

log()  { printf '[stack] %s\n' "$*"; }
warn() { printf '[stack] WARNING: %s\n' "$*" >&2; }
die()  { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

# Milliseconds since the epoch (for timing startup).
now_ms() { date +%s%3N; }

# Run a command with root privileges (directly when we already are root).
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

PG_PORT="${PG_PORT:-55432}"
PG_SUPERUSER_PASSWORD="${PG_SUPERUSER_PASSWORD:-postgres}"
SHOP_DB_PASSWORD="${SHOP_DB_PASSWORD:-loader}"
PG_START_TIMEOUT="${PG_START_TIMEOUT:-30}"

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
    as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w >/dev/null
    log "postgres: stopped"
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

# ---------------------------------------------------------------------------
# JVM services (Kafka broker, Kafka Connect): shared helpers
# ---------------------------------------------------------------------------
#
# Their jars come from Maven Central only: stack/pom.xml is resolved (once, and
# again whenever the pom changes) into stack/lib/ (flat classpath) and stack/dist/
# (connector plugin archives). Both are generated and git-ignored. Every process
# runs detached (setsid nohup) with a pid file; `down` sends SIGTERM, waits, then
# SIGKILLs.

STACK_SRC="$REPO_DIR/stack"            # pom.xml (tracked) + lib/, dist/ (generated)
STACK_LIB="$STACK_SRC/lib"
STACK_DIST="$STACK_SRC/dist"
STACK_STAMP="$STACK_LIB/.resolved"     # holds the sha256 of the pom it was resolved from
MVN_SETTINGS="$REPO_DIR/jars/settings.xml"

JAVA_BIN=""                            # set by java_ensure

# Print elapsed seconds since $1 (ms) as "S.mmm".
elapsed() {
    local ms=$(( $(now_ms) - $1 ))
    printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# Locate java >= 17 ($JAVA_HOME first, then PATH); install a JRE via apt if missing.
java_ensure() {
    [[ -n "$JAVA_BIN" ]] && return 0
    local cand major
    for cand in "${JAVA_HOME:+$JAVA_HOME/bin/java}" "$(command -v java 2>/dev/null || true)"; do
        [[ -n "$cand" && -x "$cand" ]] || continue
        major="$("$cand" -XshowSettings:properties -version 2>&1 \
                  | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p')"
        if [[ -n "$major" ]] && (( major >= 17 )); then JAVA_BIN="$cand"; return 0; fi
    done
    log "java >= 17 not found; installing openjdk-17-jre-headless via apt-get ..."
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends openjdk-17-jre-headless
    JAVA_BIN="$(command -v java)" || die "apt-get install openjdk-17-jre-headless did not provide java"
}

# Resolve stack/pom.xml into stack/lib + stack/dist unless already done for this pom.
# Serialised with flock so concurrent `up`s do not resolve twice.
stack_ensure_jars() {
    local sum t0
    sum="$(sha256sum "$STACK_SRC/pom.xml" | cut -d' ' -f1)"
    [[ -f "$STACK_STAMP" && "$(cat "$STACK_STAMP")" == "$sum" ]] && return 0
    mkdir -p "$STACK_LIB"
    (
        flock 9
        [[ -f "$STACK_STAMP" && "$(cat "$STACK_STAMP")" == "$sum" ]] && exit 0
        if ! command -v mvn >/dev/null 2>&1; then
            log "mvn not found; installing maven via apt-get ..."
            as_root apt-get update -q
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends maven
        fi
        t0="$(now_ms)"
        log "resolving stack/pom.xml from Maven Central into stack/lib and stack/dist ..."
        rm -f "$STACK_STAMP" "$STACK_LIB"/*.jar "$STACK_DIST"/*.tar.gz
        mvn -q -B -s "$MVN_SETTINGS" -f "$STACK_SRC/pom.xml" generate-resources >"$STACK_LIB/.mvn.log" 2>&1 \
            || { tail -n 40 "$STACK_LIB/.mvn.log" >&2; die "mvn failed to resolve stack/pom.xml (log: $STACK_LIB/.mvn.log)"; }
        compgen -G "$STACK_LIB/kafka_*.jar" >/dev/null || die "mvn left no kafka jar in $STACK_LIB"
        echo "$sum" >"$STACK_STAMP"
        log "resolved $(ls "$STACK_LIB"/*.jar | wc -l) jars + $(ls "$STACK_DIST"/*.tar.gz 2>/dev/null | wc -l) plugin archive(s) in $(elapsed "$t0")s"
    ) 9>"$STACK_LIB/.resolve.lock"
}

# True if the pid in file $1 is alive and its command line contains $2
# (guards against a stale pid file whose pid was reused).
pid_alive() {
    local pid
    [[ -f "$1" ]] || return 1
    pid="$(cat "$1" 2>/dev/null)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Start a detached JVM: jvm_spawn <pidfile> <stdout-file> <java args...>
# Extra environment for the process can be passed via `env` in the args' caller.
jvm_spawn() {
    local pidfile="$1" out="$2"; shift 2
    setsid nohup "$@" >>"$out" 2>&1 </dev/null &
    echo $! >"$pidfile"
}

# Stop the process of <pidfile> (marker as in pid_alive): SIGTERM, wait up to
# <timeout> s, then SIGKILL. jvm_stop <name> <pidfile> <marker> <timeout>
jvm_stop() {
    local name="$1" pidfile="$2" marker="$3" timeout="$4" pid deadline t0
    if ! pid_alive "$pidfile" "$marker"; then
        rm -f "$pidfile"
        log "$name: not running"
        return 0
    fi
    t0="$(now_ms)"
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(( $(date +%s) + timeout ))
    while kill -0 "$pid" 2>/dev/null; do
        if (( $(date +%s) >= deadline )); then
            warn "$name: pid $pid still alive ${timeout}s after SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 1
            break
        fi
        sleep 0.5
    done
    rm -f "$pidfile"
    log "$name: stopped (pid $pid, $(elapsed "$t0")s)"
}

fail_with_log() {  # fail_with_log <logfile> <message>
    printf '[stack] ---- last 60 lines of %s ----\n' "$1" >&2
    tail -n 60 "$1" >&2 2>/dev/null || true
    die "$2"
}

# log4j 1.x (reload4j) config writing everything to one size-rolled file.
write_log4j() {  # write_log4j <path> <logfile>
    cat >"$1" <<L4J
# Generated by scripts/stack.sh — edits are overwritten on every start.
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$2
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=4
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %X{connector.context}%m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.zookeeper=WARN
log4j.logger.org.reflections=ERROR
L4J
}

# ---------------------------------------------------------------------------
# Kafka broker (KRaft, combined broker + controller, single node)
# ---------------------------------------------------------------------------

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
KAFKA_RETENTION_HOURS="${KAFKA_RETENTION_HOURS:-8760}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-60}"

KAFKA_ROOT="$STACK_DIR/kafka"
KAFKA_DATA="$KAFKA_ROOT/data"              # log.dirs (topic data + KRaft metadata log)
KAFKA_LOG="$KAFKA_ROOT/logs/server.log"    # log4j output
KAFKA_OUT="$KAFKA_ROOT/kafka.out"          # JVM stdout/stderr
KAFKA_PID="$KAFKA_ROOT/kafka.pid"
KAFKA_CONF="$KAFKA_ROOT/server.properties"
KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"

kafka_is_running() { pid_alive "$KAFKA_PID" "$KAFKA_CONF"; }

kafka_java() {  # run a Kafka tool class on the stack classpath
    "$JAVA_BIN" -Xmx256m -Dlog4j.configuration="file:$KAFKA_ROOT/tools-log4j.properties" \
        -cp "$STACK_LIB/*" "$@"
}

# Rewritten on every start (only while stopped).
kafka_write_config() {
    mkdir -p "$KAFKA_DATA" "$(dirname "$KAFKA_LOG")"
    cat >"$KAFKA_CONF" <<EOC
# Generated by scripts/stack.sh — edits are overwritten on every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA

# single node
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0

# retention: keep CDC events around (dev stack); time-based only
log.retention.hours=$KAFKA_RETENTION_HOURS
log.retention.bytes=-1

# small-machine settings
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=33554432
EOC
    write_log4j "$KAFKA_ROOT/log4j.properties" "$KAFKA_LOG"
    cat >"$KAFKA_ROOT/tools-log4j.properties" <<'EOC'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOC
}

# Format the storage once (KRaft needs a cluster id in meta.properties).
kafka_format() {
    [[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
    local cid
    if [[ -s "$KAFKA_ROOT/cluster.id" ]]; then
        cid="$(cat "$KAFKA_ROOT/cluster.id")"
    else
        cid="$(kafka_java kafka.tools.StorageTool random-uuid)" || die "kafka-storage random-uuid failed"
        echo "$cid" >"$KAFKA_ROOT/cluster.id"
    fi
    log "kafka: formatting $KAFKA_DATA (cluster id $cid)"
    kafka_java kafka.tools.StorageTool format -t "$cid" -c "$KAFKA_CONF" >"$KAFKA_ROOT/format.log" 2>&1 \
        || { cat "$KAFKA_ROOT/format.log" >&2; die "kafka storage format failed"; }
}

# True once the broker answers a metadata request. Uses confluent-kafka from the
# project venv when available (fast), else Kafka's BrokerApiVersionsCommand.
KAFKA_PY="$REPO_DIR/.venv/bin/python"
kafka_ready() {
    if [[ -x "$KAFKA_PY" ]] && "$KAFKA_PY" -c 'import confluent_kafka' 2>/dev/null; then
        "$KAFKA_PY" - "$KAFKA_BOOTSTRAP" 2>/dev/null <<'PY'
import sys
from confluent_kafka.admin import AdminClient
md = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0}).list_topics(timeout=3)
sys.exit(0 if md.brokers else 1)
PY
    else
        timeout 20 "$JAVA_BIN" -Xmx128m -Dlog4j.configuration="file:$KAFKA_ROOT/tools-log4j.properties" \
            -cp "$STACK_LIB/*" kafka.admin.BrokerApiVersionsCommand --bootstrap-server "$KAFKA_BOOTSTRAP" \
            >/dev/null 2>&1
    fi
}

kafka_up() {
    local t0 deadline p
    t0="$(now_ms)"
    java_ensure
    stack_ensure_jars
    mkdir -p "$KAFKA_ROOT"

    if kafka_is_running; then
        kafka_ready || warn "kafka: process $(cat "$KAFKA_PID") runs but does not answer on $KAFKA_BOOTSTRAP"
        log "kafka: already running (pid $(cat "$KAFKA_PID"), $KAFKA_BOOTSTRAP)"
        return 0
    fi
    rm -f "$KAFKA_PID"
    for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        port_in_use "$p" && die "kafka: 127.0.0.1:$p is already in use by another process"
    done

    kafka_write_config
    kafka_format

    log "kafka: starting on $KAFKA_BOOTSTRAP (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT, log $KAFKA_LOG)"
    : >"$KAFKA_OUT"
    # shellcheck disable=SC2086  # heap opts are deliberately word-split
    jvm_spawn "$KAFKA_PID" "$KAFKA_OUT" "$JAVA_BIN" $KAFKA_HEAP_OPTS \
        -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
        -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
        -Dkafka.logs.dir="$(dirname "$KAFKA_LOG")" \
        -Dlog4j.configuration="file:$KAFKA_ROOT/log4j.properties" \
        -cp "$STACK_LIB/*" kafka.Kafka "$KAFKA_CONF"

    deadline=$(( $(date +%s) + KAFKA_START_TIMEOUT ))
    until kafka_ready; do
        if ! kafka_is_running; then
            cat "$KAFKA_OUT" >&2 || true
            fail_with_log "$KAFKA_LOG" "kafka exited during startup"
        fi
        (( $(date +%s) >= deadline )) \
            && fail_with_log "$KAFKA_LOG" "kafka not answering on $KAFKA_BOOTSTRAP within ${KAFKA_START_TIMEOUT}s (still running as pid $(cat "$KAFKA_PID"); see also $KAFKA_OUT)"
        sleep 1
    done
    log "kafka: up on $KAFKA_BOOTSTRAP in $(elapsed "$t0")s (pid $(cat "$KAFKA_PID"), data $KAFKA_DATA)"
}

kafka_down() {
    jvm_stop kafka "$KAFKA_PID" "$KAFKA_CONF" "$KAFKA_STOP_TIMEOUT"
}

kafka_status() {
    if kafka_is_running; then
        log "kafka: running  pid=$(cat "$KAFKA_PID")  bootstrap=$KAFKA_BOOTSTRAP  data=$KAFKA_DATA  log=$KAFKA_LOG"
        return 0
    fi
    log "kafka: stopped  bootstrap=$KAFKA_BOOTSTRAP  data=$KAFKA_DATA"
    return 3
}

# ---------------------------------------------------------------------------
# Kafka Connect (distributed mode, one worker) + Debezium PostgreSQL plugin
# ---------------------------------------------------------------------------
#
# Distributed mode keeps connector configs/offsets/status in Kafka topics
# (lakehouse-connect-{configs,offsets,status}), so connectors are managed via
# REST and survive restarts. Connector configs can reference secrets through
# config providers: ${env:SHOP_DB_PASSWORD} (exported to the worker) or
# ${file:/path/to/file.properties:key}.

CONNECT_PORT="${CONNECT_PORT:-8083}"
CONNECT_HEAP_OPTS="${CONNECT_HEAP_OPTS:--Xms256m -Xmx768m}"
CONNECT_START_TIMEOUT="${CONNECT_START_TIMEOUT:-90}"
CONNECT_STOP_TIMEOUT="${CONNECT_STOP_TIMEOUT:-30}"

CONNECT_ROOT="$STACK_DIR/connect"
CONNECT_PLUGINS="$CONNECT_ROOT/plugins"      # plugin.path
CONNECT_LOG="$CONNECT_ROOT/logs/connect.log"
CONNECT_OUT="$CONNECT_ROOT/connect.out"
CONNECT_PID="$CONNECT_ROOT/connect.pid"
CONNECT_CONF="$CONNECT_ROOT/connect-distributed.properties"
CONNECT_URL="http://127.0.0.1:$CONNECT_PORT"
CONNECT_REQUIRED_PLUGIN="io.debezium.connector.postgresql.PostgresConnector"

connect_is_running() { pid_alive "$CONNECT_PID" "$CONNECT_CONF"; }

# Unpack every archive of stack/dist into plugin.path (once per archive version).
connect_install_plugins() {
    local tgz top stamp
    mkdir -p "$CONNECT_PLUGINS"
    for tgz in "$STACK_DIST"/*.tar.gz; do
        [[ -f "$tgz" ]] || continue
        top="$(tar tzf "$tgz" | sed -n "1s,/.*,,p")"
        [[ -n "$top" && "$top" != "." ]] || die "unexpected layout of $tgz"
        stamp="$CONNECT_PLUGINS/$top/.unpacked-from-$(basename "$tgz")"
        [[ -f "$stamp" ]] && continue
        log "connect: installing plugin $(basename "$tgz") into $CONNECT_PLUGINS/$top"
        rm -rf "${CONNECT_PLUGINS:?}/$top"
        tar xzf "$tgz" -C "$CONNECT_PLUGINS"
        touch "$stamp"
    done
}

connect_write_config() {
    mkdir -p "$(dirname "$CONNECT_LOG")"
    cat >"$CONNECT_CONF" <<EOC
# Generated by scripts/stack.sh — edits are overwritten on every start.
bootstrap.servers=$KAFKA_BOOTSTRAP
group.id=lakehouse-connect

key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true

# internal topics (single broker)
config.storage.topic=lakehouse-connect-configs
offset.storage.topic=lakehouse-connect-offsets
status.storage.topic=lakehouse-connect-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.storage.partitions=5
status.storage.partitions=1
offset.flush.interval.ms=10000

# REST on loopback only
listeners=http://127.0.0.1:$CONNECT_PORT
rest.advertised.host.name=127.0.0.1
rest.advertised.port=$CONNECT_PORT
rest.advertised.listener=http

plugin.path=$CONNECT_PLUGINS

# secrets in connector configs: \${env:VAR} and \${file:/path:key}
config.providers=file,env
config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider
config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
EOC
    write_log4j "$CONNECT_ROOT/log4j.properties" "$CONNECT_LOG"
}

# 0 = ready (healthy and the Debezium plugin is listed), 1 = not yet,
# 2 = REST answers but the required plugin is missing.
connect_ready() {
    local plugins
    curl -sf -m 3 -o /dev/null "$CONNECT_URL/health" || return 1
    plugins="$(curl -sf -m 5 "$CONNECT_URL/connector-plugins")" || return 1
    grep -qF "\"$CONNECT_REQUIRED_PLUGIN\"" <<<"$plugins" || return 2
}

connect_up() {
    local t0 deadline rc
    t0="$(now_ms)"
    java_ensure
    stack_ensure_jars
    mkdir -p "$CONNECT_ROOT"
    connect_install_plugins

    if connect_is_running; then
        connect_ready || warn "connect: process $(cat "$CONNECT_PID") runs but $CONNECT_URL is not ready"
        log "connect: already running (pid $(cat "$CONNECT_PID"), $CONNECT_URL)"
        return 0
    fi
    rm -f "$CONNECT_PID"
    kafka_is_running || port_in_use "$KAFKA_PORT" \
        || die "connect: no Kafka broker on $KAFKA_BOOTSTRAP — start it first ($0 up kafka connect)"
    port_in_use "$CONNECT_PORT" && die "connect: 127.0.0.1:$CONNECT_PORT is already in use by another process"

    connect_write_config
    log "connect: starting worker on $CONNECT_URL (log $CONNECT_LOG)"
    : >"$CONNECT_OUT"
    # shellcheck disable=SC2086
    jvm_spawn "$CONNECT_PID" "$CONNECT_OUT" env SHOP_DB_PASSWORD="$SHOP_DB_PASSWORD" \
        "$JAVA_BIN" $CONNECT_HEAP_OPTS \
        -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
        -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
        -Dlog4j.configuration="file:$CONNECT_ROOT/log4j.properties" \
        -cp "$STACK_LIB/*" org.apache.kafka.connect.cli.ConnectDistributed "$CONNECT_CONF"

    deadline=$(( $(date +%s) + CONNECT_START_TIMEOUT ))
    while :; do
        rc=0; connect_ready || rc=$?
        (( rc == 0 )) && break
        (( rc == 2 )) && fail_with_log "$CONNECT_LOG" \
            "connect: $CONNECT_REQUIRED_PLUGIN not among $CONNECT_URL/connector-plugins (plugin.path $CONNECT_PLUGINS)"
        if ! connect_is_running; then
            cat "$CONNECT_OUT" >&2 || true
            fail_with_log "$CONNECT_LOG" "connect exited during startup"
        fi
        (( $(date +%s) >= deadline )) \
            && fail_with_log "$CONNECT_LOG" "connect not ready on $CONNECT_URL within ${CONNECT_START_TIMEOUT}s (still running as pid $(cat "$CONNECT_PID"); see also $CONNECT_OUT)"
        sleep 1
    done
    log "connect: up on $CONNECT_URL in $(elapsed "$t0")s (pid $(cat "$CONNECT_PID"), plugins $CONNECT_PLUGINS)"
}

connect_down() {
    jvm_stop connect "$CONNECT_PID" "$CONNECT_CONF" "$CONNECT_STOP_TIMEOUT"
}

connect_status() {
    if connect_is_running; then
        local connectors
        connectors="$(curl -sf -m 3 "$CONNECT_URL/connectors" 2>/dev/null || echo '(REST not answering)')"
        log "connect: running  pid=$(cat "$CONNECT_PID")  rest=$CONNECT_URL  connectors=$connectors  log=$CONNECT_LOG"
        return 0
    fi
    log "connect: stopped  rest=$CONNECT_URL"
    return 3
}

# ---------------------------------------------------------------------------
# Dispatcher
# ---------------------------------------------------------------------------

usage() {
    echo "usage: $0 {up|down|status} [service ...]   (services: ${SERVICES[*]}; default all)" >&2
    exit 2
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd="$1" svc i rc=0
    shift
    # Services named on the command line (default all), kept in SERVICES order.
    local -a svcs=()
    for svc in "$@"; do
        [[ " ${SERVICES[*]} " == *" $svc "* ]] || { echo "unknown service: $svc" >&2; usage; }
    done
    for svc in "${SERVICES[@]}"; do
        [[ $# -eq 0 || " $* " == *" $svc "* ]] && svcs+=("$svc")
    done
    case "$cmd" in
        up)
            for svc in "${svcs[@]}"; do "${svc}_up"; done
            ;;
        down)
            for (( i=${#svcs[@]}-1; i>=0; i-- )); do "${svcs[i]}_down"; done
            ;;
        status)
            # Exit 0 only if every selected service runs, else 3.
            for svc in "${svcs[@]}"; do "${svc}_status" || rc=3; done
            return "$rc"
            ;;
        *) usage ;;
    esac
}

main "$@"
