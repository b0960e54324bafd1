#!/usr/bin/env bash
# TLS interop with real peers, both directions, on every runtime (loopback only): Twisted's TLS
# (pyOpenSSL, `twisted[tls]`, interop/twisted_tls.py) and the `openssl s_client` / `s_server`
# tools against loomwork's TLS examples (docs/examples.md): echo over TLS 1.3 and 1.2, STARTTLS
# against Twisted's `startTLS` line protocol, mutual TLS accepted and refused (tls_echo_server and
# chat_server --client-ca), bad certificates refused with their typed reasons. Certificates are
# made with `openssl` in a temp directory. One `... : ok` line per scenario and runtime.
set -euo pipefail
cd "$(dirname "$0")/../.."

# What a fresh machine lacks: Twisted with its TLS extra (the same Python as the other interop
# steps), and the openssl tool.
python3 -c "import twisted, OpenSSL, service_identity" 2>/dev/null \
    || python3 -m pip install --quiet 'twisted[tls]'
if ! command -v openssl >/dev/null; then
    echo "openssl missing: installing it"
    apt-get update -qq && apt-get install -y -qq openssl
fi
source .ci/lib.sh
for example in tls_echo_server tls_echo_client starttls_server starttls_client chat_server; do
    [ -x "$bin/$example" ] || cargo build --release --example "$example"
done

tmp=$(mktemp -d)
trap 'cleanup; rm -rf "$tmp"' EXIT
twisted=(python3 interop/twisted_tls.py)
runtimes=(std smol tokio)

