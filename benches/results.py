"""Writes one run of `benches/compare.sh` into benches/RESULTS.md, above the runs before it.

    results.py --queries FILE [--ingest FILE] [--generate FILE] --command TEXT --out FILE
"""

import argparse
import json
import re
import statistics
import subprocess
from datetime import datetime, timezone
from pathlib import Path

HEADER = """# bright beside DuckDB and Polars

Written by `benches/compare.sh` (see its `--help`), newest run first; each run is one section,
with the machine, the commit, the command and what changed since the run below it. bright,
DuckDB and Polars run the same query suite over the same Parquet files on the same machine,
interleaved run after run; times are medians; a ratio below 1 means bright was faster. A run
whose engines disagree on any answer fails and writes nothing here.

Groups: `kpi_full` every catalogue KPI over all history; `kpi_open_day` every KPI for the
period holding the last day (what a dashboard tick reads); `kpi_site_month` KPIs by site and
month; `kpi_trust_month` every KPI by trust and month; `adhoc` analysts' questions. Each group
starts from a fresh session in every engine (bright's materialised helper views are computed
again, as after new ADT data). The tick: on a copy of the lake, new rows land on the open day
and bright's dashboard KPI cache is brought up to date, against DuckDB recomputing every KPI
for the open day.
"""
MARK = "<!-- runs: newest first -->"
NO_INGEST = ("- Ingest: not run this time (`--no-ingest`); the latest ingest figures are in "
             "benches/README.md (`cargo bench --bench ingest`)")

GROUP_TITLES = {
    "kpi_full": "every KPI, all history",
    "kpi_open_day": "every KPI, open day",
    "kpi_site_month": "KPIs by site and month",
    "kpi_trust_month": "every KPI by trust and month",
    "adhoc": "analysts' questions",
}


def git(*args):
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def s(ms):
    return "—" if ms is None else f"{ms / 1e3:.2f}"


def x(ratio):
    return "—" if ratio is None else f"{ratio:.2f}"


def public(command):
    """The command as anyone would type it: a lake folder is this machine's, not the run's."""
    return re.sub(r"--lake \S+", "--lake DIR", command)


