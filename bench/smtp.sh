#!/usr/bin/env bash
# SMTP relay throughput, end-of-DATA latency and memory of a DomainShare relay, side by side with a plain Postfix relay
# that forwards to the same final destination (Postfix's smtp-sink). Everything runs on loopback:
#
#   smtp-source ──► relay A (DomainShare, 127.0.0.2:2525) ──┐
#                   (RCPT TO decided by Minger → relay B)    ├──► smtp-sink 127.0.0.3:2526 (accepts and discards)
#   smtp-source ──► Postfix (private instance, 127.0.0.4:2525) ┘
#
# Relay B (127.0.0.3, Minger on :4070, SMTP on an unused :2527) only answers Minger for the recipient account; A's peer
# entry is host 127.0.0.3, SMTP port = the sink's port, Minger port = B's. Prints a Markdown table on standard output,
# progress on standard error. Needs root for Postfix (a private instance in a temporary folder; `postfix -c`). Installs
# the postfix package with apt-get when smtp-source/smtp-sink are missing. Options with --help.
#
# Every load is bounded in count and time, every process started here is stopped by its id, and the temporary folder
# ($TMPDIR/domainshare-smtpbench-*) is deleted at the end (--keep keeps it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

messages=5000 sessions=20 size=1024 lat_messages=2000 lat_sessions=4 warmup=3000 phase_timeout=300 keep=0 run_postfix=1
usage() {
    cat >&2 <<'EOF'
usage: bench/smtp.sh [options]
  --messages N          messages per throughput run (default 5000)
  --sessions N          parallel smtp-source sessions (default 20)
  --size BYTES          message payload (default 1024)
  --latency-messages N  messages of the latency client (default 2000)
  --latency-sessions N  its parallel sessions, each reusing its connection (default 4)
  --warmup N            messages sent (and forwarded) before each measured run (default 3000: .NET compiles
                        the relay's hot paths again, optimised, during its first ~2,000 messages)
  --timeout SECONDS     time bound of each load run and of each queue drain (default 300)
  --no-postfix          measure DomainShare only
  --keep                keep the temporary folder (configurations, relay logs, Postfix's maillog)
Exit code: 0 when every run completed and every message reached the sink exactly once; 1 otherwise; 2 bad arguments.
EOF
}
number() { [[ "$2" =~ ^[0-9]+$ ]] && (( $2 >= $3 )) || { echo "smtp.sh: $1 needs a whole number >= $3" >&2; usage; exit 2; }; }
while (( $# )); do
    case "$1" in
        --messages) number "$1" "${2:-}" 1; messages=$2; shift 2 ;;
        --sessions) number "$1" "${2:-}" 1; sessions=$2; shift 2 ;;
        --size) number "$1" "${2:-}" 0; size=$2; shift 2 ;;
        --latency-messages) number "$1" "${2:-}" 1; lat_messages=$2; shift 2 ;;
        --latency-sessions) number "$1" "${2:-}" 1; lat_sessions=$2; shift 2 ;;
        --warmup) number "$1" "${2:-}" 0; warmup=$2; shift 2 ;;
        --timeout) number "$1" "${2:-}" 10; phase_timeout=$2; shift 2 ;;
        --no-postfix) run_postfix=0; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "smtp.sh: unknown argument '$1'" >&2; usage; exit 2 ;;
    esac
done
# The relay refuses a 51st connection from one address (smtp.maxConnectionsPerSource, default 50), and smtp-source opens
# a new connection per message: a session that has just ended may still be counted for a moment, so with more than
# about 20 sessions the relay may answer 421 4.7.0, and the run is reported as failed.
(( sessions <= 50 )) || { echo "smtp.sh: --sessions above 50 exceeds the relay's per-address connection limit" >&2; exit 2; }
(( sessions <= 20 )) || echo "smtp.sh: warning: $sessions sessions may hit the relay's per-address connection limit (50)" >&2

# Loopback endpoints (127.0.0.0/8 only).
ds_ip=127.0.0.2 ds_port=2525 ds_minger=4069      # relay A: SMTP and Minger
sink_ip=127.0.0.3 sink_port=2526                 # the final destination
b_smtp_port=2527 b_minger=4070                   # relay B on the sink's host: Minger only (its SMTP is unused)
pf_ip=127.0.0.4 pf_port=2525                     # Postfix
from=sender@example.org rcpt=u1@example.com

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export POWERSHELL_TELEMETRY_OPTOUT=1 POWERSHELL_UPDATECHECK=Off

