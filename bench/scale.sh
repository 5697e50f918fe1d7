#!/usr/bin/env bash
# How the operator copes with many workspaces at once, on the local cluster (scripts/cluster.sh),
# as root. For each N, N HapContainers are created at once in a fresh namespace and their pods land on
# fake nodes played by kwok (scripts/lib/kwok.sh), which turns a scheduled pod into a Running, Ready
# one with no container behind it: what is measured is the operator, the API server and etcd, not the
# workspace image. Printed per N (and written to a results file):
#
#   - seconds from the first create to every HapContainer's status.phase Running, and the rates;
#   - the operator's API writes (create, update, patch, delete answered, from the audit log) per
#     HapContainer, by resource, with its events counted apart, and its answers 429 and 5xx;
#   - the operator's resident memory idle before the creates and at its peak (VmHWM), and the CPU
#     seconds of the operator, kube-apiserver, etcd and the other components over the run;
#   - after a restart of the operator: the time to its first reconcile and to every HapContainer
#     reconciled again, and its writes meanwhile (a resync of converged workspaces should write nothing);
#   - the time until the namespace and everything in it are gone.
#
#   bench/scale.sh [N...]      (default: 100 1000)
#
# The summaries go to $HAP_CACHE/scale/<time>/results too, next to each run's operator log.
#
# The operator runs as a local process from the release build (scripts/lib/release.sh), with the
# environment of deploy/operator.yaml's container and a token of its own ServiceAccount, installed
# from deploy/ in the namespace; HAP_SCALE_OPERATOR_BIN runs another build instead. While the script
# runs: the real nodes are cordoned (every pod goes to the fake ones), a second Service range (a
# ServiceCIDR, 198.18.64.0/18) adds addresses to the cluster's /24, and any operator Deployment
# labelled app.kubernetes.io/name=hap-operator is scaled to 0. All of it is undone on exit or
# interruption. Each workspace has S3 settings and a credentials Secret, an emptyDir home (a claim
# could bind to no fake node) and a ClusterIP Service, so that every N measures the same thing.
# HAP_SCALE_SERVICE_TYPE=NodePort gives them the HapContainer's default NodePort Services instead, for
# up to 1,384 workspaces (two node ports each, of 2,768). docs/scale.md has figures.
# HAP_SCALE_TIMEOUT bounds the wait for all Running (default 120 s + N/2 s); a run that does not
# converge in time is reported as such and the script goes on, then exits non-zero.
#
# The script refuses a kubeconfig ($KUBECONFIG, else the local cluster's admin one) that points at
# another API server than the local cluster's, unless HAP_SCALE_ANY_CLUSTER=1 (mind that it cordons
# every node meanwhile; the audit-log and control-plane figures are then missing), and a cluster that
# holds HapContainers or HapQueries already (another test's, say), unless HAP_SCALE_SHARED=1. The
# cluster is started if it is not running, and brought down at the end only if this script started
# it. Not part of the test command.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${HAP_CACHE:-$HOME/.cache/hap}
# The local cluster's paths and address, as scripts/cluster.sh sets them.
state=${HAP_CLUSTER_STATE:-$cache/cluster/state}
run=/run/hap-cluster
local_api=https://198.18.0.2:6443
audit=$state/logs/audit.log

ns=${HAP_SCALE_NAMESPACE:-hap-scale}
sa=hap-operator
user=system:serviceaccount:$ns:$sa
fake_nodes=${HAP_SCALE_NODES:-10}
# From the benchmarking range the cluster uses (198.18.0.0/15), clear of its host and node addresses
# (198.18.0.0/30), its pod range (198.18.128.0/24) and its Service range (198.19.0.0/24).
extra_service_cidr=198.18.64.0/18
fake_pod_cidr=198.19.128.0/17
fake_node_ip_prefix=198.19.127.
service_type=${HAP_SCALE_SERVICE_TYPE:-ClusterIP}
parallel=${HAP_SCALE_PARALLEL:-8}   # kubectl create processes at once
mark=hap.cloudian.com/scale-bench   # a label on what the script makes outside the namespace

