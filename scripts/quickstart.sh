#!/usr/bin/env bash
# The HAP quickstart: the original README's walkthrough with real pods. It builds the images
# (scripts/images.sh), starts the local Kubernetes cluster (scripts/cluster.sh, as root) and loads the
# images into its node, installs the operator from deploy/ in the original's order, creates the sample
# HapContainer, waits for Jupyter, shows the pods, the service, the status, the Jupyter URL and the
# command that prints its token, deletes the workspace pod to show it coming back, and cleans up in the original's order.
#
#   scripts/quickstart.sh                      on the local cluster, brought down at the end
#   scripts/quickstart.sh --keep               leave the cluster and the workspace running to explore
#   scripts/quickstart.sh --current-context    on the cluster of your current kubeconfig instead; its
#                                              nodes must already have the two images (see the README)
set -euo pipefail
cd "$(dirname "$0")/.."
keep=false own_cluster=true
for arg in "$@"; do
  case $arg in
    --keep) keep=true ;;
    --current-context) own_cluster=false ;;
    *) echo "usage: scripts/quickstart.sh [--keep] [--current-context]" >&2; exit 2 ;;
  esac
done

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
cache=${HAP_CACHE:-$HOME/.cache/hap}

say "Installing kubectl"
scripts/setup.sh >/dev/null
kubectl=$cache/bin/kubectl

if $own_cluster; then
  say "Building the images (the first time takes a while: see the README)"
  scripts/docker-engine.sh
  testing/images/base-image.sh
  scripts/images.sh workspace operator
  say "Starting the local cluster"
  $keep || trap 'scripts/cluster.sh down >/dev/null 2>&1 || true' EXIT
  KUBECONFIG=$(scripts/cluster.sh up | tail -1)
  export KUBECONFIG
  scripts/cluster.sh load hap-operator:0.1.0 hap-workspace:0.1.0
fi
k() { echo "\$ kubectl $*"; "$kubectl" "$@"; }

say "Installing the operator, in the original README's order"
for f in deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml deploy/service_account.yaml deploy/role.yaml \
         deploy/role_binding.yaml deploy/operator.yaml; do
  k apply -f "$f"
done
k wait --for=condition=Established crd/hapcontainers.hap.cloudian.com --timeout=60s
k rollout status deployment/hap-operator --timeout=180s

say "Creating the sample HapContainer"
k apply -f deploy/crds/hap.cloudian.com_v1alpha1_hapcontainer_cr.yaml
k wait --for=jsonpath='{.status.phase}'=Running hapcontainer/example-hapcontainer --timeout=300s

say "The workspace"
k get pods
k get services
k get hapcontainers
url=$("$kubectl" get hapcontainer example-hapcontainer -o jsonpath='{.status.jupyterUrl}')
echo
echo "Jupyter: $url"
echo "Its token (generated into a Secret, never printed by the operator):"
echo "  kubectl get secret example-hapcontainer-jupyter -o jsonpath='{.data.token}' | base64 -d"

say "Self-healing: deleting the workspace pod"
old=$("$kubectl" get pod example-hapcontainer-happod -o jsonpath='{.metadata.uid}')
k delete pods example-hapcontainer-happod
for _ in $(seq 150); do
  new=$("$kubectl" get pod example-hapcontainer-happod -o jsonpath='{.metadata.uid}' 2>/dev/null || true)
  [ -n "$new" ] && [ "$new" != "$old" ] && break
  sleep 2
done
k wait --for=condition=Ready pod/example-hapcontainer-happod --timeout=300s
k get pods

if $keep; then
  say "Everything keeps running. To explore:"
  echo "  export KUBECONFIG=${KUBECONFIG:-~/.kube/config}"
  echo "  $kubectl get pods"
  $own_cluster && echo "When done: scripts/cluster.sh down"
  exit 0
fi

say "Cleaning up, in the original README's order"
for f in deploy/service_account.yaml deploy/role.yaml deploy/role_binding.yaml \
         deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml deploy/operator.yaml \
         deploy/crds/hap.cloudian.com_v1alpha1_hapcontainer_cr.yaml; do
  k delete -f "$f" --ignore-not-found --timeout=180s
done
say "The home volume outlives its workspace; deleting it drops the user's files"
k delete pvc example-hapcontainer-workspace --ignore-not-found --timeout=180s
k get all
