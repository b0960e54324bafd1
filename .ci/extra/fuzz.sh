#!/usr/bin/env bash
# Runs every cargo-fuzz target briefly (FUZZ_SECONDS, default 20) from the committed corpus.
# cargo-fuzz needs a nightly toolchain; the corpora themselves are replayed on stable by
# `cargo test` in any case. A crash fails CI and leaves its input in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! grep -q '^nightly' <(rustup toolchain list); then
    rustup toolchain install nightly --profile minimal || {
        echo "FUZZ SKIPPED: no nightly toolchain can be had on this machine (corpora were replayed on stable)"
        exit 0
    }
fi
# fuzz/run.sh installs cargo-fuzz itself when it is missing.
log=$(mktemp)
if ! fuzz/run.sh "${FUZZ_SECONDS:-20}" >"$log" 2>&1; then
    tail -60 "$log"
    echo "fuzzing failed (a crash leaves its input in fuzz/artifacts/)"
    exit 1
fi
grep -E '^== |stat::number_of_executed_units' "$log"
