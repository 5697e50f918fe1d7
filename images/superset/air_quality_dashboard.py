#!/usr/bin/env python3
"""The air-quality dashboard in Superset, provisioned through its REST API, once the air-quality job's
tables.sql has registered its tables through Trino. Standard library only.

Where it runs:
  on a cluster, in the HapQuery's Superset pod (the image holds it as hap-air-quality-dashboard):
      kubectl exec deploy/NAME-superset -- hap-air-quality-dashboard
  on the loopback stack: scripts/sql-stack.sh dashboard

Idempotent: each object is looked up by its name first and updated in place, so a second run creates
nothing.

Reads from the environment:
  SUPERSET_URL             Superset (default http://127.0.0.1:8088, the pod's own server)
  SUPERSET_ADMIN_USER      its admin (default admin)
  SUPERSET_ADMIN_PASSWORD  the admin's password, or SUPERSET_ADMIN_PASSWORD_FILE, a file holding it
                           (the operator mounts the generated Secret's key there)
  TRINO_URL, TRINO_SCHEMA  optional: the Trino and schema the `trino` database connection must point
                           at. Unset (as in the pod), the connection the init Job registered is used
                           as it is, and the schema is the one in its URI.
  TRINO_USER               with TRINO_URL: the Trino user of that connection (default hap, the user
                           the init Job registers)
  TRINO_PASSWORD           with TRINO_URL: that user's password, or TRINO_PASSWORD_FILE, a file
                           holding it. With an https:// TRINO_URL the connection's settings tell the
                           trino dialect to use HTTPS, and Superset must trust Trino's certificate
                           (REQUESTS_CA_BUNDLE in its environment)

Provisions:
  with TRINO_URL, the database connection `trino` (only if missing, or if it points at another
  Trino, user or scheme; its password cannot be compared, Superset masks it); without it, the
  connection the init Job registered must exist, and is used as it is;
  datasets over hive.<schema>.air_aqi_daily and air_alerts;
  the chart "Daily AQI by sensor" (a time-series line: the day's AQI, one line per sensor);
  the chart "Pollution-alert episodes" (a table of episodes, newest first);
  the dashboard "Air quality" (slug air-quality) holding both.
Prints DASHBOARD_URL=… (under SUPERSET_URL) on stdout, progress on stderr; never a credential.
"""
import http.cookiejar
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

DATABASE = "trino"
DAILY_TABLE = "air_aqi_daily"
ALERTS_TABLE = "air_alerts"
DAILY_CHART = "Daily AQI by sensor"
ALERTS_CHART = "Pollution-alert episodes"
DASHBOARD_TITLE = "Air quality"
DASHBOARD_SLUG = "air-quality"
ROW_LIMIT = 10000
ALERT_COLUMNS = ["sensor_id", "start", "end", "hours", "peak_aqi", "peak_pm25"]


def say(*args):
    print("dashboard:", *args, file=sys.stderr)


class Failed(Exception):
    pass


class Superset:
    """A logged-in API session: a bearer token for the API, and the CSRF token (bound to this
    session's cookie) that Superset asks of every write."""

    def __init__(self, base, user, password):
        self.base = base.rstrip("/")
        self.http = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.headers = {"Accept": "application/json"}
        token = self.call("POST", "/api/v1/security/login", {
            "username": user, "password": password, "provider": "db", "refresh": True,
        }, what="login")["access_token"]
        self.headers["Authorization"] = "Bearer " + token
        self.headers["X-CSRFToken"] = self.call("GET", "/api/v1/security/csrf_token/")["result"]
        self.headers["Referer"] = self.base

    def call(self, method, path, body=None, params=None, what=None, allow_404=False):
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None
        headers = dict(self.headers)
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self.http.open(request, timeout=300) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            if e.code == 404 and allow_404:
                return None
            # The answer, never the request: the login request holds the password.
            detail = e.read().decode(errors="replace")[:600]
            raise Failed(f"{what or method + ' ' + path}: HTTP {e.code}: {detail}") from None
        except urllib.error.URLError as e:
            raise Failed(f"{what or method + ' ' + path}: {e.reason}; is Superset running there?") from None

    def find(self, resource, column, value):
        """Every object of `resource` whose `column` equals `value`."""
        q = json.dumps({"filters": [{"col": column, "opr": "eq", "value": value}], "page_size": 100})
        return self.call("GET", f"/api/v1/{resource}/", params={"q": q})["result"]


