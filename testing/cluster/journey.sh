#!/usr/bin/env bash
# The original user journey, verbatim, on the local cluster (scripts/cluster.sh), as root:
# the five install files applied in the original's order run the operator as its Deployment's pod,
# the sample HapContainer gives `example-hapcontainer-happod 1/1 Running` (a real container),
# spark-shell and `pip show tensorflow` work in it, Jupyter answers at the node port with the Secret's
# token and refuses without it, the Spark UI answers at its node port while a job runs, a deleted pod
# comes back, a file and a `pip install --user` package in the home survive a new pod, a spec change,
# a new operator pod and the HapContainer deleted and applied again, the status says Running with a
# Jupyter URL, and the cleanup in the original's order leaves nothing behind but the home volume's
# claim (kept by default; deleted last) and hangs nowhere.
#
# The files are applied without -n, as in the original; the kubeconfig's context points at a fresh
# namespace, so runs do not collide. A cluster that runs already is reused and left running; one this
# script starts it brings down at the end, unless KEEP_CLUSTER=1.
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
# check, eventually, phase, cluster_test, up_and_load, fresh_namespace, cluster_down
# shellcheck source=checks.sh
. "$repo/testing/cluster/checks.sh"
cluster_test journey
state=${HAP_CLUSTER_STATE:-$cache/cluster/state}

job=""
test_cleanup() { [ -z "$job" ] || kill "$job" 2>/dev/null; }
test_report() {
  [ -z "${run_time:-}" ] || echo "  CR applied to happod 1/1 Running   $run_time s"
  [ -z "${rerun_time:-}" ] || echo "  pod deleted to new pod Running     $rerun_time s"
}

# --- 1. The cluster and the images ---------------------------------------------------------------
up_and_load hap-operator:0.1.0 hap-workspace:0.1.0
fresh_namespace hap-journey
if kubectl get crd hapcontainers.hap.cloudian.com >/dev/null 2>&1; then
  fail_now "the cluster has no HapContainer CRD before the journey (delete it, or use a fresh cluster)"
fi

# --- 2. Install, in the original's order ---------------------------------------------------------
phase "install (five files)"
crds_applied=(deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml)
for f in deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml deploy/service_account.yaml deploy/role.yaml \
         deploy/role_binding.yaml deploy/operator.yaml; do
  check "kubectl apply -f $f" bash -c "'$kubectl_bin' apply -f '$f' >/dev/null"
done
check "deploy/operator.yaml pulls only when absent (no registry here)" \
  test "$(kubectl get deployment hap-operator -o 'jsonpath={.spec.template.spec.containers[0].imagePullPolicy}')" = IfNotPresent
operator_running() {
  kubectl get pods --no-headers | awk '$1 ~ /^hap-operator-/ && $2 == "1/1" && $3 == "Running" {n++} END {exit n != 1}'
}
check "the operator's pod is 1/1 Running" eventually 300 operator_running
op_pod=$(kubectl get pods -l name=hap-operator -o 'jsonpath={.items[0].metadata.name}')
check "it runs hap-operator:0.1.0 as ServiceAccount hap-operator" test \
  "$(kubectl get pod "$op_pod" -o 'jsonpath={.spec.containers[0].image} {.spec.serviceAccountName}')" \
  = "hap-operator:0.1.0 hap-operator"
# Its only grant is deploy/role.yaml: no ClusterRoleBinding names the account, and the one
# RoleBinding that does is deploy/role_binding.yaml's, to the Role hap-operator.
sa_grants() {
  { kubectl get clusterrolebindings -o json | jq -r --arg ns "$ns" \
      '.items[] | select(any(.subjects[]?; .kind == "ServiceAccount" and .name == "hap-operator" and .namespace == $ns)) | "ClusterRoleBinding/" + .metadata.name'
    kubectl get rolebindings -o json | jq -r --arg ns "$ns" \
      '.items[] | select(any(.subjects[]?; .kind == "ServiceAccount" and .name == "hap-operator" and ((.namespace // $ns) == $ns))) | "RoleBinding/" + .metadata.name + " " + .roleRef.kind + "/" + .roleRef.name'
  } | tr '\n' ';'
}
check "its only grant is RoleBinding hap-operator to Role hap-operator" test "$(sa_grants)" = "RoleBinding/hap-operator Role/hap-operator;"

