#!/usr/bin/env bash
# The live boards under many requests: `bright serve` over a simulated trust whose history runs
# to the end of today (so today's theatre lists are on the trackboard), and `wrk` (Debian's)
# against the trackboard's and the command-centre wall's JSON twins and pages at 50 and 200
# connections. They read the latest computed frame, so the goal is a p99 under 50 ms.
#
#   benches/boards_wrk.sh [DAYS] [SECONDS]     (defaults: 400 days, 20 s per run)
#   BRIGHT_PROFILE=release benches/boards_wrk.sh …   (the deployed build; default dev)
#   BRIGHT_RUNAWAY=1 benches/boards_wrk.sh …          (meanwhile, an analyst runs two
#                                                      statements that never finish, again
#                                                      and again, through POST /api/sql)
set -euo pipefail
cd "$(dirname "$0")/.."
days=${1:-400}
seconds=${2:-20}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/bright-target}
command -v wrk >/dev/null || { echo "boards_wrk.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }
work=$(mktemp -d)
server=
runaway=()
trap '[ ${#runaway[@]} -gt 0 ] && kill "${runaway[@]}" 2>/dev/null; [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

profile=${BRIGHT_PROFILE:-dev}
cargo build --workspace --locked --bin bright --profile "$profile"
case "$profile" in dev) built=debug ;; *) built=$profile ;; esac
bright="$CARGO_TARGET_DIR/$built/bright"
tomorrow=$(date -u -d tomorrow +%Y-%m-%d)
"$bright" generate --days "$days" --seed 42 --end "$tomorrow" --lake "$work/lake" >/dev/null
token="boards-wrk-token-0123456789"
BRIGHT_PSEUDO_KEY="a bench key, 16 bytes or more" BRIGHT_ADMIN_TOKEN="$token" \
  "$bright" serve --lake "$work/lake" --wal "$work/wal" --landing "$work/landing" \
  --quarantine "$work/quarantine" --users-db "$work/users.sqlite3" \
  --alerts-db "$work/alerts.sqlite3" --reports "$work/reports" --mllp-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --pg-addr 127.0.0.1:0 --flight-addr 127.0.0.1:0 \
  >"$work/serve.log" 2>&1 &
server=$!
until grep -q "HTTP: listening on" "$work/serve.log"; do
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.2
done
address=$(grep -o "HTTP: listening on http://[0-9.:]*" "$work/serve.log" | sed 's/.*http:\/\///')
# Wait until both boards have been computed once, and every KPI (the service warms them at
# start; the report needs them all), so the runs do not compete with the warm-up.
for path in /api/theatres /api/command-centre /api/ipr; do
  until curl -sf -H "Authorization: Bearer $token" "http://$address$path" >/dev/null; do sleep 0.5; done
done
if [ -n "${BRIGHT_RUNAWAY:-}" ]; then
  # Two at once (a client's limit), each stopped at its time limit and sent again.
  for _ in 1 2; do
    while true; do
      curl -s -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -d '{"sql": "SELECT count(*) FROM generate_series(1, 3000000) a(v) CROSS JOIN generate_series(1, 3000000) b(w)"}' \
        "http://$address/api/sql"
    done &
    runaway+=($!)
  done
  echo "With two runaway analyst statements running throughout."
fi
echo "| path | connections | requests/s | p50 ms | p99 ms | p99 of the 50 ms goal |"
echo "| --- | --- | --- | --- | --- | --- |"
for path in /api/theatres /theatres /api/command-centre /command-centre; do
  for connections in 50 200; do
    out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency \
      -H "Authorization: Bearer $token" "http://$address$path")
    rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    ms() { awk -v q="$1" '$1 == q {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<<"$out"; }
    p50=$(ms 50%); p99=$(ms 99%)
    ratio=$(awk -v p="$p99" 'BEGIN {printf "%.2f", p / 50}')
    echo "| \`$path\` | $connections | $rate | $p50 | $p99 | $ratio |"
  done
done