def section(q, ingest, generate, command, previous_commit):
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    commit = git("rev-parse", "--short", "HEAD") or "?"
    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
    polars_ran = "polars" not in q.get("not_run", [])
    limit = q.get("duckdb_memory_limit")
    memory = f", memory limit {limit / 2**30:.1f} GiB as bright's query pool" if limit else ""
    lines = [f"## {now} · {q['scale']} scale · {q['runs']} run(s)", "",
             f"<!-- commit: {commit} -->",
             f"- Machine: {q['machine']}",
             f"- bright at commit {commit}{dirty}; DuckDB {q['engines']['duckdb']} "
             f"({q['threads']} threads{memory}); "
             + (f"Polars {q['engines']['polars']} (from PyPI)" if polars_ran else
                "Polars not run (`--no-polars`)"),
             f"- Command: `{public(command)}`"]
    rows = ", ".join(f"{n:,} rows of {t}" for t, n in q.get("tables", {}).items())
    lines.append(f"- Lake: {rows}" + (f"; {generate}" if generate else ""))
    if previous_commit:
        log = git("log", "--oneline", "--no-decorate", f"{previous_commit}..HEAD")
        changed = log.splitlines()
        if changed:
            lines.append(f"- Changed since the previous run ({previous_commit}): "
                         + "; ".join(c.split(" ", 1)[1] for c in changed[:12])
                         + (f"; and {len(changed) - 12} more" if len(changed) > 12 else ""))
        else:
            lines.append(f"- Changed since the previous run: nothing committed ({previous_commit})")
    else:
        lines.append("- Changed since the previous run: the first run")
    queries = q["queries"]
    failed = {}
    for row in queries:
        for engine in ("bright", "duckdb", "polars"):
            if row.get(f"{engine}_error"):
                failed.setdefault(engine, []).append(row)
    compared = sum(1 for row in queries if row.get("duckdb_ms") is not None)
    polars_agrees = ("; Polars agrees on all "
                     f"{sum(1 for r in queries if r.get('polars_ms') is not None)} it ran"
                     if polars_ran else "")
    if q["disagreements"]:
        agree = "- Answers: DISAGREE — " + "; ".join(q["disagreements"][:5])
    elif not queries:
        # The tick or the day of ticks alone: each compares its answers in its own line.
        agree = "- Answers: no query group ran (the tick's answers are compared in its line)"
    else:
        agree = (f"- Answers: bright and DuckDB agree on all {compared} queries they both ran"
                 f"{polars_agrees}")
    lines.append(agree)
    if failed.get("polars"):
        reasons = {}
        for row in failed["polars"]:
            reasons.setdefault(row["polars_error"], []).append(row["id"])
        lines.append(f"- Polars could not run {len(failed['polars'])} queries: " + "; ".join(
            f"{', '.join(sorted(set(ids))[:4])}{' …' if len(set(ids)) > 4 else ''}: “{why}”"
            for why, ids in reasons.items()))
    for engine in ("bright", "duckdb"):
        if failed.get(engine):
            lines.append(f"- {engine} failed on: " + "; ".join(
                f"{r['group']} {r['id']}: {r[engine + '_error']}" for r in failed[engine]))
    lines.append(f"- bright's peak resident memory over the run: "
                 f"{q['bright_peak_rss'] / 2**20:.0f} MB")
    if not ingest:
        lines.append(NO_INGEST)
    tick = q.get("tick")
    if tick:
        added = ", ".join(f"{n} {t}" for t, n in tick["added"].items())
        lines.append(
            f"- Tick: {added} landed on the open day; bright's KPI cache ({tick['series']} "
            f"series, computed beforehand in {s(tick['warm'])} s) was brought up to date in "
            f"{s(tick['bright'])} s, {tick.get('recomputed', tick['series'])} series "
            f"recomputed, {tick['full']} of them in full (changed: "
            f"{', '.join(tick['changed_tables'])}); DuckDB recomputed every KPI for the open "
            f"day in {s(tick['duckdb'])} s; the open day's answers agree")
        # Where the last run's tick went: its slowest steps (the first series to read a
        # materialised view pays for bringing it up to date).
        slowest = sorted(tick.get("steps", []), key=lambda st: -st["ms"])[:6]
        if slowest:
            lines.append("- The last tick's slowest steps: " + "; ".join(
                f"{st['what']}{' from ' + st['since'] if st.get('since') else ''} "
                f"{st['ms'] / 1e3:.2f} s" for st in slowest))

    day = q.get("day")
    if day:
        ways = []
        for way, d in day["ways"].items():
            files = ", ".join(f"{t} {n}" for t, n in d["open_day_files"].items())
            merging = [c["ms"] for c in d["compactions"] if c["merged"]]
            refreshing = [c["ms"] for c in d["compactions"] if not c["merged"]]
            merged = (f", {d['merged']} files merged by {len(merging)} compactions of "
                      f"{s(statistics.median(merging))} s each (median; the engine's refresh "
                      f"after the other landings {s(statistics.median(refreshing))} s)"
                      if merging and refreshing else "")
            ways.append(f"{way}: ticks {s(statistics.median(d['ticks'][:5]))} s over the first "
                        f"five, {s(statistics.median(d['ticks'][-5:]))} s over the last five"
                        f"{merged}; the open day's files then {files}; DuckDB's recomputation "
                        f"then {s(d['duckdb'])} s")
        lines.append(f"- A day of ticks: {day['landings']} landings in a row, each followed by "
                     f"a tick — " + "; ".join(ways) + "; the open day's answers agree")

    if q["groups"]:
        lines += ["", "| group | queries | bright s | DuckDB s | Polars s | bright/DuckDB "
                  "(geomean) | worst | bright/Polars (geomean) |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for group, g in q["groups"].items():
        n = sum(1 for r in queries if r["group"] == group)
        lines.append(
            f"| {GROUP_TITLES.get(group, group)} | {n} | {s(g['bright'])} | {s(g['duckdb'])} | "
            + (f"{s(g['polars']) if g['polars'] is not None else 'incomplete'} | "
               if polars_ran else "not run | ")
            + f"{x(g['geomean_vs_duckdb'])} | {x(g['max_vs_duckdb'])} | "
            + (f"{x(g['geomean_vs_polars'])} ({g['compared_vs_polars']} queries) |"
               if polars_ran else "not run |"))

    lines += ["", "Targets:", "", "| target | goal | this run |", "| --- | --- | --- |"]
    full = q["groups"].get("kpi_full")
    if full:
        lines.append(f"| KPI suite in full | ≤ 1.0× DuckDB (geomean), no KPI above 2× | "
                     f"{x(full['geomean_vs_duckdb'])}×, worst {x(full['max_vs_duckdb'])}× — "
                     f"{'met' if (full['geomean_vs_duckdb'] or 9) <= 1 and (full['max_vs_duckdb'] or 9) <= 2 else 'not met'} |")
    tick = q.get("tick")
    if tick and tick["bright"] and tick["duckdb"]:
        speedup = tick["duckdb"] / tick["bright"]
        lines.append(f"| A dashboard tick (new rows, then the KPI cache brought up to date) | "
                     f"≥ 10× faster than DuckDB | {speedup:.2f}× faster "
                     f"({s(tick['bright'])} s against {s(tick['duckdb'])} s) — "
                     f"{'met' if speedup >= 10 else 'not met'} |")
    compacted = (q.get("day") or {}).get("ways", {}).get("compacted")
    if compacted:
        last = statistics.median(compacted["ticks"][-5:])
        speedup = compacted["duckdb"] / last
        lines.append(f"| A tick after {q['day']['landings']} landings, compacted as serving "
                     f"does | ≥ 10× faster than DuckDB | {speedup:.2f}× faster ({s(last)} s "
                     f"against {s(compacted['duckdb'])} s) — "
                     f"{'met' if speedup >= 10 else 'not met'} |")
    if ingest:
        mllp = {r["connections"]: r for r in ingest if r.get("bench") == "mllp"}
        if 32 in mllp:
            rate = mllp[32]["messages_per_s"]
            lines.append(f"| MLLP ADT, durable acks, 32 connections | ≥ 50,000 messages/s | "
                         f"{rate:,.0f}/s — {'met' if rate >= 50000 else 'not met'} |")
        ack = next((r for r in ingest if r.get("bench") == "ack_to_visible"), None)
        if ack:
            lines.append(f"| Ack → visible p99 | < 100 ms | {ack['p99_ms']} ms (p50 "
                         f"{ack['p50_ms']}) — {'met' if ack['p99_ms'] < 100 else 'not met'} |")
        http = [r for r in ingest if r.get("bench") == "http_ndjson"]
        for r in http:
            if r.get("duckdb_load_events_per_s") is None:
                # The bench found no Python with DuckDB: no peer, so no verdict.
                lines.append(f"| HTTP NDJSON, {r['connections']} connection(s) | ≥ 1.0× DuckDB "
                             f"loading the same events | {r['events_per_s']:,}/s; DuckDB not "
                             "run — not measured |")
                continue
            lines.append(f"| HTTP NDJSON, {r['connections']} connection(s) | ≥ 1.0× DuckDB "
                         f"loading the same events | {r['events_per_s']:,}/s, {r['vs_duckdb']}× "
                         f"DuckDB's {r['duckdb_load_events_per_s']:,}/s — "
                         f"{'met' if (r['vs_duckdb'] or 0) >= 1 else 'not met'} |")
    lines.append("| Newcomer, clone → first page | ≤ 12 min on 2 cores | not measured by "
                 "this harness |")

    if ingest:
        lines += ["", "Ingest (`cargo bench --bench ingest`, release):", ""]
        disk = next((r for r in ingest if r.get("bench") == "disk"), {})
        lines.append(f"- The disk's own rate: {disk.get('fsyncs_per_s', '?'):,} write + "
                     "fdatasync pairs a second")
        for c, r in sorted(mllp.items()):
            cpu = r.get("cpu_us_per_message")
            lines.append(f"- MLLP, {c} connection(s): {r['messages_per_s']:,} messages/s "
                         f"({r['vs_disk_fsyncs']}× the disk's fsync rate"
                         + (f"; {cpu} µs of CPU a message" if cpu is not None else "") + ")")
        apart = next((r for r in ingest if r.get("bench") == "mllp_senders_apart"), None)
        if apart:
            lines.append(f"- MLLP, {apart['connections']} connections, the senders a process "
                         f"of their own on the same cores: {apart['messages_per_s']:,} "
                         f"messages/s; bright's CPU {apart['bright_cpu_us_per_message']} µs a "
                         f"message, the senders' {apart['senders_cpu_us_per_message']} µs")
        for r in ingest:
            if r.get("bench", "").startswith("memory"):
                lines.append(f"- Peak resident memory ({r['bench'].replace('_', ' ')}): "
                             f"{r['peak_rss_mb']} MB")

    if queries:
        lines += ["", "<details><summary>Per query: median ms (bright ÷ each)</summary>", "",
                  "| group | query | bright | DuckDB | Polars | rows |",
                  "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in queries:
        def cell(engine):
            ms = r.get(f"{engine}_ms")
            if ms is None:
                return "failed" if r.get(f"{engine}_error") else "—"
            if engine == "bright" or not r.get("bright_ms"):
                return f"{ms:.1f}"
            return f"{ms:.1f} ({r['bright_ms'] / ms:.2f})"
        lines.append(f"| {r['group']} | {r['id']} | {cell('bright')} | {cell('duckdb')} | "
                     f"{cell('polars')} | {r['rows']} |")
    if queries:
        lines += ["", "</details>"]
    # A blank line before the next run's heading.
    lines += ["", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=Path, required=True)
    ap.add_argument("--ingest", type=Path)
    ap.add_argument("--generate", type=Path)
    ap.add_argument("--command", required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    q = json.loads(args.queries.read_text())
    ingest = None
    if args.ingest and args.ingest.exists():
        ingest = [json.loads(line) for line in args.ingest.read_text().splitlines()
                  if line.startswith("{")]
    generate = ""
    if args.generate and args.generate.exists():
        seconds, rss_kb = args.generate.read_text().split()
        generate = (
            f"simulated by `bright generate` in {int(seconds)} s, peak RSS "
            f"{int(rss_kb) / 1024:.0f} MB")
    old = args.out.read_text() if args.out.exists() else HEADER + "\n" + MARK + "\n"
    head, _, runs = old.partition(MARK)
    found = re.search(r"<!-- commit: (\w+) -->", runs)
    new = section(q, ingest, generate, args.command, found.group(1) if found else None)
    args.out.write_text(head + MARK + "\n\n" + new + runs.lstrip("\n"))
    print(f"results.py: wrote a {q['scale']} run into {args.out}")


if __name__ == "__main__":
    main()
