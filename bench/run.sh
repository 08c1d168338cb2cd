#!/usr/bin/env bash
# Build sctpt (release) and run the benchmarks; extra arguments go to bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
[ -d build ] || meson setup build -Dbuildtype=debugoptimized >/dev/null
ninja -C build sctpt >/dev/null
ulimit -n "$(ulimit -Hn)"
exec python3 bench/bench.py "$@"
