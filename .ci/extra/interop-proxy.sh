#!/usr/bin/env bash
# PROXY protocol interop with a real HAProxy (loopback only): HAProxy in front of
# `echo_server --accept-proxy --announce-peer` with `send-proxy` (v1) and `send-proxy-v2`, on
# every runtime; the address the server announces must be the real client's (a client bound
# to 127.0.0.2, while HAProxy connects from 127.0.0.1). Also: a header-less connection is
# refused and a stalled header is evicted by the default 5 s header timeout.
# LOOMWORK_EXAMPLES=target/debug/examples runs it against a debug build.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh
bin=${LOOMWORK_EXAMPLES:-$bin}

if ! command -v haproxy >/dev/null; then
    apt-get install -y -qq haproxy >/dev/null
fi
# Not `| head -1`: under pipefail, head's early exit can kill haproxy with SIGPIPE (exit 141).
haproxy -v | sed -n 1p

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port
    for _ in $(seq 100); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null; then return; fi
        sleep 0.1
    done
    echo "nothing listening on $1" >&2; exit 1
}

dir=$(mktemp -d)
for rt in std smol tokio; do
    out="$dir/server-$rt"
    "$bin/echo_server" --runtime "$rt" --listen 127.0.0.1:0 --accept-proxy --announce-peer >"$out" &
    pid=$!
    addr=$(wait_listening "$out")
    v1=$(free_port); v2=$(free_port)
    cat >"$dir/haproxy.cfg" <<CFG
global
    maxconn 64
defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend send_proxy_v1
    bind 127.0.0.1:$v1
    default_backend loomwork_v1
frontend send_proxy_v2
    bind 127.0.0.1:$v2
    default_backend loomwork_v2
backend loomwork_v1
    server echo $addr send-proxy
backend loomwork_v2
    server echo $addr send-proxy-v2
CFG
    haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy-$rt.log" 2>&1 &
    hap=$!
    wait_port "$v1"; wait_port "$v2"
    for version in v1 v2; do
        port=$v1; [ "$version" = v2 ] && port=$v2
        result=$(python3 interop/proxy_client.py announce "127.0.0.1:$port" 127.0.0.2) \
            || { echo "FAIL ($rt, $version): $result"; exit 1; }
        echo "HAProxy send-proxy-$version -> echo_server --accept-proxy ($rt): $result"
    done
    python3 interop/proxy_client.py refused "$addr"
    python3 interop/proxy_client.py stalled "$addr" 7
    kill "$hap"; wait "$hap" || true
    kill -INT "$pid"; wait "$pid"
    echo "echo_server --accept-proxy ($rt): ok, clean exit on SIGINT"
done
rm -rf "$dir"

# The relay (portforward) on every runtime: bytes both ways with the half-close passed on, a
# refused upstream, and PROXY headers it sends read by loomwork, by HAProxy (`accept-proxy`,
# re-sent to loomwork with `send-proxy-v2`) and by Twisted's `haproxy` endpoint.
dir=$(mktemp -d)
"$bin/echo_server" --listen 127.0.0.1:0 --accept-proxy --announce-peer >"$dir/announce" &
announce=$(wait_listening "$dir/announce")
"$bin/echo_server" --listen 127.0.0.1:0 >"$dir/echo" &
echo_addr=$(wait_listening "$dir/echo")
python3 interop/twisted_haproxy.py server >"$dir/twisted" &
twisted=$(wait_listening "$dir/twisted")
hap_port=$(free_port)
cat >"$dir/haproxy.cfg" <<CFG
global
    maxconn 64
defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend accept_proxy
    bind 127.0.0.1:$hap_port accept-proxy
    default_backend loomwork
backend loomwork
    server echo $announce send-proxy-v2
CFG
haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
hap=$!
wait_port "$hap_port"
closed=$(free_port)

# Called as `$(relay ...)`, a subshell: the relay is neither a job of this shell (the EXIT
# trap would miss it) nor can it add to an array here, so its pid goes to a file, and the
# loop below stops every relay by that pid.
relay() { # runtime upstream [--send-proxy vN] -> address
    local out="$dir/relay-$RANDOM"
    "$bin/portforward" --runtime "$1" --listen 127.0.0.1:0 --upstream "$2" "${@:3}" >"$out" 2>"$out.err" &
    echo "$!" >>"$dir/relay-pids"
    wait_listening "$out"
}
stop_relays() {
    [ -f "$dir/relay-pids" ] || return 0
    local pid
    while read -r pid; do
        kill -INT "$pid" 2>/dev/null || true
    done <"$dir/relay-pids"
}
trap 'stop_relays; cleanup' EXIT
for rt in std smol tokio; do
    plain=$(relay "$rt" "$echo_addr")
    python3 interop/proxy_client.py bulk "$plain" 16
    refused=$(relay "$rt" "127.0.0.1:$closed")
    python3 interop/proxy_client.py refused "$refused"
    for version in v1 v2; do
        for target in loomwork:"$announce" haproxy:"127.0.0.1:$hap_port" twisted:"$twisted"; do
            name=${target%%:*}; upstream=${target#*:}
            via=$(relay "$rt" "$upstream" --send-proxy "$version")
            result=$(python3 interop/proxy_client.py announce "$via" 127.0.0.2) \
                || { echo "FAIL (portforward $rt --send-proxy $version -> $name): $result"; exit 1; }
            echo "portforward ($rt) --send-proxy $version -> $name: $result"
        done
    done
    # Not children of this shell (see `relay`): wait by polling, bounded, for each to exit.
    while read -r pid; do
        kill -INT "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "FAIL (portforward $rt): pid $pid still running 5 s after SIGINT"; exit 1
        fi
    done <"$dir/relay-pids"
    rm -f "$dir/relay-pids"
    # awk reads the files itself: no pipe for an early exit to break (pipefail).
    awk '/connection was refused/ {print; exit}' "$dir"/relay-*.err
    awk '/bytes to upstream/ && !/refused/ {print; exit}' "$dir"/relay-*.err
    rm -f "$dir"/relay-*
    echo "portforward ($rt): ok, clean exit on SIGINT"
done
kill "$hap"; wait "$hap" || true
rm -rf "$dir"
