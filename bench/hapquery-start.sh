#!/usr/bin/env bash
# HapQuery start: from `kubectl apply` of a HapQuery (MariaDB, the metastore, Trino with one worker,
# Superset; the resources testing/cluster/sql.sh gives them) to the first Trino query answering
# through the Trino Service, on the local cluster (scripts/cluster.sh; started when it is not
# running, and brought down again), as root, with the images already in the node. Not part of the
# test command.
#
#   bench/hapquery-start.sh [RUNS]      (default 5)
#
# The operator is installed from deploy/ in a fresh namespace, over a real S3 server (versitygw) on
# the host's end of the cluster's veth. Each run applies one HapQuery, times it and deletes it (its
# database volume with it). For each component it prints when, counted from the apply, a watch saw it
# ready (a pod Ready, a Job complete), then the HapQuery's phase Running and the first query over
# the metastore (its default schema, looked up in the hive catalog by the Trino CLI in the
# coordinator's pod, over HTTPS through the Service). Each run, then the median and max of each. Also each pod's memory (its cgroup) after the
# last run, and their total.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../testing/cluster/checks.sh
. "$repo/testing/cluster/checks.sh"
runs=${1:-5}
case $runs in '' | *[!0-9]* | 0) echo "usage: bench/hapquery-start.sh [RUNS]   (a positive count; default 5)" >&2; exit 2 ;; esac
cluster_test hapquery-start
versitygw=${HAP_VERSITYGW:-$cache/sql-stack/versitygw/bin/versitygw}
[ -x "$versitygw" ] || "$repo/scripts/sql-stack.sh" install >/dev/null
host_ip=198.18.0.1 # the host's end of the cluster's veth: the only host address pods reach
bucket=hap-start

