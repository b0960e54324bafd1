#!/usr/bin/env bash
# AMP interop with real Twisted (twisted.protocols.amp), both directions, on every runtime
# (loopback only): Twisted against Twisted (the script's own self-test), Twisted's client
# checks against loomwork's amp_server, loomwork's amp_client and AMP client checks against
# Twisted's ampserver twin.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh

python3 interop/twisted_amp.py selftest

[ -x "$bin/amp_server" ] && [ -x "$bin/amp_client" ] ||
    cargo build --release --example amp_server --example amp_client

# Twisted -> loomwork: byte-for-byte against Twisted's own answers.
for rt in std smol tokio; do
    out=$(mktemp)
    "$bin/amp_server" --runtime "$rt" --listen 127.0.0.1:0 >"$out" &
    pid=$!
    addr=$(wait_listening "$out")
    echo -n "loomwork amp_server ($rt) <- Twisted AMP: "
    timeout 120 python3 interop/twisted_amp.py client --connect "$addr"
    kill -INT "$pid"; wait "$pid"
done

# loomwork -> Twisted: the ampclient.py twin, then every check from the Rust side.
out=$(mktemp)
python3 interop/twisted_amp.py server >"$out" &
tw=$!
addr=$(wait_listening "$out")
expected=$'Divided by zero: returning INF\nDone with math: 94 inf'
for rt in std smol tokio; do
    reply=$(timeout 60 "$bin/amp_client" --runtime "$rt" --connect "$addr")
    [ "$reply" = "$expected" ] || { echo "amp_client ($rt): unexpected: $reply"; exit 1; }
    echo "loomwork amp_client ($rt) -> Twisted ampserver: ${reply//$'\n'/ | }"
done
AMP_TWISTED_ADDR="$addr" timeout 900 cargo test --release -p loomwork-examples \
    --test amp_twisted -- --ignored --nocapture --test-threads 1
kill "$tw"; wait "$tw" 2>/dev/null || true

# A refused connection: one line on stderr, exit 1.
if "$bin/amp_client" --connect 127.0.0.1:1 2>/dev/null; then
    echo "amp_client: a refused connection did not fail"; exit 1
fi
echo "loomwork amp_client -> nothing listening: exit 1"