# --- 3. The sample workspace -----------------------------------------------------------------------
phase "CR to happod Running"
t_cr=$SECONDS
check "kubectl apply -f deploy/crds/hap.cloudian.com_v1alpha1_hapcontainer_cr.yaml" \
  bash -c "'$kubectl_bin' apply -f deploy/crds/hap.cloudian.com_v1alpha1_hapcontainer_cr.yaml >/dev/null"
happod_running() {
  kubectl get pods --no-headers | awk '$1 == "example-hapcontainer-happod" && $2 == "1/1" && $3 == "Running" {n++} END {exit n != 1}'
}
if eventually 600 happod_running; then run_time=$((SECONDS - t_cr)); fi
check "kubectl get pods: example-hapcontainer-happod 1/1 Running (in ${run_time:-?} s)" happod_running
check "kubectl get pods: the operator's pod still Running" operator_running
kubectl get pods
check "the workspace's container really runs (containerd started it)" test -n \
  "$(kubectl get pod example-hapcontainer-happod -o 'jsonpath={.status.containerStatuses[0].state.running.startedAt}')"
# The audit log names who created the pod (server-side apply: a PATCH answered 201 Created): the
# operator's ServiceAccount.
creators() {
  grep -F "\"namespace\":\"$ns\"" "$state/logs/audit.log" | jq -r \
    'select(.stage == "ResponseComplete" and (.verb == "create" or .verb == "patch") and .objectRef.resource == "pods" and .objectRef.subresource == null and .objectRef.name == "example-hapcontainer-happod" and .responseStatus.code == 201) | .user.username' |
    sort -u | tr '\n' ' '
}
if [ -f "$state/logs/audit.log" ]; then
  check "the operator's ServiceAccount created the pod (audit log)" test "$(creators)" = "system:serviceaccount:$ns:hap-operator "
fi

# --- 4. Inside the pod -----------------------------------------------------------------------------
phase "spark-shell and pip in the pod"
printf 'println("journey-sum " + sc.parallelize(1 to 100).sum)\n:quit\n' |
  timeout 600 "$kubectl_bin" exec -i example-hapcontainer-happod -- spark-shell >"$tmp/spark-shell.out" 2>&1
check "kubectl exec -i example-hapcontainer-happod -- spark-shell: 1 to 100 sums to 5050" \
  grep -q 'journey-sum 5050\.0' "$tmp/spark-shell.out"
grep -q 'journey-sum 5050\.0' "$tmp/spark-shell.out" || tail -20 "$tmp/spark-shell.out"
check "kubectl exec example-hapcontainer-happod -- pip show tensorflow" bash -c \
  "timeout 300 '$kubectl_bin' exec example-hapcontainer-happod -- pip show tensorflow | grep -qx 'Name: tensorflow'"

# --- 5. The Service and Jupyter ------------------------------------------------------------------
phase "service and Jupyter"
node_ip=$(kubectl get nodes -o 'jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address}')
kubectl describe service example-hapcontainer-hapservice >"$tmp/describe" 2>&1
check "kubectl describe service: type NodePort" grep -Eq '^Type:[[:space:]]+NodePort$' "$tmp/describe"
check "kubectl describe service: port jupyter 8888" grep -Eq '^Port:[[:space:]]+jupyter[[:space:]]+8888/TCP$' "$tmp/describe"
check "kubectl describe service: port spark-ui 4040" grep -Eq '^Port:[[:space:]]+spark-ui[[:space:]]+4040/TCP$' "$tmp/describe"
jport=$(kubectl get service example-hapcontainer-hapservice -o 'jsonpath={.spec.ports[?(@.name=="jupyter")].nodePort}')
uport=$(kubectl get service example-hapcontainer-hapservice -o 'jsonpath={.spec.ports[?(@.name=="spark-ui")].nodePort}')
check "kubectl describe service: node ports $jport and $uport" bash -c \
  "grep -Eq '^NodePort:[[:space:]]+jupyter[[:space:]]+$jport/TCP$' '$tmp/describe' && grep -Eq '^NodePort:[[:space:]]+spark-ui[[:space:]]+$uport/TCP$' '$tmp/describe'"
