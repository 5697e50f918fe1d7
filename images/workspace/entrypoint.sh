#!/bin/bash
# The workspace image's entrypoint, started by tini. Three roles:
#   (no arguments)       JupyterLab on port 8888 for the workspace pod. The token comes from
#                        JUPYTER_TOKEN (the operator sets it from a Secret); without one it refuses to
#                        start, so the image never serves an open Jupyter.
#   executor | driver    a Spark pod started by Spark on Kubernetes from this image: its scheduler
#                        backend sets the SPARK_* variables read below.
#   anything else        run as a command (docker run IMAGE spark-submit --version).
set -euo pipefail

die() { echo "hap-entrypoint: $*" >&2; exit 1; }

# The home directory is a volume (empty the first time): it gets the shell's start-up files, the
# notebooks directory and the sample notebooks once; a user's files and edits are never overwritten.
prepare_home() {
  [ -w "$HOME" ] || { echo "hap-entrypoint: $HOME is not writable; notebooks cannot be saved" >&2; return 0; }
  local f
  for f in /etc/skel/.[!.]*; do
    [ -e "$HOME/${f##*/}" ] || cp "$f" "$HOME/" || true
  done
  mkdir -p "$HOME/work" "${PYTHONUSERBASE:-$HOME/.local}"
  local dest=$HOME/work/samples
  if [ ! -e "$dest" ]; then
    cp -r /opt/hap/notebooks "$dest" || echo "hap-entrypoint: could not copy the sample notebooks to $dest" >&2
  fi
}

jupyter_lab() {
  [ -n "${JUPYTER_TOKEN:-}" ] || die "JUPYTER_TOKEN is not set or empty; refusing to start Jupyter without a token (the operator sets it from the workspace's Secret; with docker run, pass -e JUPYTER_TOKEN=...)"
  prepare_home
  # Jupyter reads the token from JUPYTER_TOKEN itself, so it never appears on a command line.
  exec jupyter lab --no-browser --ip=0.0.0.0 --port=8888 --ServerApp.root_dir="$HOME" "$@"
}

# An executor, as Spark's Kubernetes backend describes it in the pod's environment.
spark_executor() {
  local var
  for var in SPARK_DRIVER_URL SPARK_EXECUTOR_ID SPARK_EXECUTOR_CORES SPARK_APPLICATION_ID \
             SPARK_EXECUTOR_POD_IP SPARK_EXECUTOR_MEMORY; do
    [ -n "${!var:-}" ] || die "executor: $var is not set; executors are started by Spark on Kubernetes, which sets it"
  done
  # Java options come as SPARK_JAVA_OPT_0, SPARK_JAVA_OPT_1, ... in order.
  local opts=() i=0
  while var="SPARK_JAVA_OPT_$i"; [ -n "${!var+x}" ]; do opts+=("${!var}"); i=$((i + 1)); done
  local classpath="$SPARK_HOME/jars/*"
  # spark.executor.extraClassPath arrives as SPARK_CLASSPATH.
  [ -n "${SPARK_CLASSPATH:-}" ] && classpath="$SPARK_CLASSPATH:$classpath"
  exec "$JAVA_HOME/bin/java" "${opts[@]}" -Xms"$SPARK_EXECUTOR_MEMORY" -Xmx"$SPARK_EXECUTOR_MEMORY" \
    -cp "$classpath" org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
    --driver-url "$SPARK_DRIVER_URL" --executor-id "$SPARK_EXECUTOR_ID" \
    --cores "$SPARK_EXECUTOR_CORES" --app-id "$SPARK_APPLICATION_ID" \
    --hostname "$SPARK_EXECUTOR_POD_IP" --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
    --podName "${SPARK_EXECUTOR_POD_NAME:-$(hostname)}"
}

# A driver in cluster mode: spark-submit hands the pod "driver" plus its own arguments.
spark_driver() {
  exec spark-submit --deploy-mode client \
    --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS:-0.0.0.0}" "$@"
}

# The operator's CA, when it is mounted (the operator mounts it in every workspace): trusted beside the
# system's CAs by whatever the workspace runs, through one bundle in /tmp (the root file system is
# read-only): OpenSSL and Python's ssl (SSL_CERT_FILE), requests and the Trino client
# (REQUESTS_CA_BUNDLE), curl (CURL_CA_BUNDLE).
HAP_CA=${HAP_CA:-/etc/hap/ca/ca.crt}
trust_hap_ca() {
  [ -r "$HAP_CA" ] || return 0
  local bundle=${TMPDIR:-/tmp}/hap-ca-bundle.crt
  if cat /etc/ssl/certs/ca-certificates.crt "$HAP_CA" > "$bundle" 2>/dev/null; then
    export SSL_CERT_FILE=$bundle REQUESTS_CA_BUNDLE=$bundle CURL_CA_BUNDLE=$bundle
  else
    echo "hap-entrypoint: could not write $bundle; the operator's CA is not trusted" >&2
  fi
}
trust_hap_ca

case "${1:-}" in
  "") jupyter_lab ;;
  executor) shift; spark_executor "$@" ;;
  driver) shift; spark_driver "$@" ;;
  *) exec "$@" ;;
esac
