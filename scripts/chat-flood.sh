#!/usr/bin/env bash
# Fan-out flood against chat_server on one runtime (issue 12): starts the release server on a
# free loopback port, runs tests/src/bin/chat_flood against it, stops the server by its pid.
#   scripts/chat-flood.sh smol|std [chat_flood flags...]
# Needs: cargo build --release -p loomwork-examples --example chat_server
#        cargo build --release -p loomwork-conformance --bin chat_flood
set -euo pipefail
runtime=${1:-smol}; shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp)
"$root/target/release/examples/chat_server" --runtime "$runtime" --listen 127.0.0.1:0 >"$log.out" 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log" "$log.out"' EXIT
for _ in $(seq 1 100); do grep -q listening "$log.out" && break; sleep 0.05; done
addr=$(awk '/listening on tcp/ {print $4}' "$log.out")
status=0
timeout 300 "$root/target/release/chat_flood" --connect "$addr" --server-pid "$pid" "$@" || status=$?
echo "runtime=$runtime server_evictions_logged=$(grep -c 'chat: evicted' "$log" || true) first: $(grep -m1 'chat: evicted' "$log" || true)"
exit $status