token=$(kubectl get secret example-hapcontainer-jupyter -o 'jsonpath={.data.token}' | base64 -d)
check "the Secret example-hapcontainer-jupyter holds a token" test -n "$token"
http_code() { curl -s -o /dev/null --max-time 10 -w '%{http_code}' "$@"; }
check "Jupyter answers 200 at $node_ip:$jport with the token" eventually 120 \
  test "$(http_code "http://$node_ip:$jport/api/status?token=$token")" = 200
check "Jupyter refuses without the token (403)" test "$(http_code "http://$node_ip:$jport/api/status")" = 403
check "Jupyter refuses a wrong token (403)" test "$(http_code "http://$node_ip:$jport/api/status?token=x$token")" = 403

# --- 6. The Spark UI while a job runs --------------------------------------------------------------
phase "Spark UI during a job"
# The job's tasks wait until a file appears in the pod (10 minutes at most), so it runs exactly as
# long as the checks need.
stop=/tmp/hap-journey-stop
kubectl exec example-hapcontainer-happod -- rm -f "$stop" >/dev/null 2>&1
cat >"$tmp/job.scala" <<EOF
sc.setJobDescription("hap-journey")
println("journey-job " + sc.parallelize(1 to 2, 2).map { x => var i = 0; while (!new java.io.File("$stop").exists && i < 1200) { Thread.sleep(500); i += 1 }; x }.sum)
:quit
EOF
timeout 900 "$kubectl_bin" exec -i example-hapcontainer-happod -- spark-shell <"$tmp/job.scala" >"$tmp/job.out" 2>&1 &
job=$!
ui=http://$node_ip:$uport
running_job() {
  local app
  app=$(curl -sf --max-time 10 "$ui/api/v1/applications" | jq -r '.[0].id') && [ -n "$app" ] &&
    curl -sf --max-time 10 "$ui/api/v1/applications/$app/jobs?status=running" |
      jq -e 'any(.[]; .status == "RUNNING" and .description == "hap-journey")' >/dev/null
}
check "the Spark UI's API at $node_ip:$uport lists the running job" eventually 600 running_job
ui_root() {
  local out
  out=$(curl -s -o /dev/null --max-time 10 -w '%{http_code} %{redirect_url}' "$ui/")
  case "$out" in "200 "*) ;; "302 "*/jobs/) ;; *) return 1 ;; esac
}
check "the Spark UI answers at $ui/ (200, or 302 to /jobs/) while the job runs" ui_root
check "the job was still running then" running_job
kubectl exec example-hapcontainer-happod -- touch "$stop" >/dev/null 2>&1
wait "$job"
job=""
check "the job ends once told to" grep -q 'journey-job 3\.0' "$tmp/job.out"
grep -q 'journey-job 3\.0' "$tmp/job.out" || tail -20 "$tmp/job.out"

