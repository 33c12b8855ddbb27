"""bright beside DuckDB and Polars on the same lake: one query suite, interleaved runs,
medians, per-query ratios, and a check that the engines give the same answers.

    compare.py --lake DIR --runner BRIGHT_COMPARE [--runs N] [--scale NAME]
               [--results FILE] [--groups kpi_full,adhoc,...]

`benches/compare.sh` builds the lake and the runner and calls this. The suite:
- `kpi_full`: every KPI of the catalogue over all history, as dashboards compute it;
- `kpi_open_day`: every KPI for the period holding the lake's last day (what a tick reads);
- `kpi_site_month`: every KPI with a site breakdown, by site and month;
- `kpi_trust_month`: every KPI by trust (`org_code`) and month;
- `adhoc`: analysts' questions (long stays by ward, a cohort across ED, ADT and theatres,
  ED time by hour of arrival);
- `tick`: a dashboard tick on a copy of the lake. bright keeps every KPI's series in a
  dashboard's KPI cache (computed before, not timed); new rows land on the open day (the
  latest `TICK_ROWS` of ED attendances, ADT events and theatre milestones sent again under new
  ids, one Delta commit per table); the timed tick brings the cache up to date, recomputing
  only the periods the new rows can reach. DuckDB recomputes every KPI for the open day over
  the same files. Each run adds its own rows; the open day's answers are compared every run.
- `day`: a day of ticks on a copy of the lake, as a board follows serving's flushes: rows
  land `--landings` times in a row (as in `tick`, a file per table each time), each landing
  followed by a tick; once with the open day compacted after each landing, as serving does
  after each flush, and once without. Then DuckDB recomputes the open day over the files
  each way left, and the answers are compared.
bright and DuckDB run the same SQL (the catalogue's files; bright's four functions as DuckDB
macros, `kpi_duckdb.py`). Polars runs what its SQL front end accepts of the same text, and the
analysts' questions as a Polars user would write them; what it cannot run is reported, with
its error, and not compared.

Each run starts every engine afresh for each group (bright: a new session, so materialised
helper views are computed again, as after new ADT data; DuckDB: its views are plain views),
engines in a rotating order. Exits 1 when two engines disagree on any answer.
"""

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

sys.path.insert(0, str(Path(__file__).parent))
import kpi_duckdb  # noqa: E402

ALL_TIME = date(1900, 1, 1)
GROUPS = ["kpi_full", "kpi_open_day", "kpi_site_month", "kpi_trust_month", "adhoc", "tick",
          "day"]

# New rows per table in a tick: the latest rows of the open day, sent again under new ids.
TICK_ROWS = 20
# Per table: its day column, its time column, and the ids made new.
TICK_TABLES = {
    "ed_attendances": ("arrival_date", "arrival_time", ["attendance_id"]),
    "adt_events": ("event_date", "event_time", ["event_id", "encounter_id"]),
    "theatre_events": ("event_date", "event_time", ["event_id", "case_id"]),
}

# Analysts' questions, one SQL text for bright and DuckDB.
ADHOC = {
    "adhoc_long_stays_by_ward": """
        SELECT org_code, ward, count(*) AS long_stays,
               round(avg(minutes_between(start_time, end_time)) / 1440.0, 3) AS mean_days
        FROM kpi.inpatient_stays
        WHERE end_time IS NOT NULL AND minutes_between(start_time, end_time) > 7 * 1440
        GROUP BY org_code, ward
        ORDER BY long_stays DESC, org_code, ward
        LIMIT 10""",
    "adhoc_ed_admitted_cohort": """
        WITH ed AS (
            SELECT org_code, patient_key, departure_time
            FROM kpi.ed_attendances_latest
            WHERE departure_time IS NOT NULL AND patient_key IS NOT NULL
        ),
        admitted AS (
            SELECT org_code, patient_key, specialty, event_time
            FROM adt_events
            WHERE event_type = 'A01' AND patient_key IS NOT NULL
        ),
        cohort AS (
            SELECT DISTINCT a.org_code, a.specialty, a.patient_key
            FROM admitted a
            JOIN ed e ON e.org_code = a.org_code AND e.patient_key = a.patient_key
             AND a.event_time >= e.departure_time - INTERVAL '2 hours'
             AND a.event_time <= e.departure_time + INTERVAL '12 hours'
        ),
        operated AS (
            SELECT org_code, specialty, count(DISTINCT case_id) AS cases
            FROM theatre_events
            WHERE milestone = 'in_theatre'
            GROUP BY org_code, specialty
        )
        SELECT c.org_code, c.specialty, count(*) AS patients_from_ed,
               max(o.cases) AS theatre_cases
        FROM cohort c
        LEFT JOIN operated o ON o.org_code = c.org_code AND o.specialty = c.specialty
        GROUP BY c.org_code, c.specialty
        ORDER BY c.org_code, c.specialty""",
    "adhoc_ed_time_by_hour": """
        SELECT local_hour(arrival_time) AS hour, count(*) AS attendances,
               median(minutes_between(arrival_time, departure_time)) AS median_min,
               max(minutes_between(arrival_time, departure_time)) AS longest_min
        FROM kpi.ed_attendances_latest
        WHERE departure_time IS NOT NULL
        GROUP BY local_hour(arrival_time)
        ORDER BY hour""",
}


