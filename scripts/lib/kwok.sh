# kwok (sigs.k8s.io/kwok) as a local process: it plays the kubelet for Node objects marked as fake,
# so that pods scheduled to them become Running and Ready at once, with no container behind them.
# bench/scale.sh uses it. Sourced by scripts that set $cache; sets $kwok_bin and $kwok_config.
#
# kwok_install             builds kwok (once, cached under $cache/kwok/VERSION) and writes its stages
# kwok_start KUBECONFIG LOG  runs it against the API server of KUBECONFIG, managing only the nodes
#                          annotated $KWOK_NODE_ANNOTATION=fake; sets $kwok_pid
# kwok_stop                stops it (SIGTERM, then SIGKILL after 10 s)

KWOK_VERSION=v0.8.0
KWOK_NODE_ANNOTATION=kwok.x-k8s.io/node
kwok_dir=$cache/kwok/$KWOK_VERSION
kwok_bin=$kwok_dir/kwok
kwok_config=$kwok_dir/stages.yaml
kwok_pid=

# The Go toolchain scripts/cluster.sh builds the cluster with: the one on PATH when it is 1.26 or
# newer, otherwise the Debian build cluster.sh unpacked into its cache.
kwok_go() {
  local debian=$cache/cluster/go/root/usr/lib/go-1.26/bin/go
  if command -v go >/dev/null && go version | grep -qE 'go1\.(2[6-9]|[3-9][0-9])'; then
    echo go
  elif [ -x "$debian" ]; then
    echo "$debian"
  else
    echo "kwok: no Go 1.26 or newer: run scripts/cluster.sh up once (it fetches one)" >&2
    return 1
  fi
}

kwok_install() {
  local go dir attempt
  [ -x "$kwok_bin" ] && [ -s "$kwok_config" ] && return 0
  go=$(kwok_go) || return 1
  if [ ! -x "$kwok_bin" ]; then
    echo "kwok: building sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION (a few minutes the first time)" >&2
    mkdir -p "$kwok_dir"
    # Through the Go module proxy this machine's Go is configured with, as cluster.sh's builds.
    for attempt in 1 2 3; do
      GOBIN=$kwok_dir CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:-} -p=2" nice -n 19 \
        "$go" install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" && break
      [ "$attempt" = 3 ] || { echo "kwok: build failed (attempt $attempt of 3); trying again" >&2; sleep 10; }
    done
    [ -x "$kwok_bin" ] || { echo "kwok: building it failed (see the go errors above)" >&2; return 1; }
  fi
  # The kwok binary has no stages of its own (kwokctl adds them to the clusters it makes): take
  # upstream's default ones from the module's source, as kwokctl does. Nodes get Ready at once and a
  # lease heartbeat; pods get Running and Ready at once, and are removed as soon as they are deleted.
  dir=$("$go" mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])') || return 1
  local f
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo ---
    cat "$dir/kustomize/stage/$f" || return 1
  done > "$kwok_config.tmp" && mv "$kwok_config.tmp" "$kwok_config"
}

# kwok_start KUBECONFIG LOG [POD_CIDR]: pod addresses come from POD_CIDR (kwok's default otherwise);
# they appear in pod statuses and EndpointSlices only, nothing routes to them.
kwok_start() {
  local kubeconfig=$1 log=$2 cidr=${3:-}
  kwok_install || return 1
  "$kwok_bin" --kubeconfig "$kubeconfig" -c "$kwok_config" \
    --manage-nodes-with-annotation-selector "$KWOK_NODE_ANNOTATION=fake" \
    --node-lease-duration-seconds 40 ${cidr:+--cidr "$cidr"} >"$log" 2>&1 </dev/null &
  kwok_pid=$!
}

kwok_stop() {
  [ -n "$kwok_pid" ] || return 0
  local i
  kill "$kwok_pid" 2>/dev/null || true
  for i in $(seq 40); do
    kill -0 "$kwok_pid" 2>/dev/null || break
    sleep 0.25
  done
  kill -9 "$kwok_pid" 2>/dev/null || true
  wait "$kwok_pid" 2>/dev/null || true
  kwok_pid=
}
