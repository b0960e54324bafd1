# Shared by the interop steps in .ci/extra (sourced, not run): Twisted on hand, background
# servers killed on exit, and a wait for a server's `listening on` line (docs/examples.md).

python3 -c "import twisted" 2>/dev/null || python3 -m pip install --quiet twisted
bin=target/release/examples
cleanup() { kill $(jobs -p) 2>/dev/null || true; }
trap cleanup EXIT

wait_listening() { # file -> address
    for _ in $(seq 100); do
        if grep -q '^listening on' "$1" 2>/dev/null; then awk '{print $4}' "$1"; return; fi
        sleep 0.1
    done
    echo "server did not start" >&2; exit 1
}
