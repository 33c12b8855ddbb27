"""Analysts' own clients on bright's SQL doors, for the end-to-end tests: psycopg 3 on the
Postgres door, ADBC's Flight SQL driver on the Flight SQL door.

    sql_client.py pg|flight PORT USER PASSWORD < requests.json

Each request is {"sql": "...", "params": [...]} (on the Postgres door, params are a prepared
statement's values, which psycopg binds on the server) and is answered on one line of stdout
as JSON: {"columns": [[name, type name], ...], "rows": [[text, ...], ...]} or
{"error": message}. Values are written as text the way bright's CSV writes them, so the test
compares them with `bright sql` exactly: numbers with Python's shortest round-trip form,
dates ISO, NULL as "". A request {"types": true} also gives the Python types of the values.
A failed sign-in is answered {"error": message} once.
"""

import datetime
import json
import sys


def text(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return str(value)


def answer(rows, columns, types):
    answer = {"columns": columns, "rows": [[text(v) for v in row] for row in rows]}
    if types:
        answer["types"] = [
            [
                type(v).__name__
                + ("+tz" if isinstance(v, datetime.datetime) and v.tzinfo else "")
                for v in row
            ]
            for row in rows
        ]
    return answer


def postgres(port, user, password, requests):
    import psycopg

    try:
        conn = psycopg.connect(
            host="127.0.0.1",
            port=port,
            user=user,
            password=password,
            dbname="bright",
            sslmode="disable",
            autocommit=True,
        )
    except psycopg.OperationalError as e:
        yield {"error": str(e)}
        return
    with conn:
        for request in requests:
            try:
                with conn.cursor() as cur:
                    cur.execute(request["sql"], request.get("params"), prepare=True)
                    rows = cur.fetchall()
                    columns = [[c.name, c.type_display] for c in cur.description]
                    yield answer(rows, columns, request.get("types"))
            except psycopg.Error as e:
                yield {"error": str(e)}


def flight(port, user, password, requests):
    import adbc_driver_flightsql.dbapi as flight_sql

    try:
        conn = flight_sql.connect(
            f"grpc://127.0.0.1:{port}",
            db_kwargs={"username": user, "password": password},
            autocommit=True,
        )
        cur = conn.cursor()
    except flight_sql.Error as e:
        yield {"error": str(e)}
        return
    for request in requests:
        try:
            cur.execute(request["sql"])
            table = cur.fetch_arrow_table()
            rows = [tuple(r.values()) for r in table.to_pylist()]
            columns = [[f.name, str(f.type)] for f in table.schema]
            yield answer(rows, columns, request.get("types"))
        except flight_sql.Error as e:
            yield {"error": str(e)}
    cur.close()
    conn.close()


def main():
    door, port, user, password = sys.argv[1:5]
    requests = json.load(sys.stdin)
    client = {"pg": postgres, "flight": flight}[door]
    for line in client(port, user, password, requests):
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
