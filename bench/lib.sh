# Shared by bench/smtp.sh and bench/hardening.sh (sourced after they set $repo): logging, stopping processes by id,
# building in Release with retries, and running PowerShell through the bundled host.
# shellcheck shell=bash

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
kill_pid() {   # kill_pid PID: TERM, wait up to 10 s, then KILL
    local pid=$1 i
    alive "$pid" || return 0
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do alive "$pid" || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}

build() {   # build PROJECT: Release; other builds in the same checkout may hold a file, so a few retries
    local attempt=1 out
    until out="$(dotnet build "$1" -c Release -nologo -v quiet 2>&1)"; do
        if (( attempt >= 4 )) || ! grep -qiE 'being used by another process|cannot access the file|MSB3026|MSB3027|MSB3021' <<<"$out"; then
            printf '%s\n' "$out" >&2
            echo "${0##*/}: build of $1 failed" >&2
            exit 1
        fi
        log "a file was in use by another build; retrying in $((attempt * 5)) s"
        sleep $((attempt * 5))
        attempt=$((attempt + 1))
    done
}

dshost="$repo/src/DomainShare.Shell/bin/Release/net10.0/domainshare"   # the bundled host (build src/DomainShare.Shell first)
q() { printf "'%s'" "${1//\'/\'\'}"; }   # PowerShell single-quoted string
ds() { timeout 120 "$dshost" -NoProfile -NonInteractive -Command "$1"; }   # one PowerShell script in a fresh host

stop_relay() {   # stop_relay CONFIG PID (the PID is read from the relay's relay.json when not known)
    [[ -f "$1" ]] || return 0
    local pid=$2 state; state="$(dirname "$1")/data/relay.json"
    [[ -n "$pid" ]] || pid="$(grep -o '"processId": *[0-9]*' "$state" 2>/dev/null | tr -dc 0-9 || true)"
    if alive "$pid" || [[ -f "$state" ]]; then
        ds "Stop-DomainShareRelay -ConfigPath $(q "$1") -Timeout 60s" >/dev/null 2>&1 || log "Stop-DomainShareRelay failed for $1"
        local i; for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then log "relay $pid still running after Stop-DomainShareRelay: killing it"; kill_pid "$pid"; fi
    fi
    return 0
}
