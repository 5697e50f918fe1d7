#!/usr/bin/env python3
"""The air-detection job in PySpark, for the benchmark.

Implements the specification of hap-air-detection (docs/air-detection.md):
the same parsing, cleaning rules and their order, duplicate choice, hourly
means, daily AQI (EPA-454/B-24-002 breakpoints, truncation, rounding), and
episodes, written as date-partitioned Parquet plus _summary.json. Only
Spark's built-in column functions are used (no Python UDFs), so the work
stays in the JVM.

Usage: spark_job.py --input DIR --output DIR [--driver-memory 8g] [--shuffle-partitions N]
"""

import argparse
import json
import os
import time

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

COLUMNS = ["sensor_id", "ts", "lat", "lon", "pm25", "pm10", "temperature_c", "humidity_pct"]

# (C_lo, C_hi, I_lo, I_hi), concentrations in truncation steps:
# tenths of µg/m³ for PM2.5, µg/m³ for PM10.
PM25 = [(0, 90, 0, 50), (91, 354, 51, 100), (355, 554, 101, 150),
        (555, 1254, 151, 200), (1255, 2254, 201, 300), (2255, 3254, 301, 500)]
PM10 = [(0, 54, 0, 50), (55, 154, 51, 100), (155, 254, 101, 150),
        (255, 354, 151, 200), (355, 424, 201, 300), (425, 604, 301, 500)]

REASONS = ["missing_sensor_id", "missing_or_invalid_ts", "missing_or_invalid_pm25",
           "missing_or_invalid_pm10", "negative_concentration", "pm25_above_1000",
           "pm10_above_2000", "duplicate"]


def aqi(concentration, table, steps_per_unit):
    """Truncate, find the breakpoint row, interpolate, round; 500 above the table."""
    steps = F.floor(concentration * steps_per_unit + F.lit(1e-9))
    expr = None
    for c_lo, c_hi, i_lo, i_hi in table:
        value = F.round((F.lit(i_hi - i_lo) * (steps - c_lo)) / F.lit(c_hi - c_lo) + i_lo)
        expr = F.when(steps <= c_hi, value) if expr is None else expr.when(steps <= c_hi, value)
    return expr.otherwise(F.lit(500)).cast("int")


def category(col):
    return (F.when(col <= 50, "Good").when(col <= 100, "Moderate")
            .when(col <= 150, "Unhealthy for Sensitive Groups").when(col <= 200, "Unhealthy")
            .when(col <= 300, "Very Unhealthy").otherwise("Hazardous"))


