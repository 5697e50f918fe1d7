#!/usr/bin/env python3
"""The air-detection job in DuckDB, for the benchmark.

Implements the specification of hap-air-detection (docs/air-detection.md)
in DuckDB SQL: the same parsing, cleaning rules and their order, duplicate
choice, hourly means, daily AQI (EPA-454/B-24-002 breakpoints, truncation,
rounding) and episodes, written as date-partitioned Parquet plus
_summary.json.

Usage: duckdb_job.py --input DIR --output DIR [--threads N] [--format csv|parquet]

Parquet input is the generator's typed files: a value that was not a number or
a time is already null there, and the same rules then drop it.
"""

import argparse
import json
import os
import time

import duckdb

# Every column is read as text: a bad value must become a counted drop.
COLUMNS = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in [
    "sensor_id", "ts", "lat", "lon", "pm25", "pm10", "temperature_c", "humidity_pct"]) + "}"

REASONS = ["missing_sensor_id", "missing_or_invalid_ts", "missing_or_invalid_pm25",
           "missing_or_invalid_pm10", "negative_concentration", "pm25_above_1000",
           "pm10_above_2000", "duplicate"]

# (C_lo, C_hi, I_lo, I_hi), concentrations in truncation steps:
# tenths of µg/m³ for PM2.5, µg/m³ for PM10.
PM25 = [(0, 90, 0, 50), (91, 354, 51, 100), (355, 554, 101, 150),
        (555, 1254, 151, 200), (1255, 2254, 201, 300), (2255, 3254, 301, 500)]
PM10 = [(0, 54, 0, 50), (55, 154, 51, 100), (155, 254, 101, 150),
        (255, 354, 151, 200), (355, 424, 201, 300), (425, 604, 301, 500)]


def aqi_sql(column, table, steps_per_unit):
    steps = f"floor({column} * {steps_per_unit} + 1e-9)"
    arms = " ".join(
        f"WHEN {steps} <= {c_hi} THEN "
        f"round({i_hi - i_lo} * ({steps} - {c_lo}) / {c_hi - c_lo}::DOUBLE + {i_lo})"
        for c_lo, c_hi, i_lo, i_hi in table)
    return f"CAST(CASE {arms} ELSE 500 END AS INTEGER)"


CATEGORY = """CASE WHEN aqi <= 50 THEN 'Good' WHEN aqi <= 100 THEN 'Moderate'
    WHEN aqi <= 150 THEN 'Unhealthy for Sensitive Groups' WHEN aqi <= 200 THEN 'Unhealthy'
    WHEN aqi <= 300 THEN 'Very Unhealthy' ELSE 'Hazardous' END"""


