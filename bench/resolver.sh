#!/usr/bin/env bash
# Builds bench/ResolverBench in Release and runs it: live resolution across 1, 5, 20 and 50 Minger peers on loopback
# (cold cache) against a single round trip, and cached resolution in-process. Prints a Markdown table on standard output
# (progress on standard error). Arguments go to the bench, e.g. `bench/resolver.sh --samples 1000 --latency-ms 0,1,5`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$here/ResolverBench/ResolverBench.csproj"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# Other builds may run in the same checkout: a file held by one of them fails ours, so retry a few times.
attempt=1
until log="$(dotnet build "$project" -c Release -nologo -v quiet 2>&1)"; do
    if (( attempt >= 4 )) || ! grep -qiE 'being used by another process|cannot access the file|MSB3026|MSB3027|MSB3021' <<<"$log"; then
        printf '%s\n' "$log" >&2
        echo "resolver.sh: build failed" >&2
        exit 1
    fi
    echo "resolver.sh: a file was in use by another build; retrying in $((attempt * 5)) s" >&2
    sleep $((attempt * 5))
    attempt=$((attempt + 1))
done

exec "$here/ResolverBench/bin/Release/net10.0/ResolverBench" "$@"
