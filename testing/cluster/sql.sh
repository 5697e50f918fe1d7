#!/usr/bin/env bash
# The SQL stack on the local cluster (scripts/cluster.sh), from one HapQuery, as root: the operator
# (its Deployment's pod from hap-operator:0.1.0, with deploy/role.yaml only) runs MariaDB, the Hive
# metastore, Trino (a coordinator and a worker) and Superset from the images built here (hap-mariadb,
# hap-metastore, hap-trino, hap-superset), over a real S3 server (versitygw) on the host's end of the
# cluster's veth, 198.18.0.1. The air-quality job writes its tables into the bucket; its tables.sql
# runs through the Trino Service, and the daily-AQI rows that come back through it equal the job's own
# Parquet files. The air-quality dashboard is provisioned with the documented command
# (`kubectl exec deploy/NAME-superset -- hap-air-quality-dashboard`), and its charts' data, asked of
# Superset through its NodePort, comes through Trino. A second HapQuery, whose metastore database
# refuses its password, shows the schema's failure as a condition and an event.
#
# A cluster that runs already is reused and left running; one this script starts it brings down at
# the end, unless KEEP_CLUSTER=1. The CRDs are applied only when the cluster has none, and then deleted.
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
# check, eventually, phase, start_s3, cluster_test, up_and_load, fresh_namespace
# shellcheck source=checks.sh
. "$repo/testing/cluster/checks.sh"
cluster_test sql
versitygw=${HAP_VERSITYGW:-$cache/sql-stack/versitygw/bin/versitygw}
py=$cache/sql-stack/superset-venv/bin/python
# shellcheck source=../../scripts/lib/release.sh
. "$repo/scripts/lib/release.sh"
host_ip=198.18.0.1 # the host's end of the cluster's veth: the only host address pods reach
bucket=hap-sql hq=air schema=air_quality
images=(hap-operator:0.1.0 hap-mariadb:0.1.0 hap-metastore:0.1.0 hap-trino:0.1.0 hap-superset:0.1.0 hap-workspace:0.1.0)
[ -x "$versitygw" ] && [ -x "$py" ] || "$repo/scripts/sql-stack.sh" install >/dev/null

forward="" metrics_forward=""
outsider=""
test_cleanup() {
  [ -z "$outsider" ] || kubectl delete namespace "$outsider" --ignore-not-found --wait=false >/dev/null 2>&1
  [ -z "$forward" ] || kill "$forward" 2>/dev/null
  [ -z "$metrics_forward" ] || kill "$metrics_forward" 2>/dev/null
}

# --- 1. The cluster and the images ---------------------------------------------------------------
up_and_load "${images[@]}"
fresh_namespace hap-sql

# --- 2. A real S3 server where pods reach it, and the job's tables in it -------------------------
phase "S3 server and the job's tables"
mkdir -p "$tmp/s3/$bucket" # versitygw serves each directory as a bucket
start_s3 "$tmp/s3" || fail_now "no S3 server"
export S3_ENDPOINT=$s3_endpoint S3_BUCKET=$bucket AWS_ACCESS_KEY_ID=$s3_key_id AWS_SECRET_ACCESS_KEY=$s3_secret_key
release_build || fail_now "build hap-air-detection"
air=$release/release/hap-air-detection
export AWS_REGION=us-east-1 HAP_S3_PATH_STYLE=true AWS_ENDPOINT_URL=$S3_ENDPOINT
check "readings generated into the bucket" "$air" generate --sensors 40 --days 5 --output "s3://$bucket/readings/"
check "the air-quality job runs S3 to S3" bash -c '"$1" --input "s3://$2/readings/" --output "s3://$2/detections/" --sql-schema "$3" > "$4" 2> "$5"' \
  _ "$air" "$bucket" "$schema" "$tmp/summary.json" "$tmp/job.err"
check "the job wrote tables.sql next to its tables" test -s "$tmp/s3/$bucket/detections/tables.sql"

