#!/usr/bin/env bash
# KPI refresh for one trust: bright computing every KPI of the catalogue (in full, and for the
# open day only, as a dashboard tick does) against DuckDB running the same SQL over the same
# Parquet files, side by side on this machine. Prints medians and the bright/DuckDB ratio.
#
#   benches/kpi.sh [DAYS] [RUNS]        (defaults: 730 days of history, 5 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
days=${1:-730}
runs=${2:-5}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/bright-target}
python=${BRIGHT_TEST_PYTHON:-$HOME/.cache/bright-test-venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --workspace --locked --bin bright
"$CARGO_TARGET_DIR/debug/bright" generate --days "$days" --seed 42 --end 2026-01-01 \
  --lake "$work/lake" >/dev/null
BRIGHT_BENCH_LAKE="$work/lake" BRIGHT_BENCH_RUNS="$runs" \
  cargo bench --workspace --locked --bench kpi >"$work/bright.jsonl"
"$python" benches/kpi_duckdb.py "$work/lake" queries "$runs" >"$work/duckdb.jsonl"

python3 - "$work/bright.jsonl" "$work/duckdb.jsonl" <<'PY'
import json, sys
rows = {}
for path in sys.argv[1:]:
    for line in open(path):
        if line.startswith("{"):
            r = json.loads(line)
            rows.setdefault((r["kpi"], r["mode"]), {})[r["engine"]] = r["ms"]
print(f"{'kpi':<32} {'mode':<9} {'bright ms':>10} {'duckdb ms':>10} {'ratio':>6}")
for (kpi, mode), t in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    b, d = t.get("bright"), t.get("duckdb")
    ratio = f"{b / d:.2f}" if b and d else ""
    print(f"{kpi:<32} {mode:<9} {b if b is not None else '':>10} {d if d is not None else '':>10} {ratio:>6}")
PY