# ---- engines -------------------------------------------------------------------------------


class Bright:
    name = "bright"

    def __init__(self, runner, lake, queries):
        self.command = [runner, str(lake), str(queries)]
        self.proc = None  # started by the first request
        self.peak = 0.0

    def start(self):
        self.proc = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, request):
        if self.proc is None:
            self.start()
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"bright-compare ended (exit {self.proc.wait()})")
        return json.loads(line)

    def fresh(self):
        answer = self.ask({"op": "session"})
        if "error" in answer:
            raise SystemExit(f"bright-compare: no session: {answer['error']}")
        return answer["ms"]

    def release(self):
        # The process ends once its group is done, so the engines that run next have the
        # machine's memory to themselves: after a new session in the same process had let go
        # of the last one's views, the process still held 7 GB (national scale).
        self.peak_rss()
        self.close()

    def run(self, query):
        answer = self.ask(query["bright"])
        if "error" in answer:
            raise RuntimeError(answer["error"])
        rows = [tuple(r) for r in answer["rows"]]
        if query["bright"]["op"] in ("kpi", "cached"):
            # date, [by…], value, numerator, denominator: the value is derived, not compared.
            rows = [r[:-3] + r[-2:] for r in rows]
        return answer["ms"], rows

    def peak_rss(self):
        """The peak resident memory of the processes so far (each group's, and this one's)."""
        if self.proc is not None:
            self.peak = max(self.peak, self.ask({"op": "memory"})["peak_rss"])
        return self.peak

    def close(self):
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait()
            self.proc = None


class DuckDB:
    name = "duckdb"

    def __init__(self, lake, queries, threads):
        # The same query memory as bright's pool (half the machine): at DuckDB's default,
        # 80%, it and bright's idle session together outgrew a 24 GiB machine at national
        # scale and the kernel killed the run.
        self.memory_limit = query_memory()
        self.manifest, self.params, self.con = kpi_duckdb.connect(
            lake, queries, threads, self.memory_limit)

    def release(self):
        pass

    def fresh(self):
        return 0.0

    def run(self, query):
        sql, bound = query["duckdb"]
        started = time.perf_counter()
        rows = self.con.execute(sql, bound).fetchall()
        return (time.perf_counter() - started) * 1e3, rows

    def close(self):
        self.con.close()