def finite_number(col):
    value = F.expr(f"try_cast({col} AS DOUBLE)")
    return F.when(~F.isnan(value) & (F.abs(value) < F.lit(float("inf"))), value)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--shuffle-partitions", type=int, default=200)
    # Parquet input is the generator's typed files (bad values already null).
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    args = parser.parse_args()
    started = time.monotonic()

    spark = (SparkSession.builder.master("local[*]").appName("air-detection")
             .config("spark.driver.memory", args.driver_memory)
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
             .config("spark.sql.shuffle.partitions", str(args.shuffle_partitions))
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")

    files = (spark.read.option("recursiveFileLookup", True)
             .option("pathGlobFilter", f"*.{args.format}"))
    if args.format == "csv":
        schema = StructType([StructField(c, StringType(), True) for c in COLUMNS])
        raw = files.option("header", True).schema(schema).csv(args.input)
    else:
        raw = files.parquet(args.input)

    parsed = raw.select(
        F.col("sensor_id"),
        F.expr("try_cast(ts AS TIMESTAMP)").alias("ts"),
        finite_number("pm25").alias("pm25"),
        finite_number("pm10").alias("pm10"),
    )
    reason = (F.when(F.col("sensor_id").isNull() | (F.trim("sensor_id") == ""), 1)
              .when(F.col("ts").isNull(), 2)
              .when(F.col("pm25").isNull(), 3)
              .when(F.col("pm10").isNull(), 4)
              .when((F.col("pm25") < 0) | (F.col("pm10") < 0), 5)
              .when(F.col("pm25") > 1000, 6)
              .when(F.col("pm10") > 2000, 7)
              .otherwise(0))
    classified = parsed.withColumn("reason", reason)
    kept = F.col("reason") == 0
    keyed = classified.select(
        "reason",
        F.when(kept, F.col("sensor_id")).alias("sensor_id"),
        F.when(kept, F.col("ts")).alias("ts"),
        F.when(kept, F.struct("pm25", "pm10")).alias("pair"),
    )
    # One row per (sensor_id, ts): the copy with the lowest (pm25, pm10).
    distinct = keyed.groupBy("reason", "sensor_id", "ts").agg(
        F.min("pair").alias("pair"), F.count(F.lit(1)).alias("copies"))
    buckets = distinct.groupBy(
        "reason", "sensor_id", F.date_trunc("hour", "ts").alias("hour")
    ).agg(
        F.sum("copies").alias("rows"),
        F.count(F.lit(1)).alias("readings"),
        F.sum("pair.pm25").alias("pm25_sum"),
        F.sum("pair.pm10").alias("pm10_sum"),
    ).persist()

    counts = buckets.groupBy("reason").agg(
        F.sum("rows").alias("rows"), F.sum("readings").alias("readings")).collect()
    drops = {name: 0 for name in REASONS}
    rows_read = 0
    for row in counts:
        rows_read += row["rows"]
        if row["reason"] == 0:
            drops["duplicate"] = row["rows"] - row["readings"]
        else:
            drops[REASONS[row["reason"] - 1]] = row["rows"]

    hours = buckets.where("reason = 0").select(
        "sensor_id", "hour",
        (F.col("pm25_sum") / F.col("readings")).alias("pm25_avg"),
        (F.col("pm10_sum") / F.col("readings")).alias("pm10_avg"),
        "readings", "pm25_sum", "pm10_sum",
    ).persist()

    hourly = hours.select("sensor_id", "hour", "pm25_avg", "pm10_avg", "readings",
                          F.to_date("hour").alias("date"))

    daily = hours.groupBy("sensor_id", F.to_date("hour").alias("date")).agg(
        (F.sum("pm25_sum") / F.sum("readings")).alias("pm25_avg"),
        (F.sum("pm10_sum") / F.sum("readings")).alias("pm10_avg"))
    daily = (daily.withColumn("aqi_pm25", aqi(F.col("pm25_avg"), PM25, 10))
             .withColumn("aqi_pm10", aqi(F.col("pm10_avg"), PM10, 1))
             .withColumn("aqi", F.greatest("aqi_pm25", "aqi_pm10"))
             .withColumn("category", category(F.col("aqi")))
             .withColumn("dominant", F.when(F.col("aqi_pm10") > F.col("aqi_pm25"), "pm10")
                         .otherwise("pm25"))
             .select("sensor_id", "pm25_avg", "pm10_avg", "aqi_pm25", "aqi_pm10", "aqi",
                     "category", "dominant", "date"))

    # Episodes: consecutive high hours share hour_number - row_number.
    high = hours.select("sensor_id", "hour", "pm25_avg",
                        aqi(F.col("pm25_avg"), PM25, 10).alias("aqi")).where("aqi >= 151")
    order = Window.partitionBy("sensor_id").orderBy("hour")
    high = high.withColumn(
        "run", F.floor(F.unix_seconds("hour") / 3600) - F.row_number().over(order))
    alerts = high.groupBy("sensor_id", "run").agg(
        F.min("hour").alias("start"),
        (F.max("hour") + F.expr("INTERVAL 1 HOUR")).alias("end"),
        F.count(F.lit(1)).cast("int").alias("hours"),
        F.max("aqi").alias("peak_aqi"),
        F.max("pm25_avg").alias("peak_pm25"),
    ).where("hours >= 2").select(
        "sensor_id", "start", "end", "hours", "peak_aqi", "peak_pm25",
        F.to_date("start").alias("date"))

    outputs = {}
    for name, frame in [("hourly", hourly), ("aqi_daily", daily), ("alerts", alerts)]:
        frame = frame.persist()
        outputs[name] = frame.count()
        frame.write.mode("overwrite").partitionBy("date").parquet(os.path.join(args.output, name))

    rows_dropped = sum(drops.values())
    summary = {
        "engine": "pyspark " + spark.version,
        "rows_read": rows_read,
        "rows_kept": rows_read - rows_dropped,
        "rows_dropped": rows_dropped,
        "drops": drops,
        "sensors": hours.select("sensor_id").distinct().count(),
        "outputs": outputs,
        "wall_time_seconds": time.monotonic() - started,
    }
    with open(os.path.join(args.output, "_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    spark.stop()


if __name__ == "__main__":
    main()
