#!/usr/bin/env bash
# Runs every test of the project, set-up included: installs the tools the tests use (scripts/setup.sh:
# kubectl, crdcheck, kubernetes-validate), then runs the whole workspace's test suite: unit tests, the
# reconcile tests against kube-sim, the kubectl end-to-end journey, and the data job's tests against an
# S3 server on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh >/dev/null

# Snapshot tests compare, never rewrite, in a test run.
export INSTA_UPDATE=no
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
