#!/usr/bin/env bash
# The hardening battery of issue 7 at full size, with a Markdown table of its figures on standard output (progress on
# standard error). Two parts:
#
#  1. The battery's tests (tests/DomainShare.EndToEnd.Tests/Hardening and SmtpCrashTests) run by `dotnet test` with
#     DOMAINSHARE_HARDENING=full (the sizes the issue asks for: 100,000 hostile SMTP sessions, 1,000,000 Minger
#     datagrams, 20 SIGKILL rounds, ...). Each test appends what it measured to a figures file (Infrastructure/Figures.cs).
#  2. Debian's own tools against a real relay started with the bundled host: swaks tries classic open-relay tricks from
#     an untrusted address, and Postfix's smtp-source holds 500 sessions open (-d: each session sends its messages over
#     one connection) while bench/SmtpBench measures end-of-DATA latency beside it.
#
# Everything runs on loopback (127.0.0.0/8). Every load is bounded in count and time; every process started here is
# stopped by its id; the temporary folder ($TMPDIR/domainshare-hardening-*) is deleted at the end (--keep keeps it).
# Installs swaks and postfix (for smtp-source) with apt-get when they are missing and this runs as root.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

size=full crash_rounds=20 run_tests=1 run_debian=1 keep=0 filter="" test_timeout=3600 load_messages=20000
usage() {
    cat >&2 <<'EOF'
usage: bench/hardening.sh [options]
  --quick               the sizes `dotnet test` uses (minutes instead of tens of minutes)
  --crash-rounds N      SIGKILL rounds of the crash test (default 20)
  --only TEXT           run only the battery tests whose name contains TEXT (e.g. HostileSmtp)
  --no-tests            skip part 1 (the battery's tests)
  --no-debian           skip part 2 (swaks and smtp-source)
  --load-messages N     messages smtp-source sends over its 500 sessions (default 20000)
  --timeout SECONDS     time bound of part 1 (default 3600)
  --keep                keep the temporary folder (test log, figures, relay logs)
Exit code: 0 when every test passed and every figure met its hard goal (0 lost, 0 accepted relay tricks);
1 otherwise; 2 on bad arguments.
EOF
}
number() { [[ "$2" =~ ^[0-9]+$ ]] && (( $2 >= $3 )) || { echo "hardening.sh: $1 needs a whole number >= $3" >&2; usage; exit 2; }; }
while (( $# )); do
    case "$1" in
        --quick) size=quick; shift ;;
        --crash-rounds) number "$1" "${2:-}" 1; crash_rounds=$2; shift 2 ;;
        --only) [[ -n "${2:-}" ]] || { usage; exit 2; }; filter=$2; shift 2 ;;
        --no-tests) run_tests=0; shift ;;
        --no-debian) run_debian=0; shift ;;
        --load-messages) number "$1" "${2:-}" 500; load_messages=$2; shift 2 ;;
        --timeout) number "$1" "${2:-}" 60; test_timeout=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "hardening.sh: unknown argument '$1'" >&2; usage; exit 2 ;;
    esac
