"""Checks and measurements for testing/sql-stack/test.sh, run with the stack's virtualenv.

Every subcommand reads the connection lines of `scripts/sql-stack.sh up` from the environment
(TRINO_URL, TRINO_USER, TRINO_PASSWORD_FILE, TRINO_CA, SUPERSET_URL, S3_ENDPOINT, S3_BUCKET, AWS_*,
TRINO_CATALOG, TRINO_SCHEMA), prints what it found on stderr and exits non-zero when a check fails.

  rows PREFIX         the daily-AQI rows through Trino equal the job's Parquet files read over S3
  superset COUNT      Superset runs a chart's query and a SQL Lab query through Trino; both give COUNT
  latency DIR         the daily-AQI query through Trino and through DuckDB over the same files in DIR
  dashboard PART      the air-quality dashboard of `scripts/sql-stack.sh dashboard`: PART is
                      layout (the dashboard holds both charts), unique (one of each object),
                      data (each chart's data endpoint returns rows through Trino) or
                      daily (the daily-AQI chart's rows equal the same query run through Trino)
"""
import json
import os
import sys
import time
import uuid
from datetime import date, datetime, timezone
from urllib.parse import urlparse

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
# The provisioning program the Superset image ships: its names and its API session.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "images", "superset"))
import air_quality_dashboard as dash  # noqa: E402

# The daily-AQI rows: one per sensor and day, in a fixed order.
DAILY_AQI_COLUMNS = ["sensor_id", "date", "pm25_avg", "pm10_avg", "aqi_pm25", "aqi_pm10", "aqi", "category", "dominant"]
DAILY_AQI_SQL = (
    "SELECT " + ", ".join(f'"{c}"' for c in DAILY_AQI_COLUMNS) +
    ' FROM air_aqi_daily ORDER BY "date", "sensor_id"'
)


def say(*args):
    print("checks:", *args, file=sys.stderr)


def trino_connection():
    """The Python client as any client of the stack connects: HTTPS as TRINO_USER with the password
    from TRINO_PASSWORD_FILE, trusting only TRINO_CA."""
    import requests
    import trino

    url = urlparse(os.environ["TRINO_URL"])
    with open(os.environ["TRINO_PASSWORD_FILE"]) as f:
        password = f.read().strip()
    # requests lets REQUESTS_CA_BUNDLE from the environment override a session's own CA bundle;
    # this session ignores the environment, so TRINO_CA is what Trino's certificate is checked against.
    http = requests.Session()
    http.trust_env = False
    http.verify = os.environ["TRINO_CA"]
    return trino.dbapi.connect(
        host=url.hostname, port=url.port, user=os.environ["TRINO_USER"], http_scheme=url.scheme,
        auth=trino.auth.BasicAuthentication(os.environ["TRINO_USER"], password), http_session=http,
        catalog=os.environ["TRINO_CATALOG"], schema=os.environ["TRINO_SCHEMA"],
    )


def trino_rows(sql):
    cur = trino_connection().cursor()
    cur.execute(sql)
    return cur.fetchall()


def job_daily_rows(prefix):
    """The job's aqi_daily table read straight from the bucket over S3, date from the path."""
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    endpoint = urlparse(os.environ["S3_ENDPOINT"])
    s3 = pafs.S3FileSystem(
        access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        endpoint_override=endpoint.netloc, scheme=endpoint.scheme, region="us-east-1",
        force_virtual_addressing=False,
    )
    base = f"{os.environ['S3_BUCKET']}/{prefix.strip('/')}/aqi_daily"
    table = ds.dataset(base, filesystem=s3, format="parquet", partitioning="hive",
                       exclude_invalid_files=False, ignore_prefixes=["_"]).to_table()
    rows = []
    for r in table.to_pylist():
        r["date"] = str(r["date"])
        rows.append(tuple(r[c] for c in DAILY_AQI_COLUMNS))
    return sorted(rows, key=lambda r: (r[1], r[0]))


def normalise(rows):
    # Trino returns the date partition as text and doubles as floats, like the Parquet read.
    return [tuple(str(v) if i == 1 else v for i, v in enumerate(r)) for r in rows]


def cmd_rows(prefix):
    got = normalise(trino_rows(DAILY_AQI_SQL))
    want = job_daily_rows(prefix)
    say(f"Trino returned {len(got)} daily-AQI rows; the job's Parquet files hold {len(want)}")
    if not want:
        say("the job wrote no daily-AQI rows")
        return 1
    if got != want:
        for g, w in zip(got, want):
            if g != w:
                say(f"first difference: Trino {g} vs Parquet {w}")
                break
        return 1
    say(f"all {len(got)} rows equal, e.g. {got[0]}")
    print(len(got))
    return 0


