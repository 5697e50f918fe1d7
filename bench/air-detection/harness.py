#!/usr/bin/env python3
"""Runs the three engines on one data set and prints the comparison.

Called by run.sh, which builds the binary, prepares the Python venv and
generates the data. For each engine and repetition it starts the program
as a child process, samples the resident memory of the child's whole
process tree every 20 ms (so the JVM that PySpark starts is counted), and
takes the wall time from start to exit. Before the table is printed, the
outputs of the three engines are compared row by row: the ratios only
mean something if all three computed the same thing.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import duckdb


def tree_rss_bytes(pid):
    """Resident memory of `pid` and all its descendants, from /proc."""
    total, stack, seen = 0, [pid], set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def measure(command, log_path):
    """Runs `command`; returns wall seconds and peak tree RSS in bytes."""
    with open(log_path, "w") as log:
        started = time.monotonic()
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        peak = 0
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid != 0:
                break
            peak = max(peak, tree_rss_bytes(child.pid))
            time.sleep(0.02)
        wall = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{command[0]} failed with exit code {code}; see {log_path}")
    # ru_maxrss (KiB) is exact for the direct child; sampling covers the tree.
    return wall, max(peak, usage.ru_maxrss * 1024)


def compare(outputs, reference):
    """Row-by-row comparison of every engine's tables with the reference's."""
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    tables = {
        "hourly": (["sensor_id", "hour"], ["readings", "date"], ["pm25_avg", "pm10_avg"]),
        "aqi_daily": (["sensor_id", "date"],
                      ["aqi_pm25", "aqi_pm10", "aqi", "category", "dominant"],
                      ["pm25_avg", "pm10_avg"]),
        "alerts": (["sensor_id", "start"], ["\"end\"", "hours", "peak_aqi", "date"], ["peak_pm25"]),
    }
    problems = []
    for engine, root in outputs.items():
        if engine == reference:
            continue
        for table, (keys, exact, approx) in tables.items():
            def source(r):
                return (f"read_parquet('{os.path.join(r, table)}/*/*.parquet', "
                        "hive_partitioning = true)")
            on = " AND ".join(f"a.{k} = b.{k}" for k in keys)
            checks = [f"a.{c} IS DISTINCT FROM b.{c}" for c in exact]
            checks += [f"abs(a.{c} - b.{c}) > 1e-9 * greatest(1, abs(a.{c}))" for c in approx]
            only_a, only_b, differ, total = db.execute(f"""
                SELECT count(*) FILTER (WHERE b.{keys[0]} IS NULL),
                       count(*) FILTER (WHERE a.{keys[0]} IS NULL),
                       count(*) FILTER (WHERE a.{keys[0]} IS NOT NULL AND b.{keys[0]} IS NOT NULL
                                        AND ({' OR '.join(checks)})),
                       count(*)
                FROM {source(outputs[reference])} a FULL OUTER JOIN {source(root)} b ON {on}
            """).fetchone()
            if only_a or only_b or differ:
                problems.append(f"{table}: {engine} vs {reference}: {only_a} rows only in "
                                f"{reference}, {only_b} only in {engine}, {differ} differ "
                                f"(of {total})")
    return problems


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--spark-driver-memory", default="8g")
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    args = parser.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))

    engines = {
        "hap-air-detection": lambda out: [
            args.binary, "--input", args.data, "--output", out,
            "--threads", str(args.threads), "--format", args.format],
        "duckdb": lambda out: [
            sys.executable, os.path.join(here, "duckdb_job.py"), "--input", args.data,
            "--output", out, "--threads", str(args.threads), "--format", args.format],
        "pyspark local[*]": lambda out: [
            sys.executable, os.path.join(here, "spark_job.py"), "--input", args.data,
            "--output", out, "--driver-memory", args.spark_driver_memory, "--format", args.format,
            # 2 shuffle partitions per core: fastest in a sweep of 2 to 200.
            "--shuffle-partitions", str(2 * args.threads)],
    }
    results = {name: [] for name in engines}
    outputs = {}
    steps = []  # hap-air-detection's step_seconds, one per round
    for round_number in range(1, args.repeat + 1):
        for name, command in engines.items():
            slug = name.split()[0]
            out = os.path.join(args.work, f"out-{slug}")
            shutil.rmtree(out, ignore_errors=True)
            wall, rss = measure(command(out), os.path.join(args.work, f"{slug}.log"))
            results[name].append((wall, rss))
            outputs[name] = out
            if name == "hap-air-detection":
                with open(os.path.join(out, "_summary.json")) as f:
                    steps.append(json.load(f)["step_seconds"])
            print(f"  round {round_number}: {name:<18} {wall:8.2f} s {rss / 2**20:9.0f} MiB",
                  file=sys.stderr, flush=True)

    summaries = {}
    for name, out in outputs.items():
        with open(os.path.join(out, "_summary.json")) as f:
            summaries[name] = json.load(f)
    reference = "hap-air-detection"
    problems = compare(outputs, reference)
    for name, summary in summaries.items():
        for field in ["rows_read", "rows_kept", "drops", "sensors", "outputs"]:
            if summary[field] != summaries[reference][field]:
                problems.append(f"{name}: {field} {summary[field]} != "
                                f"{summaries[reference][field]}")
    if problems:
        print("OUTPUTS DIFFER; the timings below do not compare like with like:")
        for problem in problems:
            print("  " + problem)
    else:
        out = summaries[reference]["outputs"]
        print(f"Outputs match: all engines wrote the same {out['hourly']:,} hourly, "
              f"{out['aqi_daily']:,} daily and {out['alerts']:,} alert rows "
              f"and counted the same drops.")

    rows = summaries[reference]["rows_read"]
    stats = {}
    for name, runs in results.items():
        walls = [w for w, _ in runs]
        stats[name] = (statistics.median(walls), min(walls),
                       statistics.median(m for _, m in runs))
    base_wall, base_best, base_rss = stats[reference]
    print()
    print(f"{'engine':<18} {'wall s':>7} {'best s':>7} {'peak RSS MiB':>13} {'rows/s':>11} "
          f"{'wall vs hap':>12} {'best vs hap':>12} {'RSS vs hap':>11}")
    for name, (wall, best, rss) in stats.items():
        print(f"{name:<18} {wall:7.2f} {best:7.2f} {rss / 2**20:13.0f} {rows / wall:11,.0f} "
              f"{wall / base_wall:11.2f}x {best / base_best:11.2f}x {rss / base_rss:10.2f}x")
    print()
    print(f"{args.repeat} round(s), {rows:,} readings, {args.threads} threads. wall s: median; "
          f"best s: fastest round; peak RSS: median of the whole process tree's peak; "
          f"rows/s: readings / median wall.")
    print("hap-air-detection's steps, median s: " + ", ".join(
        f"{step} {statistics.median(r[step] for r in steps):.2f}" for step in steps[0]))
    print("Engines: " + ", ".join(
        summaries[n].get("engine", f"{n} {summaries[n].get('version', '')}".strip())
        for n in engines))
    with open("/proc/loadavg") as f:
        print("Load average after the runs: " + " ".join(f.read().split()[:3]))


if __name__ == "__main__":
    main()