up_and_load hap-operator:0.1.0 hap-mariadb:0.1.0 hap-metastore:0.1.0 hap-trino:0.1.0 hap-superset:0.1.0
fresh_namespace hap-query-start
mkdir -p "$tmp/s3/$bucket"
start_s3 "$tmp/s3" || fail_now "no S3 server"
install_operator
kubectl create secret generic s3-keys --from-env-file=<(printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' \
  "$s3_key_id" "$s3_secret_key") >/dev/null
kubectl label secret s3-keys hap.cloudian.com/allow-reference=true >/dev/null
[ "$failed" = 0 ] || finish

phase "runs"
results=$tmp/results
for i in $(seq "$runs"); do
  hq=q$i
  python3 - "$repo/bench/lib" "$kubectl_bin" "$hq" "$s3_endpoint" "$bucket" >>"$results" <<'PY' || fail_now "run $i: no answer from Trino within 600 s"
import json, subprocess, sys, threading, time

sys.path.insert(0, sys.argv[1])
from start_times import ready, watch

kubectl, hq, endpoint, bucket = sys.argv[2:6]
seen = {}
lock = threading.Lock()

def note(what):
    with lock:
        seen.setdefault(what, time.monotonic())

# Which component a pod or Job is, from the names the operator gives them.
def component(name):
    for part, label in (("-mariadb-", "database"), ("-metastore-schema", "schema job"),
                        ("-metastore-", "metastore"), ("-trino-coordinator-", "trino coordinator"),
                        ("-trino-worker-", "trino worker"), ("-superset-init", "dashboard init job"),
                        ("-superset-", "dashboard")):
        if name.startswith(hq) and part in name:
            return label
    return None

JOBS = ("schema job", "dashboard init job")

def noting(kind, done):
    def on_object(obj):
        label = component(obj.get("metadata", {}).get("name", ""))
        # A Job's pod is Ready while it runs: Jobs count when complete, from the Jobs' watch.
        if label and (label in JOBS) == (kind == "jobs") and done(obj.get("status", {})):
            note(label)
    return on_object

def job_complete(status):
    return bool(status.get("succeeded"))

threading.Thread(target=watch, args=(kubectl, ["pods"], noting("pods", ready)), daemon=True).start()
threading.Thread(target=watch, args=(kubectl, ["jobs"], noting("jobs", job_complete)), daemon=True).start()
time.sleep(1)  # the watches are open before the apply
small = lambda m: f"{{requests: {{cpu: 100m, memory: {m}}}, limits: {{memory: {m}}}}}"
manifest = f"""apiVersion: hap.cloudian.com/v1alpha1
kind: HapQuery
metadata: {{name: {hq}}}
spec:
  s3: {{endpoint: '{endpoint}', region: us-east-1, bucket: {bucket}, pathStyle: true, credentialsSecret: {{name: s3-keys}}}}
  schema: start
  database: {{mariadb: {{image: 'hap-mariadb:0.1.0', storageSize: 1Gi, keepOnDelete: false, resources: {small('256Mi')}}}}}
  metastore: {{image: 'hap-metastore:0.1.0', resources: {small('768Mi')}}}
  trino:
    image: 'hap-trino:0.1.0'
    workers: 1
    gracefulShutdownSeconds: 5
    coordinator: {{resources: {small('1280Mi')}}}
    worker: {{resources: {small('1280Mi')}}}
  dashboard: {{kind: superset, image: 'hap-superset:0.1.0', resources: {small('1Gi')}}}
"""
start = time.monotonic()
subprocess.run([kubectl, "apply", "-f", "-"], input=manifest, text=True, check=True, capture_output=True)

def get(*args):
    return subprocess.run([kubectl, "get", *args], text=True, capture_output=True).stdout.strip()

def first_query(url):
    out = subprocess.run(
        [kubectl, "exec", f"deploy/{hq}-trino-coordinator", "-c", "trino", "--", "trino", "--server", url,
         "--truststore-path", "/etc/trino/tls/ca.crt", "--user", "hap", "--password", "--execute",
         "SELECT count(*) FROM hive.information_schema.schemata WHERE schema_name = 'default'"],
        text=True, capture_output=True, timeout=60)
    return out.stdout.strip().strip('"') == "1"

while time.monotonic() - start < 600:
    if "running" not in seen and get("hapquery", hq, "-o", "jsonpath={.status.phase}") == "Running":
        note("running")
    url = get("hapquery", hq, "-o", "jsonpath={.status.trinoUrl}")
    if "first query" not in seen and "trino coordinator" in seen and url:
        try:
            if first_query(url):
                note("first query")
        except subprocess.TimeoutExpired:
            pass
    if "first query" in seen and "running" in seen:
        break
    time.sleep(0.5)
else:
    sys.exit(1)
print(json.dumps({k: round(v - start, 1) for k, v in sorted(seen.items(), key=lambda kv: kv[1])}))
PY
  echo "run $i: $(tail -1 "$results")"
  if [ "$i" = "$runs" ]; then
    # Each pod's memory, from its cgroup as the kubelet reports it (the working set), once the
    # kubelet's stats have caught up with the pods that just started.
    sleep 30
    kubectl get --raw "/api/v1/nodes/$(kubectl get nodes -o jsonpath='{.items[0].metadata.name}')/proxy/stats/summary" |
      python3 -c '
import json, sys
pods = [p for p in json.load(sys.stdin)["pods"] if p["podRef"]["namespace"] == sys.argv[1] and p["podRef"]["name"].startswith(sys.argv[2] + "-")]
mib = {p["podRef"]["name"]: p.get("memory", {}).get("workingSetBytes", 0) / 2**20 for p in pods}
print("memory after the last run (MiB, working set): " + ", ".join(f"{n} {m:.0f}" for n, m in sorted(mib.items())) + f"; total {sum(mib.values()):.0f}")
' "$ns" "$hq" >"$tmp/memory"
  fi
  kubectl delete hapquery "$hq" --wait=true --timeout=180s >/dev/null
  eventually 180 bash -c "[ -z \"\$('$kubectl_bin' get pods -o name | grep '/$hq-')\" ]" || fail_now "run $i's pods were not deleted"
done

test_report() {
  [ ! -s "$results" ] || python3 "$repo/bench/lib/start_times.py" report "$results" "HapQuery start (seconds from apply)" 1 \
    database "schema job" metastore "trino worker" "trino coordinator" "dashboard init job" dashboard running "first query"
  [ ! -s "$tmp/memory" ] || cat "$tmp/memory"
}
check "all $runs runs answered" test "$(wc -l <"$results")" = "$runs"
finish
