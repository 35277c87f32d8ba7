# shellcheck shell=bash
# scripts/stack/common.sh — generic helpers for scripts/stack.sh (sourced, not run):
# logging (log/warn/die), as_root, now_ms/elapsed, and what the JVM services share:
# java_ensure, Maven resolution of stack/pom.xml (stack_ensure_jars), pid/port
# checks, jvm_spawn/jvm_stop, fail_with_log and write_log4j.
# Expects REPO_DIR and STACK_DIR to be set by scripts/stack.sh.

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

# True when stack/lib was resolved from this pom and its jars (and the plugin archive) are still there.
stack_jars_current() {
    [[ -f "$STACK_STAMP" && "$(cat "$STACK_STAMP")" == "$1" ]] \
        && compgen -G "$STACK_LIB/kafka_*.jar" >/dev/null \
        && compgen -G "$STACK_DIST/*.tar.gz" >/dev/null
}

# Resolve stack/pom.xml into stack/lib + stack/dist unless already done for this pom.
# Serialised with flock so concurrent `up`s do not resolve twice.
stack_ensure_jars() {
    local sum t0
    sum="$(sha256sum "$STACK_SRC/pom.xml" | cut -d' ' -f1)"
    stack_jars_current "$sum" && return 0
    mkdir -p "$STACK_LIB"
    (
        flock 9
        stack_jars_current "$sum" && exit 0
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
            warn "$name: pid $pid still alive ${timeout}s after SIGTERM; escalating to SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            deadline=$(( $(date +%s) + 10 ))
            while kill -0 "$pid" 2>/dev/null; do
                (( $(date +%s) >= deadline )) && die "$name: pid $pid survived SIGKILL for 10s"
                sleep 0.2
            done
            rm -f "$pidfile"
            log "$name: stopped (killed, pid $pid, $(elapsed "$t0")s)"
            return 0
        fi
        sleep 0.5
    done
    rm -f "$pidfile"
    log "$name: stopped (pid $pid, $(elapsed "$t0")s)"
}

jvm_wait_ready() {  # jvm_wait_ready <name> <ready_fn> <running_fn> <pidfile> <log> <out> <timeout> <where> [<fatal message when ready_fn returns 2>]
    # Polls <ready_fn> once a second: 0 ready, 1 not yet, 2 never (with a message: fail at once).
    # Fails with the log's tail when the process exits or <timeout> seconds pass.
    local name="$1" ready="$2" running="$3" pidfile="$4" logfile="$5" out="$6" timeout="$7" where="$8" refused="${9:-}"
    local deadline rc
    deadline=$(( $(date +%s) + timeout ))
    while :; do
        rc=0; "$ready" || rc=$?
        (( rc == 0 )) && return 0
        if (( rc == 2 )) && [[ -n "$refused" ]]; then
            fail_with_log "$logfile" "$refused"
        fi
        if ! "$running"; then
            cat "$out" >&2 || true
            fail_with_log "$logfile" "$name exited during startup"
        fi
        (( $(date +%s) >= deadline )) \
            && fail_with_log "$logfile" "$name not ready on $where within ${timeout}s (still running as pid $(cat "$pidfile"); see also $out)"
        sleep 1
    done
}

# One status line of a service; 0 when it runs, else 3.
service_status() {  # service_status <name> <running_fn> <pidfile> <details when running> <details when stopped>
    if "$2"; then
        log "$1: running  pid=$(cat "$3")  $4"
        return 0
    fi
    log "$1: stopped  $5"
    return 3
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
