#!/bin/sh
# Runs the multicast tests (marked #[ignore]) inside a private network namespace, as root:
#
#     sudo scripts/netns-test.sh
#
# Builds first, outside the namespace (which has no route to a registry), then re-executes
# itself under `unshare -n`, sets up lo and a veth pair (netns-setup.sh) and runs the tests
# with --ignored. Extra arguments go to every `cargo test` (e.g. `--release`).
set -eu
cd "$(dirname "$0")/.."
if [ "${LOOMWORK_IN_NETNS:-}" != 1 ]; then
    cargo build --tests -p loomwork-conformance -p loomwork-examples --examples "$@"
    exec unshare -n env LOOMWORK_IN_NETNS=1 "$0" "$@"
fi
sh scripts/netns-setup.sh
LOOMWORK_MC0_INDEX=$(ip -o link show mc0 | cut -d: -f1)
LOOMWORK_MC1_INDEX=$(ip -o link show mc1 | cut -d: -f1)
export LOOMWORK_MC0_INDEX LOOMWORK_MC1_INDEX
export CARGO_NET_OFFLINE=true
cargo test -p loomwork-conformance --test multicast "$@" -- --ignored
cargo test -p loomwork-examples --test multicast_examples "$@" -- --ignored
