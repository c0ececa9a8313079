#!/usr/bin/env bash
# Builds the account bench in Release and runs it: AccountCreator.CreateAsync against 1, 10 and 50 in-process Minger peers
# on loopback, 10,000 sequential creations with 5 peers, and AccountStore.GetState among 1,000,000 accounts. Prints a
# Markdown table on standard output (progress on standard error). Every figure is bounded in count and time; the data
# lives in a temporary folder that is deleted at the end. Arguments are passed to the bench, e.g. `bench/accounts.sh --creations 500`; `--help` lists them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$here/AccountBench/AccountBench.csproj"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# Other builds may run in the same checkout: a file held by one of them fails ours, so retry a few times.
attempt=1
until log="$(dotnet build "$project" -c Release -nologo -v quiet 2>&1)"; do
    if (( attempt >= 4 )) || ! grep -qiE 'being used by another process|cannot access the file|MSB3026|MSB3027|MSB3021' <<<"$log"; then
        printf '%s\n' "$log" >&2
        echo "accounts.sh: build failed" >&2
        exit 1
    fi
    echo "accounts.sh: a file was in use by another build; retrying in $((attempt * 5)) s" >&2
    sleep $((attempt * 5))
    attempt=$((attempt + 1))
done

exec "$here/AccountBench/bin/Release/net10.0/AccountBench" "$@"
