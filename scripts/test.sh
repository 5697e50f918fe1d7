#!/usr/bin/env bash
# Runs every test of the project, set-up included, as root: installs the tools the tests use
# (scripts/setup.sh: kubectl, kubernetes-validate, docker-buildx), makes sure a Docker engine runs
# (scripts/docker-engine.sh), builds the two images (scripts/images.sh, from a debian:trixie-slim base
# that testing/images/base-image.sh makes when no registry has it), starts the local Kubernetes
# cluster (scripts/cluster.sh: upstream components built from the Go module, real pods) and loads the
# images into its node, then runs:
#   - the whole workspace's test suite: unit and snapshot tests, the CRD and the operator's reconcile,
#     operations and RBAC tests on the real cluster, the console's sign-in at a real IdP (Keycloak on
#     loopback, testing/oidc/keycloak.sh) with its actions authorized by the real API server, the data job against an S3 server on loopback,
#     and the images run the way the operator's pod runs them;
#   - the original user journey, verbatim, with kubectl 1.36 and real pods (testing/cluster/journey.sh);
#   - Spark on Kubernetes with two real executor pods and a real S3 server (testing/cluster/spark.sh);
#   - a hostile tenant's attacks, each refused, in the shared-namespace and the multi-tenant install
#     (testing/cluster/tenants.sh);
#   - the SQL stack from one HapQuery on the cluster: MariaDB, the metastore, Trino and Superset from
#     the images built here, the air-quality tables queried through the Trino Service and the
#     air-quality dashboard's charts through Superset (testing/cluster/sql.sh);
#   - control-plane faults with workspaces and a HapQuery running and changes in flight: kube-apiserver,
#     etcd, the kubelet and containerd restarted, the operator killed, its network to the API server
#     cut; each converges, nothing lost or duplicated (testing/cluster/faults.sh);
#   - the cluster's own smoke test, which ends with `down` leaving nothing behind (testing/cluster/smoke.sh);
#   - the SQL stack as real processes on loopback (MariaDB, the Hive metastore, Trino, Superset and an
#     S3 server) with the air-quality job's tables queried through Trino and Superset
#     (testing/sql-stack/test.sh; its installs run beside the builds, and the test beside the faults).
# The cluster is brought down at the end, pass or fail (HAP_KEEP_CLUSTER=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh >/dev/null

# The debug build is kept between runs, beside the project's other caches (a fresh clone has no
# target/, and building every dependency again took minutes); without that cache it builds from scratch.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${HAP_CACHE:-$HOME/.cache/hap}/target-debug}

logs=$(mktemp -d)
cluster_job="" build_job="" sql_job="" loopback_job="" beside_job="" keycloak_job=""
# On the way out, pass or fail: the background builds stopped, then the cluster brought down.
finish() {
  [ -z "$build_job" ] || kill "$build_job" 2>/dev/null || true
  [ -z "$sql_job" ] || kill "$sql_job" 2>/dev/null || true
  [ -z "$loopback_job" ] || wait "$loopback_job" 2>/dev/null || true
  # shellcheck disable=SC2086 # the jobs' ids
  [ -z "$beside_job" ] || wait $beside_job 2>/dev/null || true
  [ -z "$keycloak_job" ] || wait "$keycloak_job" 2>/dev/null || true
  testing/oidc/keycloak.sh stop >/dev/null 2>&1 || true
  [ -z "$cluster_job" ] || wait "$cluster_job" 2>/dev/null || true
  [ "${HAP_KEEP_CLUSTER:-0}" = 1 ] || scripts/cluster.sh down >/dev/null 2>&1 || true
  rm -rf "$logs"
}
trap finish EXIT

# Three independent builds share the machine: the images (the release build and the Docker layers),
# the local cluster (its Kubernetes components, compiled at nice 19, then `up`) and the tests' debug
# build. Started together, each fills the others' single-threaded stretches and downloads; on a cold
# machine this saves a good part of the run.
started=$(date +%s)
scripts/cluster.sh up > "$logs/cluster.out" 2> "$logs/cluster.log" & cluster_job=$!
# The console's tests sign in at a real IdP: Keycloak on loopback (testing/oidc/keycloak.sh), whose
# start-up (a minute on a fresh machine) overlaps the builds.
testing/oidc/keycloak.sh start > "$logs/keycloak.out" 2> "$logs/keycloak.log" & keycloak_job=$!
cargo test --workspace --no-run > "$logs/build.log" 2>&1 & build_job=$!

# The images, built once here; the tests in testing/images run them, the cluster's pods too.
scripts/docker-engine.sh
# The SQL stack's downloads and installs (Trino, the metastore's jars, Superset, the S3 server).
scripts/sql-stack.sh install > "$logs/sql-install.log" 2>&1 & sql_job=$!
testing/images/base-image.sh debian:trixie-slim debian:bookworm-slim
scripts/images.sh
echo "test: images ready in $(( $(date +%s) - started ))s" >&2

if ! wait $cluster_job; then
  cat "$logs/cluster.log" >&2
  echo "test: scripts/cluster.sh up failed" >&2
  exit 1
