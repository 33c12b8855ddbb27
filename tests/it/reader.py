"""An independent reader of a bright lake: Delta Lake's Python binding resolves each table's
current files from the transaction log, DuckDB reads those Parquet files. Prints JSON with
every table's row count and one aggregate over ed_attendances."""
import json
import sys

import deltalake
import duckdb

TABLES = [
    "adt_events", "ed_attendances", "theatre_sessions", "theatre_events",
    "beds", "workforce_shifts", "finance_ledger", "dq_issues",
]


def files(lake, table):
    return deltalake.DeltaTable(f"{lake}/{table}").file_uris()


def main(lake):
    con = duckdb.connect()
    counts = {}
    for table in TABLES:
        uris = files(lake, table)
        counts[table] = (
            con.execute("SELECT count(*) FROM read_parquet(?)", [uris]).fetchone()[0]
            if uris else 0
        )
    ed = con.execute(
        """
        SELECT disposal, count(*) AS n,
               sum(CASE WHEN departure_time - arrival_time <= INTERVAL 4 HOUR THEN 1 ELSE 0 END) AS within_4h,
               count(DISTINCT patient_key) AS patients
        FROM read_parquet(?)
        WHERE disposal IS NOT NULL
        GROUP BY disposal ORDER BY disposal
        """,
        [files(lake, "ed_attendances")],
    ).fetchall()
    print(json.dumps({"counts": counts, "ed": [list(r) for r in ed]}))


if __name__ == "__main__":
    main(sys.argv[1])