# --- 3. The operator and the HapQuery ------------------------------------------------------------
phase "operator installed"
install_operator
kubectl create secret generic s3-keys --from-env-file=<(printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' \
  "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY") >/dev/null
# Shared with the namespace's HAP resources, as the shared-namespace install asks.
kubectl label secret s3-keys hap.cloudian.com/allow-reference=true >/dev/null

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
    gracefulShutdownSeconds: 5
    coordinator: {resources: $(small 1280Mi)}
    worker: {resources: $(small 1280Mi)}
  dashboard: {kind: superset, image: 'hap-superset:0.1.0', resources: $(small 1Gi)}
EOF
check "kubectl apply -f hapquery.yaml" bash -c "'$kubectl_bin' apply -f '$tmp/hapquery.yaml' >/dev/null"
phase_of() { kubectl get hapquery "$hq" -o jsonpath='{.status.phase}'; }
running() { [ "$(phase_of)" = Running ]; }
t=$SECONDS
if eventually 600 running; then
  echo "ok    the HapQuery is Running ($((SECONDS - t)) s from apply: MariaDB, schema, metastore, Trino, Superset)"
  passed=$((passed + 1))
else
  echo "FAIL  the HapQuery is Running (phase $(phase_of))"
  failed=$((failed + 1))
  kubectl get hapquery "$hq" -o jsonpath='{range .status.conditions[*]}{.type}: {.reason}: {.message}{"\n"}{end}'
  kubectl get pods,jobs
  finish
fi
conditions() { kubectl get hapquery "$hq" -o jsonpath='{range .status.conditions[*]}{.type}={.reason} {end}'; }
check "each condition says why: $(conditions)" bash -c '[ "$1" = "Database=Ready Metastore=Ready Trino=Ready Dashboard=Ready " ]' _ "$(conditions)"
check "the schema Job succeeded" bash -c "[ \"\$('$kubectl_bin' get job $hq-metastore-schema -o jsonpath='{.status.succeeded}')\" = 1 ]"
trino_url=$(kubectl get hapquery "$hq" -o jsonpath='{.status.trinoUrl}')
check "status.trinoUrl is the coordinator's HTTPS Service port" test "$trino_url" = "https://$hq-trino-coordinator.$ns.svc:8443"
status_names() { kubectl get hapquery "$hq" -o jsonpath='{.status.trinoUsersSecret} {.status.caConfigMap}'; }
check "the status names the users' Secret and the CA's ConfigMap" bash -c '[ "$1" = "$2-trino-users $2-ca" ]' _ "$(status_names)" "$hq"
# The generated credentials and the CA, as a client outside the stack gets them.
trino_password=$(kubectl get secret "$hq-trino-users" -o jsonpath='{.data.hap}' | base64 -d)
trino_admin_password=$(kubectl get secret "$hq-trino-users" -o jsonpath='{.data.admin}' | base64 -d)
shared_secret=$(kubectl get secret "$hq-trino-internal" -o jsonpath='{.data.shared-secret}' | base64 -d)
kubectl get configmap "$hq-ca" -o jsonpath='{.data.ca\.crt}' > "$tmp/ca.crt"
# As checks.py reads it (the loopback stack's interface): a file only this user may read.
(umask 077 && printf '%s\n' "$trino_password" > "$tmp/trino-password")
generated() { [ ${#trino_password} -ge 32 ] && [ ${#trino_admin_password} -ge 32 ] && [ ${#shared_secret} -ge 32 ] && [ "$trino_password" != "$trino_admin_password" ]; }
check "the users' passwords and the shared secret were generated" generated
check "the CA ConfigMap holds a certificate" grep -q "BEGIN CERTIFICATE" "$tmp/ca.crt"

# --- 4. The air-quality tables through the Trino Service --------------------------------------
phase "queries through Trino"
# The Trino CLI in the coordinator's pod, talking to the Service by name over HTTPS (cluster DNS,
# then kube-proxy to a ready Trino pod), as a client in the cluster would: the user hap, its password
# from the container's environment, the certificate checked against the CA.
trino() {
  kubectl exec -i "deploy/$hq-trino-coordinator" -c trino -- \
    trino --server "$trino_url" --truststore-path /etc/trino/tls/ca.crt --user hap --password \
    --catalog hive --schema "$schema" "$@" 2>>"$tmp/trino.err"
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
kubectl port-forward "svc/$hq-trino-coordinator" "$forward_port:8443" >"$tmp/forward.log" 2>&1 &
forward=$!
forward_open() { python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$forward_port"; }
eventually 30 forward_open
trino_checks() {
  TRINO_URL=https://127.0.0.1:$forward_port TRINO_USER=hap TRINO_PASSWORD_FILE=$tmp/trino-password TRINO_CA=$tmp/ca.crt \
    TRINO_CATALOG=hive TRINO_SCHEMA=$schema "$py" testing/sql-stack/checks.py "$@"
}
check "daily-AQI rows through Trino equal the job's Parquet files" trino_checks rows detections
t=$(date +%s%N)
trino --execute 'SELECT "date", max(aqi) FROM air_aqi_daily GROUP BY 1 ORDER BY 1' > /dev/null
echo "measure daily_aqi_query_through_the_service_s=$(awk -v a="$t" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }') (kubectl exec included)"

# --- 5. The air-quality dashboard in Superset -----------------------------------------------------
phase "network"
# A pod of another namespace (Superset's image, for its Python) tries each server; the node, which
# NetworkPolicies do not hold back, shows each listens on its pod's address, so a refusal is the policy's.
outsider="hap-outsider-$RANDOM"
kubectl create namespace "$outsider" >/dev/null
kubectl -n "$outsider" run probe --image=hap-superset:0.1.0 --image-pull-policy=Never --restart=Never \
  --command -- sleep 3600 >/dev/null
ready_probe() { kubectl -n "$outsider" wait --for=condition=Ready pod/probe --timeout=120s >/dev/null; }
check "a pod in another namespace runs" ready_probe
ip_of() { kubectl get pods -l "app.kubernetes.io/instance=$hq,app.kubernetes.io/component=$1" -o jsonpath='{.items[0].status.podIP}'; }
probe() { # FROM(node|outsider) IP PORT
  local code="import socket; socket.create_connection(('$2', $3), timeout=3)"
  if [ "$1" = node ]; then nsenter --net=/run/netns/hap-cluster python3 -c "$code"
  else kubectl -n "$outsider" exec probe -- python3 -c "$code"; fi >/dev/null 2>&1
}
closed() { ! probe outsider "$1" "$2"; }
# And a pod of this very namespace that is none of the stack's components: the policies name their
# peers, not the whole namespace.
kubectl run neighbour --image=hap-superset:0.1.0 --image-pull-policy=Never --restart=Never \
  --command -- sleep 3600 >/dev/null
ready_neighbour() { kubectl wait --for=condition=Ready pod/neighbour --timeout=120s >/dev/null; }
check "a pod of this namespace outside the stack runs" ready_neighbour
neighbour_closed() { ! kubectl exec neighbour -- python3 -c "import socket; socket.create_connection(('$1', $2), timeout=3)" >/dev/null 2>&1; }
for server in "database 3306" "metastore 9083" "trino-coordinator 8443" "trino-coordinator 8080" "trino-worker 8080"; do
  set -- $server
  ip=$(ip_of "$1")
  check "the $1 answers on $ip:$2 from the node" probe node "$ip" "$2"
  check "... and refuses the other namespace's pod (NetworkPolicy)" closed "$ip" "$2"
  check "... and this namespace's pod that is none of its peers" neighbour_closed "$ip" "$2"
done
kubectl delete pod neighbour --grace-period=1 >/dev/null
allow_outsider() { kubectl patch hapquery "$hq" --type=merge -p "{\"spec\":{\"trino\":{\"allowedNamespaces\":[\"$outsider\"]}}}" >/dev/null; }
check "spec.trino.allowedNamespaces names the other namespace" allow_outsider
check "... and its pod reaches Trino's coordinator on its HTTPS port" eventually 60 probe outsider "$(ip_of trino-coordinator)" 8443
check "... and still not its internal port" closed "$(ip_of trino-coordinator)" 8080
check "... and still not MariaDB" closed "$(ip_of database)" 3306
check "... nor the metastore" closed "$(ip_of metastore)" 9083
check "Trino still answers a query its worker runs (its pods reach each other and the metastore)" count_matches aqi_daily

phase "authentication"
# The admitted namespace's pod queries Trino by its Service's name, with the CA copied in (as a BI
# tool would hold it): each way without the right credentials is refused, then the right one works.
kubectl -n "$outsider" exec -i probe -- sh -c 'cat > /tmp/ca.crt' < "$tmp/ca.crt"
# A request to Trino's HTTPS Service as USER (METHOD PATH BODY), the password (if any) on standard
# input, never on a command line; prints the HTTP status.
trino_request='
import base64, ssl, sys, urllib.error, urllib.request
url, method, path, body, user = sys.argv[1:6]
password = sys.stdin.readline().strip()
headers = {"X-Trino-User": user, "Content-Type": "application/json"}
if password:
    headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
request = urllib.request.Request(url + path, data=body.encode(), headers=headers, method=method)
try:
    print(urllib.request.urlopen(request, context=ssl.create_default_context(cafile="/tmp/ca.crt"), timeout=20).status)
except urllib.error.HTTPError as e:
    print(e.code)
'
outsider_request() { # METHOD PATH BODY USER PASSWORD -> the HTTP status
  printf '%s\n' "$5" | kubectl -n "$outsider" exec -i probe -- \
    python3 -c "$trino_request" "https://$hq-trino-coordinator.$ns.svc:8443" "$1" "$2" "$3" "$4"
}
status_is() { [ "$(outsider_request POST /v1/statement 'SELECT 1' "$2" "$3")" = "$1" ]; }
check "a query without a password is refused (401)" status_is 401 hap ""
check "a query with a wrong password is refused (401)" status_is 401 hap "x$trino_password"
check "a query as hap with its password is accepted (200), the certificate checked against the CA" \
  status_is 200 hap "$trino_password"
# ACTIVE, not SHUTTING_DOWN: were the rule missing, the coordinator would answer without stopping.
hap_state_forbidden() { [ "$(outsider_request PUT /v1/info/state '"ACTIVE"' hap "$trino_password")" = 403 ]; }
check "hap may not change the coordinator's state (403: only admin may)" hap_state_forbidden
# Plain HTTP: from the node (no NetworkPolicy there) to each node port, a user header and no signature.
node_http() { # IP PORT METHOD PATH BODY -> the HTTP status
  nsenter --net=/run/netns/hap-cluster curl -s -o /dev/null -w '%{http_code}' -X "$3" -H 'X-Trino-User: hap' \
    -H 'Content-Type: application/json' -d "$5" "http://$1:$2$4"
}
refused_4xx() { local code; code=$(node_http "$@"); echo "      HTTP $code"; [ "$code" -ge 400 ] && [ "$code" -lt 500 ]; }
coordinator_ip=$(ip_of trino-coordinator) worker_ip=$(ip_of trino-worker)
check "a query over plain HTTP on the coordinator's internal port is refused" \
  refused_4xx "$coordinator_ip" 8080 POST /v1/statement 'SELECT 1'
check "a worker refuses PUT /v1/info/state without the shared secret's signature" \
  refused_4xx "$worker_ip" 8080 PUT /v1/info/state '"SHUTTING_DOWN"'
worker_state() { nsenter --net=/run/netns/hap-cluster curl -s "http://$worker_ip:8080/v1/info/state"; }
still_active() { [ "$(worker_state)" = '"ACTIVE"' ]; }
check "... and is still ACTIVE" still_active
kubectl delete namespace "$outsider" --wait=false >/dev/null && outsider=""
# The worker's own preStop signs its request with the shared secret: run as the kubelet runs it,
# Trino accepts it, drains and exits, and the container restarts.
worker_restarts() {
  kubectl get pods -l "app.kubernetes.io/instance=$hq,app.kubernetes.io/component=trino-worker" \
    -o jsonpath='{.items[0].status.containerStatuses[0].restartCount}'
}
restarts_before=$(worker_restarts)
prestop=$(kubectl get deploy "$hq-trino-worker" -o jsonpath='{.spec.template.spec.containers[0].lifecycle.preStop.exec.command[2]}')
kubectl exec "deploy/$hq-trino-worker" -c trino -- sh -c "$prestop" >/dev/null 2>&1 || true
worker_restarted() { [ "$(worker_restarts)" -gt "$restarts_before" ]; }
check "the worker's signed preStop shut it down gracefully (its container restarted)" eventually 90 worker_restarted
check "... and the coordinator sees it again" eventually 180 workers_seen

phase "a workspace's client"
# A workspace of this namespace queries Trino as hap over HTTPS, with no setting of its own: the image
# trusts the operator's CA the operator mounts in it. Run through the image's entrypoint, as Jupyter
# and its kernels are (a bare `kubectl exec` does not pass through it).
cat > "$tmp/analyst.yaml" <<EOF
apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata: {name: analyst}
spec:
  image: hap-workspace:0.1.0
  imagePullPolicy: IfNotPresent
  resources: {requests: {cpu: 100m, memory: 512Mi}}
EOF
check "kubectl apply -f analyst.yaml (a workspace)" bash -c "'$kubectl_bin' apply -f '$tmp/analyst.yaml' >/dev/null"
analyst_ready() { kubectl wait --for=condition=Ready pod/analyst-happod --timeout=10s >/dev/null 2>&1; }
check "the workspace pod is ready" eventually 240 analyst_ready
workspace_query='
import base64, json, ssl, sys, urllib.request
url, password = sys.argv[1], sys.stdin.readline().strip()
auth = "Basic " + base64.b64encode(f"hap:{password}".encode()).decode()
headers = {"Authorization": auth, "X-Trino-User": "hap"}
request = urllib.request.Request(url + "/v1/statement", data=b"SELECT 42", headers=headers)
context = ssl.create_default_context()
page = json.load(urllib.request.urlopen(request, context=context, timeout=30))
while "nextUri" in page and "data" not in page:
    page = json.load(urllib.request.urlopen(urllib.request.Request(page["nextUri"], headers=headers), context=context, timeout=30))
print(page.get("data"))
'
workspace_sql() { # [HAP_CA value] -> what the query printed, or its error
  printf '%s\n' "$trino_password" | kubectl exec -i analyst-happod -c workspace -- \
    env ${1:+HAP_CA=$1} hap-entrypoint python3 -c "$workspace_query" "$trino_url" 2>&1
}
answers_42() { local out; out=$(workspace_sql); echo "      $out"; [ "$(tail -1 <<<"$out")" = "[[42]]" ]; }
check "the workspace queries Trino as hap over HTTPS, trusting the mounted CA" answers_42
untrusted() {
  local out; out=$(workspace_sql /nonexistent)
  grep -m1 -o "CERTIFICATE_VERIFY_FAILED.*" <<<"$out" | cut -c1-120 | sed 's/^/      /'
  grep -q "CERTIFICATE_VERIFY_FAILED" <<<"$out"
}
check "... and without the CA the same query fails the certificate check" untrusted
kubectl delete hapcontainer analyst --wait=false >/dev/null

phase "the dashboard"
# The documented command, in the Superset pod; it prints the dashboard's address on that server.
provision() {
  kubectl exec "deploy/$hq-superset" -c superset -- hap-air-quality-dashboard > "$1" 2>> "$tmp/dashboard.err" ||
    { tail -5 "$tmp/dashboard.err"; return 1; }
  [ "$(cat "$1")" = "DASHBOARD_URL=http://127.0.0.1:8088/superset/dashboard/air-quality/" ]
}
t=$SECONDS
check "hap-air-quality-dashboard provisions the dashboard" provision "$tmp/dashboard.out"
echo "measure dashboard_provisioning_s=$((SECONDS - t)) (kubectl exec included)"
check "a second run prints the same" provision "$tmp/dashboard2.out"
# Superset from outside the cluster, as a browser reaches it: the node's port in status.dashboardUrl.
dashboard_url=$(kubectl get hapquery "$hq" -o jsonpath='{.status.dashboardUrl}')
check "status.dashboardUrl is a node's port: $dashboard_url" bash -c '[[ $1 =~ ^http://[0-9.]+:3[0-9]{4}/$ ]]' _ "$dashboard_url"
admin_password=$(kubectl get secret "$hq-superset" -o jsonpath='{.data.admin-password}' | base64 -d)
# Assignments before the command, not `env NAME=...`: the password then stays out of every argv.
superset_checks() {
  SUPERSET_URL=${dashboard_url%/} SUPERSET_ADMIN_USER=admin SUPERSET_ADMIN_PASSWORD=$admin_password \
    TRINO_URL=https://127.0.0.1:$forward_port TRINO_USER=hap TRINO_PASSWORD_FILE=$tmp/trino-password TRINO_CA=$tmp/ca.crt \
    TRINO_CATALOG=hive TRINO_SCHEMA=$schema "$py" testing/sql-stack/checks.py "$@"
}
check "the dashboard holds both charts, through the NodePort" superset_checks dashboard layout
check "a second run duplicated nothing" superset_checks dashboard unique
check "each chart's data comes through Trino" superset_checks dashboard data
check "the daily-AQI chart's rows equal the same query through Trino" superset_checks dashboard daily

phase "database users"
# Each user may use its own database only: signed in on MariaDB's pod, over TCP as a client comes,
# the password on standard input.
hive_password=$(kubectl get secret "$hq-mariadb" -o jsonpath='{.data.password}' | base64 -d)
dashboard_db_password=$(kubectl get secret "$hq-mariadb-superset" -o jsonpath='{.data.password}' | base64 -d)
db_query() { # USER PASSWORD SQL -> what MariaDB answers
  printf '%s\n' "$2" | kubectl exec -i "$hq-mariadb-0" -c mariadb -- \
    sh -c 'read -r MYSQL_PWD; export MYSQL_PWD; mariadb -h 127.0.0.1 -u "$1" -N -e "$2"' _ "$1" "$3" 2>&1
}
denied() { local out; out=$(db_query "$@"); echo "      ${out%%$'\n'*}"; grep -q "denied" <<<"$out"; }
check "superset reads its own database" bash -c '[ "$1" -gt 0 ]' _ "$(db_query superset "$dashboard_db_password" 'SELECT count(*) FROM superset.ab_user' 2>/dev/null || echo 0)"
check "superset may not read the metastore's database" denied superset "$dashboard_db_password" 'SELECT count(*) FROM metastore.DBS'
check "hive may not read Superset's database" denied hive "$hive_password" 'SELECT count(*) FROM superset.ab_user'
check "hive reads the metastore's database" bash -c '[ "$1" -gt 0 ]' _ "$(db_query hive "$hive_password" 'SELECT count(*) FROM metastore.DBS' 2>/dev/null || echo 0)"

# --- 6. An operator restart changes nothing ---------------------------------------------------------
phase "operator restart"
# The database's pod and claim, and every child's generation, before and after a new operator pod has
# reconciled the HapQuery: the same objects, and the tables still in the metastore.
children_state() {
  kubectl get pod "$hq-mariadb-0" -o jsonpath='{.metadata.uid}{" "}' &&
    kubectl get pvc "data-$hq-mariadb-0" -o jsonpath='{.metadata.uid}{" "}' &&
    kubectl get statefulsets,deployments,jobs -l "app.kubernetes.io/instance=$hq" \
      -o jsonpath='{range .items[*]}{.kind}/{.metadata.name}={.metadata.uid}/{.metadata.generation} {end}'
}
before=$(children_state)
kubectl rollout restart deployment/hap-operator >/dev/null
check "the operator's Deployment rolled" kubectl rollout status deployment/hap-operator --timeout=180s
# A resync of a settled HapQuery writes nothing, so the new pod's own count of reconciles (its
# metrics, through a port-forward) is what shows that it has reconciled this one, the namespace's only.
metrics_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
new_operator=$(kubectl get pods -l app.kubernetes.io/name=hap-operator --sort-by=.metadata.creationTimestamp -o name | tail -1)
kubectl port-forward "$new_operator" "$metrics_port:8080" >"$tmp/metrics-forward.log" 2>&1 &
metrics_forward=$!
reconciled_by_new_operator() {
  python3 - "$metrics_port" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
done = [float(l.split()[-1]) for l in text.splitlines() if l.startswith('hap_operator_reconciles_total{result="success"}')]
sys.exit(0 if done and done[0] >= 1 else 1)
EOF
}
check "the new operator pod reconciled the HapQuery (its metrics)" eventually 120 reconciled_by_new_operator
kill "$metrics_forward" 2>/dev/null
check "MariaDB's pod and claim, and every child (uid and generation), are what they were" bash -c '[ "$1" = "$2" ]' _ "$before" "$(children_state)"
check "the three tables are still in the metastore" three_tables
check "the HapQuery is still Running" running

# --- 7. What each component uses ------------------------------------------------------------------
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

# --- 8. A schema that cannot be made: a condition and an event, the operator unmoved -------------
phase "schema failure"
# The same MariaDB as an external database, with a password it refuses: the schema Job's first attempt
# fails, and the Metastore condition says so while the Job retries.
kubectl create secret generic wrong-db --from-literal=username=hive --from-literal=password=not-the-password >/dev/null
kubectl label secret wrong-db hap.cloudian.com/allow-reference=true >/dev/null
cat > "$tmp/broken.yaml" <<EOF
apiVersion: hap.cloudian.com/v1alpha1
kind: HapQuery
metadata: {name: broken}
spec:
  s3: {endpoint: '$S3_ENDPOINT', region: us-east-1, bucket: $bucket, pathStyle: true, credentialsSecret: {name: s3-keys}}
  database: {external: {kind: mariadb, host: $hq-mariadb, credentialsSecret: {name: wrong-db}}}
  metastore: {image: 'hap-metastore:0.1.0', resources: $(small 768Mi)}
  trino: {image: 'hap-trino:0.1.0', workers: 0}
  dashboard: {kind: none}
EOF
check "kubectl apply -f broken.yaml" bash -c "'$kubectl_bin' apply -f '$tmp/broken.yaml' >/dev/null"
metastore_reason() { kubectl get hapquery broken -o jsonpath='{.status.conditions[?(@.type=="Metastore")].reason}'; }
schema_failed() { [ "$(metastore_reason)" = SchemaInitFailed ]; }
t=$SECONDS
check "the Metastore condition is SchemaInitFailed" eventually 300 schema_failed
echo "measure schema_failure_reported_s=$((SECONDS - t))"
kubectl get hapquery broken -o jsonpath='{.status.conditions[?(@.type=="Metastore")].message}' > "$tmp/broken.message"
check "its message names the retry and the logs command: $(cat "$tmp/broken.message")" \
  grep -q "being retried: .*kubectl logs -n $ns broken-metastore-schema-" "$tmp/broken.message"
warning_event() {
  kubectl get events --field-selector "involvedObject.kind=HapQuery,involvedObject.name=broken,type=Warning" \
    -o jsonpath='{range .items[*]}{.reason}{"\n"}{end}' | grep -qx SchemaInitFailed
}
check "a Warning event SchemaInitFailed about the HapQuery" eventually 60 warning_event
# The Job retries (the kubelet's back-off doubles from 10 s): through the next attempt, sampled every
# 2 s until the container has restarted at least once more, the condition stays as it is rather than
# turning back to InitializingSchema while the attempt runs.
schema_restarts() {
  kubectl get pods -l app.kubernetes.io/instance=broken,app.kubernetes.io/component=metastore \
    -o jsonpath='{.items[*].status.containerStatuses[*].restartCount}'
}
# A sample the API did not answer (an empty reason) is skipped; any other reason fails.
same_failure() {
  local reason
  reason=$(metastore_reason) || return 0
  [ -z "$reason" ] || [ "$reason" = SchemaInitFailed ] || { echo "      $1: $reason"; return 1; }
}
steady_failure() {
  local first now samples=0 deadline=$((SECONDS + 330))
  first=$(schema_restarts)
  while [ $SECONDS -lt $deadline ]; do
    same_failure "sample $samples" || return 1
    samples=$((samples + 1))
    now=$(schema_restarts)
    if [ -n "$now" ] && [ "$now" != "$first" ]; then
      sleep 4 # the new attempt runs, or has failed again
      same_failure "after the restart" || return 1
      echo "      $samples samples, restarts $first, then $now"
      return 0
    fi
    sleep 2
  done
  echo "      no restart within 330 s"
  return 1
}
check "SchemaInitFailed stays through the Job's next attempts" steady_failure
check "the phase is Degraded" bash -c '[ "$("$1" get hapquery broken -o jsonpath="{.status.phase}")" = Degraded ]' _ "$kubectl_bin"
restarts() { kubectl get pods -l app.kubernetes.io/name=hap-operator -o jsonpath='{.items[*].status.containerStatuses[*].restartCount}'; }
check "the operator never restarted" bash -c '[ "$1" = 0 ]' _ "$(restarts)"
check "the first HapQuery is still Running" running

# --- 9. Nothing secret in what the operator wrote, for either HapQuery --------------------------
phase "no secret written"
# Each listing is read whole before it is searched: `kubectl ... | grep -q` could end kubectl early
# with SIGPIPE, and under pipefail a failed listing would look like "not found".
no_secret_written() {
  local secret listing
  listing=$(kubectl get configmaps,events,hapqueries -o yaml) || return 1
  for secret in "$AWS_SECRET_ACCESS_KEY" "$admin_password" not-the-password "$trino_password" \
    "$trino_admin_password" "$shared_secret" "$hive_password" "$dashboard_db_password"; do
    [ -n "$secret" ] || return 1
    ! grep -qF -- "$secret" <<<"$listing" || { echo "      found in ConfigMaps, events or HapQueries"; return 1; }
    ! grep -qF -- "$secret" "$tmp/dashboard.out" "$tmp/dashboard.err" || { echo "      found in the dashboard's output"; return 1; }
  done
}
check "the S3 key, the database, Superset and Trino passwords and Trino's shared secret are in no ConfigMap, status, event or output" no_secret_written
finish