done

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export POWERSHELL_TELEMETRY_OPTOUT=1 POWERSHELL_UPDATECHECK=Off
# shellcheck source=bench/lib.sh
source "$here/lib.sh"   # log, alive, kill_pid, build, dshost, q, ds, stop_relay
status=0
fail() { log "FAIL: $*"; status=1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/domainshare-hardening-XXXXXX")"
export XDG_CACHE_HOME="$work/xdg/cache" XDG_DATA_HOME="$work/xdg/data" XDG_CONFIG_HOME="$work/xdg/config"
export DOMAINSHARE_CONFIG="$work/unused-default.yaml"
mkdir -p "$XDG_CACHE_HOME" "$XDG_DATA_HOME" "$XDG_CONFIG_HOME"
figures="$work/figures.tsv"
: >"$figures"
relay_cfg="$work/relay/domainshare.yaml" relay_pid="" load_pid="" probe_pid="" sampler_pid=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    kill_pid "$sampler_pid"; kill_pid "$load_pid"; kill_pid "$probe_pid"
    stop_relay "$relay_cfg" "$relay_pid"
    if (( keep )); then log "kept $work"; else rm -rf "$work"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$figures"; }   # area figure goal measured


# ------------------------------------------------------------------------------------------------ part 1: the battery
if (( run_tests )); then
    log "building the end-to-end tests (Release)"
    build "$repo/tests/DomainShare.EndToEnd.Tests/DomainShare.EndToEnd.Tests.csproj"
    test_filter="FullyQualifiedName~DomainShare.EndToEnd.Tests.Hardening|FullyQualifiedName~SmtpCrashTests"
    [[ -z "$filter" ]] || test_filter="FullyQualifiedName~$filter"
    # One test at a time: each measures its own figures on a machine no other test of the battery is loading.
    log "part 1: the battery at $size size, one test at a time ($test_filter; crash rounds $crash_rounds; bounded to $test_timeout s)"
    started=$(date +%s)
    rc=0
    DOMAINSHARE_HARDENING=$size DOMAINSHARE_E2E_CRASH_ROUNDS=$crash_rounds DOMAINSHARE_FIGURES="$figures" \
        timeout "$test_timeout" dotnet test "$repo/tests/DomainShare.EndToEnd.Tests/DomainShare.EndToEnd.Tests.csproj" \
        -c Release --no-build --filter "$test_filter" --logger "console;verbosity=normal" \
        -- xUnit.ParallelizeTestCollections=false >"$work/tests.log" 2>&1 || rc=$?
    grep -E '^\s+(Passed|Failed|Skipped) ' "$work/tests.log" | sed 's/^\s*/  /' >&2 || true
    if (( rc != 0 )); then
        fail "the battery's tests failed (exit $rc); the log follows"
        grep -E -A 15 '^\s+Failed ' "$work/tests.log" | head -n 80 >&2 || tail -n 40 "$work/tests.log" >&2
    fi
    record "battery" "tests of part 1" "all pass" "$(grep -oE 'Passed: +[0-9]+|Failed: +[0-9]+' "$work/tests.log" | tr -s ' ' | paste -sd, -), $(( $(date +%s) - started )) s"
fi

# ------------------------------------------------------------------------------------- part 2: swaks and smtp-source
if (( run_debian )); then
    if ! command -v swaks >/dev/null || [[ ! -x /usr/sbin/smtp-source ]]; then
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
            log "installing swaks and postfix (for smtp-source) with apt-get"
            export DEBIAN_FRONTEND=noninteractive
            { apt-get update -qq &&
              echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections &&
              apt-get install -y -qq --no-install-recommends swaks postfix; } >"$work/apt.log" 2>&1 || log "apt-get failed: $(tail -n 2 "$work/apt.log" | tr '\n' ' ')"
        fi
    fi
    if ! command -v swaks >/dev/null || [[ ! -x /usr/sbin/smtp-source ]]; then
        fail "swaks or smtp-source is missing and could not be installed: part 2 not run"
    else
        log "building the domainshare host and bench/SmtpBench (Release)"
        build "$repo/src/DomainShare.Shell/DomainShare.Shell.csproj"
        build "$here/SmtpBench/SmtpBench.csproj"
        smtpbench="$here/SmtpBench/bin/Release/net10.0/SmtpBench"
        ip=127.0.0.61 port=2625 minger=4169 user=load@example.com
        mkdir -p "$work/relay"
        log "part 2: a relay on $ip:$port (500 sessions allowed from one address), account $user"
        ds "\$ErrorActionPreference = 'Stop'
\$null = Initialize-DomainShare hardening.example.com -ConfigPath $(q "$relay_cfg") -SmtpEndpoint $ip:$port -MingerEndpoint $ip:$minger
Add-DomainShareDomain example.com -ConfigPath $(q "$relay_cfg")
Set-DomainShareConfig -MaxConnections 1000 -MaxConnectionsPerSource 600 -ConfigPath $(q "$relay_cfg")
\$null = New-DomainShareAccount $user -ConfigPath $(q "$relay_cfg")
\"ProcessId=\$((Start-DomainShareRelay -ConfigPath $(q "$relay_cfg")).ProcessId)\"" >"$work/start.out" 2>&1 || true
        relay_pid="$(grep -m 1 '^ProcessId=' "$work/start.out" | cut -d= -f2 | tr -dc 0-9 || true)"
        alive "$relay_pid" || { cat "$work/start.out" >&2; fail "the relay did not start"; exit 1; }
        maildir="$work/relay/data/mail/${user#*@}/${user%@*}"   # mail/<domain>/<local part>

        # a. Open-relay tricks with swaks, from 127.0.0.62 (not trusted). --quit-after RCPT: exit 0 = RCPT accepted.
        tricks=(
            "sender@client.test|victim@outside.test" "sender@client.test|victim%outside.test@example.com"
            "sender@client.test|outside.test!victim@example.com" "sender@client.test|@example.com:victim@outside.test"
            "sender@client.test|\"victim@outside.test\"@example.com" "sender@client.test|victim@outside.test."
            "sender@client.test|victim@[127.0.0.1]" "sender@client.test|victim@example.com.outside.test"
            "sender@client.test|victim@EXAMPLE.COM.OUTSIDE.TEST" "sender@client.test|victim@exаmple.com"
            "|victim@outside.test" "|victim%outside.test@example.com" "load@example.com|victim@outside.test"
            "sender@client.test|victim@outside.test@example.com" "sender@client.test|victim@example.com@outside.test"
            "sender@client.test|postmaster@outside.test"
        )
        accepted=0 tried=0 codes=""
        for t in "${tricks[@]}"; do
            from="${t%%|*}" to="${t#*|}"
            rc=0
            timeout 30 swaks --server "$ip:$port" --local-interface 127.0.0.62 --helo client.test --from "$from" --to "$to" \
                --quit-after RCPT >"$work/swaks.out" 2>&1 || rc=$?
            tried=$((tried + 1))
            code="$(grep -E '^ *<[~*-]+ [0-9]{3}' "$work/swaks.out" | tail -n 2 | head -n 1 | grep -oE '[0-9]{3}' | head -n 1 || true)"
            codes+="${code:-?} "
            if (( rc == 0 )); then accepted=$((accepted + 1)); fail "swaks: RCPT TO:<$to> from <$from> was accepted"; fi
        done
        record "open relay" "relay tricks with swaks from an untrusted address" "0 accepted" \
            "$accepted of $tried accepted; RCPT replies: $(tr ' ' '\n' <<<"$codes" | grep . | sort | uniq -c | awk '{printf "%s×%s ", $1, $2}')"
        ctrl=0; timeout 30 swaks --server "$ip:$port" --local-interface 127.0.0.62 --from sender@client.test --to "$user" \
            --quit-after RCPT >"$work/swaks.out" 2>&1 || ctrl=$?
        (( ctrl == 0 )) || fail "swaks: the control recipient $user was refused (exit $ctrl): the tricks prove nothing"

        # b. 500 sessions held open by smtp-source while SmtpBench measures latency beside them.
        rss() { awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$1/status" 2>/dev/null || echo 0; }
        idle_mb=$(rss "$relay_pid")
        ( peak=0; for ((i = 0; i < 36000; i++)); do r=$(rss "$relay_pid"); (( r > peak )) && peak=$r && echo "$peak" >"$work/rss-peak"; sleep 0.1; done ) &
        sampler_pid=$!
        log "smtp-source: $load_messages messages over 500 sessions held open (-d), 1 KB each; latency probe beside it"
        started=$(date +%s.%N)
        timeout 900 /usr/sbin/smtp-source -d -s 500 -m "$load_messages" -l 1024 -f sender@client.test -t "$user" "$ip:$port" \
            >"$work/smtp-source.out" 2>&1 &
        load_pid=$!
        sleep 2
        timeout 600 "$smtpbench" client --server "$ip:$port" --messages 500 --sessions 4 --size 1024 --from probe@client.test \
            --to "$user" --seconds 300 >"$work/probe.out" 2>"$work/probe.err" &
        probe_pid=$!
        rc=0; wait "$load_pid" || rc=$?; load_pid=""
        ended=$(date +%s.%N)
        wait "$probe_pid" || true; probe_pid=""
        (( rc == 0 )) || fail "smtp-source exited $rc: $(tail -n 3 "$work/smtp-source.out" | tr '\n' ' ')"
        probe_ok="$(grep -oE 'ok=[0-9]+' "$work/probe.out" | head -n 1 | cut -d= -f2 || true)"
        expected=$((load_messages + ${probe_ok:-0}))
        deadline=$(( $(date +%s) + 300 ))
        count_new() { { find "$maildir/new" -type f 2>/dev/null || true; } | wc -l; }
        while (( $(count_new) < expected && $(date +%s) < deadline )); do sleep 1; done
        delivered=$(count_new)
        kill_pid "$sampler_pid"; sampler_pid=""
        seconds=$(awk "BEGIN { printf \"%.1f\", $ended - $started }")
        record "load" "smtp-source -d -s 500 (500 sessions held open, 1 KB)" "report" \
            "$load_messages messages in $seconds s = $(awk "BEGIN { printf \"%.0f\", $load_messages / ($ended - $started) }") msg/s"
        record "load" "end-of-DATA latency beside the 500 sessions (SmtpBench, 4 sessions)" "report p50/p99" \
            "$(grep -oE '(ok|p50_ms|p99_ms|max_ms)=[0-9.a-z]+' "$work/probe.out" | paste -sd' ' - || echo "probe failed: $(head -c 200 "$work/probe.err")")"
        record "load" "relay RSS during the 500-session load" "< 250 MB" "idle $idle_mb MB, peak $(cat "$work/rss-peak" 2>/dev/null || echo "$idle_mb") MB"
        record "load" "messages delivered to the Maildir" "all $expected" "$delivered"
        (( delivered == expected )) || fail "$delivered of $expected messages in the Maildir"
        alive "$relay_pid" || fail "the relay (process $relay_pid) is gone after the load"
        stop_relay "$relay_cfg" "$relay_pid"
    fi
fi

# ---------------------------------------------------------------------------------------------------------------- table
printf '\n| area | figure | goal | measured |\n|---|---|---|---|\n'
while IFS=$'\t' read -r area figure goal measured; do
    printf '| %s | %s | %s | %s |\n' "$area" "$figure" "$goal" "$measured"
done <"$figures"
printf '\nMachine: %s cores, load average at the end %s. Sizes: %s. %s\n' "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$size" "$(date -u '+%Y-%m-%d %H:%M UTC')"
exit "$status"