def trino_uri(trino_url, schema, user="hap", password=None):
    # As the init Job registers it: trino://USER:PASSWORD@HOST:PORT/hive/SCHEMA, the user and
    # password URL-quoted. This string holds the password: it goes to Superset only, never to a log.
    credentials = urllib.parse.quote(user, safe="")
    if password:
        credentials += ":" + urllib.parse.quote(password, safe="")
    return f"trino://{credentials}@{urllib.parse.urlparse(trino_url).netloc}/hive/{schema}"


def same_trino(a, b):
    # Superset masks the password of a URI it returns, so two connections are the same when they
    # name the same user, Trino and catalog/schema; the password is not compared.
    a, b = urllib.parse.urlparse(a or ""), urllib.parse.urlparse(b or "")
    return (a.scheme, a.username, a.hostname, a.port, a.path.rstrip("/"), a.query) == \
        (b.scheme, b.username, b.hostname, b.port, b.path.rstrip("/"), b.query)


def http_scheme(extra):
    """The scheme a connection's `extra` tells the trino dialect to use, None when it names none."""
    return ((extra.get("engine_params") or {}).get("connect_args") or {}).get("http_scheme")


def with_scheme(extra, scheme):
    """`extra` (a database's JSON settings) telling the trino dialect to use `scheme`: the URI cannot
    say it, and the dialect otherwise speaks HTTPS only on port 443 (and refuses to send a password
    over HTTP)."""
    extra = dict(extra)
    engine_params = dict(extra.get("engine_params") or {})
    connect_args = dict(engine_params.get("connect_args") or {})
    if scheme == "https":
        connect_args["http_scheme"] = "https"
    else:
        connect_args.pop("http_scheme", None)
    engine_params["connect_args"] = connect_args
    extra["engine_params"] = engine_params
    return extra


def ensure_database(s, uri, scheme="http"):
    found = s.find("database", "database_name", DATABASE)
    if not found:
        created = s.call("POST", "/api/v1/database/", {
            "database_name": DATABASE, "sqlalchemy_uri": uri, "expose_in_sqllab": True,
            "extra": json.dumps(with_scheme({}, scheme)),
        }, what=f"creating database {DATABASE}")
        say(f"database {DATABASE}: created, id {created['id']}")
        return created["id"]
    db = found[0]["id"]
    # The plain GET leaves the URI out; /connection has it (with any password masked).
    connection = s.call("GET", f"/api/v1/database/{db}/connection")["result"]
    current, extra = connection.get("sqlalchemy_uri"), json.loads(connection.get("extra") or "{}")
    if not same_trino(current, uri) or http_scheme(extra) != (scheme if scheme == "https" else None):
        s.call("PUT", f"/api/v1/database/{db}",
               {"sqlalchemy_uri": uri, "extra": json.dumps(with_scheme(extra, scheme))},
               what=f"updating database {DATABASE}")
        say(f"database {DATABASE}: id {db}, pointed at this stack's Trino")
    else:
        say(f"database {DATABASE}: id {db}, unchanged")
    return db