# --- 7. The user's files and packages on the home volume --------------------------------------------
phase "files and packages in the home"
# A file, and a package installed the way a notebook user does (`pip install --user`), from a
# wheel made here (the pod has no package index to reach).
marker=journey-$(python3 -c 'import secrets; print(secrets.token_hex(8))')
python3 - "$tmp/hap_probe-1.0-py3-none-any.whl" "$marker" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as w:
    w.writestr("hap_probe/__init__.py", f"MARKER = {sys.argv[2]!r}\n")
    w.writestr("hap_probe-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: hap-probe\nVersion: 1.0\n")
    w.writestr("hap_probe-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: hap-journey\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    w.writestr("hap_probe-1.0.dist-info/RECORD", "hap_probe/__init__.py,,\nhap_probe-1.0.dist-info/METADATA,,\nhap_probe-1.0.dist-info/WHEEL,,\nhap_probe-1.0.dist-info/RECORD,,\n")
PY
in_pod() { kubectl exec -i example-hapcontainer-happod -- "$@"; }
check "a file written to the home, /home/jovyan/kept.txt" bash -c \
  "echo '$marker' | '$kubectl_bin' exec -i example-hapcontainer-happod -- sh -c 'cat > /home/jovyan/kept.txt'"
in_pod sh -c 'cat > /tmp/hap_probe-1.0-py3-none-any.whl' <"$tmp/hap_probe-1.0-py3-none-any.whl"
check "pip install --user hap-probe (into /home/jovyan/.local)" bash -c \
  "'$kubectl_bin' exec example-hapcontainer-happod -- pip install --user --no-index /tmp/hap_probe-1.0-py3-none-any.whl >'$tmp/pip.out' 2>&1"
# home_kept WHEN: the file and the package are there, as they were made.
home_kept() {
  [ "$(in_pod cat /home/jovyan/kept.txt 2>/dev/null)" = "$marker" ] &&
    [ "$(in_pod python -c 'import hap_probe; print(hap_probe.MARKER, hap_probe.__file__)' 2>/dev/null)" = \
      "$marker /home/jovyan/.local/lib/python$(in_pod python -c 'import sys; print("%d.%d" % sys.version_info[:2])')/site-packages/hap_probe/__init__.py" ]
}
check "the package imports from the home (python -c 'import hap_probe')" home_kept
home_kept || cat "$tmp/pip.out"
root_read_only() { in_pod awk '$2 == "/" {print $4}' /proc/mounts | grep -q '^ro\(,\|$\)'; }
check "the root file system is mounted read-only (only the home and /tmp are written)" root_read_only
pod_uid() { kubectl get pod example-hapcontainer-happod -o 'jsonpath={.metadata.uid}'; }
# new_pod_since UID: a pod other than UID runs.
new_pod_since() { local uid; uid=$(pod_uid) && [ -n "$uid" ] && [ "$uid" != "$1" ] && happod_running; }

# --- 8. A deleted pod comes back -------------------------------------------------------------------
phase "deleted pod comes back"
old_uid=$(pod_uid)
t_del=$SECONDS
check "kubectl delete pods example-hapcontainer-happod" bash -c \
  "timeout 300 '$kubectl_bin' delete pods example-hapcontainer-happod --timeout=240s >/dev/null"
if eventually 600 new_pod_since "$old_uid"; then rerun_time=$((SECONDS - t_del)); fi
check "a new example-hapcontainer-happod (another UID) is 1/1 Running (in ${rerun_time:-?} s)" new_pod_since "$old_uid"
check "... with the file and the package of the pod before it" home_kept

phase "spec change, upgrade, re-create"
uid=$(pod_uid)
check "a spec change (memory request 1Gi) is applied" \
  kubectl patch hapcontainer example-hapcontainer --type=merge -p '{"spec":{"resources":{"requests":{"memory":"1Gi"}}}}'
check "the operator replaces the pod for it" eventually 300 new_pod_since "$uid"
check "... with the file and the package" home_kept
uid=$(pod_uid)
check "a new operator pod (kubectl rollout restart) rolls out" bash -c \
  "'$kubectl_bin' rollout restart deployment/hap-operator >/dev/null && '$kubectl_bin' rollout status deployment/hap-operator --timeout=180s >/dev/null"
check "... and leaves the workspace pod as it was (same UID)" bash -c "sleep 10; [ \"\$('$kubectl_bin' get pod example-hapcontainer-happod -o 'jsonpath={.metadata.uid}')\" = '$uid' ]"
claim_uid=$(kubectl get pvc example-hapcontainer-workspace -o 'jsonpath={.metadata.uid}')
check "kubectl delete hapcontainer example-hapcontainer" bash -c \
  "timeout 300 '$kubectl_bin' delete hapcontainer example-hapcontainer --timeout=240s >/dev/null"
pod_gone() { ! kubectl get pod example-hapcontainer-happod >/dev/null 2>&1; }
check "its pod goes" eventually 180 pod_gone
check "its home volume's claim stays (spec.volume.keepOnDelete, the default)" test \
  "$(kubectl get pvc example-hapcontainer-workspace -o 'jsonpath={.metadata.uid}')" = "$claim_uid"
check "the sample applied again" \
  bash -c "'$kubectl_bin' apply -f deploy/crds/hap.cloudian.com_v1alpha1_hapcontainer_cr.yaml >/dev/null"
check "its pod runs" eventually 600 happod_running
check "... on the same claim, with the file and the package" bash -c \
  "[ \"\$('$kubectl_bin' get pvc example-hapcontainer-workspace -o 'jsonpath={.metadata.uid}')\" = '$claim_uid' ]"
check "... which are there" eventually 60 home_kept

# --- 9. Status -------------------------------------------------------------------------------------
phase "status"
# The Service was made anew with the HapContainer: its node port is the new one's.
jport=$(kubectl get service example-hapcontainer-hapservice -o 'jsonpath={.spec.ports[?(@.name=="jupyter")].nodePort}')
status_ok() {
  local s
  s=$(kubectl get hapcontainer example-hapcontainer -o 'jsonpath={.status.phase} {.status.jupyterUrl}')
  case "$s" in "Running http://"*":$jport"*) ;; *) return 1 ;; esac
}
check "status: phase Running, Jupyter URL on node port $jport" eventually 120 status_ok
kubectl get hapcontainers