def finite(column):
    return (f"CASE WHEN isfinite(TRY_CAST({column} AS DOUBLE)) "
            f"THEN TRY_CAST({column} AS DOUBLE) END")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    args = parser.parse_args()
    started = time.monotonic()
    os.makedirs(args.output, exist_ok=True)

    db = duckdb.connect()
    db.execute(f"SET threads = {args.threads}")
    db.execute("SET TimeZone = 'UTC'")
    db.execute("SET preserve_insertion_order = false")
    # DuckDB 2.0.1's type_pushdown optimizer moves TRY_CAST into the CSV
    # scan as a strict cast when the cast feeds another function, so one
    # "ERR" in a pm10 field fails the whole query. Switched off for
    # correctness; plain reads are unaffected.
    db.execute("SET disabled_optimizers = 'type_pushdown'")
    pattern = os.path.join(args.input, "**", f"*.{args.format}")
    if args.format == "csv":
        source = (f"read_csv('{pattern}', header = true, auto_detect = false, delim = ',', "
                  f"quote = '\"', columns = {COLUMNS})")
    else:
        source = f"read_parquet('{pattern}')"

    db.execute(f"""
    CREATE TEMP TABLE buckets AS
    WITH parsed AS (
        SELECT sensor_id,
               TRY_CAST(ts AS TIMESTAMPTZ) AS ts,
               {finite('pm25')} AS pm25,
               {finite('pm10')} AS pm10
        FROM {source}
    ), classified AS (
        SELECT *, CASE
            WHEN sensor_id IS NULL OR trim(sensor_id) = '' THEN 1
            WHEN ts IS NULL THEN 2
            WHEN pm25 IS NULL THEN 3
            WHEN pm10 IS NULL THEN 4
            WHEN pm25 < 0 OR pm10 < 0 THEN 5
            WHEN pm25 > 1000 THEN 6
            WHEN pm10 > 2000 THEN 7
            ELSE 0 END AS reason
        FROM parsed
    ), keyed AS (
        SELECT reason,
               CASE WHEN reason = 0 THEN sensor_id END AS sensor_id,
               CASE WHEN reason = 0 THEN ts END AS ts,
               CASE WHEN reason = 0 THEN {{'pm25': pm25, 'pm10': pm10}} END AS pair
        FROM classified
    ), distinct_readings AS (
        -- One row per (sensor_id, ts): the copy with the lowest (pm25, pm10).
        SELECT reason, sensor_id, ts, min(pair) AS pair, count(*) AS copies
        FROM keyed GROUP BY reason, sensor_id, ts
    )
    SELECT reason, sensor_id, date_trunc('hour', ts) AS hour,
           sum(copies) AS rows, count(*) AS readings,
           sum(pair.pm25) AS pm25_sum, sum(pair.pm10) AS pm10_sum
    FROM distinct_readings GROUP BY ALL
    """)

    drops = {name: 0 for name in REASONS}
    rows_read = 0
    for reason, rows, readings in db.execute(
            "SELECT reason, sum(rows), sum(readings) FROM buckets GROUP BY reason").fetchall():
        rows_read += int(rows)
        if reason == 0:
            drops["duplicate"] = int(rows - readings)
        else:
            drops[REASONS[reason - 1]] = int(rows)

    db.execute("""
    CREATE TEMP TABLE hours AS
    SELECT sensor_id, hour, pm25_sum / readings AS pm25_avg, pm10_sum / readings AS pm10_avg,
           readings, pm25_sum, pm10_sum, CAST(hour AS DATE) AS date
    FROM buckets WHERE reason = 0
    """)
    queries = {
        "hourly": "SELECT sensor_id, hour, pm25_avg, pm10_avg, readings, date FROM hours",
        "aqi_daily": f"""
            WITH days AS (
                SELECT sensor_id, date, sum(pm25_sum) / sum(readings) AS pm25_avg,
                       sum(pm10_sum) / sum(readings) AS pm10_avg
                FROM hours GROUP BY sensor_id, date
            ), indexed AS (
                SELECT *, {aqi_sql('pm25_avg', PM25, 10)} AS aqi_pm25,
                          {aqi_sql('pm10_avg', PM10, 1)} AS aqi_pm10
                FROM days
            ), combined AS (
                SELECT *, greatest(aqi_pm25, aqi_pm10) AS aqi FROM indexed
            )
            SELECT sensor_id, pm25_avg, pm10_avg, aqi_pm25, aqi_pm10, aqi, {CATEGORY} AS category,
                   CASE WHEN aqi_pm10 > aqi_pm25 THEN 'pm10' ELSE 'pm25' END AS dominant, date
            FROM combined""",
        "alerts": f"""
            WITH high AS (
                SELECT sensor_id, hour, pm25_avg, {aqi_sql('pm25_avg', PM25, 10)} AS aqi
                FROM hours
            ), runs AS (
                -- Consecutive high hours share hour_number - row_number.
                SELECT *, epoch(hour) // 3600
                          - row_number() OVER (PARTITION BY sensor_id ORDER BY hour) AS run
                FROM high WHERE aqi >= 151
            )
            SELECT sensor_id, min(hour) AS start, max(hour) + INTERVAL 1 HOUR AS "end",
                   CAST(count(*) AS INTEGER) AS hours, max(aqi) AS peak_aqi,
                   max(pm25_avg) AS peak_pm25, CAST(min(hour) AS DATE) AS date
            FROM runs GROUP BY sensor_id, run HAVING count(*) >= 2""",
    }
    outputs = {}
    for name, query in queries.items():
        target = os.path.join(args.output, name)
        db.execute(f"CREATE TEMP TABLE out_{name} AS {query}")
        outputs[name] = db.execute(f"SELECT count(*) FROM out_{name}").fetchone()[0]
        db.execute(f"COPY out_{name} TO '{target}' "
                   "(FORMAT PARQUET, PARTITION_BY (date), OVERWRITE_OR_IGNORE)")

    rows_dropped = sum(drops.values())
    summary = {
        "engine": "duckdb " + duckdb.__version__,
        "rows_read": rows_read,
        "rows_kept": rows_read - rows_dropped,
        "rows_dropped": rows_dropped,
        "drops": drops,
        "sensors": db.execute("SELECT count(DISTINCT sensor_id) FROM hours").fetchone()[0],
        "outputs": outputs,
        "wall_time_seconds": time.monotonic() - started,
    }
    with open(os.path.join(args.output, "_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
