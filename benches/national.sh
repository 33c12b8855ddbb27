#!/usr/bin/env bash
# Does `bright generate` stream? Simulates 150 trusts into a fresh lake for a short and a
# four-times-longer period and reports wall time, rows written and peak memory (RSS). If the
# generator streams, peak RSS stays flat while rows grow about fourfold.
#
#   benches/national.sh [BRIGHT_BINARY]
set -euo pipefail
bright=${1:-${CARGO_TARGET_DIR:-$HOME/.cache/bright-target}/debug/bright}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-8s %-6s %12s %10s %12s\n' trusts days rows seconds peak_rss_mb
for days in 7 28; do
  lake="$work/lake-$days"
  /usr/bin/time -f '%e %M' -o "$work/time" \
    "$bright" generate --trusts 150 --days "$days" --seed 1 --end 2025-01-15 --lake "$lake" >/dev/null
  read -r seconds rss_kb < "$work/time"
  rows=$("$bright" lake tables --lake "$lake" | awk 'NR > 1 { s += $3 } END { print s }')
  printf '%-8s %-6s %12s %10s %12s\n' 150 "$days" "$rows" "$seconds" "$((rss_kb / 1024))"
  rm -rf "$lake"
done