fi
kubeconfig=$(tail -1 "$logs/cluster.out")
# The Rust tests use this cluster as it is (they would otherwise run `up` and `load` themselves).
export HAP_TEST_KUBECONFIG=$kubeconfig HAP_TEST_AUDIT_LOG=${kubeconfig%/*}/logs/audit.log
scripts/cluster.sh load hap-workspace:0.1.0 hap-operator:0.1.0 hap-mariadb:0.1.0
echo "test: cluster up, images loaded at $(( $(date +%s) - started ))s ($(grep -o 'up in .*' "$logs/cluster.log" || true))" >&2
# A failed build shows again, with its errors, in the test run below.
wait $build_job || true
if wait $keycloak_job; then
  export HAP_TEST_OIDC_ENV=$(tail -1 "$logs/keycloak.out")
  echo "test: Keycloak answers at $(( $(date +%s) - started ))s" >&2
else
  cat "$logs/keycloak.log" >&2
  echo "test: testing/oidc/keycloak.sh start failed; the console's sign-in test will fail" >&2
  export HAP_TEST_OIDC_ENV=/nonexistent
fi
keycloak_job=""
echo "test: tests built at $(( $(date +%s) - started ))s" >&2

status=0
# Snapshot tests compare, never rewrite, in a test run.
export INSTA_UPDATE=no
# cargo test, not nextest: the test binaries share one cluster and run one after another; within one,
# a test that watches every namespace holds a lock the others wait on (tests/operations.rs). The tests
# that need the cluster, Docker or the installed tools are #[ignore]d in a plain `cargo test` (each
# says so in its output); here they run too.
if [ $# -gt 0 ]; then
  cargo test --workspace --no-fail-fast "$@" -- --include-ignored || status=1
else
  # Most cluster test binaries mostly wait: on pods, and two of them (culling, rbac) on a workspace's
  # minute of idleness. Two groups of them run beside the main run, each test in its own namespace,
  # which evens the three out: the culling test with the workspace image's tests (Docker, no cluster),
  # and the RBAC test with the HapQuery tests. The one test whose operator watches every namespace
  # would reconcile their workspaces too: it runs on its own, after them. The names skipped in the
  # main run are the binaries' own lists, so a test added to them runs once. Each run selects the
  # workspace, as the build above did: one package alone would build again with other features.
  groups=("culling workspace" "rbac hapquery") alone=with_no_watch_namespace_every_namespace_is_reconciled
  skips=(--skip "$alone") group_jobs=()
  for t in ${groups[*]}; do
    # Its own statement, so that a failed listing stops the run (set -e) rather than running the
    # binary twice at once.
    names=$(cargo test -q --workspace --test "$t" -- --list --include-ignored 2>/dev/null | sed -n 's/: test$//p')
    [ -n "$names" ] || { echo "test: cannot list the tests of $t" >&2; exit 1; }
    for name in $names; do
      skips+=(--skip "$name")
    done
  done
  for g in "${!groups[@]}"; do
    # shellcheck disable=SC2086 # the group's names, one --test each
    cargo test --workspace --no-fail-fast $(printf -- '--test %s ' ${groups[$g]}) -- --include-ignored \
      > "$logs/beside-$g.log" 2>&1 & group_jobs+=($!)
  done
  beside_job="${group_jobs[*]}"
  cargo test --workspace --no-fail-fast -- --include-ignored --exact "${skips[@]}" || status=1
  for job in "${group_jobs[@]}"; do
    wait "$job" || status=1
  done
  beside_job=""
  cat "$logs"/beside-*.log
  cargo test --workspace --test operations -- --include-ignored --exact "$alone" || status=1
fi

# Only the console's tests use the IdP.
testing/oidc/keycloak.sh stop >/dev/null 2>&1 || true

# The Rust tests leave the CRDs installed; the journey installs and deletes its own, as the original
# README does, and starts only on a cluster without one.
"${HAP_CACHE:-$HOME/.cache/hap}/bin/kubectl" --kubeconfig "$kubeconfig" delete crd \
  hapcontainers.hap.cloudian.com hapqueries.hap.cloudian.com --ignore-not-found --timeout=180s >/dev/null || status=1

# The SQL stack's installs, which the metastore and Trino images are made from (and Superset's pins).
sql_installed=1
if ! wait $sql_job; then
  cat "$logs/sql-install.log" >&2
  echo "test: scripts/sql-stack.sh install failed" >&2
  sql_installed=0 status=1
fi
sql_job=""
cluster_tests=(journey spark tenants faults smoke)
if [ $sql_installed = 1 ]; then
  started=$(date +%s)
  if scripts/images.sh metastore trino superset; then
    cluster_tests=(journey spark tenants sql faults smoke)
  else
    status=1
  fi
  echo "test: metastore, Trino and Superset images built in $(( $(date +%s) - started ))s" >&2
fi
for t in "${cluster_tests[@]}"; do
  # The SQL stack on loopback runs beside the fault suite, which mostly waits (on components stopped
  # for seconds at a time, on a cut network) and whose time bounds are generous; its output follows
  # the cluster suites'.
  if [ "$t" = faults ] && [ $sql_installed = 1 ]; then
    (
      started=$(date +%s) rc=0
      testing/sql-stack/test.sh > "$logs/sql-stack.log" 2>&1 || rc=1
      echo "test: testing/sql-stack/test.sh took $(( $(date +%s) - started ))s" >> "$logs/sql-stack.log"
      exit $rc
    ) & loopback_job=$!
  fi
  started=$(date +%s)
  testing/cluster/$t.sh || status=1
  echo "test: testing/cluster/$t.sh took $(( $(date +%s) - started ))s" >&2
done
if [ -n "$loopback_job" ]; then
  wait "$loopback_job" || status=1
  loopback_job=""
  cat "$logs/sql-stack.log"
fi
exit $status
