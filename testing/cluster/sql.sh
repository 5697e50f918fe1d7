#!/usr/bin/env bash
# The SQL stack on the local cluster (scripts/cluster.sh), from one HapQuery, as root: the operator
# (its Deployment's pod from hap-operator:0.1.0, with deploy/role.yaml only) runs MariaDB, the Hive
# metastore and Trino (a coordinator and a worker) from the images built here (hap-mariadb,
# hap-metastore, hap-trino), over a real S3 server (versitygw) on the host's end of the cluster's
# veth, 198.18.0.1. The air-quality job writes its tables into the bucket; its tables.sql runs through
# the Trino Service, and the daily-AQI rows that come back through it equal the job's own Parquet files.
#
# A cluster that runs already is reused and left running; one this script starts it brings down at
# the end, unless KEEP_CLUSTER=1. The CRDs are applied only when the cluster has none, and then deleted.
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${HAP_CACHE:-$HOME/.cache/hap}
kubectl_bin=$cache/bin/kubectl
cluster=$repo/scripts/cluster.sh
versitygw=${HAP_VERSITYGW:-$cache/sql-stack/versitygw/bin/versitygw}
py=$cache/sql-stack/superset-venv/bin/python
release=${HAP_RELEASE_TARGET_DIR:-$cache/target-release}
host_ip=198.18.0.1 # the host's end of the cluster's veth: the only host address pods reach
bucket=hap-sql hq=air schema=air_quality
images=(hap-operator:0.1.0 hap-mariadb:0.1.0 hap-metastore:0.1.0 hap-trino:0.1.0)
passed=0 failed=0
t0=$SECONDS

# check, eventually, phase and phase_end
# shellcheck source=checks.sh
. "$repo/testing/cluster/checks.sh"
kubectl() { "$kubectl_bin" "$@"; }
fail_now() { echo "FAIL  $*"; failed=$((failed + 1)); finish; }

[ -x "$kubectl_bin" ] || "$repo/scripts/setup.sh" >/dev/null
[ -x "$versitygw" ] && [ -x "$py" ] || "$repo/scripts/sql-stack.sh" install >/dev/null
cd "$repo" || exit 1
tmp=$(mktemp -d "$cache/sql-test.XXXXXX")
chmod 700 "$tmp"

started=0
grep -q '^kube-apiserver: running' <<<"$("$cluster" status 2>/dev/null)" || started=1

ns="" crds_applied=0 s3_pid="" forward=""
cleanup() {
  [ -z "$forward" ] || kill "$forward" 2>/dev/null
  if [ -n "$ns" ]; then
    kubectl delete namespace "$ns" --ignore-not-found --timeout=180s >/dev/null 2>&1
  fi
  [ "$crds_applied" = 0 ] || kubectl delete -f deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml \
    -f deploy/crds/hap.cloudian.com_hapqueries_crd.yaml --ignore-not-found --timeout=120s >/dev/null 2>&1
  if [ -n "$s3_pid" ]; then kill "$s3_pid" 2>/dev/null; wait "$s3_pid" 2>/dev/null; fi
  if [ "$started" = 1 ] && [ "${KEEP_CLUSTER:-0}" != 1 ]; then "$cluster" down >/dev/null 2>&1; fi
  rm -rf "$tmp"
}
finish() {
  phase_end
  echo "times:"
  printf '  %s\n' "${times[@]}"
  echo "  total                                  $((SECONDS - t0)) s"
  trap - EXIT
  cleanup
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]; exit
}
trap 'echo "FAIL  interrupted"; failed=$((failed + 1)); finish' INT TERM
trap 'finish' EXIT

# --- 1. The cluster and the images ---------------------------------------------------------------
phase "up and load"
kc=$("$cluster" up | tail -1)
check "up prints a kubeconfig on its last line" test -f "$kc"
[ -f "$kc" ] || finish
"$repo/scripts/docker-engine.sh" >/dev/null 2>&1 # load reads the local Docker engine
check "load ${images[*]}" "$cluster" load "${images[@]}"
ns=hap-sql-$(date +%H%M%S)-$$
export KUBECONFIG=$tmp/kubeconfig
cp "$kc" "$KUBECONFIG"
kubectl create namespace "$ns" >/dev/null
kubectl config set-context --current --namespace="$ns" >/dev/null
check "a fresh namespace, $ns, is the context's" eventually 60 kubectl get serviceaccount default

