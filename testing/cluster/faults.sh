#!/usr/bin/env bash
# Control-plane faults on the local cluster (scripts/cluster.sh), as root, tried as a cluster admin
# would: the operator installed from deploy/ (leader election on, as shipped), three workspaces (one
# with Spark executors, one stopped) and, when the SQL images are in the node, a HapQuery with
# MariaDB, the metastore and Trino. Then, one after another, each with changes in flight (a new
# workspace just before the fault and one just after, a changed one, a deleted one):
#
#   1. kube-apiserver stopped for 15 s and started again;
#   2. etcd stopped for 15 s and started again;
#   3. the kubelet and containerd stopped and started again;
#   4. the operator killed (SIGKILL) twice at random points while it reconciles six new workspaces;
#   5. the operator's network to the API server cut for 30 s (a DROP rule in its pod's own network
#      namespace; nothing leaves the machine), then restored;
#   6. the node ports run out: kube-apiserver restarted with a one-port --service-node-port-range, so
#      a new workspace's NodePort Service (two ports) cannot be made; its status must say so in words
#      (NodePortsExhausted, with what to do), and once the range is wide again it must heal alone.
#
# After each: every resource converges (its status describes its latest generation, in the phase it
# should have; a deleted one's children are gone). Three times are printed: `route back after FAULT:
# N s`, from the fault's end to the API server answering the operator again (through its Service,
# from the operator's pod); `converged after FAULT: N s`, from then to every resource's status
# settled; and `collected after FAULT: N s`, from then to the deleted resources' children gone (the
# garbage collector's work) (bench/faults.sh runs this script several times and reports the median
# and max of each; the goal is 30 s, and the checks allow 60 s so that a busy machine does not fail
# them). Also checked: no
# workspace pod was replaced and no generated Secret made again; no workspace has two pods and no
# child outlives its resource; the home volume keeps its file and the HapQuery's database its
# tables. During the cut, the operator stops leading within its renew deadline and its /readyz says
# why it is not ready.
#
# FAULTS="apiserver etcd kubelet kill cut ports" (the default) chooses which faults run, in that order.
#
# A cluster that runs already is reused and left running; one this script starts it brings down at
# the end, unless KEEP_CLUSTER=1.
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=checks.sh
. "$repo/testing/cluster/checks.sh"
cluster_test faults

images=(hap-operator:0.1.0 hap-workspace:0.1.0)
sql_images=(hap-mariadb:0.1.0 hap-metastore:0.1.0 hap-trino:0.1.0)
with_query=0
if docker image inspect "${sql_images[@]}" >/dev/null 2>&1; then
  with_query=1 images+=("${sql_images[@]}")
else
  echo "      (no SQL images in the local Docker engine: the faults run without a HapQuery)"
fi
up_and_load "${images[@]}"
fresh_namespace hap-faults
results=${HAP_FAULT_RESULTS:-$tmp/results}
faults=" ${FAULTS:-apiserver etcd kubelet kill cut ports} "
runs() { [[ $faults == *" $1 "* ]]; }

phase "operator, workspaces and HapQuery"
install_operator
kubectl create secret generic s3-keys --from-literal=AWS_ACCESS_KEY_ID=faults \
  --from-literal=AWS_SECRET_ACCESS_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(20))')" >/dev/null
kubectl label secret s3-keys hap.cloudian.com/allow-reference=true >/dev/null

# workspace NAME SIZE [MEMORY] [EXECUTORS]: a small HapContainer (the S3 endpoint is never reached).
workspace() {
  cat <<EOF
apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata: {name: $1}
spec:
  size: $2
  image: hap-workspace:0.1.0
  imagePullPolicy: IfNotPresent
  resources: {requests: {cpu: 50m, memory: ${3:-256Mi}}}
  volume: {size: 1Gi}
  s3: {endpoint: 'http://198.18.0.1:9', bucket: $1-data, credentialsSecret: {name: s3-keys}}
  spark: {executors: ${4:-0}, executorMemory: 512Mi}
EOF
}
apply() { workspace "$@" | kubectl apply -f - >/dev/null; }
first_three() { { workspace ws-a 1; echo ---; workspace ws-b 1 256Mi 1; echo ---; workspace ws-c 0; } | kubectl apply -f - >/dev/null; }
check "workspaces ws-a, ws-b (Spark executors) and ws-c (stopped) applied" first_three
if [ $with_query = 1 ]; then
  small() { echo "{requests: {cpu: 50m, memory: $1}, limits: {memory: $1}}"; }
  cat > "$tmp/hapquery.yaml" <<EOF
