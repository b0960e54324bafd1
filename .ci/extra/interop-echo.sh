#!/usr/bin/env bash
# Echo interop with real Twisted, both directions, on every runtime (loopback only).
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh

for rt in std smol tokio; do
    out=$(mktemp)
    "$bin/echo_server" --runtime "$rt" --listen 127.0.0.1:0 >"$out" &
    pid=$!
    addr=$(wait_listening "$out")
    python3 interop/twisted_echo.py client "$addr"
    kill -INT "$pid"; wait "$pid"
    echo "loomwork echo_server ($rt) <- Twisted client: ok, clean exit on SIGINT"
done

out=$(mktemp)
python3 interop/twisted_echo.py server >"$out" &
tw=$!
addr=$(wait_listening "$out")
for rt in std smol tokio; do
    reply=$("$bin/echo_client" --runtime "$rt" --connect "$addr" --message "interop $rt")
    [ "$reply" = "Received: interop $rt" ] || { echo "unexpected: $reply"; exit 1; }
    echo "loomwork echo_client ($rt) -> Twisted Echo server: $reply"
done
kill "$tw"
