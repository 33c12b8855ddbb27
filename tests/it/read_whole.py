"""Reads every table of a bright lake whole, as other tools would: Delta Lake's Python binding
loads each table (partition values included) and every value is rendered as text; DuckDB reads
every row of the same Parquet files, each row rendered as text. Prints each table's row count
and the ledger's amounts as both read them."""
import json
import sys

import deltalake
import duckdb
import pyarrow as pa
import pyarrow.compute as pc

TABLES = [
    "adt_events", "ed_attendances", "theatre_sessions", "theatre_events",
    "beds", "workforce_shifts", "finance_ledger", "dq_issues",
]


def as_text(table):
    """Every column of a pyarrow table as text: each value is read and rendered."""
    return {name: pc.cast(table[name], pa.string()).to_pylist() for name in table.column_names}


def main(lake):
    con = duckdb.connect()
    counts = {}
    for table in TABLES:
        delta = deltalake.DeltaTable(f"{lake}/{table}")
        rows = delta.to_pyarrow_table()
        as_text(rows)
        uris = delta.file_uris()
        duck = (
            con.execute("SELECT CAST(t AS VARCHAR) FROM read_parquet(?) t", [uris]).fetchall()
            if uris else []
        )
        if len(duck) != rows.num_rows:
            raise SystemExit(f"{table}: deltalake read {rows.num_rows} rows, DuckDB {len(duck)}")
        counts[table] = rows.num_rows
    delta = deltalake.DeltaTable(f"{lake}/finance_ledger")
    ledger = as_text(delta.to_pyarrow_table())
    amounts = sorted(set(ledger["budget"]) | set(ledger["actual"]))
    duck = con.execute(
        "SELECT CAST(budget AS VARCHAR), CAST(actual AS VARCHAR) FROM read_parquet(?)",
        [delta.file_uris()],
    ).fetchall()
    if sorted({v for row in duck for v in row}) != amounts:
        raise SystemExit(f"finance_ledger: DuckDB read {duck}, deltalake {amounts}")
    counts["ledger_amounts"] = amounts
    print(json.dumps(counts))


if __name__ == "__main__":
    main(sys.argv[1])
