# shellcheck shell=bash
# scripts/stack/azurite.sh — Azurite (Azure Storage emulator, Blob service only) for scripts/stack.sh
# (sourced, not run): its AZURITE_* settings, azurite_up/azurite_down/azurite_status and helpers.
# Needs scripts/stack/common.sh.
#
# Node.js and npm come from apt when missing; Azurite itself from npm, pinned with its whole tree by
# stack/azurite/package-lock.json (`npm ci` into stack/azurite/node_modules, git-ignored). After start
# the containers of AZURITE_CONTAINERS are created with the Azure SDK (scripts/azurite_containers.py).
#
# WASB's storage-emulator mode (docs/azure.md) always connects to http://127.0.0.1:10000/devstoreaccount1:
# keep AZURITE_PORT=10000 for the jobs and tests that go through Hadoop.

AZURITE_PORT="${AZURITE_PORT:-10000}"
AZURITE_CONTAINERS="${AZURITE_CONTAINERS:-lakehouse}"
AZURITE_START_TIMEOUT="${AZURITE_START_TIMEOUT:-60}"
AZURITE_STOP_TIMEOUT="${AZURITE_STOP_TIMEOUT:-20}"

AZURITE_ROOT="$STACK_DIR/azurite"
AZURITE_DATA="$AZURITE_ROOT/data"
AZURITE_OUT="$AZURITE_ROOT/azurite.out"
AZURITE_LOG="$AZURITE_OUT"                      # request errors and start-up messages (access log off: --silent)
AZURITE_PID="$AZURITE_ROOT/azurite.pid"
AZURITE_SRC="$REPO_DIR/stack/azurite"          # package.json + package-lock.json (tracked)
AZURITE_BIN="$AZURITE_SRC/node_modules/azurite/dist/src/blob/main.js"
AZURITE_STAMP="$AZURITE_SRC/node_modules/.installed"   # sha256 of the lock file it was installed from

azurite_is_running() { pid_alive "$AZURITE_PID" "$AZURITE_BIN"; }

# node and npm from apt when missing (Debian bookworm: Node.js 18).
azurite_ensure_node() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && return 0
    log "node/npm not found; installing nodejs and npm via apt-get ..."
    as_root apt-get update -q
    local pkgs=()
    command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
    command -v npm >/dev/null 2>&1 || pkgs+=(npm)
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || die "apt-get did not provide node and npm"
}

# `npm ci` of stack/azurite unless already done for this lock file. Serialised with flock.
azurite_ensure_installed() {
    local sum t0
    sum="$(sha256sum "$AZURITE_SRC/package-lock.json" | cut -d' ' -f1)"
    [[ -f "$AZURITE_STAMP" && "$(cat "$AZURITE_STAMP")" == "$sum" && -f "$AZURITE_BIN" ]] && return 0
    azurite_ensure_node
    (
        flock 9
        [[ -f "$AZURITE_STAMP" && "$(cat "$AZURITE_STAMP")" == "$sum" && -f "$AZURITE_BIN" ]] && exit 0
        t0="$(now_ms)"
        log "azurite: installing from npm (stack/azurite/package-lock.json) ..."
        npm ci --prefix "$AZURITE_SRC" --no-audit --no-fund --loglevel=error >"$AZURITE_SRC/.npm.log" 2>&1 \
            || { tail -n 40 "$AZURITE_SRC/.npm.log" >&2; die "npm ci failed (log: $AZURITE_SRC/.npm.log)"; }
        [[ -f "$AZURITE_BIN" ]] || die "npm ci left no $AZURITE_BIN"
        echo "$sum" >"$AZURITE_STAMP"
        log "azurite: installed $(node -p "require('$AZURITE_SRC/node_modules/azurite/package.json').version") in $(elapsed "$t0")s"
    ) 9>"$AZURITE_SRC/.install.lock"
}

# 0 once the Blob endpoint answers HTTP (any status: an unauthenticated request gets 400/403).
azurite_ready() {
    curl -s -o /dev/null -m 2 "http://127.0.0.1:$AZURITE_PORT/devstoreaccount1?comp=list" 2>/dev/null
}

azurite_create_containers() {
    local py="$REPO_DIR/.venv/bin/python"
    if [[ ! -x "$py" ]] || ! "$py" -c 'import azure.storage.blob' 2>/dev/null; then
        warn "azurite: .venv without azure-storage-blob (run \`make setup\`): containers $AZURITE_CONTAINERS not created"
        return 0
    fi
    # shellcheck disable=SC2086  # a space-separated list
    "$py" "$REPO_DIR/scripts/azurite_containers.py" --port "$AZURITE_PORT" $AZURITE_CONTAINERS \
        || die "azurite: creating containers $AZURITE_CONTAINERS failed"
}

azurite_up() {
    local t0
    t0="$(now_ms)"
    if azurite_is_running; then
        log "azurite: already running (pid $(cat "$AZURITE_PID"), blob http://127.0.0.1:$AZURITE_PORT)"
        azurite_create_containers
        return 0
    fi
    port_in_use "$AZURITE_PORT" && die "azurite: 127.0.0.1:$AZURITE_PORT is in use by another process (set AZURITE_PORT)"
    azurite_ensure_installed
    mkdir -p "$AZURITE_DATA"
    log "azurite: starting blob service on 127.0.0.1:$AZURITE_PORT (data $AZURITE_DATA, log $AZURITE_OUT)"
    # --skipApiVersionCheck: hadoop-azure's WASB uses azure-storage 7.0.1, whose x-ms-version Azurite may not list;
    # --loose: accept headers Azurite does not implement instead of failing the request.
    jvm_spawn "$AZURITE_PID" "$AZURITE_OUT" node "$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" \
        --location "$AZURITE_DATA" --skipApiVersionCheck --loose --disableTelemetry --silent
    jvm_wait_ready azurite azurite_ready azurite_is_running "$AZURITE_PID" "$AZURITE_LOG" "$AZURITE_OUT" \
        "$AZURITE_START_TIMEOUT" "http://127.0.0.1:$AZURITE_PORT"
    azurite_create_containers
    log "azurite: up on http://127.0.0.1:$AZURITE_PORT/devstoreaccount1 in $(elapsed "$t0")s (pid $(cat "$AZURITE_PID"), containers: $AZURITE_CONTAINERS)"
}

azurite_down() {
    jvm_stop azurite "$AZURITE_PID" "$AZURITE_BIN" "$AZURITE_STOP_TIMEOUT"
}

azurite_status() {
    service_status azurite azurite_is_running "$AZURITE_PID" "blob=http://127.0.0.1:$AZURITE_PORT/devstoreaccount1  data=$AZURITE_DATA" \
        "blob=http://127.0.0.1:$AZURITE_PORT"
}
