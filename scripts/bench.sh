#!/usr/bin/env bash
# How fast is it: the benchmark harness (benches/harness.rs) against the budgets of SPEC §8
# (config/budgets.toml). With no arguments it runs the standard suite (about 7 minutes on 2 cores):
# start latency (healthy and dead primaries), byte integrity, failover gaps and recovery under
# drops and stalls, peak RSS, and CPU per GB side by side with nginx proxy_pass and with the
# relay-floor program (the least this design can spend).
#
#   scripts/bench.sh                                  # the suite; report in target/bench-report.json
#   scripts/bench.sh --scenario failover-stall        # one scenario (--list shows them)
#   scripts/bench.sh --channels 10 --viewers 5 --mbps 20 --compare nginx --duration 30
#
# Exits non-zero when a budget is exceeded. Needs nginx for the comparisons (Debian: nginx-light).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
    set -- --all
fi
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "bench.sh: nginx not found; the comparisons need it (apt-get install -y nginx-light)" >&2
fi
exec cargo bench --bench harness -- "$@"