class Superset:
    def __init__(self):
        import requests

        self.base = os.environ["SUPERSET_URL"]
        self.http = requests.Session()
        r = self.http.post(f"{self.base}/api/v1/security/login", json={
            "username": os.environ["SUPERSET_ADMIN_USER"], "password": os.environ["SUPERSET_ADMIN_PASSWORD"],
            "provider": "db", "refresh": True,
        }, timeout=60)
        r.raise_for_status()
        self.http.headers["Authorization"] = "Bearer " + r.json()["access_token"]
        # Writes need the CSRF token of this session, as the web UI sends it.
        r = self.http.get(f"{self.base}/api/v1/security/csrf_token/", timeout=60)
        r.raise_for_status()
        self.http.headers["X-CSRFToken"] = r.json()["result"]
        self.http.headers["Referer"] = self.base

    def call(self, method, path, **kw):
        r = self.http.request(method, f"{self.base}{path}", timeout=300, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r.json()

    def database_id(self, name):
        q = json.dumps({"filters": [{"col": "database_name", "opr": "eq", "value": name}]})
        found = self.call("GET", "/api/v1/database/", params={"q": q})["result"]
        if not found:
            raise RuntimeError(f"no database named {name!r} in Superset")
        return found[0]["id"]

    def dataset_id(self, database, schema, table):
        q = json.dumps({"filters": [{"col": "table_name", "opr": "eq", "value": table}]})
        for d in self.call("GET", "/api/v1/dataset/", params={"q": q})["result"]:
            if d["schema"] == schema:
                return d["id"]
        return self.call("POST", "/api/v1/dataset/", json={
            "database": database, "schema": schema, "table_name": table})["id"]


def cmd_superset(expected):
    expected = int(expected)
    schema = os.environ["TRINO_SCHEMA"]
    s = Superset()
    db = s.database_id("trino")
    failures = 0

    # A chart's query: daily-AQI rows counted by category, as a bar chart would ask for them.
    dataset = s.dataset_id(db, schema, "air_aqi_daily")
    result = s.call("POST", "/api/v1/chart/data", json={
        "datasource": {"id": dataset, "type": "table"},
        "queries": [{"columns": ["category"], "metrics": ["count"], "orderby": [["count", False]],
                     "row_limit": 100}],
        "result_format": "json", "result_type": "full",
    })["result"][0]
    by_category = {r["category"]: r["count"] for r in result["data"]}
    total = sum(by_category.values())
    say(f"chart query through Superset: {by_category} (total {total}); query: {result['query'].split()[0]} …")
    if total != expected:
        say(f"chart total {total} != {expected}")
        failures += 1

    # The same count from SQL Lab.
    result = s.call("POST", "/api/v1/sqllab/execute/", json={
        "database_id": db, "schema": schema, "runAsync": False, "client_id": uuid.uuid4().hex[:10],
        "sql": "SELECT count(*) AS n FROM air_aqi_daily",
    })
    n = result["data"][0]["n"]
    say(f"SQL Lab through Superset: {n} rows")
    if n != expected:
        say(f"SQL Lab count {n} != {expected}")
        failures += 1
    return 1 if failures else 0


def cmd_latency(local_dir):
    import duckdb

    # Trino: the first run includes metadata and split loading; the second is the steady state.
    timings = []
    for _ in range(2):
        t = time.perf_counter()
        n_trino = len(trino_rows(DAILY_AQI_SQL))
        timings.append(time.perf_counter() - t)
    # DuckDB, in process, over the same Parquet files (the S3 server's own directory).
    sql = DAILY_AQI_SQL.replace(
        "FROM air_aqi_daily",
        f"FROM read_parquet('{local_dir}/aqi_daily/*/*.parquet', hive_partitioning = true)")
    con = duckdb.connect()
    t = time.perf_counter()
    n_duck = len(con.execute(sql).fetchall())
    duck = time.perf_counter() - t
    say(f"rows: Trino {n_trino}, DuckDB {n_duck}")
    print(f"trino_first_s={timings[0]:.3f} trino_s={timings[1]:.3f} duckdb_s={duck:.3f} "
          f"ratio={timings[1] / duck:.1f}")
    return 0 if n_trino == n_duck else 1


def provisioned_charts(s):
    """The dashboard's charts by name, as Superset lists them."""
    charts = s.call("GET", f"/api/v1/dashboard/{dash.DASHBOARD_SLUG}/charts")["result"]
    return {c["slice_name"]: c["id"] for c in charts}


def chart_data(s, chart):
    """The chart's saved query run by Superset: GET /api/v1/chart/<id>/data/."""
    return s.call("GET", f"/api/v1/chart/{chart}/data/")["result"][0]


def day_of(value):
    # A time column comes back from Superset as epoch milliseconds, from Trino as a datetime.
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, timezone.utc).date().isoformat()
    if isinstance(value, (datetime, date)):
        return value.isoformat()[:10]
    return str(value)[:10]


