#!/usr/bin/env bash
# Builds the bench and the module in Release, then runs every figure and prints the Markdown table on standard output
# (progress on standard error). Arguments are passed to the bench, e.g. `bench/run.sh --cold-runs 10 --warm-runs 50`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$here/DomainShare.Bench/DomainShare.Bench.csproj"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# Other builds may run in the same checkout: a file held by one of them fails ours, so retry a few times.
attempt=1
until log="$(dotnet build "$project" -c Release -nologo -v quiet 2>&1)"; do
    if (( attempt >= 4 )) || ! grep -qiE 'being used by another process|cannot access the file|MSB3026|MSB3027|MSB3021' <<<"$log"; then
        printf '%s\n' "$log" >&2
        echo "run.sh: build failed" >&2
        exit 1
    fi
    echo "run.sh: a file was in use by another build; retrying in $((attempt * 5)) s" >&2
    sleep $((attempt * 5))
    attempt=$((attempt + 1))
done

exec "$here/DomainShare.Bench/bin/Release/net10.0/DomainShare.Bench" "$@"
