#!/usr/bin/env bash
# Load test of the echo_server example: N concurrent connections held open (server RSS per idle
# connection measured from /proc), then all echo a checksummed payload at once, then the server's
# descriptors must return to their baseline. Loopback only, bounded in time.
#
#   scripts/echo-load.sh RUNTIME CONNECTIONS [BYTES]     e.g. scripts/echo-load.sh smol 10000
#   CHURN=50000 scripts/echo-load.sh RUNTIME 0 [BYTES]   connect/echo/close cycles instead
set -euo pipefail
cd "$(dirname "$0")/.."
rt=${1:?runtime: std, smol or tokio}; n=${2:?connections}; bytes=${3:-4096}
cargo build --quiet --release --example echo_server -p loomwork-examples
cargo build --quiet --release --bin echo_load -p loomwork-conformance
# loomwork-std holds two descriptors per connection (socket, eventfd); the margin is for the load tool.
# Root may raise the hard limit; others keep what they have.
want=$((4 * n + 4096))
ulimit -Hn "$want" 2>/dev/null || true
ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
out=$(mktemp)
target/release/examples/echo_server --runtime "$rt" --listen 127.0.0.1:0 >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q '^listening' "$out" && break; sleep 0.1; done
addr=$(awk '{print $4}' "$out")
echo "echo_server --runtime $rt on $addr (pid $pid), $n connections x $bytes bytes"
if [ -n "${CHURN:-}" ]; then
    target/release/echo_load --connect "$addr" --churn "$CHURN" --bytes "$bytes" \
        --server-pid "$pid" --timeout-s 170
else
    target/release/echo_load --connect "$addr" --connections "$n" --bytes "$bytes" \
        --server-pid "$pid" --timeout-s 120
fi
kill -INT "$pid"
wait "$pid"
trap - EXIT