# --- 2. A real S3 server where pods reach it, and the job's tables in it -------------------------
phase "S3 server and the job's tables"
mkdir -p "$tmp/s3/$bucket" # versitygw serves each directory as a bucket
start_s3 "$tmp/s3" || fail_now "no S3 server"
export S3_ENDPOINT=$s3_endpoint S3_BUCKET=$bucket AWS_ACCESS_KEY_ID=$s3_key_id AWS_SECRET_ACCESS_KEY=$s3_secret_key
(cd "$repo" && CARGO_TARGET_DIR=$release cargo build --quiet --release --locked -p hap-operator -p hap-air-detection) ||
  fail_now "build hap-air-detection"
air=$release/release/hap-air-detection
export AWS_REGION=us-east-1 HAP_S3_PATH_STYLE=true AWS_ENDPOINT_URL=$S3_ENDPOINT
check "readings generated into the bucket" "$air" generate --sensors 40 --days 5 --output "s3://$bucket/readings/"
check "the air-quality job runs S3 to S3" bash -c '"$1" --input "s3://$2/readings/" --output "s3://$2/detections/" --sql-schema "$3" > "$4" 2> "$5"' \
  _ "$air" "$bucket" "$schema" "$tmp/summary.json" "$tmp/job.err"
check "the job wrote tables.sql next to its tables" test -s "$tmp/s3/$bucket/detections/tables.sql"

# --- 3. The operator and the HapQuery ------------------------------------------------------------
phase "operator installed"
if ! kubectl get crd hapqueries.hap.cloudian.com >/dev/null 2>&1; then
  crds_applied=1
  check "the CRDs applied" bash -c "'$kubectl_bin' apply -f deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml \
    -f deploy/crds/hap.cloudian.com_hapqueries_crd.yaml >/dev/null"
  kubectl wait --for=condition=Established crd/hapqueries.hap.cloudian.com --timeout=60s >/dev/null
fi
for f in deploy/service_account.yaml deploy/role.yaml deploy/role_binding.yaml deploy/operator.yaml; do
  check "kubectl apply -f $f" bash -c "'$kubectl_bin' apply -f '$f' >/dev/null"
