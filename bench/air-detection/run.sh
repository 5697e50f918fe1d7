#!/usr/bin/env bash
# Benchmark: hap-air-detection against the same job in PySpark (local[*]) and
# DuckDB, on one generated data set, on this machine, in one run.
#
#   bench/air-detection/run.sh
#
# Settings (environment):
#   SENSORS=512 DAYS=28 SEED=42   data set: 512 sensors x 28 days x 1/min ≈ 20.3 M readings
#                                 (DAYS=140: ≈ 101 M readings)
#   FORMAT=csv                    the data set's files: csv, or parquet (the generator's typed
#                                 Parquet; every engine reads the same files)
#   REPEAT=3                      runs per engine; the table shows medians
#   THREADS=$(nproc)              threads for every engine
#   SPARK_DRIVER_MEMORY=8g        heap of the Spark driver JVM
#   HAP_BENCH_DIR=~/.cache/hap/air-bench    data and outputs (≈ 1.5 GB)
#   HAP_BENCH_VENV=~/.cache/hap/bench-venv  Python venv with pyspark and duckdb
#
# Needs: cargo, python3 with venv and pip (packages from PyPI), Java 17+.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
SENSORS="${SENSORS:-512}"
DAYS="${DAYS:-28}"
SEED="${SEED:-42}"
FORMAT="${FORMAT:-csv}"
case "$FORMAT" in csv | parquet) ;; *) echo "FORMAT is csv or parquet" >&2; exit 2 ;; esac
REPEAT="${REPEAT:-3}"
THREADS="${THREADS:-$(nproc)}"
SPARK_DRIVER_MEMORY="${SPARK_DRIVER_MEMORY:-8g}"
bench_dir="${HAP_BENCH_DIR:-$HOME/.cache/hap/air-bench}"
venv="${HAP_BENCH_VENV:-$HOME/.cache/hap/bench-venv}"

java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
if [[ -z "$java_major" || "$java_major" -lt 17 ]]; then
  echo "PySpark 4 needs Java 17 or newer on PATH (found: ${java_major:-none})" >&2
  exit 1
fi

echo "== building the release binary" >&2
# The project's one release build (the images and the SQL suites use it too), so that a run after
# them builds nothing again.
cache="${HAP_CACHE:-$HOME/.cache/hap}"
# shellcheck source=../../scripts/lib/release.sh
source "$repo/scripts/lib/release.sh"
release_build
binary="$release/release/hap-air-detection"

echo "== Python venv at $venv" >&2
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --requirement "$here/requirements.txt"

data="$bench_dir/data-${SENSORS}x${DAYS}-seed${SEED}"
[ "$FORMAT" = csv ] || data="$data-$FORMAT"
mkdir -p "$bench_dir"
# The generator is deterministic, so a finished data set is reused; the
# report file is written only after every file is in place.
if [[ ! -f "$data.report.json" ]]; then
  echo "== generating $SENSORS sensors x $DAYS days into $data" >&2
  rm -rf "$data"
  "$binary" generate --sensors "$SENSORS" --days "$DAYS" --seed "$SEED" --format "$FORMAT" --output "$data" \
    > "$data.report.json.tmp"
  mv "$data.report.json.tmp" "$data.report.json"
fi
rows="$("$venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows"])' "$data.report.json")"
if [[ "$rows" -lt 20000000 ]]; then
  echo "the data set has $rows readings; the benchmark needs at least 20 million" >&2
  exit 1
fi

# Every engine reads from the page cache, not the disk.
cat "$data"/*."$FORMAT" > /dev/null

cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
mem="$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo
echo "Data set: $("$venv/bin/python" -c 'import sys; print(f"{int(sys.argv[1]):,}")' "$rows") readings in $(ls "$data" | wc -l) $FORMAT files" \
  "($(du -sh "$data" | cut -f1)), $SENSORS sensors x $DAYS days, seed $SEED"
echo "Machine: $(nproc) CPUs ($cpu), $mem RAM; $(java -version 2>&1 | head -1)"
echo "Load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

"$venv/bin/python" "$here/harness.py" --binary "$binary" --data "$data" --work "$bench_dir" \
  --repeat "$REPEAT" --threads "$THREADS" --spark-driver-memory "$SPARK_DRIVER_MEMORY" --format "$FORMAT"
