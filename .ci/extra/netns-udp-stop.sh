#!/usr/bin/env bash
# "Stop always wins" (tests/tests/udp_stop.rs), as root: each test re-runs itself in a fresh
# private network namespace (`unshare -n`) whose `lo` it slows down with a `tc` token bucket, so
# a UDP endpoint's send buffer stays full; abort must end the endpoint at once and a graceful
# stop at its close timeout. Traffic never leaves that namespace.
#
# Plain `cargo test` runs these tests too, and skips them (saying so on stderr) where it cannot
# create a namespace; here LOOMWORK_REQUIRE_NETNS=1 turns such a skip into a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v tc >/dev/null || ! command -v ip >/dev/null; then
    echo "tc/ip missing: installing iproute2"
    apt-get update -qq && apt-get install -y -qq iproute2
fi
LOOMWORK_REQUIRE_NETNS=1 cargo test -p loomwork-conformance --test udp_stop -- --nocapture