# shellcheck source=bench/lib.sh
source "$here/lib.sh"   # log, alive, kill_pid, build, dshost, q, ds, stop_relay
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }      # calc EXPR [decimals]
is_num() { [[ "${1:-}" =~ ^[0-9]+([.][0-9]+)?$ ]]; }

status=0
fail() { log "FAIL: $*"; failures+=("$*"); status=1; }
failures=()

# ---------------------------------------------------------------------------------------------------------------- tools
command -v dotnet >/dev/null || { echo "smtp.sh: the .NET SDK (dotnet) is needed to build the relay" >&2; exit 1; }
sbin=/usr/sbin
have_postfix_tools() { [[ -x $sbin/smtp-source && -x $sbin/smtp-sink ]]; }
postfix_note=""
if ! have_postfix_tools; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "smtp-source/smtp-sink missing: installing the postfix package (apt-get, non-interactive)"
        export DEBIAN_FRONTEND=noninteractive
        apt_err="$(mktemp)"
        if { apt-get update -qq &&
             echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections &&
             echo "postfix postfix/mailname string smtpbench.invalid" | debconf-set-selections &&
             apt-get install -y -qq --no-install-recommends postfix; } >/dev/null 2>"$apt_err"; then
            log "postfix installed ('No configuration': the system's own Postfix is not configured nor started)"
        else
            postfix_note="apt-get install postfix failed: $(tail -n 2 "$apt_err" | tr '\n' ' ')"
        fi
        rm -f "$apt_err"
    else
        postfix_note="postfix is not installed and cannot be installed here (needs root and apt-get)"
    fi
fi
if ! have_postfix_tools; then
    postfix_note="${postfix_note:-smtp-source/smtp-sink not found}; the sink and the load generator are SmtpBench (bench/SmtpBench) instead"
    run_postfix=0
elif (( run_postfix )) && [[ $(id -u) -ne 0 ]]; then
    postfix_note="not run: a private Postfix instance needs root"
    run_postfix=0
fi
(( run_postfix )) || [[ -n "$postfix_note" ]] || postfix_note="not run (--no-postfix)"

# ---------------------------------------------------------------------------------------------------------------- build
log "building the domainshare host and bench/SmtpBench (Release)"
build "$repo/src/DomainShare.Shell/DomainShare.Shell.csproj"
build "$here/SmtpBench/SmtpBench.csproj"
smtpbench="$here/SmtpBench/bin/Release/net10.0/SmtpBench"
[[ -x "$dshost" && -x "$smtpbench" ]] || { echo "smtp.sh: build outputs not found" >&2; exit 1; }

# ----------------------------------------------------------------------------------------------------- work and cleanup
work="$(mktemp -d "${TMPDIR:-/tmp}/domainshare-smtpbench-XXXXXX")"
chmod 755 "$work"                                # Postfix's unprivileged daemons must reach their queue below it
export XDG_CACHE_HOME="$work/xdg/cache" XDG_DATA_HOME="$work/xdg/data" XDG_CONFIG_HOME="$work/xdg/config"
export DOMAINSHARE_CONFIG="$work/unused-default.yaml"
mkdir -p "$XDG_CACHE_HOME" "$XDG_DATA_HOME" "$XDG_CONFIG_HOME" "$work/a" "$work/b"
cfg_a="$work/a/a.yaml" cfg_b="$work/b/b.yaml" pf="$work/postfix"
sink_pid="" a_pid="" b_pid="" sampler_pid="" pf_started=0 pf_ran=0
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"