apiVersion: hap.cloudian.com/v1alpha1
kind: HapQuery
metadata: {name: q}
spec:
  s3: {endpoint: 'http://198.18.0.1:9', region: us-east-1, bucket: faults, pathStyle: true, credentialsSecret: {name: s3-keys}}
  database: {mariadb: {image: 'hap-mariadb:0.1.0', storageSize: 1Gi, keepOnDelete: false, resources: $(small 256Mi)}}
  metastore: {image: 'hap-metastore:0.1.0', resources: $(small 768Mi)}
  trino: {image: 'hap-trino:0.1.0', workers: 0, gracefulShutdownSeconds: 5, coordinator: {resources: $(small 1280Mi)}}
  dashboard: {kind: none}
EOF
  check "HapQuery q applied" bash -c "'$kubectl_bin' apply -f '$tmp/hapquery.yaml' >/dev/null"
fi

# What each live resource's phase should be; deleted ones are listed in `gone`.
declare -A want=([ws-a]=Running [ws-b]=Running [ws-c]=Suspended)
gone=()
[ $with_query = 0 ] || want[q]=Running

# settled [status]: every resource in `want` has a status for its latest generation, in the phase
# wanted, and (without `status`) nothing labelled with a name in `gone` is left but its kept home
# volume: those children go by the garbage collector, through their owner references. Says what is
# not, on failure.
settled() {
  kubectl get hapcontainers,hapqueries,pods,services,secrets,configmaps,statefulsets,deployments,jobs -o json >"$tmp/all.json" 2>/dev/null || {
    echo "the API server does not answer"
    return 1
  }
  python3 - "$tmp/all.json" "$(for k in "${!want[@]}"; do echo "$k=${want[$k]}"; done)" "${gone[*]}" "${1:-all}" <<'EOF'
import json, sys
items = json.load(open(sys.argv[1]))["items"]
want = dict(l.split("=") for l in sys.argv[2].split())
gone = set(sys.argv[3].split()) if sys.argv[4] == "all" else set()
owners = {i["metadata"]["name"]: i for i in items if i["kind"] in ("HapContainer", "HapQuery")}
bad = []
for name, phase in want.items():
    o = owners.get(name)
    if o is None:
        bad.append(f"{name}: missing")
        continue
    s = o.get("status", {})
    if s.get("observedGeneration") != o["metadata"]["generation"] or s.get("phase") != phase:
        bad.append(f"{name}: {s.get('phase')} at generation {s.get('observedGeneration')} of {o['metadata']['generation']}")
for i in items:
    inst = i["metadata"].get("labels", {}).get("app.kubernetes.io/instance")
    if inst in gone:
        bad.append(f"{inst}: {i['kind']} {i['metadata']['name']} left")
if bad:
    print("; ".join(bad))
sys.exit(1 if bad else 0)
EOF
}