def check_layout(s):
    d = s.call("GET", f"/api/v1/dashboard/{dash.DASHBOARD_SLUG}")["result"]
    charts = provisioned_charts(s)
    positions = json.loads(d["position_json"] or "{}")
    placed = {v["meta"]["chartId"] for v in positions.values() if isinstance(v, dict) and v.get("type") == "CHART"}
    say(f"dashboard {d['dashboard_title']!r} (id {d['id']}, published {d['published']}): charts {charts}, "
        f"chart ids in its layout {sorted(placed)}")
    return (d["dashboard_title"] == dash.DASHBOARD_TITLE and d["published"]
            and set(charts) == {dash.DAILY_CHART, dash.ALERTS_CHART} and placed == set(charts.values()))


def check_unique(s):
    schema = os.environ["TRINO_SCHEMA"]
    counts = {
        "dashboard": len(s.call("GET", "/api/v1/dashboard/", params={"q": json.dumps(
            {"filters": [{"col": "dashboard_title", "opr": "eq", "value": dash.DASHBOARD_TITLE}]})})["result"]),
        "database": len(s.find("database", "database_name", dash.DATABASE)),
    }
    for name in (dash.DAILY_CHART, dash.ALERTS_CHART):
        counts[name] = len(s.find("chart", "slice_name", name))
    for table in (dash.DAILY_TABLE, dash.ALERTS_TABLE):
        counts[table] = len([d for d in s.find("dataset", "table_name", table) if d["schema"] == schema])
    say(f"objects: {counts}")
    return all(n == 1 for n in counts.values())


def check_data(s):
    ok = True
    for name, chart in sorted(provisioned_charts(s).items()):
        result = chart_data(s, chart)
        say(f"chart {name!r}: {len(result['data'])} rows, columns {result['colnames'][:4]}…; "
            f"query: {' '.join(result['query'].split())[:160]}")
        ok &= len(result["data"]) > 0 and "air_" in result["query"]
    alerts = chart_data(s, provisioned_charts(s)[dash.ALERTS_CHART])
    n = trino_rows("SELECT count(*) FROM air_alerts")[0][0]
    say(f"alert episodes: chart {len(alerts['data'])}, Trino {n}")
    return ok and len(alerts["data"]) == min(n, dash.ROW_LIMIT) and alerts["colnames"] == dash.ALERT_COLUMNS


def check_daily(s):
    result = chart_data(s, provisioned_charts(s)[dash.DAILY_CHART])
    # The chart's rows: one per day, one column per sensor (the pivot the line chart draws).
    chart = {}
    for row in result["data"]:
        day = day_of(row["date"])
        for col, v in row.items():
            if col != "date" and v is not None:
                chart[(day, col.removeprefix("AQI, "))] = float(v)
    # The SQL Superset ran, run through Trino directly, pivoted by hand; and the table's own rows.
    direct = {(day_of(d), sensor): float(aqi) for d, sensor, aqi in trino_rows(result["query"].strip().rstrip(";"))}
    table = {(day_of(d), sensor): float(aqi) for d, sensor, aqi in trino_rows('SELECT "date", "sensor_id", "aqi" FROM air_aqi_daily')}
    say(f"daily AQI values: chart {len(chart)} over {len(result['data'])} days, "
        f"its query through Trino {len(direct)}, the table {len(table)}")
    for k in sorted(set(chart) | set(table)):
        if chart.get(k) != direct.get(k) or chart.get(k) != table.get(k):
            say(f"first difference at {k}: chart {chart.get(k)}, query through Trino {direct.get(k)}, table {table.get(k)}")
            return False
    return len(chart) > 0


def cmd_dashboard(part):
    check = {"layout": check_layout, "unique": check_unique, "data": check_data, "daily": check_daily}[part]
    s = dash.Superset(os.environ["SUPERSET_URL"], os.environ["SUPERSET_ADMIN_USER"], os.environ["SUPERSET_ADMIN_PASSWORD"])
    return 0 if check(s) else 1


if __name__ == "__main__":
    commands = {"rows": cmd_rows, "superset": cmd_superset, "latency": cmd_latency, "dashboard": cmd_dashboard}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(commands[sys.argv[1]](*sys.argv[2:]))
    except Exception as e:  # a failed check, reported as one
        say(f"{sys.argv[1]}: {type(e).__name__}: {e}")
        sys.exit(1)
