#!/usr/bin/env bash
# Benchmarks kglance against glance_store 5.7.0 and the machine's limits; see bench/README.md.
#   bench/run.sh [--size 256M] [--repeat 3] [--only 'kglance.*'] [--list] [--json out.json]
set -euo pipefail
cd "$(dirname "$0")/.."
python="${KGLANCE_VENV:-.venv}/bin/python"
if [ ! -x "$python" ]; then
    echo "bench/run.sh: no $python; install the project first (see README.md)" >&2
    exit 1
fi
exec "$python" -m bench "$@"