def ensure_dataset(s, db, schema, table, time_column=None):
    """A physical dataset over hive.<schema>.<table>. `time_column` must be temporal and the
    dataset's time column, since a time-series chart's x axis needs one: Superset detects the DATE
    partition column as temporal when it reads the table, and this makes sure."""
    existing = [d for d in s.find("dataset", "table_name", table)
                if d.get("schema") == schema and (d.get("database") or {}).get("id") == db]
    if existing:
        ds = existing[0]["id"]
        state = "exists"
    else:
        ds = s.call("POST", "/api/v1/dataset/", {"database": db, "schema": schema, "table_name": table},
                    what=f"creating dataset {schema}.{table} (has the job's tables.sql run through Trino?)")["id"]
        state = "created"
    if time_column:
        dataset = s.call("GET", f"/api/v1/dataset/{ds}")["result"]
        col = next((c for c in dataset["columns"] if c["column_name"] == time_column), None)
        if col is None:
            raise Failed(f"dataset {schema}.{table} has no column {time_column}")
        if not (col.get("is_dttm") and dataset.get("main_dttm_col") == time_column):
            # A PUT of columns replaces the whole list, so every column goes back with its id.
            keep = ("id", "column_name", "type", "verbose_name", "description", "expression",
                    "filterable", "groupby", "is_active", "is_dttm", "python_date_format")
            columns = []
            for c in dataset["columns"]:
                c = {k: c[k] for k in keep if c.get(k) is not None}
                if c["column_name"] == time_column:
                    c["is_dttm"] = True
                columns.append(c)
            s.call("PUT", f"/api/v1/dataset/{ds}", {"columns": columns, "main_dttm_col": time_column},
                   what=f"making {table}.{time_column} the time column")
            state += f", {time_column} made its time column"
    say(f"dataset {schema}.{table}: id {ds}, {state}")
    return ds


def no_time_filter(column):
    # What the chart editor adds by default: a time-range filter on the time column, set to none.
    return {"clause": "WHERE", "comparator": "No filter", "expressionType": "SIMPLE",
            "operator": "TEMPORAL_RANGE", "subject": column}


def daily_chart(ds):
    """The day's AQI per sensor as lines over the days. params are the chart editor's form data;
    query_context is what the editor would save with them (the chart data endpoint runs it): the
    query grouped by day and sensor, then pivoted to one column per sensor."""
    metric = {"expressionType": "SIMPLE", "column": {"column_name": "aqi"}, "aggregate": "MAX", "label": "AQI"}
    params = {
        "datasource": f"{ds}__table", "viz_type": "echarts_timeseries_line",
        "x_axis": "date", "time_grain_sqla": "P1D", "metrics": [metric], "groupby": ["sensor_id"],
        "adhoc_filters": [no_time_filter("date")], "row_limit": ROW_LIMIT, "order_desc": True,
        "show_empty_columns": True, "truncate_metric": True, "comparison_type": "values",
        "x_axis_sort_asc": True, "x_axis_sort_series": "name", "x_axis_sort_series_ascending": True,
        "x_axis_time_format": "smart_date", "tooltipTimeFormat": "smart_date", "rich_tooltip": True,
        "y_axis_format": "SMART_NUMBER", "y_axis_title": "AQI", "y_axis_title_margin": 30,
        "y_axis_title_position": "Left", "y_axis_bounds": [0, None], "truncateYAxis": False,
        "show_legend": True, "legendType": "scroll", "legendOrientation": "right",
        "markerEnabled": True, "markerSize": 6, "color_scheme": "supersetColors",
        "annotation_layers": [], "extra_form_data": {}, "dashboards": [],
    }
    query = {
        "filters": [{"col": "date", "op": "TEMPORAL_RANGE", "val": "No filter"}],
        "extras": {"time_grain_sqla": "P1D", "having": "", "where": ""},
        "applied_time_extras": {},
        "columns": [{"columnType": "BASE_AXIS", "sqlExpression": "date", "label": "date",
                     "expressionType": "SQL", "timeGrain": "P1D"}, "sensor_id"],
        "metrics": [metric], "orderby": [[metric, False]],
        "annotation_layers": [], "row_limit": ROW_LIMIT, "series_columns": ["sensor_id"], "series_limit": 0,
        "order_desc": True, "url_params": {}, "custom_params": {}, "custom_form_data": {}, "time_offsets": [],
        "post_processing": [
            {"operation": "pivot", "options": {"index": ["date"], "columns": ["sensor_id"],
                                               "aggregates": {"AQI": {"operator": "mean"}},
                                               "drop_missing_columns": False}},
            {"operation": "rename", "options": {"columns": {"AQI": None}, "level": 0, "inplace": True}},
            {"operation": "flatten"},
        ],
    }
    return "echarts_timeseries_line", params, query


