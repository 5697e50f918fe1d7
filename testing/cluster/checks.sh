# Shared by the cluster's test scripts: each check prints ok or FAIL and is counted; the script ends
# with a line `N passed, N failed`; and the set-up and clean-up the tests on the cluster share (below).

# check NAME COMMAND...: one test, passing when COMMAND succeeds.
check() {
  local name=$1; shift
  if "$@"; then
    echo "ok    $name"; passed=$((passed + 1))
  else
    echo "FAIL  $name"; failed=$((failed + 1))
  fi
}

# eventually SECONDS COMMAND...: COMMAND succeeds within SECONDS (the cluster acts a moment after it
# is asked: kube-proxy programs rules after a Service appears, the kubelet starts containers).
eventually() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ "$SECONDS" -lt "$deadline" ] || return 1; sleep 1; done
}

# phase NAME: the previous phase ends, NAME begins; each one's duration is kept in `times` for the
# caller to print at the end.
times=() phase_name="" phase_t=$SECONDS
phase_end() {
  [ -z "$phase_name" ] || times+=("$(printf '%-38s %4d s' "$phase_name" $((SECONDS - phase_t)))")
  phase_name=""
}
phase() { phase_end; phase_name=$1 phase_t=$SECONDS; echo "--    $1"; }

# start_s3 ROOT: a versitygw S3 server on the host's end of the cluster's veth ($host_ip), where pods
# reach it, serving the directories under ROOT as buckets, with generated root keys (from the
# environment, never the command line). Sets s3_port, s3_endpoint, s3_key_id, s3_secret_key and
# s3_pid (the caller stops it), and checks that it listens. Needs $versitygw and $host_ip.
start_s3() {
  local root=$1
  s3_port=$(python3 - "$host_ip" <<'PY'
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1]); s.close()
PY
)
  s3_endpoint=http://$host_ip:$s3_port
  s3_key_id=hap$(python3 -c 'import secrets; print(secrets.token_hex(8))')
  s3_secret_key=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
  mkdir -p "$root"
  ROOT_ACCESS_KEY_ID=$s3_key_id ROOT_SECRET_ACCESS_KEY=$s3_secret_key VGW_REGION=us-east-1 \
    setsid "$versitygw" --port "$host_ip:$s3_port" posix "$root" >"$root.log" 2>&1 </dev/null &
  s3_pid=$!
  check "versitygw listens on $s3_endpoint" eventually 60 s3_listening
  s3_listening || { tail -20 "$root.log"; return 1; }
}
s3_listening() { python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1)' "$host_ip" "$s3_port"; }

# --- The set-up and clean-up every test on the local cluster shares ----------------------------------
# A test script sets `repo`, sources this file and calls `cluster_test NAME`. It may define
# test_cleanup (stops what it started; runs first at clean-up) and test_report (extra lines for the
# times). It records what clean-up must undo in `ns` (its namespace), `crds_applied` (CRD files it
# applied) and `s3_pid` (its S3 server). A cluster that runs already is reused and left running; one
# the test starts it brings down at the end, unless KEEP_CLUSTER=1.

kubectl() { "$kubectl_bin" "$@"; }
fail_now() { echo "FAIL  $*"; failed=$((failed + 1)); finish; }

# cluster_test NAME: the counters, the tools, a private scratch directory ($tmp), whether this test
# starts the cluster, and the traps that clean up however the test ends.
cluster_test() {
  passed=0 failed=0 t0=$SECONDS
  cache=${HAP_CACHE:-$HOME/.cache/hap}
  kubectl_bin=$cache/bin/kubectl
  cluster=$repo/scripts/cluster.sh
  [ -x "$kubectl_bin" ] || "$repo/scripts/setup.sh" >/dev/null
  cd "$repo" || exit 1
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/$1-test.XXXXXX")
  chmod 700 "$tmp"
  started=0
  grep -q '^kube-apiserver: running' <<<"$("$cluster" status 2>/dev/null)" || started=1
  ns="" crds_applied=() s3_pid=""
  trap 'echo "FAIL  interrupted"; failed=$((failed + 1)); finish' INT TERM
  trap 'finish' EXIT
}

