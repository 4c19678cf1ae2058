#!/usr/bin/env bash
# Best dev result per task of a grid run, from its results records (or best_result log lines).
#   bash extract_result.sh MODEL [--output_root ROOT]
# Prints upstream's two tables and writes RUN_DIR/results.csv and RUN_DIR/results.md.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bash extract_result.sh MODEL [--output_root ROOT]" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH="$HERE/..${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python}" -m cluebench.extract "$@"
