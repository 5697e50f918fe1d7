#!/usr/bin/env bash
# The SQL stack for real: `scripts/sql-stack.sh up`, the air-quality job writing into its S3
# bucket, the job's tables.sql through the Trino CLI, the daily-AQI rows through Trino checked
# against the job's own Parquet output, Superset running queries through Trino, the air-quality
# dashboard (`scripts/sql-stack.sh dashboard`, twice) with its charts' data through Trino, then `down`
# leaving no process. Prints measured figures, then "N passed, N failed"; exits non-zero on a failure.
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${HAP_CACHE:-$HOME/.cache/hap}
home=$cache/sql-stack
state=${HAP_SQL_STACK_STATE:-$home/state}
stack=$repo/scripts/sql-stack.sh
here=$repo/testing/sql-stack
py=$home/superset-venv/bin/python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
# check NAME COMMAND...: one test, passing when COMMAND succeeds.
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }
figure() { echo "measure $*"; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# The air-quality job, built as scripts/images.sh builds it: the same target directory and the same
# packages (building hap-air-detection alone resolves other dependency features and rebuilds DataFusion).
release=${HAP_RELEASE_TARGET_DIR:-$cache/target-release}
(cd "$repo" && CARGO_TARGET_DIR=$release cargo build --quiet --release --locked -p hap-operator -p hap-air-detection) ||
  { bad "build hap-air-detection"; finish; }
air=$release/release/hap-air-detection

# --- up --------------------------------------------------------------------------------------
t0=$(date +%s.%N)
if "$stack" up > "$work/up.out" 2> "$work/up.err"; then ok "up"; else bad "up"; tail -20 "$work/up.err"; "$stack" down; finish; fi
figure "up_seconds=$(elapsed "$t0")"

# Exactly the eight lines, in order and form.
lines_ok() {
  local want=(TRINO_URL=http://127.0.0.1:[0-9]+ SUPERSET_URL=http://127.0.0.1:[0-9]+ S3_ENDPOINT=http://127.0.0.1:[0-9]+
              S3_BUCKET=[a-z0-9.-]+ AWS_ACCESS_KEY_ID=.+ AWS_SECRET_ACCESS_KEY=.+ TRINO_CATALOG=hive TRINO_SCHEMA=[a-z_]+)
  [ "$(wc -l < "$work/up.out")" -eq 8 ] || return 1
  local i=0 line
  while IFS= read -r line; do [[ $line =~ ^${want[$i]}$ ]] || { echo "unexpected: ${line%%=*}=…" >&2; return 1; }; i=$((i + 1)); done < "$work/up.out"
}
check "up prints the eight connection lines" lines_ok
set -a; . "$work/up.out"; set +a
# The Superset admin, which up keeps in the state directory rather than printing.
eval "$(grep -o 'SUPERSET_ADMIN_[A-Z]*=[^ ]*' "$state/env")"; export SUPERSET_ADMIN_USER SUPERSET_ADMIN_PASSWORD

# Every socket the stack listens on is on 127.0.0.1.
loopback_only() {
  local pids pid listen
  pids=$(for f in "$state"/pids/*; do pgrep -g "$(cat "$f")"; done | sort -u)
  listen=$(ss -Hltnp | grep -E "pid=($(echo $pids | tr ' ' '|'))," | awk '{print $4}')
  echo "$listen" | tr '\n' ' ' >&2; echo >&2
  # Java shows an IPv4 socket as [::ffff:127.0.0.1].
  [ "$(echo "$listen" | grep -c .)" -ge 5 ] && ! echo "$listen" | grep -qvE '^(127\.0\.0\.1|\[::ffff:127\.0\.0\.1\]):'
}
check "every server listens on 127.0.0.1 only" loopback_only

# The keys and passwords are in no config file (nor in hap-operator's render they come from) and no log.
no_secrets_written() {
  local secret
  for secret in "$AWS_SECRET_ACCESS_KEY" "$SUPERSET_ADMIN_PASSWORD" "$(grep -o 'HAP_METASTORE_DB_PASSWORD=[^ ]*' "$state/env" | cut -d= -f2)"; do
    [ ${#secret} -ge 16 ] || return 1
    if grep -rlF -- "$secret" "$state/rendered.yaml" "$state/rendered" "$state/trino/etc" "$state/metastore/conf" \
         "$state/mariadb/my.cnf" "$state/mariadb/hap.cnf" "$state/superset/superset_config.py" \
         "$state/superset/superset-init.sh" "$state/logs" "$work/up.err"; then return 1; fi
  done
}
check "no secret in a config file or log" no_secrets_written
check "state directory is private" test "$(stat -c %a "$state")" = 700

# A second up finds the stack running and prints the same lines.
check "a second up is harmless" bash -c '"$1" up 2>/dev/null | cmp -s - "$2"' _ "$stack" "$work/up.out"

# --- the air-quality job against the S3 server ---------------------------------------------
export AWS_REGION=us-east-1 HAP_S3_PATH_STYLE=true AWS_ENDPOINT_URL=$S3_ENDPOINT
check "generate readings into the bucket" "$air" generate --sensors 40 --days 5 --output "s3://$S3_BUCKET/readings/"
t=$(date +%s.%N)
check "the job runs S3 to S3" bash -c '"$1" --input "s3://$2/readings/" --output "s3://$2/detections/" --sql-schema "$3" > "$4" 2> "$5"' \
  _ "$air" "$S3_BUCKET" "$TRINO_SCHEMA" "$work/summary.json" "$work/job.err"
figure "job_seconds=$(elapsed "$t")"
summary() { "$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["outputs"][sys.argv[2]])' "$work/summary.json" "$1"; }

# --- tables.sql through the Trino CLI --------------------------------------------------------
trino_cli() {  # the CLI's warnings about terminals go to a file, not into the results
  "$stack" trino \
    --catalog "$TRINO_CATALOG" --schema "$TRINO_SCHEMA" "$@" 2>> "$work/trino-cli.err"
}
# The job wrote tables.sql next to its tables; read it back from the bucket as any client would.
"$py" - "$work/tables.sql" <<'EOF'
import os, sys, pyarrow.fs as fs
from urllib.parse import urlparse
e = urlparse(os.environ["S3_ENDPOINT"])
s3 = fs.S3FileSystem(access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                     endpoint_override=e.netloc, scheme=e.scheme, region="us-east-1")
with s3.open_input_stream(os.environ["S3_BUCKET"] + "/detections/tables.sql") as f, open(sys.argv[1], "wb") as out:
    out.write(f.read())
EOF
check "tables.sql names s3a:// locations in the bucket" grep -q "s3a://$S3_BUCKET/detections/aqi_daily/" "$work/tables.sql"
run_tables_sql() { trino_cli --file "$work/tables.sql" > "$work/tables.out" || { tail -5 "$work/trino-cli.err"; return 1; }; }
check "tables.sql runs through the Trino CLI" run_tables_sql
three_tables() { [ "$(trino_cli --execute 'SHOW TABLES' | tr -d '"' | LC_ALL=C sort | tr '\n' ' ')" = 'air_alerts air_aqi_daily air_hourly ' ]; }
check "the three tables exist" three_tables

# --- queries through Trino checked against the job's output ----------------------------------
count_matches() {
  local table=$1 want got
  want=$(summary "$table")
  got=$(trino_cli --execute "SELECT count(*) FROM air_$table" | tr -d '"')
  echo "air_$table: Trino $got, _summary.json $want" >&2
  [ -n "$got" ] && [ "$got" = "$want" ] && [ "$want" -gt 0 ]
}
for table in hourly aqi_daily alerts; do check "row count of air_$table equals the job's summary" count_matches "$table"; done
check "daily-AQI rows through Trino equal the job's Parquet files" "$py" "$here/checks.py" rows detections
daily=$(summary aqi_daily)

# --- Superset ---------------------------------------------------------------------------------
check "Superset runs a chart's query and SQL Lab through Trino" "$py" "$here/checks.py" superset "$daily"

# --- the air-quality dashboard ------------------------------------------------------------------
# dashboard_run OUT: `scripts/sql-stack.sh dashboard`, which prints exactly the dashboard's URL.
dashboard_run() {
  "$stack" dashboard > "$1" 2>> "$work/dashboard.err" || { tail -5 "$work/dashboard.err" >&2; return 1; }
  [ "$(cat "$1")" = "DASHBOARD_URL=$SUPERSET_URL/superset/dashboard/air-quality/" ]
}
t=$(date +%s.%N)
check "dashboard provisions the air-quality dashboard and prints its URL" dashboard_run "$work/dashboard.out"
figure "dashboard_seconds=$(elapsed "$t")"
check "a second dashboard run prints the same URL" dashboard_run "$work/dashboard2.out"
check "a second dashboard run duplicates nothing" "$py" "$here/checks.py" dashboard unique
check "dashboard prints no secret" bash -c '! grep -qF -- "$1" "$2" "$3" "$4"' _ "$SUPERSET_ADMIN_PASSWORD" \
  "$work/dashboard.out" "$work/dashboard2.out" "$work/dashboard.err"
check "the dashboard holds both charts in its layout" "$py" "$here/checks.py" dashboard layout
check "each chart's data endpoint returns rows through Trino" "$py" "$here/checks.py" dashboard data
check "the daily-AQI chart's rows equal the same query through Trino" "$py" "$here/checks.py" dashboard daily

# --- measurements ------------------------------------------------------------------------------
rss() {  # resident memory of a component's process group, in MiB
  local kb=0 p
  for p in $(pgrep -g "$(cat "$state/pids/$1")"); do kb=$((kb + $(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done
  echo $((kb / 1024))
}
figure "$("$py" "$here/checks.py" latency "$state/s3/$S3_BUCKET/detections")"
figure "rss_mib s3=$(rss s3) mariadb=$(rss mariadb) metastore=$(rss metastore) trino=$(rss trino) superset=$(rss superset)"

# --- down ------------------------------------------------------------------------------------
pids=$(for f in "$state"/pids/*; do pgrep -g "$(cat "$f")"; done | sort -u)
check "down" "$stack" down
nothing_left() {
  local p left=0
  for p in $pids; do kill -0 "$p" 2>/dev/null && { ps -o pid=,args= -p "$p" >&2; left=1; }; done
  ! ss -Hltn | grep -qE "127\.0\.0\.1:($(echo "${TRINO_URL##*:} ${SUPERSET_URL##*:} ${S3_ENDPOINT##*:}" | tr ' ' '|'))\b" && [ $left -eq 0 ]
}
check "down leaves no process and no listener behind" nothing_left
finish
