#!/bin/bash
# The workspace image serves two roles. As a HapContainer's pod it runs Jupyter, as the base image does.
# As a Spark executor (or driver in cluster mode), Spark on Kubernetes starts it with the argument
# "executor" (or "driver"): those go to Spark's own Kubernetes entrypoint, shipped with Spark.
set -euo pipefail
case "${1:-}" in
  executor|driver)
    exec "${SPARK_HOME}/kubernetes/dockerfiles/spark/entrypoint.sh" "$@"
    ;;
  *)
    exec tini -g -- start.sh "${@:-start-notebook.py}"
    ;;
esac
