#!/usr/bin/env bash
# The core's optional `log` feature (policy::TrafficLog): lints, its tests, and the no_std build
# with it on (the `log` facade is no_std).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo clippy -p loomwork --all-targets --features log -- -D warnings
cargo test -p loomwork --features log --lib policy
cargo build -p loomwork --no-default-features --features log
