#!/usr/bin/env bash
# Framing interop with real Twisted receivers (loopback only): Twisted against Twisted (the
# script's own self-test), then Twisted clients against loomwork's framed_echo for every framing
# on every runtime.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh

python3 interop/twisted_framed.py selftest

[ -x "$bin/framed_echo" ] || cargo build --release --example framed_echo
for rt in std smol tokio; do
    for framing in line line-only netstring int8 int16 int32; do
        out=$(mktemp)
        "$bin/framed_echo" --runtime "$rt" --framing "$framing" --listen 127.0.0.1:0 >"$out" &
        pid=$!
        addr=$(wait_listening "$out")
        echo -n "loomwork framed_echo ($rt) <- Twisted $framing: "
        python3 interop/twisted_framed.py client --framing "$framing" --connect "$addr"
        kill -INT "$pid"; wait "$pid"
    done
done

# Int8/Int16 prefixes cannot exceed the default maximum: check their over-limit path with a
# smaller one (refused from the prefix, after the earlier frame's echo).
for rt in std smol tokio; do
    for framing in int8 int16; do
        out=$(mktemp)
        "$bin/framed_echo" --runtime "$rt" --framing "$framing" --max-length 100 \
            --listen 127.0.0.1:0 >"$out" &
        pid=$!
        addr=$(wait_listening "$out")
        echo -n "loomwork framed_echo ($rt, max 100) <- Twisted $framing: "
        python3 interop/twisted_framed.py client --framing "$framing" --max-length 100 \
            --connect "$addr"
        kill -INT "$pid"; wait "$pid"
    done
done
