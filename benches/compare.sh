#!/usr/bin/env bash
# bright beside the tools analysts would pick instead, on the same lake and this machine:
# DuckDB and Polars (from PyPI) run the same query suite over the same Parquet files,
# interleaved with bright run after run; answers are checked to agree; figures go to
# benches/RESULTS.md, newest run first.
#
#   benches/compare.sh [--scale trust|region|national] [--runs N] [--days D]
#                      [--lake DIR] [--profile release|dev] [--groups G,G] [--check]
#                      [--landings N] [--no-ingest] [--no-polars]
#
#   --scale    trust: one trust, 2 years (default); region: 20 trusts, 3 years; national:
#              150 trusts, enough days for 50 M ED attendances (streamed by `bright generate`)
#   --runs     runs per engine (default 3); medians are reported
#   --days     override the scale's days of history
#   --lake     use (or keep) the lake in DIR instead of a new one in a temporary folder
#   --profile  cargo profile of bright's binaries (default release: what is deployed)
#   --groups   only these query groups (kpi_full, kpi_open_day, kpi_site_month,
#              kpi_trust_month, adhoc, tick, day; default all)
#   --landings landings in a row in the `day` group (default 60)
#   --check    only check that the engines agree (one run, 20 landings, nothing written to
#              RESULTS.md); the test suite runs `--scale trust --days 60 --check`
#   --no-ingest  skip the ingest part (`cargo bench --bench ingest`)
#   --no-polars  run bright and DuckDB only (at national scale Polars spent minutes on its
#              first query)
#
# BRIGHT_COMPARE_BIN=DIR takes `bright` and `bright-compare` from DIR instead of building
# them (the ingest part still builds its bench, with the same command as the binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

command="benches/compare.sh $*"
scale=trust runs=3 days="" lake="" profile=release check=0 ingest=1 groups= no_polars=
landings=60
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --lake) lake=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --groups) groups=$2; shift 2 ;;
    --landings) landings=$2; shift 2 ;;
    # Enough landings for a compaction of the open day.
    --check) check=1; runs=1; ingest=0; landings=20; shift ;;
    --no-ingest) ingest=0; shift ;;
    --no-polars) no_polars=1; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$scale" in
  trust) trusts=1; days=${days:-730} ;;
  region) trusts=20; days=${days:-1095} ;;
  # The simulated reference trust has about 400 ED attendances a day (294 k in 730 days):
  # 150 trusts × 850 days ≈ 51 M, if the others are as busy (each run records the rows).
  national) trusts=150; days=${days:-850} ;;
  *) echo "compare.sh: --scale is trust, region or national" >&2; exit 2 ;;
esac

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/bright-target}
python=${BRIGHT_TEST_PYTHON:-$HOME/.cache/bright-test-venv/bin/python}
if ! "$python" -c 'import duckdb, polars' 2>/dev/null; then
  echo "compare.sh: $python lacks duckdb or polars (scripts/test installs them)" >&2
  exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The binaries and the ingest bench, always by one command: built apart (as `cargo bench`
# does) or without the bench, the dependencies resolve other features and every one of them
# is compiled again (13-14 min on 2 cores).
if [ -n "${BRIGHT_COMPARE_BIN:-}" ] && [ "$ingest" = 0 ]; then
  bin=$BRIGHT_COMPARE_BIN
else
  cargo build --workspace --locked --profile "$profile" --bin bright --bin bright-compare \
    --bench ingest \
    --message-format=json-render-diagnostics >"$work/build.jsonl"
  case "$profile" in dev) built=$CARGO_TARGET_DIR/debug ;; *) built=$CARGO_TARGET_DIR/$profile ;; esac
  bin=${BRIGHT_COMPARE_BIN:-$built}
  ingest_bench=$("$python" -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if (m.get("reason") == "compiler-artifact" and m["target"]["name"] == "ingest"
            and "bench" in m["target"]["kind"] and m.get("executable")):
        print(m["executable"])
' "$work/build.jsonl")
fi
if [ -z "$lake" ]; then lake=$work/lake; fi
if [ ! -d "$lake/ed_attendances" ]; then
  echo "compare.sh: simulating $trusts trust(s) × $days days into $lake" >&2
  started=$(date +%s)
  /usr/bin/time -f '%M' -o "$work/generate.rss" \
    "$bin/bright" generate --trusts "$trusts" --days "$days" --seed 42 --end 2026-01-01 \
    --lake "$lake" >/dev/null
  echo "$(( $(date +%s) - started )) $(cat "$work/generate.rss")" > "$work/generate.txt"
fi

status=0
"$python" benches/compare.py --lake "$lake" --runner "$bin/bright-compare" --runs "$runs" \
  --landings "$landings" --scale "$scale" ${groups:+--groups "$groups"} ${no_polars:+--no-polars} \
  --results "$work/queries.json" || status=$?
# A run whose engines disagree (or that failed) writes nothing into RESULTS.md.
if [ "$check" = 1 ] || [ "$status" != 0 ]; then exit "$status"; fi

if [ "$ingest" = 1 ]; then
  # MLLP with durable acks over 1/8/32 connections, HTTP NDJSON beside DuckDB loading the same
  # events, ack → visible, peak memory: the ingest bench prints one JSON object a figure.
  # The bench's DuckDB peer runs in the same Python as the comparison.
  # Run where `cargo bench` runs it, in its package's folder.
  (cd benches && BRIGHT_TEST_PYTHON=$python "$ingest_bench" --bench) \
    >"$work/ingest.jsonl" || status=$?
fi

"$python" benches/results.py --queries "$work/queries.json" --ingest "$work/ingest.jsonl" \
  --generate "$work/generate.txt" --command "$command" --out benches/RESULTS.md
exit "$status"