def alerts_chart(ds):
    """Every pollution-alert episode, newest first, as raw rows."""
    order = [["start", False], ["sensor_id", True]]
    params = {
        "datasource": f"{ds}__table", "viz_type": "table", "query_mode": "raw",
        "all_columns": ALERT_COLUMNS, "order_by_cols": [json.dumps(o) for o in order],
        "adhoc_filters": [no_time_filter("start")], "row_limit": ROW_LIMIT, "server_pagination": False,
        "table_timestamp_format": "%Y-%m-%d %H:%M", "include_search": True, "show_cell_bars": True,
        "color_pn": True, "order_desc": True, "extra_form_data": {}, "dashboards": [],
    }
    query = {
        "filters": [{"col": "start", "op": "TEMPORAL_RANGE", "val": "No filter"}],
        "extras": {"having": "", "where": ""}, "applied_time_extras": {},
        # No metrics key at all, as the editor sends in raw mode: an empty list would GROUP BY every column.
        "columns": ALERT_COLUMNS, "orderby": order,
        "annotation_layers": [], "row_limit": ROW_LIMIT, "series_limit": 0, "order_desc": True,
        "url_params": {}, "custom_params": {}, "custom_form_data": {}, "post_processing": [], "time_offsets": [],
    }
    return "table", params, query


def ensure_chart(s, name, ds, dashboard, spec):
    viz_type, params, query = spec
    params["dashboards"] = [dashboard]
    body = {
        "viz_type": viz_type, "datasource_id": ds, "datasource_type": "table", "dashboards": [dashboard],
        "params": json.dumps(params),
        "query_context": json.dumps({
            "datasource": {"id": ds, "type": "table"}, "force": False, "queries": [query],
            "form_data": params, "result_format": "json", "result_type": "full",
        }),
    }
    found = s.find("chart", "slice_name", name)
    if found:
        chart = found[0]["id"]
        s.call("PUT", f"/api/v1/chart/{chart}", body, what=f"updating chart {name!r}")
        say(f"chart {name!r}: id {chart}, updated")
    else:
        chart = s.call("POST", "/api/v1/chart/", {"slice_name": name, **body}, what=f"creating chart {name!r}")["id"]
        say(f"chart {name!r}: id {chart}, created")
    return chart


def layout(charts):
    """position_json: the dashboard's grid, one full-width row per chart (width in grid columns of
    12, height in grid units of 8 px)."""
    pos = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "parents": ["ROOT_ID"], "children": []},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": DASHBOARD_TITLE}},
    }
    for key, (chart, name, height) in charts.items():
        row, cell = f"ROW-{key}", f"CHART-{key}"
        pos["GRID_ID"]["children"].append(row)
        pos[row] = {"type": "ROW", "id": row, "parents": ["ROOT_ID", "GRID_ID"], "children": [cell],
                    "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        pos[cell] = {"type": "CHART", "id": cell, "parents": ["ROOT_ID", "GRID_ID", row], "children": [],
                     "meta": {"chartId": chart, "sliceName": name, "width": 12, "height": height}}
    return pos


def admin_password(env):
    if env.get("SUPERSET_ADMIN_PASSWORD"):
        return env["SUPERSET_ADMIN_PASSWORD"]
    path = env.get("SUPERSET_ADMIN_PASSWORD_FILE")
    if not path:
        raise Failed("set SUPERSET_ADMIN_PASSWORD or SUPERSET_ADMIN_PASSWORD_FILE")
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        raise Failed(f"reading the admin's password from {path}: {e.strerror}") from None