# --- 10. Cleanup, in the original's order -----------------------------------------------------------
phase "cleanup"
for f in deploy/service_account.yaml deploy/role.yaml deploy/role_binding.yaml \
         deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml deploy/operator.yaml; do
  check "kubectl delete -f $f" bash -c "timeout 300 '$kubectl_bin' delete -f '$f' --timeout=240s >/dev/null"
done
timeout 120 "$kubectl_bin" delete -f deploy/crds/hap.cloudian.com_v1alpha1_hapcontainer_cr.yaml --timeout=60s >"$tmp/cr-delete" 2>&1
cr_rc=$?
check "kubectl delete -f the CR answers NotFound (its CRD took it)" bash -c \
  "[ $cr_rc != 0 ] && [ $cr_rc != 124 ] && grep -Eq 'NotFound|not found|no matches for kind \"HapContainer\"' '$tmp/cr-delete'"
cat "$tmp/cr-delete"
leftovers() {
  {
    kubectl get pods,services,secrets,configmaps,persistentvolumeclaims,leases,deployments,replicasets,serviceaccounts,roles,rolebindings \
      -o name | grep -e example-hapcontainer -e hap-operator
    kubectl get pods,services,secrets,configmaps,persistentvolumeclaims,leases,deployments,replicasets \
      -l 'app.kubernetes.io/managed-by=hap-operator' -o name
    kubectl get pods,services,secrets,configmaps,persistentvolumeclaims,leases,deployments,replicasets \
      -l 'app.kubernetes.io/name in (hap-workspace,hap-operator)' -o name
  } 2>/dev/null | sort -u
}
# Two things are kept (they have no owner): the home volume's claim, for the user's data outlives the
# workspace, and the operator's CA, which clients may trust; the README's cleanup says how to delete
# each.
nothing_left() { [ "$(leftovers | tr '\n' ' ')" = "persistentvolumeclaim/example-hapcontainer-workspace secret/hap-ca " ]; }
check "nothing left in $ns but the home volume's claim and the CA: pods, services, secrets, configmaps, leases, RBAC" eventually 300 nothing_left
leftovers
check "kubectl delete pvc example-hapcontainer-workspace (the README's last cleanup step)" bash -c \
  "timeout 180 '$kubectl_bin' delete pvc example-hapcontainer-workspace --timeout=120s >/dev/null"
check "no HapContainer CRD left" bash -c "! '$kubectl_bin' get crd -o name | grep -q hapcontainers.hap.cloudian.com"
crds_applied=()
check "the namespace deletes without hanging" bash -c \
  "timeout 240 '$kubectl_bin' delete namespace '$ns' --timeout=200s >/dev/null"
ns=""

# --- 10. The cluster as it was ---------------------------------------------------------------------
cluster_down
finish
