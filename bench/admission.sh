#!/usr/bin/env bash
# What the admission policies of the HapContainer CRD's file cost a pod write, in a namespace that
# holds N HapContainers (default 1000), on the local cluster (scripts/cluster.sh up), as root. Not
# part of the test command.
#
#   bench/admission.sh [N]
#
# It applies deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml, makes N HapContainers in a fresh
# namespace (no operator runs them: it refuses a cluster where one is installed), then times 40
# server-side dry-run pod creates (nothing is stored), straight to the API server with the admin's
# client certificate, for an ordinary pod and for an executor-shaped one (label spark-role:
# executor): with the image policy's binding as shipped, and with it removed (then put back). It
# prints the median and 90th percentile of each. The namespace is deleted at the end.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${HAP_CACHE:-$HOME/.cache/hap}
state=${HAP_CLUSTER_STATE:-$cache/cluster/state}
pki=$state/pki
api=https://198.18.0.2:6443
ns=hap-admission-bench
binding=hap-spark-executor-images.hap.cloudian.com
crd_file=$repo/deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml
n=${1:-1000}
requests=40
case $n in '' | *[!0-9]*) echo "usage: bench/admission.sh [N]   (a count of HapContainers; default 1000)" >&2; exit 2 ;; esac

log() { printf 'admission: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
kubectl() { "$cache/bin/kubectl" --kubeconfig "$state/admin.kubeconfig" "$@"; }
[ -f "$state/admin.kubeconfig" ] || die "no local cluster (scripts/cluster.sh up)"
kubectl get --raw /readyz >/dev/null || die "the local cluster's API server does not answer"
[ -z "$(kubectl get deployments -A -l app.kubernetes.io/name=hap-operator -o name 2>/dev/null)" ] ||
  die "an operator is installed: it would run the $n HapContainers; remove it first"
kubectl get namespace "$ns" >/dev/null 2>&1 && die "namespace $ns exists (a run left it?): kubectl delete namespace $ns"

# The binding is put back and the namespace deleted, however the run ends.
trap 'kubectl apply -f "$crd_file" >/dev/null 2>&1 || true; kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true' EXIT
kubectl apply -f "$crd_file" >/dev/null
kubectl wait --for condition=established crd/hapcontainers.hap.cloudian.com >/dev/null
kubectl create namespace "$ns" >/dev/null
log "making $n HapContainers in $ns"
python3 - "$n" <<'PY' | kubectl -n "$ns" apply -f - >/dev/null
import sys
for i in range(int(sys.argv[1])):
    print(f"---\napiVersion: hap.cloudian.com/v1alpha1\nkind: HapContainer\n"
          f"metadata: {{name: w{i:05d}}}\nspec: {{size: 1, image: 'hap-workspace:0.1.0'}}")
PY
[ "$(kubectl -n "$ns" get hapcontainers -o name | wc -l)" = "$n" ] || die "not all $n HapContainers were made"

# times LABELS_JSON: median and p90 of the dry-run creates of a pod with those labels.
times() {
  local body
  body="{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"probe\",\"labels\":$1},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"probe\"}]}}"
  for _ in $(seq "$requests"); do
    curl -sS -o /dev/null -w '%{http_code} %{time_total}\n' --cacert "$pki/ca.crt" --cert "$pki/admin.crt" \
      --key "$pki/admin.key" -H 'Content-Type: application/json' -X POST -d "$body" \
      "$api/api/v1/namespaces/$ns/pods?dryRun=All"
  done | awk '$1 != 201 {bad++} {print $2}
              END {if (bad) {print "admission: " bad " dry-run creates were not 201" > "/dev/stderr"; exit 1}}' |
    sort -n | awk '{t[NR] = $1 * 1000} END {printf "median %.1f ms, p90 %.1f ms", t[int((NR + 1) / 2)], t[int(NR * 0.9)]}'
}
ordinary='{"app":"probe"}' executor='{"spark-role":"executor"}'
sleep 2  # the policy's parameter informer sees the new HapContainers
echo "$n HapContainers in the namespace, $requests server-side dry-run pod creates each"
echo "with the binding:    ordinary pod $(times "$ordinary");  executor $(times "$executor")"
kubectl delete validatingadmissionpolicybinding "$binding" >/dev/null
sleep 2  # the API server's admission sees the binding gone
echo "binding removed:     ordinary pod $(times "$ordinary");  executor $(times "$executor")"