class Polars:
    name = "polars"

    def __init__(self, lake, queries, manifest, params):
        self.lake, self.queries, self.manifest, self.params = lake, queries, manifest, params

    def release(self):
        pass

    def fresh(self):
        # Lazy scans of every table; views and KPIs are planned lazily on top of them.
        started = time.perf_counter()
        ctx = pl.SQLContext()
        self.scans = {}
        for table in kpi_duckdb.TABLES:
            files = kpi_duckdb.table_files(self.lake, table)
            if files:
                self.scans[table] = pl.scan_parquet(files, hive_partitioning=True)
            elif (empty := kpi_duckdb.empty_table(self.lake, table)) is not None:
                self.scans[table] = pl.from_arrow(empty).lazy()
            else:
                continue
            ctx.register(table, self.scans[table])
        self.view_errors = {}
        for view in self.manifest.get("view", []):
            try:
                sql = polars_text(kpi_duckdb.view_text(
                    (self.queries / "views" / f"{view['name']}.sql").read_text()))
                ctx.register(f"kpi_{view['name']}", ctx.execute(sql))
            except Exception as e:  # noqa: BLE001 - Polars raises many kinds; all are reported
                self.view_errors[view["name"]] = one_line(e)
        self.ctx = ctx
        return (time.perf_counter() - started) * 1e3

    def run(self, query):
        spec = query.get("polars")
        if spec is None:
            raise NotImplementedError("no Polars form")
        started = time.perf_counter()
        if callable(spec):
            frame = spec(self.scans).collect()
        else:
            text = polars_text(spec)
            missing = [v for v in self.view_errors if f"kpi_{v}" in text]
            if missing:
                raise RuntimeError(f"view {missing[0]}: {self.view_errors[missing[0]]}")
            frame = self.ctx.execute(text).collect()
        ms = (time.perf_counter() - started) * 1e3
        return ms, frame.rows()

    def close(self):
        pass


# ---- the suite -----------------------------------------------------------------------------


def bind_text(sql, params, since):
    """`sql` with its placeholders written in as literals (for views, which cannot take
    parameters)."""
    sql = sql.replace("$since", f"DATE '{since.isoformat()}'")
    for name, value in params.items():
        sql = sql.replace(f"${name}", repr(value))
    return sql


# bright's four functions in Polars' SQL (which has neither macros nor `timezone()`); the
# trust's clock is Europe/London, as in `kpi_duckdb.MACROS`.
POLARS_FUNCTIONS = {
    "local_date": lambda t: f"CAST(({t}) AT TIME ZONE 'Europe/London' AS DATE)",
    "local_hour": lambda t: f"EXTRACT(hour FROM ({t}) AT TIME ZONE 'Europe/London')",
    "local_day_start": lambda d: f"(CAST(({d}) AS TIMESTAMP) AT TIME ZONE 'Europe/London')",
    "minutes_between": lambda a, b: f"((EXTRACT(epoch FROM ({b})) - EXTRACT(epoch FROM ({a}))) / 60.0)",
}


def polars_text(sql):
    """bright's SQL as Polars' SQL front end takes it: no schemas (`kpi.x` is `kpi_x`), and
    bright's functions written out."""
    sql = re.sub(r"--[^\n]*", "", sql).replace("kpi.", "kpi_")
    pattern = re.compile(r"\b(" + "|".join(POLARS_FUNCTIONS) + r")\s*\(")
    while (found := pattern.search(sql)):
        # The call's arguments, split at its own top-level commas.
        depth, args, start = 1, [], found.end()
        i = start
        while depth:
            c = sql[i]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            elif c == "," and depth == 1:
                args.append(sql[start:i])
                start = i + 1
            i += 1
        args.append(sql[start:i - 1])
        sql = sql[:found.start()] + POLARS_FUNCTIONS[found.group(1)](*args) + sql[i:]
    return sql


def one_line(error):
    text = str(error).strip().splitlines()
    return text[0][:160] if text else type(error).__name__


def month_rollup(kpi, by):
    rollup = "max" if kpi.get("rollup") == "max" else "sum"
    cols = ", ".join(by)
    return (
        f"SELECT CAST(date_trunc('month', period) AS DATE) AS month, {cols}, "
        f"{rollup}(numerator) AS numerator, sum(denominator) AS denominator "
        f"FROM kpi.{kpi['id']} GROUP BY CAST(date_trunc('month', period) AS DATE), {cols} "
        f"ORDER BY month, {cols}"
    )