done
operator_running() {
  kubectl get pods --no-headers | awk '$1 ~ /^hap-operator-/ && $2 == "1/1" && $3 == "Running" {n++} END {exit n != 1}'
}
check "the operator's pod is 1/1 Running" eventually 300 operator_running
kubectl create secret generic s3-keys --from-env-file=<(printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' \
  "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY") >/dev/null

phase "HapQuery Running"
small() { echo "{requests: {cpu: 100m, memory: $1}, limits: {memory: $1}}"; }
cat > "$tmp/hapquery.yaml" <<EOF
apiVersion: hap.cloudian.com/v1alpha1
kind: HapQuery
metadata: {name: $hq}
spec:
  s3: {endpoint: '$S3_ENDPOINT', region: us-east-1, bucket: $bucket, pathStyle: true, credentialsSecret: {name: s3-keys}}
  schema: $schema
  database: {mariadb: {image: 'hap-mariadb:0.1.0', storageSize: 1Gi, keepOnDelete: false, resources: $(small 256Mi)}}
  metastore: {image: 'hap-metastore:0.1.0', resources: $(small 768Mi)}
  trino:
    image: 'hap-trino:0.1.0'
    workers: 1
    coordinator: {resources: $(small 1280Mi)}
    worker: {resources: $(small 1280Mi)}
  dashboard: {kind: none}
EOF
check "kubectl apply -f hapquery.yaml" bash -c "'$kubectl_bin' apply -f '$tmp/hapquery.yaml' >/dev/null"
phase_of() { kubectl get hapquery "$hq" -o jsonpath='{.status.phase}'; }
running() { [ "$(phase_of)" = Running ]; }
t=$SECONDS
if eventually 600 running; then
  echo "ok    the HapQuery is Running ($((SECONDS - t)) s from apply: MariaDB, schema, metastore, Trino)"
  passed=$((passed + 1))
else
  echo "FAIL  the HapQuery is Running (phase $(phase_of))"
  failed=$((failed + 1))
  kubectl get hapquery "$hq" -o jsonpath='{range .status.conditions[*]}{.type}: {.reason}: {.message}{"\n"}{end}'
  kubectl get pods,jobs
  finish
fi
conditions() { kubectl get hapquery "$hq" -o jsonpath='{range .status.conditions[*]}{.type}={.reason} {end}'; }
check "each condition says why: $(conditions)" bash -c '[ "$1" = "Database=Ready Metastore=Ready Trino=Ready Dashboard=NotRequested " ]' _ "$(conditions)"
check "the schema Job succeeded" bash -c "[ \"\$('$kubectl_bin' get job $hq-metastore-schema -o jsonpath='{.status.succeeded}')\" = 1 ]"
trino_url=$(kubectl get hapquery "$hq" -o jsonpath='{.status.trinoUrl}')
check "status.trinoUrl is the coordinator's Service" test "$trino_url" = "http://$hq-trino-coordinator.$ns.svc:8080"

# --- 4. The air-quality tables through the Trino Service --------------------------------------
phase "queries through Trino"
# The Trino CLI in the coordinator's pod, talking to the Service by name (cluster DNS, then
# kube-proxy to a ready Trino pod), as a client in the cluster would.
trino() {
  kubectl exec -i "deploy/$hq-trino-coordinator" -c trino -- \
    trino --server "$trino_url" --user hap-test --catalog hive --schema "$schema" "$@" 2>>"$tmp/trino.err"
}
workers_seen() { [ "$(trino --execute "SELECT count(*) FROM system.runtime.nodes WHERE NOT coordinator AND state = 'active'" | tr -d '"')" = 1 ]; }
check "the coordinator sees its worker" eventually 120 workers_seen
run_tables_sql() { trino < "$tmp/s3/$bucket/detections/tables.sql" > "$tmp/tables.out" || { tail -5 "$tmp/trino.err"; return 1; }; }
check "tables.sql runs through the Trino Service" run_tables_sql
three_tables() { [ "$(trino --execute 'SHOW TABLES' | tr -d '"' | LC_ALL=C sort | tr '\n' ' ')" = 'air_alerts air_aqi_daily air_hourly ' ]; }
check "the three tables exist in the metastore" three_tables
summary() { "$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["outputs"][sys.argv[2]])' "$tmp/summary.json" "$1"; }
count_matches() {
  local want got
  want=$(summary "$1")
  got=$(trino --execute "SELECT count(*) FROM air_$1" | tr -d '"')
  echo "      air_$1: Trino $got, the job's summary $want"
  [ -n "$got" ] && [ "$got" = "$want" ] && [ "$want" -gt 0 ]
}
for table in hourly aqi_daily alerts; do check "row count of air_$table through Trino equals the job's" count_matches "$table"; done
# The whole daily-AQI table, row by row, against the job's Parquet files read over S3: through a
# port-forward to the Service, with the Python client the loopback stack's checks use.
forward_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
kubectl port-forward "svc/$hq-trino-coordinator" "$forward_port:8080" >"$tmp/forward.log" 2>&1 &
forward=$!
forward_open() { python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$forward_port"; }
eventually 30 forward_open
check "daily-AQI rows through Trino equal the job's Parquet files" env TRINO_URL="http://127.0.0.1:$forward_port" \
  TRINO_CATALOG=hive TRINO_SCHEMA="$schema" "$py" testing/sql-stack/checks.py rows detections
t=$(date +%s%N)
trino --execute 'SELECT "date", max(aqi) FROM air_aqi_daily GROUP BY 1 ORDER BY 1' > /dev/null
echo "measure daily_aqi_query_through_the_service_s=$(awk -v a="$t" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }') (kubectl exec included)"

# --- 5. Nothing secret in what the operator wrote ------------------------------------------------
phase "no secret written"
no_secret_in_config() {
  ! kubectl get configmaps -o yaml | grep -qF -- "$AWS_SECRET_ACCESS_KEY" &&
    ! kubectl get hapquery "$hq" -o yaml | grep -qF -- "$AWS_SECRET_ACCESS_KEY"
}
check "the S3 secret key is in no ConfigMap and not in the status" no_secret_in_config
memory() {
  local pod bytes
  for pod in $(kubectl get pods --field-selector=status.phase=Running -o name); do
    case $pod in *hap-operator*) continue ;; esac
    bytes=$(kubectl exec "$pod" -- sh -c 'cat /sys/fs/cgroup/memory.current 2>/dev/null ||
      cat /sys/fs/cgroup/memory/memory.usage_in_bytes' 2>/dev/null) || continue
    echo "${pod#pod/} $((bytes / 1048576))"
  done
}
echo "measure memory (MiB, each pod's cgroup): $(memory | tr '\n' ';')"
finish