sizes=("$@")
[ $# -gt 0 ] || sizes=(100 1000)
for n in "${sizes[@]}"; do
  case $n in '' | *[!0-9]* | 0) echo "usage: bench/scale.sh [N...]   (positive counts; default: 100 1000)" >&2; exit 2 ;; esac
  case $service_type in
    ClusterIP) ;;
    NodePort) [ "$n" -le 1384 ] || { echo "scale: $n NodePort Services need $((2 * n)) node ports; the cluster has 2,768" >&2; exit 2; } ;;
    *) echo "scale: HAP_SCALE_SERVICE_TYPE is ClusterIP or NodePort" >&2; exit 2 ;;
  esac
done

log() { printf 'scale: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
kubectl_bin=$cache/bin/kubectl
[ -x "$kubectl_bin" ] || "$repo/scripts/setup.sh" >/dev/null
kubeconfig=${KUBECONFIG:-$state/admin.kubeconfig}
kubectl() { "$kubectl_bin" --kubeconfig "$kubeconfig" "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }

# --- The cluster, and the safety check --------------------------------------------------------

started=0
local_cluster=0
if [ -z "${KUBECONFIG:-}" ] && ! grep -q '^kube-apiserver: running' <<<"$("$repo/scripts/cluster.sh" status 2>/dev/null)"; then
  # `up` on a cluster with some components stopped (by a fault test, say) would start it afresh.
  ! grep -q ': running' <<<"$("$repo/scripts/cluster.sh" status 2>/dev/null)" ||
    die "the local cluster runs without its API server (stopped by a test?): not touching it"
  log "starting the local cluster"
  started=1
  trap '"$repo/scripts/cluster.sh" down >/dev/null 2>&1' EXIT
  "$repo/scripts/cluster.sh" up >/dev/null
fi
[ -f "$kubeconfig" ] || die "no kubeconfig at $kubeconfig (start the local cluster: scripts/cluster.sh up)"
server=$(kubectl config view --minify -o 'jsonpath={.clusters[0].cluster.server}')
if [ "$server" = "$local_api" ]; then
  local_cluster=1
elif [ "${HAP_SCALE_ANY_CLUSTER:-0}" != 1 ]; then
  die "the kubeconfig $kubeconfig points at $server, not the local cluster ($local_api): refusing (HAP_SCALE_ANY_CLUSTER=1 runs there anyway)"
fi
kubectl get --raw /readyz >/dev/null || die "the API server at $server does not answer"
kubectl get namespace "$ns" >/dev/null 2>&1 &&
  die "namespace $ns exists (a run left it?): kubectl delete namespace $ns, or set HAP_SCALE_NAMESPACE"
# Someone else's workspaces (a test running on the same cluster, say) would lose their node and
# their operator for the whole run.
in_use=$( { kubectl get hapcontainers -A -o name || true; kubectl get hapqueries -A -o name || true; } 2>/dev/null | wc -l)
[ "$in_use" = 0 ] || [ "${HAP_SCALE_SHARED:-0}" = 1 ] ||
  die "the cluster holds $in_use HapContainers and HapQueries already (in use?): the run would cordon their nodes and stop their operator; HAP_SCALE_SHARED=1 runs anyway"

# --- Tools ----------------------------------------------------------------------------------

# HAP_SCALE_OPERATOR_BIN measures another build of the operator (one with a change under test, say).
operator_bin=${HAP_SCALE_OPERATOR_BIN:-}
if [ -z "$operator_bin" ]; then
  source "$repo/scripts/lib/release.sh"
  log "building the operator (release)"
  release_build
  operator_bin=$release/release/hap-operator
fi
[ -x "$operator_bin" ] || die "no operator binary at $operator_bin"
source "$repo/scripts/lib/kwok.sh"
kwok_install

# Scratch (the operator's token, the audit log's lines), removed at the end; the logs and the results stay.
tmp=$(mktemp -d "$cache/scale.XXXXXX")
chmod 700 "$tmp"
out=${HAP_SCALE_OUT:-$cache/scale/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
results=$out/results
: >"$results"

# --- Clean-up, however the script ends ------------------------------------------------------

operator_pid="" audit_pid="" watch_pid="" crd_applied=0 cordoned=() scaled=() cleaned=0 failures=0
stop_pid() {   # stop_pid PID: SIGTERM, then SIGKILL after 30 s
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for i in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
# delete_namespace: deletes $ns and waits until it is gone, with everything in it (kwok removes the
# deleted pods, as a kubelet would).
delete_namespace() {
  local limit=$1 deadline
  kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || return 0
  deadline=$((SECONDS + limit))
  while kubectl get namespace "$ns" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { log "namespace $ns still there after $limit s"; return 1; }
    sleep 1
  done
}
cleanup() {
  [ "$cleaned" = 0 ] || return 0
  cleaned=1
  set +e
  log "cleaning up"
  stop_pid "$operator_pid"
  stop_pid "$watch_pid"
  delete_namespace 600
  kubectl delete nodes -l "$mark" --wait=true --timeout=60s >/dev/null 2>&1
  kwok_stop
  # The garbage collector takes the fake nodes' leases with them; in case it has not yet:
  kubectl delete leases -n kube-node-lease --ignore-not-found $(fake_node_names) >/dev/null 2>&1
  # It goes once no Service holds an address in it any more.
  kubectl delete servicecidr -l "$mark" --wait=true --timeout=120s >/dev/null 2>&1 ||
    log "the ServiceCIDR is still there: kubectl get servicecidr"
  local n d
  for n in "${cordoned[@]}"; do kubectl uncordon "$n" >/dev/null; done
  for d in "${scaled[@]}"; do kubectl scale deployment -n "${d%%/*}" "$(cut -d/ -f2 <<<"$d")" --replicas="${d##*/}" >/dev/null; done
  # The CRD it applied goes, unless something else has begun to use it meanwhile (a test).
  if [ "$crd_applied" = 1 ]; then
    if [ -z "$(kubectl get hapcontainers -A -o name 2>/dev/null)" ]; then
      kubectl delete -f "$repo/deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml" --ignore-not-found --timeout=120s >/dev/null
    else
      log "the HapContainer CRD this run applied is in use elsewhere now: left in place"
    fi
  fi
  stop_pid "$audit_pid"
  rm -rf "$tmp"
  [ "$started" = 0 ] || "$repo/scripts/cluster.sh" down >/dev/null 2>&1
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

fake_node_names() { for i in $(seq -w 1 "$fake_nodes"); do echo "hap-scale-fake-$i"; done; }

# --- Figures from /proc ---------------------------------------------------------------------

hz=$(getconf CLK_TCK)
# cpu_ticks PID: user and system time so far, in clock ticks (0 when there is no such process).
cpu_ticks() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  s=${s##*) }
  set -- $s
  echo $((${12} + ${13}))
}
memory_mib() { awk -v k="$2:" '$1 == k {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }   # PID VmRSS|VmHWM
components="kube-apiserver etcd kube-controller-manager kube-scheduler kube-proxy kube-router"
component_pid() { [ "$local_cluster" = 1 ] && cat "$run/$1.pid" 2>/dev/null || true; }
# cpu_snapshot: "name ticks" for the operator, kwok and the cluster's components.
cpu_snapshot() {
  local c p
  echo "hap-operator $(cpu_ticks "$operator_pid")"
  echo "kwok $(cpu_ticks "$kwok_pid")"
  for c in $components; do
    p=$(component_pid "$c")
    [ -z "$p" ] || echo "$c $(cpu_ticks "$p")"
  done
}
cpu_delta() {   # cpu_delta BEFORE AFTER: "name seconds, ..."
  awk -v hz="$hz" 'NR == FNR {a[$1] = $2; next} {printf "%s%s %.1f", sep, $1, ($2 - a[$1]) / hz; sep = ", "}' "$1" "$2"
}

# --- The audit log --------------------------------------------------------------------------

# Everything the API server audits from now on, kept across its rotation (tail -F follows the name).
if [ "$local_cluster" = 1 ] && [ -f "$audit" ]; then
  tail -n0 -F "$audit" >"$tmp/audit.jsonl" 2>/dev/null &
  audit_pid=$!
fi

# audit_writes FROM TO [N]: the operator's requests received between two times (seconds since the
# epoch), as a few lines: writes by resource (per HapContainer, given N), its events and its Lease
# apart, and the answers 429 and 5xx.
audit_writes() {
  [ -n "$audit_pid" ] || { echo "writes: n/a (no audit log: not the local cluster)"; return; }
  sleep 1   # the last lines reach the file
  python3 - "$tmp/audit.jsonl" "$user" "$1" "$2" "${3:-0}" <<'EOF'
import collections, datetime, json, sys
path, user, t0, t1, per = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
writes, events, leases, requests, status = collections.Counter(), collections.Counter(), 0, 0, collections.Counter()
for line in open(path, errors="replace"):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("stage") != "ResponseComplete" or e.get("user", {}).get("username") != user:
        continue
    t = datetime.datetime.fromisoformat(e["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
    if not t0 <= t <= t1:
        continue
    requests += 1
    code = e.get("responseStatus", {}).get("code", 0)
    if code == 429:
        status["429"] += 1
    elif code >= 500:
        status["5xx"] += 1
    verb = e.get("verb")
    if verb not in ("create", "update", "patch", "delete", "deletecollection"):
        continue
    ref = e.get("objectRef", {})
    resource = ref.get("resource", "?") + ("/" + ref["subresource"] if ref.get("subresource") else "")
    if ref.get("resource") == "leases":
        leases += 1   # leader election: a renewal every 2 s, whatever the load
    else:
        (events if ref.get("resource") == "events" else writes)[(resource, verb)] += 1
total = sum(writes.values())
def each(c):
    return f" ({c / per:.2f} per HapContainer)" if per else ""
print(f"writes {total}{each(total)}; events {sum(events.values())}{each(sum(events.values()))}; "
      f"and {leases} of its Lease (leader election)")
for (resource, verb), c in sorted(writes.items()):
    print(f"  {resource} {verb}: {c}{each(c)}")
for (resource, verb), c in sorted(events.items()):
    print(f"  (event) {resource} {verb}: {c}{each(c)}")
print(f"answers 429: {status['429']}, 5xx: {status['5xx']} (of {requests} requests, reads included)")
EOF
}

# --- Fake nodes, the real ones cordoned, the Service range ----------------------------------

log "kwok and $fake_nodes fake nodes"
kwok_start "$kubeconfig" "$out/kwok.log" "$fake_pod_cidr"
{
  for i in $(seq -w 1 "$fake_nodes"); do
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: hap-scale-fake-$i
  labels: {$mark: "true", type: kwok, kubernetes.io/hostname: hap-scale-fake-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64}
  annotations: {$KWOK_NODE_ANNOTATION: fake}
status:
  addresses: [{type: InternalIP, address: "$fake_node_ip_prefix$((10#$i))"}]
  capacity: {cpu: "1000", memory: 4Ti, pods: "2000"}
  allocatable: {cpu: "1000", memory: 4Ti, pods: "2000"}
EOF
  done
} | kubectl apply -f - >/dev/null
deadline=$((SECONDS + 60))
until [ "$(kubectl get nodes -l "$mark" -o 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)" = "$fake_nodes" ]; do
  kill -0 "$kwok_pid" 2>/dev/null || { tail -20 "$out/kwok.log" >&2; die "kwok exited"; }
  [ "$SECONDS" -lt "$deadline" ] || { tail -20 "$out/kwok.log" >&2; die "the fake nodes are not Ready after 60 s"; }
  sleep 1
done
for node in $(kubectl get nodes -l "!$mark" -o 'jsonpath={range .items[*]}{.metadata.name} {.spec.unschedulable}{"\n"}{end}' | awk '$2 != "true" {print $1}'); do
  kubectl cordon "$node" >/dev/null
  cordoned+=("$node")
done
log "cordoned ${cordoned[*]:-nothing} (the real nodes)"

cat <<EOF | kubectl apply -f - >/dev/null
apiVersion: networking.k8s.io/v1
kind: ServiceCIDR
metadata:
  name: hap-scale-bench
  labels: {$mark: "true"}
spec:
  cidrs: ["$extra_service_cidr"]
EOF
kubectl wait servicecidr/hap-scale-bench --for=condition=Ready --timeout=60s >/dev/null ||
  die "the ServiceCIDR $extra_service_cidr is not Ready after 60 s"

# --- One operator: the installed ones scaled to 0, the CRD ----------------------------------

while read -r d; do
  [ -n "$d" ] || continue
  replicas=${d##*/}
  [ "$replicas" != 0 ] || continue
  log "scaling the installed operator ${d%/*} to 0 (restored at the end)"
  kubectl scale deployment -n "${d%%/*}" "$(cut -d/ -f2 <<<"$d")" --replicas=0 >/dev/null
  scaled+=("$d")
done < <(kubectl get deployments -A -l app.kubernetes.io/name=hap-operator \
  -o 'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}/{.spec.replicas}{"\n"}{end}')
deadline=$((SECONDS + 120))
while [ "${#scaled[@]}" -gt 0 ] && [ -n "$(kubectl get pods -A -l name=hap-operator -o name 2>/dev/null)" ]; do
  [ "$SECONDS" -lt "$deadline" ] || die "the installed operator's pods are still there after 120 s"
  sleep 1
done
if ! kubectl get crd hapcontainers.hap.cloudian.com >/dev/null 2>&1; then
  kubectl apply -f "$repo/deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml" >/dev/null
  crd_applied=1
fi
kubectl wait --for=condition=Established crd/hapcontainers.hap.cloudian.com --timeout=60s >/dev/null

# --- The operator as a local process --------------------------------------------------------

metrics_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# start_operator LOG: deploy/operator.yaml's environment, with the metrics on a free loopback port
# (the pod's 0.0.0.0:8080 is the host's here) and each reconcile logged (at debug).
start_operator() {
  WATCH_NAMESPACE=$ns POD_NAME=hap-operator-scale-bench POD_NAMESPACE=$ns OPERATOR_NAME=hap-operator \
    LOG_FORMAT=json KUBECONFIG=$tmp/operator.kubeconfig HAP_METRICS_ADDR=127.0.0.1:$metrics_port \
    RUST_LOG=info,hap_operator::pipeline::reconcile=debug "$operator_bin" >"$1" 2>&1 </dev/null &
  operator_pid=$!
}
# wait_leading LOG: until the operator answers /readyz and leads.
wait_leading() {
  local deadline=$((SECONDS + 60))
  until curl -sf "http://127.0.0.1:$metrics_port/readyz" >/dev/null && grep -q '"leading' "$1"; do
    kill -0 "$operator_pid" 2>/dev/null || { tail -20 "$1" >&2; die "the operator exited"; }
    [ "$SECONDS" -lt "$deadline" ] || { tail -20 "$1" >&2; die "the operator is not ready and leading after 60 s"; }
    sleep 0.5
  done
}
# reconciled LOG: how many reconciles the log reports so far.
reconciled() { grep -c '"message":"reconciled"' "$1" || true; }
# first_reconcile LOG: the time of the first one, in seconds since the epoch.
first_reconcile() {
  grep -m1 '"message":"reconciled"' "$1" | python3 -c '
import datetime, json, sys
print(datetime.datetime.fromisoformat(json.loads(sys.stdin.read())["timestamp"].replace("Z", "+00:00")).timestamp())'
}
# operator_trouble LOG: what went wrong in the operator's log, in one line.
operator_trouble() {
  local lost failed refused
  lost=$(grep -c '"message":"leading ended' "$1" || true)
  failed=$(grep -c '"message":"reconcile failed"' "$1" || true)
  refused=$(grep -o '"refused_since_last_warning":[0-9]*' "$1" | awk -F: '{n += $2 + 1} END {print n + 0}')
  echo "leadership lost $lost times, $failed reconciles failed, $refused answers refused (429 or 5xx)"
}

# Each HapContainer's phase, as a watch reports it: one process for the whole run, where polling
# lists of thousands would load the API server it measures. watch_start FILE; watch_stop.
watch_start() {
  "$kubectl_bin" --kubeconfig "$kubeconfig" get hapcontainers -n "$ns" --watch \
    -o 'jsonpath={.metadata.name} {.status.phase}{"\n"}' >>"$1" 2>/dev/null </dev/null &
  watch_pid=$!
}
watch_stop() { stop_pid "$watch_pid"; watch_pid=""; }
# phases FILE: "Running COUNT" and the like, from the latest line of each HapContainer.
phases() { awk 'NF {p[$1] = (NF > 1 ? $2 : "no-status")} END {for (k in p) n[p[k]]++; for (s in n) print s, n[s]}' "$1" | sort; }
running_count() { phases "$1" | awk '$1 == "Running" {print $2}' | grep . || echo 0; }

# workspaces N TYPE DIR: the HapContainers, in $parallel files of about N / $parallel each.
workspaces() {
  python3 - "$@" "$parallel" <<'EOF'
import sys
n, service, out, parts = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
files = [open(f"{out}/part-{p}.yaml", "w") for p in range(min(parts, n))]
for i in range(n):
    name = f"ws-{i:05d}"
    files[i % len(files)].write(f"""---
apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata: {{name: {name}}}
spec:
  size: 1
  resources: {{requests: {{cpu: 50m, memory: 256Mi}}}}
  volume: {{ephemeral: true}}
  s3: {{endpoint: 'http://198.18.0.1:9', bucket: {name}, credentialsSecret: {{name: s3-keys}}}}
  service: {{type: {service}}}
""")
EOF
}

machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"

# --- One run --------------------------------------------------------------------------------

bench() {
  local n=$1 dir=$out/$1 type=$service_type t0 t_end t_created t_conv limit deadline running last=0 pids p converged=1
  mkdir -p "$dir"
  log "N=$n: namespace $ns, the operator's account and role from deploy/"
  kubectl create namespace "$ns" >/dev/null
  kubectl label namespace "$ns" "$mark=true" >/dev/null
  for f in service_account role role_binding; do kubectl apply -n "$ns" -f "$repo/deploy/$f.yaml" >/dev/null; done
  kubectl create secret generic s3-keys -n "$ns" --from-literal=AWS_ACCESS_KEY_ID=scale \
    --from-literal=AWS_SECRET_ACCESS_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(20))')" >/dev/null
  kubectl label secret s3-keys -n "$ns" hap.cloudian.com/allow-reference=true >/dev/null
  local token ca
  token=$(kubectl create token "$sa" -n "$ns" --duration=24h)
  ca=$(kubectl config view --minify --flatten -o 'jsonpath={.clusters[0].cluster.certificate-authority-data}')
  (umask 077 && cat >"$tmp/operator.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: bench
  cluster: {server: "$server", certificate-authority-data: "$ca"}
users:
- name: $sa
  user: {token: "$token"}
contexts:
- name: bench
  context: {cluster: bench, user: $sa, namespace: $ns}
current-context: bench
EOF
  )
  workspaces "$n" "$type" "$dir"

  start_operator "$dir/operator.log"
  wait_leading "$dir/operator.log"
  sleep 3
  local idle_rss
  idle_rss=$(memory_mib "$operator_pid" VmRSS)
  watch_start "$dir/phases"
  sleep 1
  cpu_snapshot >"$dir/cpu.before"
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)   # other work on the machine skews every figure

  log "N=$n: creating $n HapContainers ($type Services) with $parallel kubectl processes at once"
  t0=$(now)
  pids=()
  for p in "$dir"/part-*.yaml; do
    kubectl create -n "$ns" -f "$p" >/dev/null &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || die "kubectl create failed"; done
  t_created=$(since "$t0")
  limit=${HAP_SCALE_TIMEOUT:-$((120 + n / 2))}
  deadline=$((SECONDS + limit))
  while :; do
    running=$(running_count "$dir/phases")
    [ "$running" -lt "$n" ] || break
    [ "$SECONDS" -lt "$deadline" ] || { converged=0; break; }
    kill -0 "$watch_pid" 2>/dev/null || watch_start "$dir/phases"   # a watch the API server ended
    if [ $((SECONDS - last)) -ge 10 ]; then log "N=$n: $running of $n Running after $(since "$t0") s"; last=$SECONDS; fi
    sleep 0.5
  done
  t_conv=$(since "$t0")
  t_end=$(now)
  cpu_snapshot >"$dir/cpu.after"
  watch_stop
  local peak on_fake
  peak=$(memory_mib "$operator_pid" VmHWM)
  on_fake=$(kubectl get pods -n "$ns" -o 'jsonpath={range .items[*]}{.spec.nodeName}{"\n"}{end}' | grep -c '^hap-scale-fake-' || true)

  {
    echo "== $n HapContainers, $type Services, $fake_nodes kwok nodes; machine: $machine, load average $load before =="
    echo "created in:        $t_created s ($(awk -v n="$n" -v t="$t_created" 'BEGIN {printf "%.0f", n / t}') creates/s, $parallel kubectl create at once)"
    if [ "$converged" = 1 ]; then
      echo "all Running after: $t_conv s from the first create ($(awk -v n="$n" -v t="$t_conv" 'BEGIN {printf "%.1f", n / t}') HapContainers/s); pods on the fake nodes: $on_fake of $n"
    else
      echo "NOT CONVERGED:     $running of $n Running after $t_conv s (the limit; HAP_SCALE_TIMEOUT sets it); phases: $(phases "$dir/phases" | paste -sd, | sed 's/,/, /g'); pods on the fake nodes: $on_fake"
    fi
    echo "operator memory:   idle $idle_rss MiB before the creates; peak (VmHWM) $peak MiB (deploy/operator.yaml's limit: 256 MiB)"
    echo "operator's log:    $(operator_trouble "$dir/operator.log")"
    echo "CPU seconds, from the first create to $([ "$converged" = 1 ] && echo "all Running" || echo "the limit"): $(cpu_delta "$dir/cpu.before" "$dir/cpu.after")"
    echo "the operator's API requests over that time:"
    audit_writes "$t0" "$t_end" "$n" | sed 's/^/  /'
  } | tee -a "$results"

  if [ "$converged" = 1 ]; then
    # Converged: no more writes are needed.
    sleep 10
    echo "  in the 10 s after: $(audit_writes "$t_end" "$(now)" | head -1)" | tee -a "$results"

    log "N=$n: restarting the operator"
    stop_pid "$operator_pid"
    local t_start count
    t_start=$(now)
    start_operator "$dir/operator-2.log"
    deadline=$((SECONDS + limit))
    while :; do
      count=$(reconciled "$dir/operator-2.log")
      [ "$count" -lt "$n" ] || break
      kill -0 "$operator_pid" 2>/dev/null || { tail -20 "$dir/operator-2.log" >&2; die "the restarted operator exited"; }
      [ "$SECONDS" -lt "$deadline" ] || break
      sleep 0.5
    done
    local t_all first
    t_all=$(since "$t_start")
    sleep 5
    first=$(first_reconcile "$dir/operator-2.log" || true)
    {
      if [ "$count" -ge "$n" ]; then
        echo "after a restart:   first reconcile $(awk -v a="$t_start" -v b="$first" 'BEGIN {printf "%.1f", b - a}') s after the start, all $n reconciled after $t_all s"
      else
        echo "after a restart:   NOT RESYNCED: $count of $n reconciled after $t_all s (the limit)"
      fi
      audit_writes "$t_start" "$(now)" | sed 's/^/  /'
    } | tee -a "$results"
  else
    failures=$((failures + 1))
    echo "(no restart: the run did not converge; the operator's log is $dir/operator.log)" | tee -a "$results"
  fi

  log "N=$n: deleting the namespace"
  stop_pid "$operator_pid"
  operator_pid=""
  t0=$(now)
  limit=$((120 + n / 2))
  delete_namespace "$limit" || die "N=$n: the namespace is not gone after $limit s"
  echo "namespace deleted: gone with everything in it after $(since "$t0") s" | tee -a "$results"
  echo | tee -a "$results"
}

for n in "${sizes[@]}"; do bench "$n"; done
log "results in $results"
[ "$failures" = 0 ] || die "$failures of ${#sizes[@]} runs did not converge"
