#!/usr/bin/env bash
# scripts/stack.sh — start/stop the local development stack (no Docker, no systemd).
#
# Usage:  scripts/stack.sh {up|down|status} [service ...]
#         services: pg kafka connect azurite (default: all, in that order), e.g.
#         `scripts/stack.sh up pg` starts only PostgreSQL; and spark-connect (a local Spark Connect
#         server), started only when named: `scripts/stack.sh up spark-connect`. Without names, `down`
#         also stops spark-connect and `status` also shows it (its state does not change the exit code).
#
# Every service is implemented by three functions <svc>_up, <svc>_down and
# <svc>_status in scripts/stack/<svc>.sh (with its variables and helpers;
# shared helpers are in scripts/stack/common.sh), and listed in SERVICES below.
# To add a service write such a file, source it below and append its name to
# SERVICES; the dispatcher at the bottom does the rest. `up` starts services in
# list order, `down` stops them in reverse order.
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
#   PG_STOP_TIMEOUT        seconds per shutdown mode: fast, then immediate, then SIGKILL (default 20)
#   KAFKA_STOP_TIMEOUT / CONNECT_STOP_TIMEOUT  seconds after SIGTERM before SIGKILL (default 60 / 30)
#   KAFKA_PORT             Kafka listener, 127.0.0.1 only     (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener          (default 9093)
#   KAFKA_SASL_PORT        SASL_SSL listener (SCRAM-SHA-512 over TLS, CA in $STACK_DIR/kafka/tls/ca.pem) (default 9094)
#   KAFKA_SASL_USER / KAFKA_SASL_PASSWORD  its SCRAM user      (default lakehouse / lakehouse-secret)
#   KAFKA_HEAP_OPTS        broker JVM heap                    (default -Xms256m -Xmx512m)
#   KAFKA_RETENTION_HOURS  topic retention                    (default 8760)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker     (default 60)
#   CONNECT_PORT           Kafka Connect REST, 127.0.0.1 only (default 8083)
#   CONNECT_HEAP_OPTS      Connect worker JVM heap            (default -Xms256m -Xmx768m)
#   CONNECT_START_TIMEOUT  seconds to wait for the worker     (default 90)
#   AZURITE_PORT           Azurite Blob endpoint, 127.0.0.1   (default 10000; WASB's emulator mode needs 10000)
#   AZURITE_CONTAINERS     containers created after start     (default lakehouse)
#   AZURITE_START_TIMEOUT  seconds to wait for Azurite        (default 60)
#   SPARK_CONNECT_PORT     Spark Connect server, 127.0.0.1    (default 15002)
#   SPARK_CONNECT_MEMORY   its driver memory                  (default 2g)
#   SPARK_CONNECT_START_TIMEOUT / SPARK_CONNECT_STOP_TIMEOUT  seconds (default 120 / 30)
#   JAVA_HOME              JDK/JRE >= 17 to use (else `java` on PATH)
#
# Kafka and Kafka Connect jars (and the Debezium plugin archive) are resolved
# from Maven Central via stack/pom.xml into stack/lib and stack/dist on the
# first `up` (needs mvn; git-ignored). The TLS material of Kafka's SASL_SSL listener
# is generated with openssl on the first `up` and reused while valid. Azurite (Node.js) is installed from npm
# into stack/azurite/node_modules by `npm ci` (node and npm from apt when missing).
set -euo pipefail

# Close the file descriptors inherited from the caller (above stderr; 255 is bash's own script
# file): the services started here outlive this script and would keep them open. With
# `flock /tmp/x.lock make up` they would hold the lock until they stop.
for _fd in /proc/$$/fd/*; do
    _fd="${_fd##*/}"
    if [[ "$_fd" =~ ^[0-9]+$ ]] && (( _fd > 2 && _fd < 255 )); then eval "exec $_fd>&-" 2>/dev/null || true; fi
done
unset _fd

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${STACK_DIR:-$REPO_DIR/.stack}"

SERVICES=(pg kafka connect azurite)
OPTIONAL_SERVICES=(spark-connect)      # only when named on `up`; included in a plain `down` and `status`

# Implementation files, relative to this script's directory. Order matters:
# common.sh first; connect.sh uses SHOP_DB_PASSWORD (pg.sh) and KAFKA_* (kafka.sh).
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=stack/common.sh
source "$SCRIPT_DIR/stack/common.sh"
# shellcheck source-path=SCRIPTDIR source=stack/pg.sh
source "$SCRIPT_DIR/stack/pg.sh"
# shellcheck source-path=SCRIPTDIR source=stack/kafka.sh
source "$SCRIPT_DIR/stack/kafka.sh"
# shellcheck source-path=SCRIPTDIR source=stack/connect.sh
source "$SCRIPT_DIR/stack/connect.sh"
# shellcheck source-path=SCRIPTDIR source=stack/azurite.sh
source "$SCRIPT_DIR/stack/azurite.sh"
# shellcheck source-path=SCRIPTDIR source=stack/spark_connect.sh
source "$SCRIPT_DIR/stack/spark_connect.sh"

# ---------------------------------------------------------------------------
# Dispatcher
# ---------------------------------------------------------------------------

usage() {
    echo "usage: $0 {up|down|status} [service ...]   (services: ${SERVICES[*]}; default all; also: ${OPTIONAL_SERVICES[*]})" >&2
    exit 2
}

# A service name as its functions' prefix (spark-connect -> spark_connect).
fn() { printf '%s' "${1//-/_}"; }

main() {
    [[ $# -ge 1 ]] || usage
    local cmd="$1" svc i rc=0
    shift
    # Services named on the command line (default all), kept in SERVICES order, then the optional
    # ones: named, or (without names) for down and status.
    local -a svcs=() optional=()
    for svc in "$@"; do
        [[ " ${SERVICES[*]} ${OPTIONAL_SERVICES[*]} " == *" $svc "* ]] || { echo "unknown service: $svc" >&2; usage; }
    done
    for svc in "${SERVICES[@]}"; do
        [[ $# -eq 0 || " $* " == *" $svc "* ]] && svcs+=("$svc")
    done
    for svc in "${OPTIONAL_SERVICES[@]}"; do
        if [[ " $* " == *" $svc "* ]]; then svcs+=("$svc"); elif [[ $# -eq 0 ]]; then optional+=("$svc"); fi
    done
    case "$cmd" in
        up)
            for svc in "${svcs[@]}"; do "$(fn "$svc")_up"; done
            ;;
        down)
            for (( i=${#optional[@]}-1; i>=0; i-- )); do "$(fn "${optional[i]}")_down"; done
            for (( i=${#svcs[@]}-1; i>=0; i-- )); do "$(fn "${svcs[i]}")_down"; done
            ;;
        status)
            # Exit 0 only if every selected service runs, else 3 (an optional service not named: shown only).
            for svc in "${svcs[@]}"; do "$(fn "$svc")_status" || rc=3; done
            for svc in "${optional[@]}"; do "$(fn "$svc")_status" || true; done
            return "$rc"
            ;;
        *) usage ;;
    esac
}

main "$@"