stop_postfix() {
    (( pf_started )) || return 0
    local master; master="$(tr -dc 0-9 < "$pf/queue/pid/master.pid" 2>/dev/null || true)"
    $sbin/postfix -c "$pf/etc" stop >/dev/null 2>&1 || log "postfix stop failed"
    local i; for ((i = 0; i < 100; i++)); do alive "$master" || break; sleep 0.1; done
    alive "$master" && { log "Postfix master $master still running: killing it"; kill_pid "$master"; }
    pf_started=0
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    kill_pid "$sampler_pid"
    stop_relay "$cfg_a" "$a_pid"
    stop_relay "$cfg_b" "$b_pid"
    stop_postfix
    kill_pid "$sink_pid"
    if (( keep )); then log "kept $work"; else rm -rf "$work"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_listening() {   # wait_listening IP PORT SECONDS
    local i; for ((i = 0; i < $3 * 10; i++)); do port_free "$1" "$2" || return 0; sleep 0.1; done
    return 1
}
for ep in "$ds_ip:$ds_port" "$sink_ip:$sink_port" "$sink_ip:$b_smtp_port" "$pf_ip:$pf_port"; do
    port_free "${ep%:*}" "${ep#*:}" || { echo "smtp.sh: $ep is already in use (another bench?)" >&2; exit 1; }
done

# ------------------------------------------------------------------------------------------------------- measurements
# The sink's message counter: smtp-sink -c and SmtpBench sink both print "mesg=<n>" after each message.
sink_count() { local c; c="$(tail -c 512 "$work/sink.out" 2>/dev/null | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -n 1 | cut -d= -f2 || true)"; echo "${c:-0}"; }
wait_sink() {   # wait_sink TARGET SECONDS: prints the time the sink reached TARGET, or nothing
    local deadline; deadline=$(( $(date +%s) + $2 ))
    while (( $(date +%s) < deadline )); do
        if (( $(sink_count) >= $1 )); then now; return 0; fi
        sleep 0.1
    done
    return 1
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
postfix_pss_kb() {   # the Postfix master and its children: the sum of their PSS (shared pages split among the sharers)
    local pids p total=0 v
    pids="$(awk -v m="$1" 'FNR == 1 { if (pid == m || ppid == m) print pid; pid = ""; ppid = "" }
        /^Pid:/ { pid = $2 } /^PPid:/ { ppid = $2 }
        END { if (pid == m || ppid == m) print pid }' /proc/[0-9]*/status 2>/dev/null || true)"
    [[ -n "$pids" ]] || return 0
    for p in $pids; do
        v="$(awk '/^Pss:/ { print $2; exit }' "/proc/$p/smaps_rollup" 2>/dev/null || true)"
        [[ "$v" =~ ^[0-9]+$ ]] && total=$((total + v))
    done
    echo "$total"
}
clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)
ds_cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }' || true; }   # utime + stime, all threads
postfix_cpu_ticks() {   # the master (with the children it has reaped) and its live children
    local total=0 p v
    v="$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 + $14 + $15 }' || true)"
    [[ "$v" =~ ^[0-9]+$ ]] && total=$v
    for p in $(awk -v m="$1" 'FNR == 1 { if (ppid == m) print pid; pid = ""; ppid = "" } /^Pid:/ { pid = $2 } /^PPid:/ { ppid = $2 }
                END { if (ppid == m) print pid }' /proc/[0-9]*/status 2>/dev/null || true); do
        v="$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }' || true)"
        [[ "$v" =~ ^[0-9]+$ ]] && total=$((total + v))
    done
    echo "$total"
}
start_sampler() {   # start_sampler OUTFILE INTERVAL COMMAND...: keeps the peak of COMMAND's output (kB), bounded in count
    local out=$1 interval=$2; shift 2
    echo 0 > "$out"
    (
        max=0
        for ((i = 0; i < 20000; i++)); do
            v="$("$@")"; [[ "$v" =~ ^[0-9]+$ ]] || break
            if (( v > max )); then max=$v; echo "$max" > "$out"; fi
            sleep "$interval"
        done
    ) &
    sampler_pid=$!
}
stop_sampler() { kill_pid "$sampler_pid"; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=""; }

# Sends COUNT messages to IP:PORT with smtp-source (one connection per message, its default) or, without Postfix's
# tools, with the SmtpBench client (connections reused). Prints the wall time in seconds; fails when the load failed.
load() {   # load IP PORT COUNT SESSIONS LOGFILE
    local t0 t1 rc=0
    t0=$(now)
    if have_postfix_tools; then
        timeout "$phase_timeout" $sbin/smtp-source -c -l "$size" -m "$3" -s "$4" -f "$from" -t "$rcpt" "$1:$2" >"$5" 2>&1 || rc=$?
    else
        timeout "$phase_timeout" "$smtpbench" client --server "$1:$2" --messages "$3" --sessions "$4" --size "$size" \
            --from "$from" --to "$rcpt" --seconds "$phase_timeout" >"$5" 2>&1 || rc=$?
    fi
    t1=$(now)
    calc "$t1 - $t0" 3
    return "$rc"
}
latency() {   # latency IP PORT: prints SmtpBench's key=value line
    timeout $((phase_timeout + 30)) "$smtpbench" client --server "$1:$2" --messages "$lat_messages" --sessions "$lat_sessions" \
        --size "$size" --from "$from" --to "$rcpt" --seconds "$phase_timeout" 2>>"$work/latency.err"
}
field() { grep -o "\\b$2=[^ ]*" <<<"$1" | head -n 1 | cut -d= -f2 || true; }   # field LINE KEY

# Runs warm-up, the measured load and the drain against one relay. Sets R_* variables. CPU_COMMAND... prints the
# relay's CPU time in clock ticks.
measure() {   # measure NAME IP PORT DRAIN_CHECK_FUNCTION CPU_COMMAND...
    local name=$1 ip=$2 port=$3 drained=$4 base t_end sec c0 c1 ok
    shift 4
    R_ACC="" R_FWD="" R_LOAD_S="" R_DRAIN_S="" R_SINK="" R_LAT="" R_CPU=""
    if (( warmup > 0 )); then
        base=$(sink_count)
        log "$name: warm-up, $warmup messages"
        if ! load "$ip" "$port" "$warmup" "$sessions" "$work/$name-warmup.out" >/dev/null; then
            fail "$name: warm-up load failed: $(load_error "$work/$name-warmup.out")"
            "$drained" || true
            return 1
        fi
        wait_sink $((base + warmup)) "$phase_timeout" >/dev/null || { fail "$name: warm-up messages did not all reach the sink"; return 1; }
        "$drained" || true
    fi
    base=$(sink_count)
    log "$name: smtp load, $messages messages × ${size} B over $sessions sessions"
    c0=$("$@")
    t0=$(now)
    if ! sec=$(load "$ip" "$port" "$messages" "$sessions" "$work/$name-load.out"); then
        fail "$name: the load generator failed after ${sec} s: $(load_error "$work/$name-load.out")"
        "$drained" || true
        R_SINK=$(( $(sink_count) - base ))
        return 1
    fi
    R_LOAD_S=$sec
    R_ACC=$(calc "$messages / $R_LOAD_S" 0)
    log "$name: $messages accepted in ${R_LOAD_S} s; waiting for the sink"
    if t_end=$(wait_sink $((base + messages)) "$phase_timeout"); then
        R_DRAIN_S=$(calc "$t_end - $t0" 3)
        R_FWD=$(calc "$messages / $R_DRAIN_S" 0)
        c1=$("$@")
        is_num "$c0" && is_num "$c1" && R_CPU=$(calc "($c1 - $c0) / $clk_tck / $messages * 1000" 2)
        log "$name: all $messages at the sink after ${R_DRAIN_S} s"
    else
        fail "$name: only $(( $(sink_count) - base )) of $messages messages reached the sink within ${phase_timeout} s"
    fi
    "$drained" || fail "$name: queue not empty ${phase_timeout} s after the run"
    sleep 1
    R_SINK=$(( $(sink_count) - base ))
    (( R_SINK == messages )) || fail "$name: the sink received $R_SINK messages for $messages sent (lost or duplicated)"

    base=$(sink_count)
    log "$name: latency client, $lat_messages messages over $lat_sessions sessions"
    R_LAT=$(latency "$ip" "$port") || fail "$name: latency client: $(tail -n 3 "$work/latency.err" | tr '\n' ' ') $R_LAT"
    log "$name: $R_LAT"
    ok=$(field "$R_LAT" ok)
    wait_sink $((base + ${ok:-0})) "$phase_timeout" >/dev/null || fail "$name: the latency client's messages did not all reach the sink"
    "$drained" || true
}
load_error() { grep -v '^[0-9]*$' "$1" | tr -d '\r' | grep -v '^$' | sed 's/^[0-9]*\(\/usr\/sbin\)/\1/' | tail -n 2 | tr '\n' ' ' || true; }

# -------------------------------------------------------------------------------------------------------------- sink
if have_postfix_tools; then
    sink_kind="smtp-sink"
    $sbin/smtp-sink -c -u postfix "$sink_ip:$sink_port" 1000 >"$work/sink.out" 2>"$work/sink.err" &
else
    sink_kind="SmtpBench sink"
    "$smtpbench" sink --listen "$sink_ip:$sink_port" --seconds 7200 >"$work/sink.out" 2>"$work/sink.err" &
fi
sink_pid=$!
wait_listening "$sink_ip" "$sink_port" 10 || { cat "$work/sink.err" >&2; echo "smtp.sh: the sink did not start" >&2; exit 1; }
log "$sink_kind listening on $sink_ip:$sink_port (pid $sink_pid)"

# ---------------------------------------------------------------------------------------------------------- DomainShare
counters_script() {   # prints ProcessId=…, Running=… and one Name=value line per counter
    printf '%s' "\$r = Get-DomainShareRelay -ConfigPath $(q "$1"); \"ProcessId=\$(\$r.ProcessId)\"; \"Running=\$(\$r.Running)\"; foreach (\$n in [string[]]\$r.Counters.Keys) { \"\$n=\$(\$r.Counters[\$n])\" }"
}
counter() { grep -m 1 "^$2=" "$1" | cut -d= -f2 || true; }   # counter FILE NAME

log "relay B ($sink_ip, Minger :$b_minger): configuration, account $rcpt, start"
ds "\$ErrorActionPreference = 'Stop'
\$null = Initialize-DomainShare b.example.com -ConfigPath $(q "$cfg_b") -SmtpEndpoint $sink_ip:$b_smtp_port -MingerEndpoint $sink_ip:$b_minger
Add-DomainShareDomain example.com -Shared -ConfigPath $(q "$cfg_b")
\$null = New-DomainShareAccount $rcpt -ConfigPath $(q "$cfg_b")
\"ProcessId=\$((Start-DomainShareRelay -ConfigPath $(q "$cfg_b")).ProcessId)\"" >"$work/b-start.out" 2>&1 || true
b_pid="$(counter "$work/b-start.out" ProcessId)"
alive "$b_pid" || { cat "$work/b-start.out" >&2; echo "smtp.sh: relay B did not start" >&2; exit 1; }

log "relay A ($ds_ip:$ds_port): configuration, peer $sink_ip (SMTP :$sink_port, Minger :$b_minger), start"
ds "\$ErrorActionPreference = 'Stop'
\$null = Initialize-DomainShare a.example.com -ConfigPath $(q "$cfg_a") -SmtpEndpoint $ds_ip:$ds_port -MingerEndpoint $ds_ip:$ds_minger
Add-DomainShareDomain example.com -Shared -ConfigPath $(q "$cfg_a")
Add-DomainSharePeer $sink_ip:$sink_port -MingerPort $b_minger -ConfigPath $(q "$cfg_a")
\$null = Start-DomainShareRelay -ConfigPath $(q "$cfg_a")
$(counters_script "$cfg_a")" >"$work/a-start.out" 2>&1 || true
a_pid="$(counter "$work/a-start.out" ProcessId)"
for attempt in 1 2 3; do   # another program may hold the port for a moment (tests running on the same machine)
    if alive "$a_pid" || ! grep -q 'already in use' "$work/a-start.out"; then break; fi
    log "relay A: its endpoint is in use by another program; retrying in 5 s"
    sleep 5
    ds "\$null = Start-DomainShareRelay -ConfigPath $(q "$cfg_a"); $(counters_script "$cfg_a")" >"$work/a-start.out" 2>&1 || true
    a_pid="$(counter "$work/a-start.out" ProcessId)"
done
alive "$a_pid" || { cat "$work/a-start.out" >&2; echo "smtp.sh: relay A did not start" >&2; exit 1; }
sleep 3
ds_rss_idle=$(rss_kb "$a_pid")
log "relay A runs as process $a_pid; RSS idle after start ${ds_rss_idle} kB"

ds_queue_empty() {   # bounded: up to --timeout seconds
    local deadline n; deadline=$(( $(date +%s) + phase_timeout ))
    while (( $(date +%s) < deadline )); do
        n="$(ds "@(Get-DomainShareQueue -ConfigPath $(q "$cfg_a")).Count" 2>/dev/null | tr -dc 0-9)"
        [[ "$n" == 0 ]] && return 0
        sleep 1
    done
    return 1
}

ds "$(counters_script "$cfg_a")" >"$work/a-counters-before.txt" 2>&1 || true
start_sampler "$work/a-rss-peak" 0.1 rss_kb "$a_pid"
measure domainshare "$ds_ip" "$ds_port" ds_queue_empty ds_cpu_ticks "$a_pid" || true
stop_sampler
ds_rss_peak=$(cat "$work/a-rss-peak")
ds_hwm=$(hwm_kb "$a_pid")
alive "$a_pid" || fail "relay A (process $a_pid) is no longer running"
ds "$(counters_script "$cfg_a")" >"$work/a-counters-after.txt" 2>&1 || true
ds_cpu=$R_CPU ds_acc=$R_ACC ds_fwd=$R_FWD ds_load_s=$R_LOAD_S ds_drain_s=$R_DRAIN_S ds_sink=$R_SINK ds_lat=$R_LAT
delta() { local a b; a=$(counter "$work/a-counters-after.txt" "$1"); b=$(counter "$work/a-counters-before.txt" "$1"); echo $(( ${a:-0} - ${b:-0} )); }
ds_lat_ok=$(field "$ds_lat" ok || true)
ds_expected=$((warmup + messages + ${ds_lat_ok:-0}))   # every message the relay was sent and should have accepted
ds_accepted=$(delta SmtpMessagesAccepted) ds_delivered=$(delta DeliveredRecipients)
ds_bad=""
for c in SmtpMessagesRefused SmtpMessagesAbandoned SmtpSessionFailures FailedRecipients DeferredRecipients BouncesQueued SmtpConnectionsRefused; do
    d=$(delta "$c"); (( d == 0 )) || ds_bad+="$c +$d; "
done
[[ -z "$ds_bad" ]] || fail "relay A counters: $ds_bad"
(( ds_accepted == ds_expected && ds_delivered == ds_expected )) ||
    fail "relay A counters: SmtpMessagesAccepted +$ds_accepted, DeliveredRecipients +$ds_delivered for $ds_expected messages sent"
ds_log_problems=$(grep -cE ' (WARN|ERROR|FATAL|CRIT)' "$work/a/data/relay.log" 2>/dev/null || true)
if [[ "${ds_log_problems:-0}" != 0 ]]; then
    log "relay A logged $ds_log_problems warning/error lines, e.g.:"
    grep -E ' (WARN|ERROR|FATAL|CRIT)' "$work/a/data/relay.log" | head -n 5 >&2
fi
ds_version="$(grep -oE "ModuleVersion\s*=\s*'[0-9.]+'" "$repo/DomainShare.psd1" | grep -oE '[0-9.]+' | head -n 1 || true)"
log "stopping relays A and B"
stop_relay "$cfg_a" "$a_pid"
stop_relay "$cfg_b" "$b_pid"

# -------------------------------------------------------------------------------------------------------------- Postfix
pf_acc="" pf_fwd="" pf_cpu="" pf_lat="" pf_rss_idle="" pf_rss_peak="" pf_sink="" pf_version=""
if (( run_postfix )); then
    pf_version="$($sbin/postconf -d -h mail_version 2>/dev/null || true)"
    mkdir -p "$pf/etc" "$pf/queue" "$pf/data"
    chown postfix "$pf/data"
    cat >"$pf/etc/main.cf" <<EOF
# Private Postfix instance of bench/smtp.sh: a plain relay for example.com to the sink. fsync stays on (the default).
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-bench.localhost
mydomain = localhost
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
# Not 127.0.0.4: Postfix accepts only addresses assigned to an interface here ("no local interface found"), and on
# Linux lo carries 127.0.0.1/8 as one address. The smtpd service in master.cf listens on $pf_ip:$pf_port alone.
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = example.com
relayhost = [$sink_ip]:$sink_port
relay_transport = relay:[$sink_ip]:$sink_port
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject
default_process_limit = 100
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_peername_lookup = no
smtputf8_enable = no
biff = no
append_dot_mydomain = no
maillog_file_prefixes = $pf
maillog_file = $pf/maillog
EOF
    cat >"$pf/etc/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
$pf_ip:$pf_port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    # Without syslog (containers) Postfix's commands print their errors only to a terminal: give them one when we can.
    pf_cmd() {
        if command -v script >/dev/null; then timeout 120 script -qec "$sbin/postfix -c '$pf/etc' $1" /dev/null
        else timeout 120 $sbin/postfix -c "$pf/etc" "$1"; fi
    }
    log "Postfix $pf_version: private instance in $pf (smtpd $pf_ip:$pf_port, relayhost [$sink_ip]:$sink_port)"
    if ! pf_cmd check >"$work/postfix-check.out" 2>&1; then
        postfix_note="postfix check failed: $(tr -d '\r' < "$work/postfix-check.out" | tail -n 3 | tr '\n' ' ')"
    elif ! pf_cmd start >"$work/postfix-start.out" 2>&1; then
        postfix_note="postfix start failed: $(tr -d '\r' < "$work/postfix-start.out" | tail -n 3 | tr '\n' ' ')"
    else
        pf_started=1
        if ! wait_listening "$pf_ip" "$pf_port" 20; then
            postfix_note="Postfix started but does not listen on $pf_ip:$pf_port: $(tail -n 3 "$pf/maillog" 2>/dev/null | tr '\n' ' ')"
            stop_postfix
        fi
    fi
    if (( pf_started )); then
        pf_master="$(tr -dc 0-9 < "$pf/queue/pid/master.pid")"
        sleep 2
        pf_rss_idle=$(postfix_pss_kb "$pf_master")
        pf_queue_empty() {
            local deadline; deadline=$(( $(date +%s) + phase_timeout ))
            while (( $(date +%s) < deadline )); do
                $sbin/postqueue -c "$pf/etc" -p 2>/dev/null | grep -q 'Mail queue is empty' && return 0
                sleep 0.5
            done
            return 1
        }
        start_sampler "$work/pf-rss-peak" 0.5 postfix_pss_kb "$pf_master"
        pf_ran=1
        measure postfix "$pf_ip" "$pf_port" pf_queue_empty postfix_cpu_ticks "$pf_master" || true
        stop_sampler
        pf_rss_peak=$(cat "$work/pf-rss-peak")
        pf_cpu=$R_CPU pf_acc=$R_ACC pf_fwd=$R_FWD pf_load_s=$R_LOAD_S pf_drain_s=$R_DRAIN_S pf_sink=$R_SINK pf_lat=$R_LAT
        pf_problems=$(grep -cE 'warning|error|fatal|panic' "$pf/maillog" 2>/dev/null || true)
        [[ "${pf_problems:-0}" == 0 ]] || { log "Postfix logged $pf_problems warning/error lines, e.g.:"; grep -E 'warning|error|fatal|panic' "$pf/maillog" | head -n 5 >&2; }
        log "stopping Postfix"
        stop_postfix
    else
        fail "Postfix: $postfix_note"
    fi
elif [[ "$postfix_note" != "not run (--no-postfix)" ]]; then
    fail "Postfix: $postfix_note"
fi

# ---------------------------------------------------------------------------------------------------------------- table
mb() { if is_num "${1:-}"; then calc "$1 / 1024" 1; else echo "n/a"; fi; }
or_na() { if [[ -n "${1:-}" ]]; then echo "$1"; else echo "n/a"; fi; }
secs() { if [[ -n "${1:-}" ]]; then echo " (${1} s)"; fi; }
verdict() {   # verdict VALUE OP LIMIT
    is_num "${1:-}" && is_num "${3:-}" || { echo "n/a"; return; }
    if awk "BEGIN { exit !($1 $2 $3) }"; then echo "pass"; else echo "**miss**"; fi
}
pf_col() { if (( pf_ran )); then echo "$1"; else echo "not run"; fi; }
ratio() { if is_num "${1:-}" && is_num "${2:-}" && awk "BEGIN { exit !($2 > 0) }"; then calc "$1 / $2" 2; fi; }
r_acc=$(ratio "$ds_acc" "$pf_acc") r_fwd=$(ratio "$ds_fwd" "$pf_fwd")
lat() { if [[ -n "$(field "${1:-}" p50_ms)" ]]; then echo "$(field "$1" p50_ms) / $(field "$1" p99_ms) (max $(field "$1" max_ms))"; else echo "n/a"; fi; }
delivered_ok() { [[ "${1:-}" == "$messages" ]]; }
if delivered_ok "$ds_sink" && { (( ! pf_ran )) || delivered_ok "$pf_sink"; }; then sink_verdict=pass; else sink_verdict='**FAIL**'; fi
if [[ -z "$ds_bad" ]] && (( ds_accepted == ds_expected && ds_delivered == ds_expected )); then counters_verdict=pass; else counters_verdict='**FAIL**'; fi
fs_type="$(stat -f -c %T "$work" 2>/dev/null || echo '?')"
cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"
if [[ "$sink_kind" == smtp-sink ]]; then generator="smtp-source (one connection per message)"; else generator="SmtpBench client (connections reused)"; fi

echo "## DomainShare SMTP relay vs Postfix"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr), $(nproc) CPUs${cpu:+ ($cpu)}, load average $load_start at the start and" \
     "$(cut -d' ' -f1-3 /proc/loadavg) at the end (1/5/15 min; the machine may be shared with other work)." \
     "DomainShare ${ds_version:-?} (Release, bundled domainshare host, .NET SDK $(dotnet --version 2>/dev/null || echo '?'))," \
     "Postfix ${pf_version:-n/a}. Spool and queue on $fs_type (\`${TMPDIR:-/tmp}\`), fsync on for both." \
     "Load: $generator, $messages messages of $size B payload, $sessions parallel sessions, after a $warmup-message warm-up;" \
     "final destination $sink_kind on $sink_ip:$sink_port. Latency: SmtpBench, $lat_messages messages over $lat_sessions sessions (connections reused)."
[[ -n "$postfix_note" ]] && { echo; echo "**Postfix: $postfix_note**"; }
echo
echo "| figure | DomainShare | Postfix | goal | result |"
echo "|---|---:|---:|---|---|"
echo "| throughput accepted (msg/s) | $(or_na "$ds_acc")$(secs "$ds_load_s") | $(pf_col "$(or_na "$pf_acc")$(secs "${pf_load_s:-}")") | — | — |"
echo "| throughput accepted + forwarded to the sink (msg/s) | $(or_na "$ds_fwd")$(secs "$ds_drain_s") | $(pf_col "$(or_na "$pf_fwd")$(secs "${pf_drain_s:-}")") | — | — |"
echo "| ratio DomainShare / Postfix, accepted | $(or_na "${r_acc:+${r_acc}×}") | | ≥ 2× | $(verdict "${r_acc:-}" '>=' 2) |"
echo "| ratio DomainShare / Postfix, accepted + forwarded | $(or_na "${r_fwd:+${r_fwd}×}") | | ≥ 2× | $(verdict "${r_fwd:-}" '>=' 2) |"
echo "| CPU time per 1,000 messages accepted + forwarded (s) | $(or_na "$ds_cpu") | $(pf_col "$(or_na "$pf_cpu") Σ") | — | — |"
echo "| end of DATA → 250 latency p50 / p99 (ms) | $(lat "$ds_lat") | $(pf_col "$(lat "$pf_lat")") | — | — |"
echo "| latency client throughput (msg/s, $lat_sessions sessions) | $(or_na "$(field "$ds_lat" rate)") | $(pf_col "$(or_na "$(field "$pf_lat" rate)")") | — | — |"
echo "| relay RSS idle, 3 s after start (MB) | $(mb "$ds_rss_idle") | $(pf_col "$(mb "$pf_rss_idle") Σ") | < 80 MB | $(verdict "$(mb "$ds_rss_idle")" '<' 80) |"
echo "| relay RSS under load, peak of samples (MB) | $(mb "$ds_rss_peak") | $(pf_col "$(mb "$pf_rss_peak") Σ") | < 250 MB | $(verdict "$(mb "$ds_rss_peak")" '<' 250) |"
echo "| relay VmHWM at the end (MB) | $(mb "$ds_hwm") | | < 250 MB | $(verdict "$(mb "$ds_hwm")" '<' 250) |"
echo "| messages at the sink / sent (measured run) | $(or_na "$ds_sink") / $messages | $(pf_col "$(or_na "$pf_sink") / $messages") | all, once | $sink_verdict |"
echo "| relay A counters, all runs: accepted / delivered / other | $ds_accepted / $ds_delivered / ${ds_bad:-none} | | $ds_expected / $ds_expected / none | $counters_verdict |"
echo "| warning/error lines in the logs | ${ds_log_problems:-0} (relay.log) | $(pf_col "${pf_problems:-0} (maillog)") | 0 | $( [[ "${ds_log_problems:-0}" == 0 ]] && echo pass || echo check) |"
echo
echo "DomainShare is one process: RSS from /proc/<pid>/status, sampled every 100 ms during both runs, and its CPU time (utime + stime)."
echo "Σ: Postfix is many processes: the sum over its master and all its children of the PSS (proportional set size: shared"
echo "pages divided among the processes sharing them; sampled every 0.5 s) and of the CPU time (reaped children included)."
if (( ${#failures[@]} )); then
    echo
    echo "Failures:"
    for f in "${failures[@]}"; do echo "- $f"; done
fi
exit "$status"
