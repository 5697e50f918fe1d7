#!/usr/bin/env bash
# The HAP quickstart, with no cluster needed: starts kube-sim (a SIMULATED Kubernetes control plane: the
# API is real, but no container ever runs), installs the operator from deploy/ exactly as on a real
# cluster, runs the hap-operator binary in place of its pod, creates the sample HapContainer and shows
# the pods, the service and the HapContainer's status. Then it cleans up.
#
#   scripts/quickstart.sh          run the walkthrough and clean up
#   scripts/quickstart.sh --keep   leave the simulated cluster running to explore with kubectl (Ctrl-C ends it)
set -euo pipefail
cd "$(dirname "$0")/.."
keep=false
[ "${1:-}" = "--keep" ] && keep=true

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "Installing the tools (kubectl, crdcheck) and building kube-sim and hap-operator"
bin=$(scripts/setup.sh)
cargo build --quiet -p kube-sim -p hap-operator
target=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/debug
kubectl=$bin/kubectl
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say "Starting kube-sim: a simulated cluster (no containers run)"
"$target/kube-sim" serve --listen 127.0.0.1:0 --kubeconfig "$work/admin.yaml" \
  --sa-kubeconfig "default/hap-operator=$work/operator.yaml" > "$work/kube-sim.out" 2> "$work/kube-sim.log" &
pids+=($!)
for _ in $(seq 100); do grep -q serving "$work/kube-sim.out" 2>/dev/null && break; sleep 0.1; done
cat "$work/kube-sim.out"
export KUBECONFIG=$work/admin.yaml
k() { echo "\$ kubectl $*"; "$kubectl" --cache-dir "$work/cache" "$@"; }

say "Installing the operator, in the original README's order"
for f in deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml deploy/service_account.yaml deploy/role.yaml \
         deploy/role_binding.yaml deploy/operator.yaml; do
  k apply -f "$f"
done

pod=""
for _ in $(seq 100); do
  pod=$("$kubectl" --cache-dir "$work/cache" get pods -l name=hap-operator -o jsonpath='{.items[0].metadata.name}' 2>/dev/null || true)
  [ -n "$pod" ] && break; sleep 0.1
done
say "Running the hap-operator binary as pod $pod would, with the hap-operator ServiceAccount's credentials"
KUBECONFIG=$work/operator.yaml WATCH_NAMESPACE=default POD_NAME=$pod POD_NAMESPACE=default \
  HAP_METRICS_ADDR=127.0.0.1:0 "$target/hap-operator" > "$work/operator.log" 2>&1 &
pids+=($!)

say "Creating the sample HapContainer"
k apply -f deploy/crds/hap.cloudian.com_v1alpha1_hapcontainer_cr.yaml
for _ in $(seq 150); do
  "$kubectl" --cache-dir "$work/cache" get hapcontainer example-hapcontainer -o jsonpath='{.status.phase}' 2>/dev/null | grep -q Running && break
  sleep 0.2
done

say "The workspace"
k get pods
k get services
k get hapcontainers
k describe hapcontainer example-hapcontainer

say "Self-healing: deleting the workspace pod"
k delete pods example-hapcontainer-happod
sleep 2
k get pods

cat <<MSG

This cluster is simulated: kube-sim serves the real Kubernetes API and simulates the scheduler,
kubelets and controllers, so the pods above are "Running" without any container. The node IP and
ports in the Jupyter URL are simulated too. On a real cluster the same manifests run Jupyter, Spark
and TensorFlow (see "Install on a real cluster" in the README).
MSG

if $keep; then
  say "kube-sim keeps running. In another shell:"
  echo "  export KUBECONFIG=$KUBECONFIG"
  echo "  $kubectl get pods"
  echo "Press Ctrl-C to stop and clean up."
  while true; do sleep 3600; done
fi

say "Cleaning up, in the original README's order"
for f in deploy/service_account.yaml deploy/role.yaml deploy/role_binding.yaml \
         deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml deploy/operator.yaml \
         deploy/crds/hap.cloudian.com_v1alpha1_hapcontainer_cr.yaml; do
  k delete -f "$f" || echo "(expected: the CRD's deletion already removed the HapContainer)"
done
sleep 1
k get all
