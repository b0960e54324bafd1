#!/usr/bin/env bash
# Runs fuzz targets from their committed corpus: one command for any of them.
#
#   fuzz/run.sh                 every target, 60 s each
#   fuzz/run.sh chat            the chat target, 60 s
#   fuzz/run.sh chat 600        the chat target, ten minutes
#   fuzz/run.sh 20              every target, 20 s each (CI)
#
# Installs what it needs when missing: a nightly toolchain (cargo-fuzz builds with sanitizer
# flags only nightly has) and cargo-fuzz itself, from the registry. New corpus entries go to a
# scratch directory, so the committed seeds stay small; a crash leaves its input in
# fuzz/artifacts/<target>/ and the schedule that broke the invariant in the panic message.
set -euo pipefail
cd "$(dirname "$0")"
seconds=60
targets=()
for arg in "$@"; do
    if [[ "$arg" =~ ^[0-9]+$ ]]; then seconds="$arg"; else targets+=("$arg"); fi
done
if ! grep -q '^nightly' <(rustup toolchain list); then
    rustup toolchain install nightly --profile minimal
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
for target in "${targets[@]}"; do
    scratch="target/corpus-$target"
    mkdir -p "$scratch" "corpus/$target"
    echo "== $target ($seconds s)"
    cargo +nightly fuzz run "$target" "$scratch" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -print_final_stats=1
done
# To fold new finds into the committed corpus (kept small):
#   cp target/corpus-T/* corpus/T/ && cargo +nightly fuzz cmin -O T corpus/T && python3 seeds.py