fail() { echo "FAIL: $*" >&2; exit 1; }
reverse() { local s=$1 r="" i; for ((i = ${#s} - 1; i >= 0; i--)); do r+=${s:i:1}; done; echo "$r"; }

# --- certificates: a CA with a server leaf (RSA), a wrong-name leaf and a client leaf (EC),
# and a second, unknown CA with its own server and client leaves.
cat >"$tmp/ext.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
authorityKeyIdentifier = keyid
[wrongname]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
authorityKeyIdentifier = keyid
[client]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
EOF
make_ca() { # name CN
    openssl req -x509 -config "$tmp/ext.cnf" -extensions ca -newkey ec \
        -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$2" \
        -keyout "$tmp/$1.key" -out "$tmp/$1.pem" 2>/dev/null
}
make_leaf() { # name issuer extensions CN newkey-args...
    local name=$1 issuer=$2 ext=$3 cn=$4; shift 4
    openssl req -new -config "$tmp/ext.cnf" "$@" -nodes -subj "/CN=$cn" \
        -keyout "$tmp/$name.key" -out "$tmp/$name.csr" 2>/dev/null
    openssl x509 -req -in "$tmp/$name.csr" -CA "$tmp/$issuer.pem" -CAkey "$tmp/$issuer.key" \
        -CAcreateserial -days 2 -extfile "$tmp/ext.cnf" -extensions "$ext" \
        -out "$tmp/$name.pem" 2>/dev/null
}
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
make_ca ca "interop CA"
make_ca rogue "rogue CA"
make_leaf server ca server localhost -newkey rsa:2048
make_leaf wrongname ca wrongname wrong.example "${ec[@]}"
make_leaf client ca client "interop client" "${ec[@]}"
make_leaf rogueserver rogue server localhost "${ec[@]}"
make_leaf rogueclient rogue client "rogue client" "${ec[@]}"
ca=$tmp/ca.pem

# --- helpers
# start NAME CMD...: runs CMD in the background (stdout/stderr in $tmp/NAME.out/.err), waits for
# its `listening on` line; sets $pid and $addr.
start() {
    local name=$1; shift
    rm -f "$tmp/$name.out" # not a previous run's line
    "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pid=$!
    addr=$(wait_listening "$tmp/$name.out")
}
# stop_ours PID: a loomwork server stops cleanly on SIGINT (exit 0).
stop_ours() { kill -INT "$1"; wait "$1" || fail "server $1 did not exit cleanly"; }
# stop_peer PID: Twisted and openssl servers are just killed.
stop_peer() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# expect_out EXPECTED CMD...: CMD exits 0 and prints exactly EXPECTED on stdout.
expect_out() {
    local expected=$1 out rc=0; shift
    out=$(timeout 30 "$@" 2>"$tmp/client.err") || rc=$?
    [ "$rc" = 0 ] && [ "$out" = "$expected" ] || {
        cat "$tmp/client.err" >&2
        fail "$* -> exit $rc, stdout '$out' (expected '$expected')"
    }
}
# expect_failed STDOUT TEXT CMD...: CMD exits 1 with TEXT in its stderr, after printing exactly
# STDOUT; expect_refused TEXT CMD...: the same, printing nothing.
expect_failed() {
    local expected=$1 text=$2 out rc=0; shift 2
    out=$(timeout 30 "$@" 2>"$tmp/client.err") || rc=$?
    [ "$rc" = 1 ] && [ "$out" = "$expected" ] && grep -qF -- "$text" "$tmp/client.err" || {
        cat "$tmp/client.err" >&2
        fail "$* -> exit $rc, stdout '$out' (expected exit 1, stdout '$expected', stderr '$text')"
    }
}
expect_refused() { expect_failed "" "$@"; }
# expect_log FILE TEXT [COUNT]: FILE has COUNT (default 1) lines containing TEXT, within 5 s.
expect_log() {
    local n=${3:-1}
    for _ in $(seq 50); do
        [ "$(grep -cF -- "$2" "$1" || true)" -ge "$n" ] && return
        sleep 0.1
    done
    cat "$1" >&2
    fail "$1: expected $n line(s) with '$2'"
}
# s_client_expect ADDR SEND EXPECT ARGS...: `openssl s_client` sends the line SEND and must
# read the line EXPECT (CR LF or LF) back, then closes its input, which ends it.
s_client_expect() {
    local addr=$1 line=$2 expect=$3 fifo=$tmp/s_client.in out=$tmp/s_client.out fd sc; shift 3
    rm -f "$fifo"; mkfifo "$fifo"
    timeout 30 openssl s_client -connect "$addr" -nocommands "$@" \
        <"$fifo" >"$out" 2>"$out.err" &
    sc=$!
    exec {fd}>"$fifo"
    (printf '%s\n' "$line" >&"$fd") 2>/dev/null || true # a SIGPIPE ends only the subshell
    for _ in $(seq 100); do
        # Process substitution, not a pipe: grep -q exits at its first match, and under
        # pipefail the SIGPIPE that may give tr would count as a miss.
        grep -qxF -- "$expect" <(tr -d '\r' <"$out") && break
        kill -0 "$sc" 2>/dev/null || break
        sleep 0.1
    done
    exec {fd}>&-
    wait "$sc" || true
    grep -qxF -- "$expect" <(tr -d '\r' <"$out") \
        || { cat "$out.err" >&2; fail "s_client $* did not get '$expect' back"; }
}
s_client_echo() { s_client_expect "$1" "$2" "$2" "${@:3}"; }
# s_client_refused ADDR ARGS...: `openssl s_client` sends a line and gets nothing back.
s_client_refused() {
    local addr=$1 fifo=$tmp/s_client.in out=$tmp/s_client.out fd sc; shift
    rm -f "$fifo"; mkfifo "$fifo"
    timeout 30 openssl s_client -connect "$addr" -nocommands "$@" \
        <"$fifo" >"$out" 2>"$out.err" &
    sc=$!
    exec {fd}>"$fifo"
    (printf 'refused?\n' >&"$fd") 2>/dev/null || true # in a subshell: a SIGPIPE ends only it
    for _ in $(seq 100); do kill -0 "$sc" 2>/dev/null || break; sleep 0.1; done
    exec {fd}>&-
    wait "$sc" || true
    ! grep -qxF 'refused?' "$out" || fail "s_client $* got an echo from a server that must refuse it"
}
# s_server ARGS...: `openssl s_server -rev` (answers each line reversed) for one connection.
s_server() {
    rm -f "$tmp/s_server.out" # not a previous run's line
    openssl s_server -accept 127.0.0.1:0 -naccept 1 -rev "$@" >"$tmp/s_server.out" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        addr=$(sed -n 's/^ACCEPT \(.*\)$/\1/p' "$tmp/s_server.out" 2>/dev/null || true)
        [ -n "$addr" ] && return
        sleep 0.1
    done
    fail "openssl s_server did not start"
}

# --- 1. loomwork tls_echo_server <- Twisted TLS client and openssl s_client (TLS 1.3 and 1.2)
for rt in "${runtimes[@]}"; do
    start server "$bin/tls_echo_server" --runtime "$rt" --listen 127.0.0.1:0 \
        --write-ca "$tmp/lw-ca.pem"
    lwca=$tmp/lw-ca.pem
    expect_out "Received: twisted $rt" \
        "${twisted[@]}" client --connect "$addr" --ca "$lwca" --message "twisted $rt"
    grep -qx "negotiated TLSv1.3" "$tmp/client.err" || fail "Twisted did not negotiate TLS 1.3"
    expect_out "Received: twisted $rt tls1.2" "${twisted[@]}" client --connect "$addr" \
        --ca "$lwca" --server-name localhost --max-tls 1.2 --message "twisted $rt tls1.2"
    grep -qx "negotiated TLSv1.2" "$tmp/client.err" || fail "Twisted did not negotiate TLS 1.2"
    s_client_echo "$addr" "openssl $rt" -CAfile "$lwca" -verify_return_error \
        -verify_hostname localhost -servername localhost
    s_client_echo "$addr" "openssl $rt tls1.2" -tls1_2 -CAfile "$lwca" -verify_return_error \
        -verify_ip 127.0.0.1
    stop_ours "$pid"
    echo "loomwork tls_echo_server ($rt) <- Twisted TLS client, openssl s_client (TLS 1.3, 1.2): ok"
done

# --- 2. loomwork tls_echo_client -> Twisted TLS echo server and openssl s_server
start twserver "${twisted[@]}" server --cert "$tmp/server.pem" --key "$tmp/server.key"
tw=$pid tw_addr=$addr
for rt in "${runtimes[@]}"; do
    expect_out "Received: loomwork $rt" "$bin/tls_echo_client" --runtime "$rt" \
        --connect "$tw_addr" --ca "$ca" --message "loomwork $rt"
    expect_out "Received: loomwork $rt by name" "$bin/tls_echo_client" --runtime "$rt" \
        --connect "$tw_addr" --ca "$ca" --server-name localhost --message "loomwork $rt by name"
    for version in -tls1_3 -tls1_2; do
        s_server "$version" -cert "$tmp/server.pem" -key "$tmp/server.key"
        expect_out "Received: $rt$version" "$bin/tls_echo_client" --runtime "$rt" \
            --connect "$addr" --ca "$ca" --message "$(reverse "$rt$version")"$'\n'
        stop_peer "$pid"
    done
    echo "loomwork tls_echo_client ($rt) -> Twisted TLS server, openssl s_server -rev (TLS 1.3, 1.2): ok"
done
stop_peer "$tw"

# --- 3. STARTTLS both ways against Twisted's startTLS line protocol
starttls_lines=$'Received: plain text\nReceived: secure text'
for rt in "${runtimes[@]}"; do
    start server "$bin/starttls_server" --runtime "$rt" --listen 127.0.0.1:0 \
        --write-ca "$tmp/lw-ca.pem"
    expect_out "$starttls_lines" "${twisted[@]}" starttls-client --connect "$addr" \
        --ca "$tmp/lw-ca.pem" --server-name localhost
    expect_log "$tmp/server.err" "received: secure text"
    # The ClientHello right behind STARTTLS, in the same write: handed to TLS exactly.
    expect_out "$starttls_lines" "${twisted[@]}" starttls-pipelined --connect "$addr" \
        --ca "$tmp/lw-ca.pem" --server-name localhost
    expect_log "$tmp/server.err" "received: secure text" 2
    stop_ours "$pid"
    echo "loomwork starttls_server ($rt) <- Twisted startTLS client; a client that sends its" \
        "ClientHello right behind STARTTLS (Python ssl): ok"
done
start twserver "${twisted[@]}" starttls-server --cert "$tmp/server.pem" --key "$tmp/server.key"
tw=$pid
n=0
for rt in "${runtimes[@]}"; do
    expect_out "$starttls_lines" "$bin/starttls_client" --runtime "$rt" --connect "$addr" \
        --ca "$ca" --server-name localhost
    n=$((n + 1))
    expect_log "$tmp/twserver.err" "received: secure text" "$n"
    echo "loomwork starttls_client ($rt) -> Twisted startTLS server: ok"
done
stop_peer "$tw"

# --- 4. mutual TLS
client_cert=(--cert "$tmp/client.pem" --key "$tmp/client.key")
rogue_cert=(--cert "$tmp/rogueclient.pem" --key "$tmp/rogueclient.key")
for rt in "${runtimes[@]}"; do
    start server "$bin/tls_echo_server" --runtime "$rt" --listen 127.0.0.1:0 \
        --client-ca "$ca" --write-ca "$tmp/lw-ca.pem"
    lwca=$tmp/lw-ca.pem log=$tmp/server.err
    expect_out "Received: mutual $rt" "${twisted[@]}" client --connect "$addr" --ca "$lwca" \
        "${client_cert[@]}" --message "mutual $rt"
    expect_log "$log" "client interop client"
    s_client_echo "$addr" "mutual openssl $rt" -CAfile "$lwca" -verify_return_error \
        -cert "$tmp/client.pem" -key "$tmp/client.key"
    expect_log "$log" "client interop client" 2
    # Refused: no certificate, then one from another CA; the server says why and goes on.
    expect_refused "Connection failed: TLS: " \
        "${twisted[@]}" client --connect "$addr" --ca "$lwca" --message "no certificate"
    expect_log "$log" "failed: TLS: certificate required"
    expect_refused "Connection failed: TLS: " "${twisted[@]}" client --connect "$addr" \
        --ca "$lwca" "${rogue_cert[@]}" --message "rogue certificate"
    expect_log "$log" "failed: TLS: certificate issued by an unknown CA"
    s_client_refused "$addr" -CAfile "$lwca" -verify_return_error
    expect_log "$log" "failed: TLS: certificate required" 2
    s_client_refused "$addr" -CAfile "$lwca" -verify_return_error \
        -cert "$tmp/rogueclient.pem" -key "$tmp/rogueclient.key"
    expect_log "$log" "failed: TLS: certificate issued by an unknown CA" 2
    expect_out "Received: still serving $rt" "${twisted[@]}" client --connect "$addr" \
        --ca "$lwca" "${client_cert[@]}" --message "still serving $rt"
    expect_log "$log" "client interop client" 3
    grep -q "client rogue client" "$log" && fail "the rogue client was named as verified"
    stop_ours "$pid"
    echo "loomwork tls_echo_server --client-ca ($rt) <- Twisted and openssl clients:" \
        "accepted with a certificate (client interop client), refused without one" \
        "(certificate required) and from another CA (unknown CA), still serving: ok"
done
start twserver "${twisted[@]}" server --cert "$tmp/server.pem" --key "$tmp/server.key" \
    --client-ca "$ca"
tw=$pid tw_addr=$addr
n=0
for rt in "${runtimes[@]}"; do
    expect_out "Received: mutual $rt" "$bin/tls_echo_client" --runtime "$rt" \
        --connect "$tw_addr" --ca "$ca" "${client_cert[@]}" --message "mutual $rt"
    n=$((n + 1))
    expect_log "$tmp/twserver.err" "client interop client" "$n"
    expect_refused "Connection failed: TLS: certificate required (reported by the peer)" \
        "$bin/tls_echo_client" --runtime "$rt" --connect "$tw_addr" --ca "$ca" \
        --message "no certificate"
    s_server -Verify 1 -CAfile "$ca" -cert "$tmp/server.pem" -key "$tmp/server.key"
    expect_out "Received: mutual $rt" "$bin/tls_echo_client" --runtime "$rt" \
        --connect "$addr" --ca "$ca" "${client_cert[@]}" --message "$(reverse "mutual $rt")"$'\n'
    stop_peer "$pid"
    echo "loomwork tls_echo_client --cert ($rt) -> Twisted and openssl s_server requiring" \
        "client certificates: accepted, refused without one (certificate required): ok"
done
stop_peer "$tw"

# --- 5. bad certificates: unknown CA, wrong name
start twserver "${twisted[@]}" server --cert "$tmp/rogueserver.pem" --key "$tmp/rogueserver.key"
rogue=$pid rogue_addr=$addr
start twserver2 "${twisted[@]}" server --cert "$tmp/wrongname.pem" --key "$tmp/wrongname.key"
wrong=$pid wrong_addr=$addr
start twserver3 "${twisted[@]}" starttls-server --cert "$tmp/rogueserver.pem" \
    --key "$tmp/rogueserver.key"
rogue_starttls=$pid rogue_starttls_addr=$addr
for rt in "${runtimes[@]}"; do
    expect_refused "Connection failed: TLS: certificate issued by an unknown CA" \
        "$bin/tls_echo_client" --runtime "$rt" --connect "$rogue_addr" --ca "$ca" --message x
    expect_refused "Connection failed: TLS: certificate not valid for the name" \
        "$bin/tls_echo_client" --runtime "$rt" --connect "$wrong_addr" --ca "$ca" --message x
    s_server -cert "$tmp/rogueserver.pem" -key "$tmp/rogueserver.key"
    expect_refused "Connection failed: TLS: certificate issued by an unknown CA" \
        "$bin/tls_echo_client" --runtime "$rt" --connect "$addr" --ca "$ca" --message x
    stop_peer "$pid"
    s_server -cert "$tmp/server.pem" -key "$tmp/server.key"
    expect_refused "Connection failed: TLS: certificate not valid for the name" \
        "$bin/tls_echo_client" --runtime "$rt" --connect "$addr" --ca "$ca" \
        --server-name wrong.example --message x
    stop_peer "$pid"
    # The plaintext part goes through; the switch to TLS fails.
    expect_failed "Received: plain text" \
        "Connection failed: TLS: certificate issued by an unknown CA" "$bin/starttls_client" --runtime "$rt" --connect "$rogue_starttls_addr" --ca "$ca"
    echo "loomwork tls_echo_client, starttls_client ($rt) -> Twisted / openssl s_server with a" \
        "bad certificate: refused (unknown CA; not valid for the name): ok"
done
stop_peer "$rogue"
stop_peer "$wrong"
stop_peer "$rogue_starttls"

# --- 6. the chat server's mutual-TLS variant: the client certificate replaces the secret
for rt in "${runtimes[@]}"; do
    start server "$bin/chat_server" --runtime "$rt" --listen 127.0.0.1:0 --client-ca "$ca" \
        --write-ca "$tmp/lw-ca.pem"
    lwca=$tmp/lw-ca.pem log=$tmp/server.err
    s_client_expect "$addr" "alice" "Welcome, alice!" -crlf -CAfile "$lwca" -verify_return_error \
        -cert "$tmp/client.pem" -key "$tmp/client.key"
    expect_log "$log" "client interop client"
    expect_refused "Connection failed: TLS: " \
        "${twisted[@]}" client --connect "$addr" --ca "$lwca" --message "mallory"
    expect_log "$log" "failed: TLS: certificate required"
    expect_refused "Connection failed: TLS: " "${twisted[@]}" client --connect "$addr" \
        --ca "$lwca" "${rogue_cert[@]}" --message "mallory"
    expect_log "$log" "failed: TLS: certificate issued by an unknown CA"
    stop_ours "$pid"
    echo "loomwork chat_server --client-ca ($rt) <- openssl s_client with a certificate:" \
        "welcomed (client interop client); Twisted clients without one or from another CA:" \
        "refused: ok"
done