def trino_password(env):
    if env.get("TRINO_PASSWORD"):
        return env["TRINO_PASSWORD"]
    path = env.get("TRINO_PASSWORD_FILE")
    if not path:
        return None
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        raise Failed(f"reading Trino's password from {path}: {e.strerror}") from None


def registered_database(s):
    """The `trino` connection the init Job registered, and the schema at the end of its URI
    (trino://user@host:port/hive/SCHEMA)."""
    found = s.find("database", "database_name", DATABASE)
    if not found:
        raise Failed(f"Superset has no database {DATABASE!r}: has the HapQuery's init Job succeeded?")
    db = found[0]["id"]
    uri = s.call("GET", f"/api/v1/database/{db}/connection")["result"].get("sqlalchemy_uri") or ""
    parts = urllib.parse.urlparse(uri).path.strip("/").split("/")
    if len(parts) != 2 or not parts[1]:
        raise Failed(f"database {DATABASE!r} names no catalog and schema: {uri!r}")
    say(f"database {DATABASE}: id {db}, as registered")
    return db, parts[1]


def main():
    env = os.environ
    s = Superset(env.get("SUPERSET_URL", "http://127.0.0.1:8088"), env.get("SUPERSET_ADMIN_USER", "admin"),
                 admin_password(env))
    if env.get("TRINO_URL"):
        schema = env.get("TRINO_SCHEMA")
        if not schema:
            raise Failed("TRINO_URL is set but TRINO_SCHEMA is not: name the schema the tables are in")
        db = ensure_database(s, trino_uri(env["TRINO_URL"], schema, env.get("TRINO_USER") or "hap",
                                          trino_password(env)), urllib.parse.urlparse(env["TRINO_URL"]).scheme)
    else:
        db, schema = registered_database(s)
    daily = ensure_dataset(s, db, schema, DAILY_TABLE, time_column="date")
    alerts = ensure_dataset(s, db, schema, ALERTS_TABLE)

    dash = s.call("GET", f"/api/v1/dashboard/{DASHBOARD_SLUG}", allow_404=True)
    if dash:
        dashboard = dash["result"]["id"]
        say(f"dashboard {DASHBOARD_TITLE!r}: id {dashboard}, exists")
    else:
        dashboard = s.call("POST", "/api/v1/dashboard/", {
            "dashboard_title": DASHBOARD_TITLE, "slug": DASHBOARD_SLUG, "published": True,
        }, what="creating the dashboard")["id"]
        say(f"dashboard {DASHBOARD_TITLE!r}: id {dashboard}, created")

    charts = {
        "daily-aqi": (ensure_chart(s, DAILY_CHART, daily, dashboard, daily_chart(daily)), DAILY_CHART, 60),
        "alerts": (ensure_chart(s, ALERTS_CHART, alerts, dashboard, alerts_chart(alerts)), ALERTS_CHART, 50),
    }
    positions = layout(charts)
    # json_metadata's positions is what ties the charts to the dashboard on an update (Superset
    # rebuilds the dashboard's chart list from it); position_json is the same grid.
    s.call("PUT", f"/api/v1/dashboard/{dashboard}", {
        "dashboard_title": DASHBOARD_TITLE, "slug": DASHBOARD_SLUG, "published": True,
        "position_json": json.dumps(positions),
        "json_metadata": json.dumps({
            "positions": positions, "color_scheme": "supersetColors", "refresh_frequency": 0,
            "timed_refresh_immune_slices": [], "expanded_slices": {}, "label_colors": {},
            "cross_filters_enabled": True, "native_filter_configuration": [],
        }),
    }, what="laying out the dashboard")
    say(f"dashboard {DASHBOARD_TITLE!r}: both charts laid out")
    print(f"DASHBOARD_URL={s.base}/superset/dashboard/{DASHBOARD_SLUG}/")


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        say(f"failed: {e}")
        sys.exit(1)
