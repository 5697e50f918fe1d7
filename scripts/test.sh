#!/usr/bin/env bash
# Runs every test of the project, set-up included: installs the tools the tests use (scripts/setup.sh:
# kubectl, crdcheck, kubernetes-validate, docker-buildx), makes sure a Docker engine runs
# (scripts/docker-engine.sh), builds the two images (scripts/images.sh, from a debian:trixie-slim base
# that testing/images/base-image.sh makes when no registry has it), then runs the whole workspace's test
# suite: unit tests, the reconcile tests against kube-sim, the kubectl end-to-end journey, the data job's
# tests against an S3 server on loopback, and the images run the way the operator's pod runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh >/dev/null

# The images, built once here; the tests in testing/images run them.
images_started=$(date +%s)
scripts/docker-engine.sh
testing/images/base-image.sh
scripts/images.sh
echo "test: images ready in $(( $(date +%s) - images_started ))s" >&2

# Snapshot tests compare, never rewrite, in a test run.
export INSTA_UPDATE=no
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
