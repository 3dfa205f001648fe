#!/usr/bin/env bash
# Runs every benchmark in tests/bench (bench_*.py) after scripts/setup.sh.
# Each prints its own table, with the ratio against the reference tool
# measured in the same run. Needs root (the loopback lab uses netns).
# Usage: scripts/bench.sh [bench_name ...]   e.g. scripts/bench.sh sweep
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. "$ROOT/scripts/lib.sh"
bash "$ROOT/scripts/setup.sh"
hold_images_lock $$  # the role and fleet benchmarks use the test images: scripts/clean.sh keeps them meanwhile
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for f in tests/bench/bench_*.py; do names+=("$(basename "$f" .py | sed 's/^bench_//')"); done
fi
rc=0
for name in "${names[@]}"; do
    log "benchmark: $name"
    "$ROOT/.venv/bin/python" "tests/bench/bench_$name.py" || rc=1
done
exit $rc