def suite(queries, manifest, params, open_day, groups):
    out = []
    for group in groups:
        for kpi in manifest["kpi"]:
            if group in ("kpi_full", "kpi_open_day"):
                since = ALL_TIME if group == "kpi_full" else open_day
                sql, bound = kpi_duckdb.kpi_query(queries, kpi, params, since)
                start = bound["since"]
                out.append({
                    "group": group, "id": kpi["id"],
                    "bright": {"op": "kpi", "id": kpi["id"],
                               "since": None if group == "kpi_full" else start.isoformat(),
                               "by": []},
                    "duckdb": (sql, bound),
                    # Polars' SQL takes no parameters: the same text with them written in.
                    "polars": bind_text(sql, params, start),
                })
            elif group in ("kpi_site_month", "kpi_trust_month"):
                by = ["site"] if group == "kpi_site_month" else ["org_code"]
                if by == ["site"] and "site" not in kpi.get("breakdowns", []):
                    continue
                sql = month_rollup(kpi, by)
                # DuckDB and Polars read the KPI's own SQL in place of bright's `kpi.<id>`
                # view (a DuckDB view in schema `kpi` named like a table would shadow it).
                inline = sql.replace(
                    f"FROM kpi.{kpi['id']}",
                    f"FROM ({bind_text((queries / (kpi['id'] + '.sql')).read_text(), params, ALL_TIME)}\n) AS k",
                )
                out.append({
                    "group": group, "id": kpi["id"],
                    "bright": {"op": "sql", "sql": sql},
                    "duckdb": (inline, {}),
                    "polars": inline,
                })
        if group == "adhoc":
            for name, sql in ADHOC.items():
                out.append({
                    "group": group, "id": name,
                    "bright": {"op": "sql", "sql": sql},
                    "duckdb": (sql, {}),
                    "polars": POLARS_ADHOC.get(name, sql),
                })
    return out


def tables_read(sql, queries, seen=()):
    """The lake's tables `sql` reads, through the helper views (`kpi.<name>`) it reads."""
    read = {t for t in kpi_duckdb.TABLES if re.search(rf"\b{t}\b", sql)}
    for view in set(re.findall(r"\bkpi\.(\w+)", sql)) - set(seen):
        path = queries / "views" / f"{view}.sql"
        if path.exists():
            read |= tables_read(path.read_text(), queries, (*seen, view))
    return read


def _ed_time_by_hour(scans):
    """`adhoc_ed_time_by_hour` as a Polars user writes it: the latest version of each
    attendance (departed first, latest departure, then latest arrival), then minutes from
    arrival to departure by the trust's hour of arrival."""
    latest = (
        scans["ed_attendances"]
        .sort(["departure_time", "arrival_time"], descending=True, nulls_last=True)
        .group_by(["arrival_date", "org_code", "attendance_id"], maintain_order=True)
        .first()
    )
    minutes = (pl.col("departure_time") - pl.col("arrival_time")).dt.total_microseconds() / 60e6
    return (
        latest.filter(pl.col("departure_time").is_not_null())
        .with_columns(
            hour=pl.col("arrival_time").dt.convert_time_zone("Europe/London").dt.hour()
            .cast(pl.Int32),
            minutes=minutes,
        )
        .group_by("hour")
        .agg(attendances=pl.len(), median_min=pl.col("minutes").median(),
             longest_min=pl.col("minutes").max())
        .sort("hour")
    )


POLARS_ADHOC = {"adhoc_ed_time_by_hour": _ed_time_by_hour}


# ---- answers -------------------------------------------------------------------------------


