#!/usr/bin/env bash
# Bounded load runs (each well under a minute): 5,000 connections on smol and tokio, 1,000 on
# std.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/echo-load.sh smol 5000 4096
scripts/echo-load.sh tokio 5000 4096
scripts/echo-load.sh std 1000 4096
# Connection churn: 50,000 connect/echo/close cycles; descriptors and threads back at baseline.
CHURN=50000 scripts/echo-load.sh smol 0 64
CHURN=50000 scripts/echo-load.sh tokio 0 64
CHURN=50000 scripts/echo-load.sh std 0 64
