#!/usr/bin/env bash
# Jupyter start: from `kubectl apply` of a HapContainer to Jupyter's /api/status answering 200 with
# the workspace's token through its NodePort Service, with the image already in the node, on the
# local cluster (scripts/cluster.sh; started when it is not running, and brought down again), as root.
# Not part of the test command.
#
#   bench/jupyter-start.sh [RUNS]      (default 10)
#
# The operator is installed from deploy/ in a fresh namespace, as the tests install it. Each run
# applies one workspace (an ephemeral home volume, so that no volume provisioning is timed), times it
# and deletes it. The steps, each from the end of the one before, as seen by a watch on the pod
# (times are when this script saw each change):
#   operator    apply to the pod object made;
#   scheduled   to the pod bound to the node;
#   started     to its container running (sandbox, mounts, container start);
#   ready       to its readiness probe passing (Jupyter's start, and the probe's period);
#   routed      to Jupyter answering through the Service (endpoints and kube-proxy).
# It prints each run, then the median and max of every step and of the total.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../testing/cluster/checks.sh
. "$repo/testing/cluster/checks.sh"
runs=${1:-10}
case $runs in '' | *[!0-9]* | 0) echo "usage: bench/jupyter-start.sh [RUNS]   (a positive count; default 10)" >&2; exit 2 ;; esac
cluster_test jupyter-start

up_and_load hap-operator:0.1.0 hap-workspace:0.1.0
phase "operator"
fresh_namespace hap-jupyter-start
install_operator
[ "$failed" = 0 ] || finish
node_ip=$(kubectl get nodes -o 'jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address}')

phase "runs"
results=$tmp/results
for i in $(seq "$runs"); do
  name=js-$i
  python3 - "$repo/bench/lib" "$kubectl_bin" "$name" "$node_ip" >>"$results" <<'PY' || fail_now "run $i did not answer within 300 s"
import base64, json, subprocess, sys, threading, time, urllib.request

sys.path.insert(0, sys.argv[1])
from start_times import ready, watch

kubectl, name, node_ip = sys.argv[2:5]
pod = f"{name}-happod"
seen = {}

def note(step):
    seen.setdefault(step, time.monotonic())

def on_pod(p):
    note("operator")
    if p.get("spec", {}).get("nodeName"):
        note("scheduled")
    status = p.get("status", {})
    if any("running" in c.get("state", {}) for c in status.get("containerStatuses", [])):
        note("started")
    if ready(status):
        note("ready")
        return True

threading.Thread(target=watch, args=(kubectl, ["pods", "--field-selector", f"metadata.name={pod}"], on_pod),
                 daemon=True).start()
time.sleep(0.5)  # the watch is open before the apply
manifest = f"""apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata: {{name: {name}}}
spec:
  size: 1
  image: hap-workspace:0.1.0
  imagePullPolicy: IfNotPresent
  volume: {{ephemeral: true}}
"""
start = time.monotonic()
subprocess.run([kubectl, "apply", "-f", "-"], input=manifest, text=True, check=True, capture_output=True)

def get(*args):
    out = subprocess.run([kubectl, "get", *args], text=True, capture_output=True)
    return out.stdout.strip()

port = token = ""
while time.monotonic() - start < 300:
    port = port or get("service", f"{name}-hapservice", "-o", "jsonpath={.spec.ports[?(@.name=='jupyter')].nodePort}")
    token = token or base64.b64decode(get("secret", f"{name}-jupyter", "-o", "jsonpath={.data.token}") or "").decode()
    if port and token:
        try:
            url = f"http://{node_ip}:{port}/api/status"
            req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
            if urllib.request.urlopen(req, timeout=2).status == 200:
                break
        except OSError:
            pass
    time.sleep(0.1)
else:
    sys.exit(1)
seen["routed"] = time.monotonic()
steps, last = {}, start
for step in ("operator", "scheduled", "started", "ready", "routed"):
    at = seen.get(step, last)
    steps[step] = round(max(at - last, 0.0), 2)
    last = max(at, last)
steps["total"] = round(seen["routed"] - start, 2)
print(json.dumps(steps))
PY
  echo "run $i: $(tail -1 "$results")"
  kubectl delete hapcontainer "$name" --wait=true --timeout=120s >/dev/null
  # The next run starts with the pod gone, not terminating beside it.
  eventually 120 bash -c "! '$kubectl_bin' get pod '$name-happod' >/dev/null 2>&1" || fail_now "run $i's pod was not deleted"
done

test_report() {
  [ ! -s "$results" ] || python3 "$repo/bench/lib/start_times.py" report "$results" "Jupyter start (seconds)" 2 \
    operator scheduled started ready routed total
}
check "all $runs runs answered" test "$(wc -l <"$results")" = "$runs"
finish
