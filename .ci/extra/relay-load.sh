#!/usr/bin/env bash
# The relay (portforward) under load and hostile peers, loopback only, every step bounded:
#  - 1 GiB through a relay whose reader stalls (0.25 s every 32 MiB), each direction, on every
#    runtime: every byte checked, and the relay's RSS grows by at most 1,536 KiB: twice a
#    relay's caps (two legs, each a 64 KiB write-queue high-water mark + a 256 KiB window + one
#    64 KiB read);
#  - hostile peers on both legs: a reset mid-write from either side ends the other side, a
#    client that never reads stays within the same bound, descriptors back at baseline;
#  - a graceful stop (SIGINT) with a relay in progress ends both sides cleanly, drained;
#  - 10,000 concurrent relays on smol (and 1,000 on tokio and std) each echoing a checksummed
#    payload through echo_server, descriptors back at baseline.
# LOOMWORK_EXAMPLES=target/debug/examples runs it against a debug build (the load step still
# builds echo_load in release).
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh
bin=${LOOMWORK_EXAMPLES:-$bin}
bound_kib=1536

for rt in smol tokio std; do
    for direction in up down; do
        python3 interop/relay_stall.py "$bin/portforward" "$rt" 1024 "$bound_kib" "$direction"
    done
    python3 interop/relay_hostile.py "$bin/portforward" "$rt" "$bound_kib"
done

python3 interop/relay_drain.py "$bin/portforward"

cargo build --quiet --release --bin echo_load -p loomwork-conformance
want=$((8 * 10000 + 4096))
ulimit -Hn "$want" 2>/dev/null || true
ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
dir=$(mktemp -d)
"$bin/echo_server" --listen 127.0.0.1:0 >"$dir/echo" &
echo_addr=$(wait_listening "$dir/echo")
# A relay holds two descriptors per relay: where the hard limit is below 20,064 (some
# containers), as many relays as it allows.
fit=$(( ($(ulimit -n) - 64) / 2 ))
for load in smol:10000 tokio:1000 std:1000; do
    rt=${load%%:*}; n=${load#*:}
    if [ "$n" -gt "$fit" ]; then
        echo "descriptor limit $(ulimit -n): $fit relays instead of $n"
        n=$fit
    fi
    "$bin/portforward" --runtime "$rt" --listen 127.0.0.1:0 --upstream "$echo_addr" >"$dir/relay-$rt" 2>"$dir/relay-$rt.err" &
    pid=$!
    addr=$(wait_listening "$dir/relay-$rt")
    echo "portforward --runtime $rt: $n concurrent relays to echo_server, 4096 checksummed bytes each"
    target/release/echo_load --connect "$addr" --connections "$n" --bytes 4096 \
        --server-pid "$pid" --timeout-s 170
    kill -INT "$pid"; wait "$pid"
    ended=$(grep -c "bytes to upstream" "$dir/relay-$rt.err" || true)
    echo "portforward --runtime $rt: $ended relays ended and logged their counters"
done
rm -rf "$dir"
