#!/usr/bin/env bash
# Fuzz every parser of outside input (SPEC §9): runs each cargo-fuzz target of fuzz/ (nightly),
# then minimises what it found with the committed corpus (a set cover of libFuzzer's features)
# into fuzz/corpus/TARGET, which `cargo test` replays on stable (src/fuzzing/). Prints per target:
# executions, coverage (covered edges `cov`, features `ft`), corpus size, and findings (crash
# files in fuzz/artifacts/TARGET; each replays with `cargo +nightly fuzz run TARGET FILE`).
#
#   scripts/fuzz.sh                          # every target, 10 minutes each, two at a time
#   scripts/fuzz.sh --minutes 1 splice chunked
#   scripts/fuzz.sh --jobs 1                 # one at a time
#
# Work files (fuzz/work, fuzz/logs) are not committed; the minimised corpus is.
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/../fuzz"

minutes=10
jobs=2
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) minutes="$2"; shift 2 ;;
        --jobs) jobs="$2"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$self" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

mkdir -p logs work
cargo +nightly fuzz build -O

run_one() {
    local target="$1" minutes="$2"
    rm -rf "work/$target"
    mkdir -p "work/$target" "corpus/$target" "artifacts/$target"
    local before
    before=$(ls "artifacts/$target" | wc -l)
    # libFuzzer exits non-zero on a finding; the summary reports it.
    cargo +nightly fuzz run -O "$target" "work/$target" "corpus/$target" -- \
        -max_total_time=$((minutes * 60)) -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"logs/$target.log" 2>&1 || true
    cp -n "corpus/$target"/* "work/$target"/ 2>/dev/null || true
    cargo +nightly fuzz cmin -O "$target" "work/$target" -- -set_cover_merge=1 \
        >"logs/$target.cmin.log" 2>&1
    rm -rf "corpus/$target"
    cp -r "work/$target" "corpus/$target"
    echo "$(($(ls "artifacts/$target" | wc -l) - before))" >"logs/$target.findings"
}
export -f run_one
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {} '"$minutes"

printf '%-16s %12s %8s %8s %8s %9s\n' target executions cov ft corpus findings
for target in "${targets[@]}"; do
    log="logs/$target.log"
    runs=$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || echo "-")
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || echo "-")
    ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || echo "-")
    printf '%-16s %12s %8s %8s %8s %9s\n' "$target" "$runs" "$cov" "$ft" \
        "$(ls "corpus/$target" | wc -l)" "$(cat "logs/$target.findings")"
done
