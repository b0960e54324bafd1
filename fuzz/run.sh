#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each, from the committed seed corpus.
# New corpus entries go to a scratch directory, so the committed seeds stay small; a crash
# leaves its input in fuzz/artifacts/<target>/.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")"
for target in $(cargo +nightly fuzz list); do
    scratch="target/corpus-$target"
    mkdir -p "$scratch"
    echo "== $target ($seconds s)"
    cargo +nightly fuzz run "$target" "$scratch" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -print_final_stats=1
done
# To fold new finds into the committed corpus (kept small):
#   cp target/corpus-T/* corpus/T/ && cargo +nightly fuzz cmin -O T corpus/T && python3 seeds.py