cleanup() {
  ! declare -F test_cleanup >/dev/null || test_cleanup
  [ -z "$ns" ] || kubectl delete namespace "$ns" --ignore-not-found --timeout=180s >/dev/null 2>&1
  local crd
  for crd in "${crds_applied[@]}"; do
    kubectl delete -f "$crd" --ignore-not-found --timeout=120s >/dev/null 2>&1
  done
  if [ -n "$s3_pid" ]; then kill "$s3_pid" 2>/dev/null; wait "$s3_pid" 2>/dev/null; fi
  if [ "$started" = 1 ] && [ "${KEEP_CLUSTER:-0}" != 1 ]; then "$cluster" down >/dev/null 2>&1; fi
  rm -rf "$tmp"
}

finish() {
  phase_end
  echo "times:"
  printf '  %s\n' "${times[@]}"
  printf '  %-38s %4d s\n' total $((SECONDS - t0))
  ! declare -F test_report >/dev/null || test_report
  trap - EXIT
  cleanup
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]; exit
}

# up_and_load IMAGE...: the cluster up (started, or found running), and the images in its node.
up_and_load() {
  phase "up and load"
  kc=$("$cluster" up | tail -1)
  check "up prints a kubeconfig on its last line" test -f "$kc"
  [ -f "$kc" ] || finish
  "$repo/scripts/docker-engine.sh" >/dev/null 2>&1 # load reads the local Docker engine
  check "load $*" "$cluster" load "$@"
}

# fresh_namespace PREFIX: a new namespace, the current context's in a kubeconfig of the test's own.
fresh_namespace() {
  ns=$1-$(date +%H%M%S)-$$
  export KUBECONFIG=$tmp/kubeconfig
  cp "$kc" "$KUBECONFIG"
  kubectl create namespace "$ns" >/dev/null
  kubectl config set-context --current --namespace="$ns" >/dev/null
  check "a fresh namespace, $ns, is the context's" eventually 60 kubectl get serviceaccount default
}

# install_operator: the CRDs (applied only when the cluster has none, and then deleted at clean-up)
# and the operator from deploy/ in the test's namespace, with its pod Running.
install_operator() {
  local f crds=(deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml deploy/crds/hap.cloudian.com_hapqueries_crd.yaml)
  if kubectl get crd hapcontainers.hap.cloudian.com hapqueries.hap.cloudian.com >/dev/null 2>&1; then
    echo "      (the cluster has the CRDs already: used as they are, and left in place)"
  else
    crds_applied=("${crds[@]}")
    check "the CRDs applied and established" bash -c "'$kubectl_bin' apply -f ${crds[0]} -f ${crds[1]} >/dev/null &&
      '$kubectl_bin' wait --for=condition=Established crd/hapcontainers.hap.cloudian.com crd/hapqueries.hap.cloudian.com --timeout=60s >/dev/null"
  fi
  for f in deploy/service_account.yaml deploy/role.yaml deploy/role_binding.yaml deploy/operator.yaml; do
    check "kubectl apply -f $f" bash -c "'$kubectl_bin' apply -f '$f' >/dev/null"
  done
  check "the operator's pod is 1/1 Running" eventually 300 operator_running
}
operator_running() {
  kubectl get pods --no-headers | awk '$1 ~ /^hap-operator-/ && $2 == "1/1" && $3 == "Running" {n++} END {exit n != 1}'
}

# delete_applied_crds: the CRDs install_operator applied, deleted (with every resource of theirs).
delete_applied_crds() {
  [ ${#crds_applied[@]} -gt 0 ] || return 0
  check "the CRDs this test applied are deleted" bash -c \
    "timeout 180 '$kubectl_bin' delete $(printf -- '-f %s ' "${crds_applied[@]}") --timeout=120s >/dev/null"
  crds_applied=()
}

# cluster_down: at the end of a test that started the cluster, brings it down and checks it stopped.
cluster_down() {
  if [ "$started" = 1 ] && [ "${KEEP_CLUSTER:-0}" != 1 ]; then
    phase "down"
    "$cluster" down >/dev/null 2>&1
    check "down: everything stopped" bash -c "! '$cluster' status | grep -q running"
    started=0
  fi
}
