#!/usr/bin/env bash
# The soak run (SPEC §9): the release binary holds 10 channels with backups for N minutes while
# viewers come and go, faults of every kind hit the upstreams, hostile clients connect and the
# CLI changes mappings, accounts, catalogs and guides (benches/harness/soak.rs). It checks that
# fds, memory, tuners, sessions and provider connections come back where they started, that every
# fault was recovered or evented, and that the server never restarted; it writes
# target/soak-report.json and a table, and exits non-zero when a check fails.
#
#   scripts/soak.sh --minutes 30              # default 30
#   scripts/soak.sh --minutes 2 --seed 42     # the same random choices again
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=30
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) minutes="$2"; shift 2 ;;
        --seed) args+=(--soak-seed "$2"); shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
exec cargo bench --bench harness -- --soak-minutes "$minutes" "${args[@]}"