# no_duplicates_or_orphans: at most one workspace pod per HapContainer, and every child the operator
# made belongs to a resource that exists.
no_duplicates_or_orphans() {
  python3 - "$tmp/all.json" <<'EOF'
import collections, json, sys
items = json.load(open(sys.argv[1]))["items"]
uids = {i["metadata"]["uid"] for i in items}
owners = {i["metadata"]["name"] for i in items if i["kind"] in ("HapContainer", "HapQuery")}
pods = collections.Counter(
    i["metadata"]["labels"].get("app.kubernetes.io/instance")
    for i in items
    if i["kind"] == "Pod" and i["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "hap-workspace"
    and not i["metadata"].get("deletionTimestamp"))
bad = [f"{n}: {c} workspace pods" for n, c in pods.items() if c > 1]
for i in items:
    labels = i["metadata"].get("labels", {})
    if labels.get("app.kubernetes.io/managed-by") != "hap-operator":
        continue
    refs = [r for r in i["metadata"].get("ownerReferences", []) if r.get("controller")]
    if refs and refs[0]["uid"] not in uids and refs[0]["kind"] in ("HapContainer", "HapQuery"):
        bad.append(f"{i['kind']} {i['metadata']['name']}: owner gone")
    # The operator's own objects (its CA's Secret) belong to no resource.
    inst = labels.get("app.kubernetes.io/instance")
    if inst is not None and inst not in owners and i["kind"] != "PersistentVolumeClaim":
        bad.append(f"{i['kind']} {i['metadata']['name']}: no such resource {labels.get('app.kubernetes.io/instance')}")
if bad:
    print("; ".join(bad))
sys.exit(1 if bad else 0)
EOF
}

# kept: the workspace pods of ws-a and ws-b, the database's pod and claim, and every generated Secret
# of the resources present from the start, by uid and the digest of their data. A fault must change
# none of them.
kept() {
  {
    kubectl get pod ws-a-happod ws-b-happod -o jsonpath='{range .items[*]}{.metadata.name}={.metadata.uid} {end}'
    [ $with_query = 0 ] || kubectl get pod q-mariadb-0 pvc data-q-mariadb-0 -o jsonpath='{range .items[*]}{.metadata.name}={.metadata.uid} {end}'
    kubectl get secrets -l app.kubernetes.io/managed-by=hap-operator -o json |
      python3 -c '
import hashlib, json, sys
keep = {"ws-a", "ws-b", "ws-c", "q"}
for s in json.load(sys.stdin)["items"]:
    if s["metadata"].get("labels", {}).get("app.kubernetes.io/instance") in keep:
        data = json.dumps(s.get("data", {}), sort_keys=True).encode()
        print(s["metadata"]["name"], s["metadata"]["uid"], hashlib.sha256(data).hexdigest()[:12])'
  } 2>&1
}

pod_ready() { [ "$(kubectl get pod "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }
check "ws-a and ws-b are Running, ws-c Suspended$([ $with_query = 0 ] || echo ', q Running')" eventually 420 settled
settled >/dev/null || { settled; kubectl get pods; fail_now "not settled"; }
check "a file written in ws-a's home volume" kubectl exec ws-a-happod -- sh -c 'echo kept > /home/jovyan/fault-marker'
home_kept() { [ "$(kubectl exec ws-a-happod -- cat /home/jovyan/fault-marker 2>/dev/null)" = kept ]; }
if [ $with_query = 1 ]; then
  db_password=$(kubectl get secret q-mariadb -o jsonpath='{.data.password}' | base64 -d)
  db_query() {
    printf '%s\n' "$db_password" | kubectl exec -i q-mariadb-0 -c mariadb -- \
      sh -c 'read -r MYSQL_PWD; export MYSQL_PWD; mariadb -h 127.0.0.1 -u hive -N -e "$1"' _ "$1" 2>&1
  }
  check "a table of our own made in the metastore's database" db_query 'CREATE TABLE metastore.fault_marker (x INT)'
  tables() { db_query "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'metastore'"; }
  tables_before=$(tables)
  echo "      (the metastore's database holds $tables_before tables)"
  tables_kept() { [ "$(tables)" = "$tables_before" ] && db_query 'SELECT count(*) FROM metastore.fault_marker' >/dev/null; }
else
  tables_kept() { true; }
fi

# The operator's pod, its process on this machine, and its address inside the cluster.
operator_pod() { kubectl get pods -l app.kubernetes.io/name=hap-operator -o jsonpath='{.items[0].metadata.name}'; }
operator_pid() { pgrep -x hap-operator | head -1; }
in_cluster() { ip netns exec hap-cluster "$@"; }
# With nothing failing yet, the operator has led without a break since it started.
led_throughout() { ! kubectl logs "$(operator_pod)" | grep -q '"leading ended'; }
check "the operator has led without a break since it started" led_throughout
operator_get() { in_cluster curl -s --max-time 3 "http://$(kubectl get pod "$(operator_pod)" -o jsonpath='{.status.podIP}'):8080$1"; }

# during_fault: changes made just before a fault: a new workspace, one changed, the last new one
# deleted. after_fault: one more made as soon as the API server answers.
n=0 last_new=""
during_fault() {
  n=$((n + 1))
  apply "new-$n" 0
  want[new-$n]=Suspended
  kubectl patch hapcontainer ws-c --type=merge -p "{\"spec\":{\"resources\":{\"requests\":{\"memory\":\"$((256 + n))Mi\"}}}}" >/dev/null
  if [ -n "$last_new" ]; then
    kubectl delete hapcontainer "$last_new" --wait=false >/dev/null
    unset "want[$last_new]"
    gone+=("$last_new")
  fi
  last_new=new-$n
}
after_fault() {
  until apply "after-$n" 0; do sleep 0.5; done
  want[after-$n]=Suspended
}

# settles_within SECONDS START [status]: `settled [status]` succeeds within SECONDS; what is still
# unsettled is printed each time it changes, with the seconds since START, so a slow convergence
# shows which resource waited.
settles_within() {
  local deadline=$((SECONDS + $1)) since=$2 part=${3:-all} last="" now
  until now=$(settled "$part"); do
    [ "$now" = "$last" ] || echo "      (after $((SECONDS - since)) s: $now)"
    last=$now
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 1
  done
}

# The API server as the operator reaches it: its Service's address, from the operator pod's network
# namespace, through kube-proxy's rules. After the API server restarts, that route comes back only
# once kube-proxy has seen the Service's endpoints again (the API server removes itself from them
# when it stops), which takes kube-proxy tens of seconds; until then no pod reaches the API server.
api=$(kubectl get service kubernetes -n default -o jsonpath='{.spec.clusterIP}')
routed() {
  [ "$(nsenter -t "$(operator_pid)" -n curl -sk -o /dev/null -w '%{http_code}' --max-time 2 "https://$api/readyz")" = 200 ]
}

# converged FAULT: waits for the operator's route to the API server, then for every resource's
# status to settle from that moment (the operator's part), then for the deleted resources' children
# to be gone (the garbage collector's), and checks what the fault must not have changed.
converged() {
  local fault=$1 t=$SECONDS took
  if eventually 120 routed; then
    echo "route back after $fault: $((SECONDS - t)) s" | tee -a "$results"
  else
    check "$fault: the API server answers through its Service within 120 s" false
  fi
  t=$SECONDS
  after_fault
  if settles_within 120 "$t" status; then
    took=$((SECONDS - t))
    echo "converged after $fault: $took s" | tee -a "$results"
    check "$fault: every resource's status converged within 60 s of the API answering ($took s; the goal is 30 s)" test "$took" -le 60
    # Past the goal, the operator's own account of those seconds.
    [ "$took" -le "${FAULTS_LOG_AFTER:-30}" ] || kubectl logs "$(operator_pod)" --since="$((took + 30))s" 2>&1 | tail -40 | sed 's/^/      | /'
  else
    check "$fault: every resource's status converged within 120 s (not: $(settled status))" false
  fi
  if settles_within 120 "$t"; then
    took=$((SECONDS - t))
    echo "collected after $fault: $took s" | tee -a "$results"
    check "$fault: the deleted resources' children collected within 60 s of the API answering ($took s)" test "$took" -le 60
  else
    check "$fault: the deleted resources' children collected within 120 s (not: $(settled))" false
  fi
  check "$fault: no workspace pod replaced, no generated Secret made again" test "$kept_before" = "$(kept)"
  check "$fault: no workspace with two pods, no child without its resource" no_duplicates_or_orphans
  check "$fault: ws-a's home volume keeps its file" home_kept
  check "$fault: the HapQuery's database keeps its tables" tables_kept
}
kept_before=$(kept)
: >"$results"

if runs apiserver; then
phase "kube-apiserver restart"
during_fault
"$cluster" stop kube-apiserver 2>/dev/null
sleep 15
check "kube-apiserver started again" "$cluster" start kube-apiserver
converged "kube-apiserver restart"
fi

if runs etcd; then
phase "etcd restart"
during_fault
"$cluster" stop etcd 2>/dev/null
sleep 15
check "etcd started again" "$cluster" start etcd
check "the API server answers again" eventually 60 kubectl get --raw /readyz
converged "etcd restart"
fi

if runs kubelet; then
phase "kubelet and containerd restart"
during_fault
"$cluster" stop kubelet containerd 2>/dev/null
sleep 5
check "containerd and the kubelet started again" "$cluster" start containerd kubelet
check "ws-a's pod is ready again" eventually 120 pod_ready ws-a-happod
converged "kubelet and containerd restart"
fi

if runs kill; then
phase "operator killed mid-reconcile"
during_fault
for i in 1 2 3 4 5 6; do apply "burst-$i" 0 & done
wait
for i in 1 2 3 4 5 6; do want[burst-$i]=Suspended; done
for kill in 1 2; do
  sleep "$(python3 -c 'import random; print(round(random.uniform(0.2, 2.0), 1))')"
  pid=$(operator_pid)
  check "the operator's process killed (kill $kill)" kill -9 "$pid"
    restarted() { local p; p=$(operator_pid); [ -n "$p" ] && [ "$p" != "$pid" ]; }
  check "the operator runs again" eventually 60 restarted
done
converged "operator killed twice"
fi

if runs cut; then
phase "operator's network cut for 30 s"
during_fault
pid=$(operator_pid)
# (Not named `cut`: that would hide the coreutils command from the rest of the script.)
drop_api() { nsenter -t "$pid" -n iptables -w "$1" OUTPUT -d "$api" -j DROP; }
check "traffic from the operator's pod to the API server ($api) dropped" drop_api -I
t_cut=$SECONDS
apply "cut-$n" 0
want[cut-$n]=Suspended
leading() { operator_get /metrics | grep -qx 'hap_operator_leader 1'; }
not_leading() { operator_get /metrics | grep -qx 'hap_operator_leader 0'; }
if eventually 20 not_leading; then
  check "the operator stopped leading within 15 s of the cut ($((SECONDS - t_cut)) s; renew deadline 10 s)" test $((SECONDS - t_cut)) -le 15
else
  check "the operator stopped leading within 20 s of the cut" false
fi
unready() { operator_get /readyz >"$tmp/readyz" && grep -q "leases: watch failing" "$tmp/readyz"; }
check "its /readyz says it cannot reach the API server" eventually 25 unready
echo "      ($(head -3 "$tmp/readyz" | tr '\n' ' '))"
sleep $((30 - (SECONDS - t_cut) > 0 ? 30 - (SECONDS - t_cut) : 0))
check "the operator's network restored" drop_api -D
converged "operator's network cut"
check "the operator leads again" leading
ready_again() { [ "$(operator_get /readyz)" = ok ]; }
check "its /readyz answers ok again" eventually 30 ready_again
fi

if runs ports; then
phase "node ports run out"
# One port, 32766: a workspace's Service asks for two (Jupyter and the Spark UI), so it cannot have
# them whatever else holds that port. The Services made before keep theirs.
"$cluster" stop kube-apiserver 2>/dev/null
check "kube-apiserver started again with --service-node-port-range=32766-32766" \
  env HAP_NODE_PORT_RANGE=32766-32766 "$cluster" start kube-apiserver
check "the API server answers the operator again" eventually 120 routed
t_ports=$SECONDS
until apply ws-ports 0; do sleep 0.5; done
# configured: ws-ports' Configured condition, as "status reason message".
configured() { kubectl get hapcontainer ws-ports -o jsonpath='{.status.conditions[?(@.type=="Configured")].status} {.status.conditions[?(@.type=="Configured")].reason} {.status.conditions[?(@.type=="Configured")].message}' 2>/dev/null; }
exhausted() { configured | grep -q '^False NodePortsExhausted .*--service-node-port-range'; }
if eventually 60 exhausted; then
  check "ws-ports' status says the node ports ran out, within 60 s ($((SECONDS - t_ports)) s)" true
  echo "      ($(configured | cut -c1-400))"
else
  check "ws-ports' status says the node ports ran out (it says: $(configured))" false
fi
check "the condition gave one Warning event, NodePortsExhausted" bash -c \
  "'$kubectl_bin' get events --field-selector involvedObject.name=ws-ports,reason=NodePortsExhausted -o name | grep -q ."
# The failed write itself is a problem of the workspace's, not a failure event with the API's words.
raw_failures() {
  { kubectl get events --field-selector involvedObject.name=ws-ports,reason=ApplyFailed -o name
    kubectl get events --field-selector involvedObject.name=ws-ports,reason=CreateFailed -o name; } | wc -l
}
check "no ApplyFailed or CreateFailed event with the raw API error" test "$(raw_failures)" = 0
"$cluster" stop kube-apiserver 2>/dev/null
check "kube-apiserver started again with the cluster's range" "$cluster" start kube-apiserver
check "the API server answers the operator again" eventually 120 routed
want[ws-ports]=Suspended
healed() { settled status >/dev/null && configured | grep -q '^True '; }
check "ws-ports heals alone once ports are free: its Service made, Configured True, Suspended" eventually 90 healed
check "ws-ports' Service has its two node ports" bash -c \
  "[ \$('$kubectl_bin' get service ws-ports-hapservice -o jsonpath='{.spec.ports[*].nodePort}' | wc -w) = 2 ]"
fi

phase "clean-up"
