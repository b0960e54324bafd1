#!/usr/bin/env bash
# Multicast tests, only inside a private network namespace this script creates (as root), and
# datagram interop with real Twisted (multicast part also inside its own namespace).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v ip >/dev/null || { apt-get update -qq && apt-get install -y -qq iproute2; }
scripts/netns-test.sh
python3 -c "import twisted" 2>/dev/null || python3 -m pip install --quiet twisted
cargo build --quiet --examples
python3 interop/run.py --multicast
