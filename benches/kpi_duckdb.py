"""The KPI catalogue's SQL run by DuckDB over a bright lake's Parquet files, for side-by-side
timing with `cargo bench --bench kpi` (benches/kpi.sh runs both).

    kpi_duckdb.py LAKE_DIR QUERIES_DIR RUNS
    kpi_duckdb.py LAKE_DIR QUERIES_DIR --results


Each table becomes a view over the Parquet files of its current Delta snapshot (the day
column is in each file, or in its folder's name in an older lake kept by day); bright's four
SQL functions become DuckDB macros with the same meaning (the trust's clock is
Europe/London); helper views are created in a `kpi` schema; each KPI query
runs with `$since` and its parameters bound, rolled up per period as bright's runner does.
Prints one JSON object per KPI and mode (median milliseconds), like the bright side; with
`--results`, instead, every KPI's full series (kpi, period, numerator, denominator), so a
test can check that the two engines agree.
"""

import json
import re
import statistics
import sys
import tempfile
import time
import tomllib
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

TABLES = [
    "adt_events", "ed_attendances", "theatre_sessions", "theatre_events", "beds",
    "workforce_shifts", "finance_ledger", "dq_issues",
]
EMPTY = {
    "dq_issues": "feed VARCHAR, received_at TIMESTAMPTZ, org_code VARCHAR, record_ref VARCHAR, "
    "reason VARCHAR, owner VARCHAR, received_date DATE",
}
MACROS = [
    "CREATE MACRO local_date(t) AS CAST(timezone('Europe/London', t) AS DATE)",
    "CREATE MACRO local_hour(t) AS hour(timezone('Europe/London', t))",
    "CREATE MACRO local_day_start(d) AS timezone('Europe/London', CAST(d AS TIMESTAMP))",
    "CREATE MACRO minutes_between(a, b) AS date_diff('microsecond', a, b) / 60e6",
]


def main():
    lake, queries = Path(sys.argv[1]), Path(sys.argv[2])
    results = sys.argv[3] == "--results"
    runs = 1 if results else int(sys.argv[3])
    manifest, params, con = connect(lake, queries)
    last = con.execute("SELECT max(arrival_date) FROM ed_attendances").fetchone()[0]
    for mode, since in [("full", date(1900, 1, 1)), ("open_day", last)]:
        totals = [0.0] * runs
        for kpi in manifest["kpi"]:
            query, bound = kpi_query(queries, kpi, params, since)
            if results:
                for period, numerator, denominator in con.execute(query, bound).fetchall():
                    print(json.dumps({"kpi": kpi["id"], "period": period.isoformat(),
                                      "numerator": numerator, "denominator": denominator}))
                continue
            times = []
            for run in range(runs):
                started = time.perf_counter()
                con.execute(query, bound).fetchall()
                ms = (time.perf_counter() - started) * 1e3
                times.append(ms)
                totals[run] += ms
            print(json.dumps({"engine": "duckdb", "kpi": kpi["id"], "mode": mode,
                              "ms": round(statistics.median(times), 1)}))
        if results:
            return
        print(json.dumps({"engine": "duckdb", "kpi": "(all)", "mode": mode,
                          "ms": round(statistics.median(totals), 1)}))


def table_files(lake, table):
    """The Parquet files of `table`'s current Delta snapshot: what bright reads. A glob of the
    folder would also take files a compaction replaced and the log's own checkpoints."""
    path = lake / table
    if not (path / "_delta_log").is_dir():
        return []
    return DeltaTable(str(path)).file_uris()


def empty_table(lake, table):
    """`table` with no rows, in the columns its Delta log declares; None without a log. A
    short simulation can leave a table with a log and no files (no ledger month ends in
    thirty days), and its KPIs must still run, over nothing."""
    path = lake / table
    if not (path / "_delta_log").is_dir():
        return None
    return pa.schema(DeltaTable(str(path)).schema()).empty_table()


def connect(lake, queries, threads=2, memory_limit=None):
    """A DuckDB connection over the lake with bright's functions and helper views; returns
    the catalogue's manifest, its parameter defaults and the connection. `memory_limit` in
    bytes (DuckDB's own default, 80% of the machine, when None)."""
    manifest = tomllib.loads((queries / "kpis.toml").read_text())
    params = {name: float(p["default"]) for name, p in manifest.get("params", {}).items()}
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    if memory_limit is not None:
        con.execute(f"SET memory_limit = '{memory_limit // 2**20}MiB'")
    # Spills go to the system's temporary folder: DuckDB's default is `.tmp` in the working
    # directory, which is the repository when the harness runs.
    spill = Path(tempfile.gettempdir()) / "bright-duckdb-spill"
    con.execute(f"SET temp_directory = '{spill}'")
    for table in TABLES:
        files = table_files(lake, table)
        if not files:
            empty = empty_table(lake, table)
            if empty is not None:
                con.register("empty_table", empty)
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM empty_table")
                con.unregister("empty_table")
                continue
            if table not in EMPTY:
                raise SystemExit(f"{table}: no Delta table in the lake's {table}")
            # Never created (the simulator writes no data-quality records).
            con.execute(f"CREATE TABLE {table} ({EMPTY[table]})")
            continue
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        con.execute(
            f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listed}], "
            "hive_partitioning = true)"
        )
    for macro in MACROS:
        con.execute(macro)
    con.execute("CREATE SCHEMA kpi")
    for view in manifest.get("view", []):
        sql = view_text((queries / "views" / f"{view['name']}.sql").read_text())
        con.execute(f"CREATE VIEW kpi.{view['name']} AS {sql}")
    return manifest, params, con


def view_text(sql):
    """A helper view's SQL as analysts query it in bright: `$since` (which a view reads to be
    kept up to date from a day) bound to the earliest day, so the view holds every day."""
    return sql.replace("$since", "DATE '1900-01-01'")


def kpi_query(queries, kpi, params, since):
    """KPI `kpi`'s series from `since` rolled up per period as bright's runner does, and the
    values to bind."""
    sql = (queries / f"{kpi['id']}.sql").read_text()
    rollup = "max" if kpi.get("rollup") == "max" else "sum"
    query = (
        f"SELECT period, {rollup}(numerator), sum(denominator) FROM ({sql}) AS k "
        "WHERE period >= $since GROUP BY period ORDER BY period"
    )
    used = set(re.findall(r"\$([a-z_][a-z0-9_]*)", query))
    bound = {name: value for name, value in params.items() if name in used}
    bound["since"] = period_start(kpi["grain"], since)
    return query, bound


def period_start(grain, day):
    if grain == "week":
        return date.fromordinal(day.toordinal() - day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day


if __name__ == "__main__":
    main()
