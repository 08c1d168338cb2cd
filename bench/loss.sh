#!/usr/bin/env bash
# Build sctpt and run the loss benchmark (sctpt vs ssh -D vs shadowsocks-libev under IP-level
# loss and delay from `sctpt-lab impair`); needs root.  Extra arguments go to loss_bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
[ -d build ] || meson setup build -Dbuildtype=debugoptimized >/dev/null
ninja -C build sctpt sctpt-lab >/dev/null
exec python3 bench/loss_bench.py "$@"