def normal(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if hasattr(value, "is_finite"):  # Decimal
        return float(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", value):
        return value[:19]
    return value


def sort_key(row):
    return tuple(
        (v is None, f"{v:.6g}" if isinstance(v, float) else str(v)) for v in row
    )


def answers(rows):
    return sorted((tuple(normal(v) for v in row) for row in rows), key=sort_key)


def same(a, b):
    if len(a) != len(b):
        return f"{len(a)} rows against {len(b)}"
    for i, (x, y) in enumerate(zip(a, b)):
        if len(x) != len(y):
            return f"row {i}: {len(x)} columns against {len(y)}"
        for u, v in zip(x, y):
            if isinstance(u, float) and isinstance(v, float):
                if not math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-9):
                    return f"row {i}: {x} against {y}"
            elif u != v:
                return f"row {i}: {x} against {y}"
    return None


# ---- the tick ------------------------------------------------------------------------------


def land_new_rows(lake, tag, days=None):
    """Appends the open day's latest `TICK_ROWS` rows of each tick table again, their ids
    suffixed with `tag` (new attendances, encounters and cases), one commit per table;
    returns the rows added per table, and puts the day each table's rows are on in `days`."""
    added = {}
    for table, (day_column, time_column, ids) in TICK_TABLES.items():
        delta = DeltaTable(str(lake / table))
        last = pc.max(delta.to_pyarrow_table(columns=[day_column])[day_column]).as_py()
        rows = delta.to_pyarrow_table(filters=[(day_column, "=", last)])
        schema = rows.schema
        rows = rows.sort_by([(time_column, "descending")]).slice(0, TICK_ROWS)
        for column in ids:
            renamed = pc.binary_join_element_wise(rows[column], pa.scalar(tag), "")
            rows = rows.set_column(rows.schema.get_field_index(column), column, renamed)
        # The table's own partitioning applies (none in a lake bright made lately).
        write_deltalake(str(lake / table), rows.cast(schema), mode="append")
        added[table] = rows.num_rows
        if days is not None:
            days[table] = last
    return added


def cached_answers(bright, manifest):
    """Every KPI's series as `bright`'s KPI cache holds it (or why it could not be read), so
    that bright's process can end before DuckDB runs: at national scale the process still
    holds the views its cache was computed from, gigabytes DuckDB would need."""
    out = {}
    for kpi in manifest["kpi"]:
        try:
            out[kpi["id"]] = bright.run({"bright": {"op": "cached", "id": kpi["id"]}})[1]
        except RuntimeError as e:
            out[kpi["id"]] = e
    return out


def open_day_in_duckdb(cached, lake, queries, manifest, params, open_day, threads, what):
    """Every KPI for the open day recomputed by DuckDB over `lake`, each compared with the
    series bright's KPI cache held (`cached_answers`): DuckDB's milliseconds in all, and the
    disagreements."""
    duck = DuckDB(lake, queries, threads)
    total, disagreements = 0.0, []
    for kpi in manifest["kpi"]:
        sql, bound = kpi_duckdb.kpi_query(queries, kpi, params, open_day)
        ms, theirs = duck.run({"duckdb": (sql, bound)})
        total += ms
        ours = cached[kpi["id"]]
        if isinstance(ours, Exception):
            disagreements.append(f"{what} {kpi['id']}: {ours}")
            continue
        since = bound["since"].isoformat()
        ours = [r for r in ours if str(r[0]) >= since]
        diff = same(answers(ours), answers(theirs))
        if diff:
            disagreements.append(f"{what} {kpi['id']}: {diff}")
    duck.close()
    return total, disagreements


def open_day_files(table, day_column, open_day):
    """How many of the Delta table's files hold rows of `open_day` (the table's last day) or
    later only."""
    actions = pa.table(DeltaTable(str(table)).get_add_actions(flatten=True))
    firsts = actions.column(f"min.{day_column}").to_pylist()
    return sum(1 for first in firsts if first is not None and first >= open_day)


def day_of_ticks(runner, lake, queries, manifest, params, open_day, landings, threads):
    """The `day` group (see the module documentation): per way of serving, each tick's
    milliseconds in order, the compactions', the open day's files at the end, DuckDB's
    recomputation then, and any disagreement."""
    out = {"landings": landings, "ways": {}, "disagreements": []}
    for way in ("compacted", "not compacted"):
        scratch = Path(tempfile.mkdtemp(prefix="bright-day-"))
        try:
            copy = scratch / "lake"
            shutil.copytree(lake, copy)
            bright = Bright(runner, copy, queries)
            bright.fresh()
            warm = bright.ask({"op": "cache", "ids": [k["id"] for k in manifest["kpi"]]})
            if "error" in warm:
                raise SystemExit(f"bright-compare: cache: {warm['error']}")
            ticks, compactions, merged = [], [], 0
            for landing in range(landings):
                days = {}
                land_new_rows(copy, f"-day{landing + 1}", days)
                if way == "compacted":
                    # Each table's own last day, as a flush passes the days it wrote (a
                    # table's last day need not be the ED attendances' one).
                    started, landed = time.perf_counter(), 0
                    for table, day in days.items():
                        compacted = bright.ask({"op": "compact", "tables": [table],
                                                "days": [day.isoformat()]})
                        if "error" in compacted:
                            raise SystemExit(f"bright-compare: compact: {compacted['error']}")
                        landed += compacted["merged"]
                    compactions.append({"ms": (time.perf_counter() - started) * 1e3,
                                        "merged": landed})
                    merged += landed
                ticked = bright.ask({"op": "tick", "today": open_day.isoformat()})
                if "error" in ticked:
                    raise SystemExit(f"bright-compare: tick: {ticked['error']}")
                ticks.append(ticked["ms"])
            files = {table: open_day_files(copy / table, TICK_TABLES[table][0], days[table])
                     for table in TICK_TABLES}
            cached = cached_answers(bright, manifest)
            bright.release()
            out["peak"] = max(out.get("peak", 0.0), bright.peak)
            total, differ = open_day_in_duckdb(cached, copy, queries, manifest, params,
                                               open_day, threads, f"day ({way})")
            out["disagreements"] += differ
            out["ways"][way] = {"ticks": ticks, "compactions": compactions, "merged": merged,
                                "open_day_files": files, "duckdb": total}
            print(f"day {way}: ticks {ticks[0] / 1e3:.2f} s first, {ticks[-1] / 1e3:.2f} s "
                  f"last; {merged} files merged; DuckDB then {total / 1e3:.2f} s; the open "
                  f"day's files {files}", file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return out


def tick(runner, lake, queries, manifest, params, open_day, runs, threads):
    """The `tick` group (see the module documentation) on a copy of `lake`: per run, bright's
    tick and DuckDB's open-day recomputation in milliseconds, and any disagreement."""
    scratch = Path(tempfile.mkdtemp(prefix="bright-tick-"))
    try:
        copy = scratch / "lake"
        shutil.copytree(lake, copy)
        bright = Bright(runner, copy, queries)
        ids = [k["id"] for k in manifest["kpi"]]
        out = {"bright": [], "duckdb": [], "warm": [], "disagreements": []}
        for run in range(runs):
            bright.fresh()
            warm = bright.ask({"op": "cache", "ids": ids})
            if "error" in warm:
                raise SystemExit(f"bright-compare: cache: {warm['error']}")
            out["warm"].append(warm["ms"])
            out["added"] = land_new_rows(copy, f"-tick{run + 1}")
            ticked = bright.ask({"op": "tick", "today": open_day.isoformat()})
            if "error" in ticked:
                raise SystemExit(f"bright-compare: tick: {ticked['error']}")
            out["bright"].append(ticked["ms"])
            out["series"], out["full"] = ticked["series"], ticked["full"]
            out["recomputed"] = ticked["recomputed"]
            out["changed_tables"] = ticked["changed_tables"]
            out["steps"] = ticked.get("steps", [])
            cached = cached_answers(bright, manifest)
            bright.release()
            total, differ = open_day_in_duckdb(cached, copy, queries, manifest, params,
                                               open_day, threads, f"tick (run {run + 1})")
            out["disagreements"] += differ
            out["duckdb"].append(total)
            print(f"run {run + 1}/{runs} tick             bright {ticked['ms'] / 1e3:8.2f} s "
                  f"(warm-up {warm['ms'] / 1e3:.2f} s)  duckdb {total / 1e3:8.2f} s",
                  file=sys.stderr, flush=True)
        bright.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "bright": statistics.median(out["bright"]), "duckdb": statistics.median(out["duckdb"]),
        "warm": statistics.median(out["warm"]), "series": out["series"], "full": out["full"],
        "recomputed": out["recomputed"],
        "changed_tables": out["changed_tables"], "added": out["added"],
        "steps": out["steps"], "disagreements": out["disagreements"], "peak": bright.peak,
    }


# ---- the run -------------------------------------------------------------------------------


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", type=Path, required=True)
    ap.add_argument("--runner", required=True)
    ap.add_argument("--queries", type=Path, default=Path(__file__).parent.parent / "queries")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--landings", type=int, default=60,
                    help="landings in a row in the `day` group")
    ap.add_argument("--scale", default="trust")
    ap.add_argument("--groups", default=",".join(GROUPS))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2,
                    help="DuckDB's threads (bright and Polars use every core)")
    ap.add_argument("--results", type=Path, help="write the run's figures here (JSON)")
    ap.add_argument("--no-polars", action="store_true",
                    help="run bright and DuckDB only (at national scale Polars spent minutes "
                         "on its first query, on one core)")
    args = ap.parse_args()
    groups = [g for g in args.groups.split(",") if g]
    for g in groups:
        if g not in GROUPS:
            raise SystemExit(f"unknown group {g}; groups: {', '.join(GROUPS)}")

    duck = DuckDB(args.lake, args.queries, args.threads)
    bright = Bright(args.runner, args.lake, args.queries)
    polars = None if args.no_polars else Polars(args.lake, args.queries, duck.manifest,
                                                 duck.params)
    engines = [e for e in (bright, duck, polars) if e is not None]
    names = tuple(engine.name for engine in (Bright, DuckDB, Polars))
    open_day = duck.con.execute("SELECT max(arrival_date) FROM ed_attendances").fetchone()[0]
    queries = suite(args.queries, duck.manifest, duck.params, open_day, groups)
    # The tick runs on its own copy of the lake, after the query groups.
    ticking = "tick" in groups
    whole_day = "day" in groups
    groups = [g for g in groups if g != "day"]
    groups = [g for g in groups if g != "tick"]
    counts = {t: duck.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in kpi_duckdb.TABLES}
    tables = {t: counts[t] for t in ("ed_attendances", "adt_events", "theatre_events")}
    empty_tables = {t for t, n in counts.items() if n == 0}

    # Every engine has a place in the figures; one not run keeps them empty.
    times = {(q["group"], q["id"]): {name: [] for name in names} for q in queries}
    errors, rows = {}, {}
    totals = {(g, name): [] for g in groups for name in names}
    for run in range(args.runs):
        order = engines[run % len(engines):] + engines[:run % len(engines)]
        for group in groups:
            for engine in order:
                engine.fresh()
                total, complete = 0.0, True
                for q in (q for q in queries if q["group"] == group):
                    key = (q["group"], q["id"])
                    try:
                        ms, answer = engine.run(q)
                    except Exception as e:  # noqa: BLE001 - every engine's failure is reported
                        errors[(key, engine.name)] = one_line(e)
                        complete = False
                        print(f"  {q['id']:<32} {engine.name:<7} failed: {one_line(e)}",
                              file=sys.stderr, flush=True)
                        continue
                    times[key][engine.name].append(ms)
                    # Each figure is logged as it is taken, so a run the kernel stops (for
                    # memory, at national scale) still leaves what it measured.
                    print(f"  {q['id']:<32} {engine.name:<7} {ms:10.1f} ms",
                          file=sys.stderr, flush=True)
                    total += ms
                    if run == 0:
                        rows[(key, engine.name)] = answers(answer)
                if complete:
                    totals[(group, engine.name)].append(total)
                engine.release()
                print(f"run {run + 1}/{args.runs} {group:<16} {engine.name:<7} "
                      f"{total / 1e3:8.2f} s{'' if complete else ' (some queries failed)'}",
                      file=sys.stderr, flush=True)
    peak = bright.peak_rss()
    for e in engines:
        e.close()
    ticked = (tick(args.runner, args.lake, args.queries, duck.manifest, duck.params, open_day,
                   args.runs, args.threads) if ticking else None)
    day = (day_of_ticks(args.runner, args.lake, args.queries, duck.manifest, duck.params,
                        open_day, args.landings, args.threads) if whole_day else None)
    # The tick's and the day's processes count too (a run of the tick alone had none other).
    peak = max([peak] + [part["peak"] for part in (ticked, day) if part])

    # The answers: bright against each engine that ran the query, and the tick's.
    disagreements = list(ticked["disagreements"]) if ticked else []
    disagreements += day["disagreements"] if day else []
    for q in queries:
        key = (q["group"], q["id"])
        ours = rows.get((key, "bright"))
        if ours is None:
            disagreements.append(f"{key[0]} {key[1]}: bright failed: {errors.get((key, 'bright'))}")
            continue
        for other in ("duckdb", "polars"):
            theirs = rows.get((key, other))
            if theirs is None:
                continue
            diff = same(ours, theirs)
            if diff:
                disagreements.append(f"{key[0]} {key[1]}: bright and {other} differ: {diff}")
        if not ours and q["group"] in ("kpi_full", "adhoc"):
            # No rows is a failure, unless every table the query reads holds nothing in this
            # lake (a short simulation ends before a ledger month does).
            read = tables_read(q["duckdb"][0], args.queries)
            if read and read <= empty_tables:
                print(f"{key[0]} {key[1]}: no rows, as {', '.join(sorted(read))} holds none "
                      "in this lake (nothing was compared)", file=sys.stderr)
            else:
                disagreements.append(f"{key[0]} {key[1]}: no rows (nothing was compared)")

    result = {
        "scale": args.scale, "runs": args.runs, "lake": str(args.lake),
        "open_day": open_day.isoformat(), "bright_peak_rss": peak, "tables": tables,
        "engines": {
            "bright": "bright-compare (this commit)",
            "duckdb": duckdb.__version__, "polars": pl.__version__,
        },
        "machine": machine(), "threads": args.threads, "duckdb_memory_limit": duck.memory_limit,
        "not_run": ["polars"] if polars is None else [],
        "queries": [
            {
                "group": q["group"], "id": q["id"],
                **{f"{name}_ms": (statistics.median(times[(q['group'], q['id'])][name])
                                  if times[(q['group'], q['id'])][name] else None)
                   for name in names},
                **{f"{name}_error": errors.get(((q["group"], q["id"]), name))
                   for name in names if ((q["group"], q["id"]), name) in errors},
                "rows": len(rows.get(((q["group"], q["id"]), "bright"), [])),
            }
            for q in queries
        ],
        "groups": {
            g: {name: (statistics.median(totals[(g, name)]) if totals[(g, name)]
                       else None) for name in names}
            for g in groups
        },
        "disagreements": disagreements,
        "tick": ticked,
        "day": day,
    }
    for g in groups:
        qs = [x for x in result["queries"] if x["group"] == g]
        for other in ("duckdb", "polars"):
            ratios = [x["bright_ms"] / x[f"{other}_ms"] for x in qs
                      if x["bright_ms"] and x.get(f"{other}_ms")]
            result["groups"][g][f"geomean_vs_{other}"] = geomean(ratios)
            result["groups"][g][f"compared_vs_{other}"] = len(ratios)
            result["groups"][g][f"max_vs_{other}"] = max(ratios) if ratios else None
    if args.results:
        args.results.write_text(json.dumps(result, indent=1))
    for g, figures in result["groups"].items():
        print(f"{g:<16} bright {fmt_s(figures['bright'])}  duckdb {fmt_s(figures['duckdb'])}  "
              f"polars {fmt_s(figures['polars'])}  geomean bright/duckdb "
              f"{fmt_x(figures['geomean_vs_duckdb'])} (max {fmt_x(figures['max_vs_duckdb'])}, "
              f"{figures['compared_vs_duckdb']} queries)", file=sys.stderr)
    if ticked:
        print(f"tick             bright {fmt_s(ticked['bright'])}  duckdb {fmt_s(ticked['duckdb'])}"
              f"  ({ticked['recomputed']} of {ticked['series']} series recomputed, "
              f"{ticked['full']} in full)",
              file=sys.stderr)
    for d in disagreements:
        print(f"DISAGREE {d}", file=sys.stderr)
    sys.exit(1 if disagreements else 0)


def fmt_s(ms):
    return "—" if ms is None else f"{ms / 1e3:.2f} s"


def fmt_x(x):
    return "—" if x is None else f"{x:.2f}×"


def mem_total_kb():
    """The machine's memory in KiB (Linux's /proc/meminfo opens with MemTotal), or None."""
    try:
        return int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None


def query_memory():
    """Half the machine's memory and at least 4 GiB, as bright sizes its query pool."""
    kb = mem_total_kb()
    return max(kb * 1024 // 2 if kb else 0, 4 * 2**30)


def machine():
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    kb = mem_total_kb()
    mem = f"{kb / 2**20:.0f} GiB" if kb else "?"
    return f"{os.cpu_count()} cores ({cpu}), {mem}, {platform.system()} {platform.release()}"


if __name__ == "__main__":
    main()
