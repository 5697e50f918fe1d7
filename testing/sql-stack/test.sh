#!/usr/bin/env bash
# The SQL stack for real: `scripts/sql-stack.sh up`, Trino refusing clients without hap's password
# (over HTTPS) and clients over plain HTTP, the air-quality job writing into its S3
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

# The air-quality job, built as scripts/images.sh builds it (scripts/lib/release.sh).
# shellcheck source=../../scripts/lib/release.sh
. "$repo/scripts/lib/release.sh"
release_build || { bad "build hap-air-detection"; finish; }
air=$release/release/hap-air-detection

# --- up --------------------------------------------------------------------------------------
t0=$(date +%s.%N)
if "$stack" up > "$work/up.out" 2> "$work/up.err"; then ok "up"; else bad "up"; tail -20 "$work/up.err"; "$stack" down; finish; fi
figure "up_seconds=$(elapsed "$t0")"

# Exactly the eleven lines, in order and form; Trino's password is in a file, not printed.
lines_ok() {
  local want=(TRINO_URL=https://127.0.0.1:[0-9]+ TRINO_USER=hap TRINO_PASSWORD_FILE=/.+ TRINO_CA=/.+
              SUPERSET_URL=http://127.0.0.1:[0-9]+ S3_ENDPOINT=http://127.0.0.1:[0-9]+
              S3_BUCKET=[a-z0-9.-]+ AWS_ACCESS_KEY_ID=.+ AWS_SECRET_ACCESS_KEY=.+ TRINO_CATALOG=hive TRINO_SCHEMA=[a-z_]+)
  [ "$(wc -l < "$work/up.out")" -eq ${#want[@]} ] || return 1
  local i=0 line
  while IFS= read -r line; do [[ $line =~ ^${want[$i]}$ ]] || { echo "unexpected: ${line%%=*}=…" >&2; return 1; }; i=$((i + 1)); done < "$work/up.out"
}
check "up prints the eleven connection lines" lines_ok
set -a; . "$work/up.out"; set +a
# The Superset admin, which up keeps in the state directory rather than printing.
eval "$(grep -o 'SUPERSET_ADMIN_[A-Z]*=[^ ]*' "$state/env")"; export SUPERSET_ADMIN_USER SUPERSET_ADMIN_PASSWORD
# Trino's secrets (kept in the state directory, not exported) and its node port, plain HTTP, which
# is for Trino's own signed calls only.
env_value() { grep -oE "(^| )$1=[^ ]*" "$state/env" | cut -d= -f2; }
trino_shared_secret=$(env_value TRINO_SHARED_SECRET) trino_admin_password=$(env_value TRINO_ADMIN_PASSWORD)
trino_password=$(cat "$TRINO_PASSWORD_FILE") trino_http_port=$(env_value TRINO_PORT)

# Every socket the stack listens on is on 127.0.0.1.
loopback_only() {
  local pids pid listen
  pids=$(for f in "$state"/pids/*; do pgrep -g "$(cat "$f")"; done | sort -u)
  listen=$(ss -Hltnp | grep -E "pid=($(echo $pids | tr ' ' '|'))," | awk '{print $4}')
  echo "$listen" | tr '\n' ' ' >&2; echo >&2
  # Java shows an IPv4 socket as [::ffff:127.0.0.1]. Trino listens on both its ports (HTTPS for
  # clients, HTTP for its own calls), both on loopback.
  [ "$(echo "$listen" | grep -c .)" -ge 6 ] && ! echo "$listen" | grep -qvE '^(127\.0\.0\.1|\[::ffff:127\.0\.0\.1\]):' &&
    echo "$listen" | grep -qE ":${TRINO_URL##*:}\$" && echo "$listen" | grep -qE ":$trino_http_port\$"
}
check "every server listens on 127.0.0.1 only, Trino on both its ports" loopback_only

# absent SECRET PATH...: SECRET is in no file under the PATHs (which must exist); names the files
# that hold it, never the secret.
absent() {
  local secret=$1 rc=0; shift
  [ ${#secret} -ge 16 ] || { echo "a secret to look for is missing or short" >&2; return 1; }
  grep -rlF -- "$secret" "$@" >&2 || rc=$?
  [ $rc -eq 1 ]
}
# The keys and passwords are in no config file (nor in hap-operator's render they come from) and no
# log; Trino's passwords, shared secret and private key are not printed by up either. Run again at
# the end, once every component has logged its queries.
written=("$state/rendered.yaml" "$state/rendered" "$state/trino/etc" "$state/metastore/conf"
         "$state/mariadb/my.cnf" "$state/mariadb/hap.cnf" "$state/superset/superset_config.py"
         "$state/superset/superset-init.sh" "$state/logs" "$work/up.err")
no_secrets_written() {
  local secret extra=() f
  for f in "$@"; do [ -e "$f" ] && extra+=("$f"); done  # what the test's clients printed, if they ran
  set -- "${extra[@]}"
  for secret in "$AWS_SECRET_ACCESS_KEY" "$SUPERSET_ADMIN_PASSWORD" "$(env_value HAP_METASTORE_DB_PASSWORD)"; do
    absent "$secret" "${written[@]}" "$@" || return 1
  done
  for secret in "$trino_password" "$trino_admin_password" "$trino_shared_secret" "$(sed -n 2p "$state/trino/tls/tls.pem")"; do
    absent "$secret" "${written[@]}" "$work/up.out" "$@" || return 1
  done
}
check "no secret in a config file, log or up's output" no_secrets_written
check "state directory is private" test "$(stat -c %a "$state")" = 700
check "Trino's key, password file and hap's password file are private" \
  test "$(stat -c %a "$state/trino/tls/tls.pem" "$state/trino/auth/password.db" "$TRINO_PASSWORD_FILE" | sort -u)" = 600

# A second up finds the stack running and prints the same lines.
check "a second up is harmless" bash -c '"$1" up 2>/dev/null | cmp -s - "$2"' _ "$stack" "$work/up.out"

# --- Trino authenticates ---------------------------------------------------------------------
# trino_call HOW URL OUT [CURL ARGS...]: one request to Trino's REST API; prints the HTTP status, the
# answer goes to OUT. HOW: none (the X-Trino-User header only), wrong (hap with a password that is not
# hap's) or right (hap's password, from TRINO_PASSWORD_FILE). HTTPS trusts only TRINO_CA. Credentials
# reach curl on its standard input, never on its command line.
trino_call() {
  local how=$1 url=$2 out=$3 config=; shift 3
  case $how in
    wrong) config="user = \"hap:$(openssl rand -hex 16)\"" ;;
    right) config="user = \"hap:$trino_password\"" ;;
  esac
  printf '%s\n' "$config" | curl -s -K - --cacert "$TRINO_CA" -o "$out" -w '%{http_code}' \
    -H 'X-Trino-User: hap' "$@" "$url"
}
# field FILE NAME: a field of Trino's JSON answer (nextUri, data, error), empty when absent or not JSON.
field() {
  "$py" -c 'import json, sys
try: v = json.load(open(sys.argv[1])).get(sys.argv[2])
except ValueError: v = None
print("" if v is None else v if isinstance(v, str) else json.dumps(v))' "$1" "$2"
}
# refused HOW URL WANT: `SELECT 1` sent with HOW's credentials is refused: HTTP status WANT (a
# pattern), and no query is started (no nextUri in the answer).
refused() {
  local code
  code=$(trino_call "$1" "$2/v1/statement" "$work/refused.json" --data 'SELECT 1')
  echo "$1 at $2: HTTP $code $(head -c 200 "$work/refused.json" | tr '\n' ' ')" >&2
  [[ $code =~ ^($3)$ ]] && [ -z "$(field "$work/refused.json" nextUri)" ]
}
# A wrong password is refused (401) while the same request with hap's right password is taken (and
# cancelled): Trino without password authentication also answers 401 to any password ("Password not
# allowed for insecure authentication"), so only the pair shows that the password is what is checked.
wrong_password_refused() {
  local next
  refused wrong "$TRINO_URL" 401 || return 1
  [ "$(trino_call right "$TRINO_URL/v1/statement" "$work/accepted.json" --data 'SELECT 1')" = 200 ] || return 1
  next=$(field "$work/accepted.json" nextUri)
  [ -n "$next" ] && trino_call right "$next" /dev/null -X DELETE > /dev/null
}
# The right password: the query starts, and its pages (nextUri, with the same credentials) end with
# the one row [[1]] and no error.
right_password_runs() {
  local code next data= i
  code=$(trino_call right "$TRINO_URL/v1/statement" "$work/page.json" --data 'SELECT 1')
  [ "$code" = 200 ] || { echo "HTTP $code" >&2; return 1; }
  for i in $(seq 300); do
    data+=$(field "$work/page.json" data)
    next=$(field "$work/page.json" nextUri)
    [ -n "$next" ] || break
    [ "$(trino_call right "$next" "$work/page.json")" = 200 ] || { echo "HTTP error following nextUri" >&2; return 1; }
    sleep 0.1
  done
  echo "SELECT 1 as hap: data $data, error '$(field "$work/page.json" error | head -c 200)'" >&2
  [ "$data" = '[[1]]' ] && [ -z "$(field "$work/page.json" error)" ]
}
trino_http=http://127.0.0.1:$trino_http_port
check "Trino refuses a query over HTTPS without credentials (401)" refused none "$TRINO_URL" 401
check "Trino refuses a query over HTTPS with a wrong password (401), takes the right one" wrong_password_refused
# Plain HTTP is for the nodes' signed calls: Trino answers 403 "Authentication over HTTP is not
# enabled" to anything else, a password included.
check "Trino refuses a query over plain HTTP with a user header only (403)" refused none "$trino_http" 403
check "Trino refuses hap's right password over plain HTTP (403)" refused right "$trino_http" 403
check "Trino runs a query over HTTPS with hap's password" right_password_runs

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
dashboard_no_secret() {
  local secret
  for secret in "$SUPERSET_ADMIN_PASSWORD" "$trino_password"; do
    absent "$secret" "$work/dashboard.out" "$work/dashboard2.out" "$work/dashboard.err" || return 1
  done
}
check "dashboard prints no secret" dashboard_no_secret
check "the dashboard holds both charts in its layout" "$py" "$here/checks.py" dashboard layout
check "each chart's data endpoint returns rows through Trino" "$py" "$here/checks.py" dashboard data
check "the daily-AQI chart's rows equal the same query through Trino" "$py" "$here/checks.py" dashboard daily

# After every component has run queries: still no secret in a log, nor in what the test's clients
# printed.
check "no secret in a log after the queries" no_secrets_written "$work/trino-cli.err" "$work/tables.out" \
  "$work/dashboard.err" "$work/dashboard.out"

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
  ! ss -Hltn | grep -qE "127\.0\.0\.1:($(echo "${TRINO_URL##*:} $trino_http_port ${SUPERSET_URL##*:} ${S3_ENDPOINT##*:}" | tr ' ' '|'))\b" && [ $left -eq 0 ]
}
check "down leaves no process and no listener behind" nothing_left
finish
