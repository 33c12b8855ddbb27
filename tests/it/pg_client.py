"""A Postgres client (psycopg 3) on bright's Postgres door, for the end-to-end tests.

    pg_client.py PORT USER PASSWORD < requests.json

Each request is {"sql": "...", "params": [...]} (params sent as a prepared statement's
values, which psycopg binds on the server) and is answered on one line of stdout as JSON:
{"columns": [[name, type name], ...], "rows": [[text, ...], ...]} or {"error": message}.
Values are written as text the way bright's CSV writes them, so the test compares them with
`bright sql` exactly: numbers with Python's shortest round-trip form, dates ISO, NULL as "".
A request {"types": true} asks for the Python types of the row instead (for the type test).
"""

import datetime
import json
import sys

import psycopg


def text(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return str(value)


def main():
    port, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
    requests = json.load(sys.stdin)
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
        print(json.dumps({"error": str(e)}))
        return
    with conn:
        for request in requests:
            try:
                with conn.cursor() as cur:
                    cur.execute(request["sql"], request.get("params"), prepare=True)
                    rows = cur.fetchall()
                    columns = [[c.name, c.type_display] for c in cur.description]
                    if request.get("types"):
                        answer = {
                            "columns": columns,
                            "types": [
                                [
                                    type(v).__name__
                                    + (
                                        "+tz"
                                        if isinstance(v, datetime.datetime) and v.tzinfo
                                        else ""
                                    )
                                    for v in row
                                ]
                                for row in rows
                            ],
                            "rows": [[text(v) for v in row] for row in rows],
                        }
                    else:
                        answer = {
                            "columns": columns,
                            "rows": [[text(v) for v in row] for row in rows],
                        }
            except psycopg.Error as e:
                answer = {"error": str(e)}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
