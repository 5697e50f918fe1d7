#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for the tests (run as root).
#
#   scripts/cluster.sh up             start it; the last line printed is the admin kubeconfig's path
#   scripts/cluster.sh down           stop it and remove its processes, mounts, network and cgroups
#   scripts/cluster.sh status         what runs
#   scripts/cluster.sh load IMAGE...  copy images from the local Docker engine into the node
#   scripts/cluster.sh stop NAME...   stop components of a running cluster (a fault, for the tests)
#   scripts/cluster.sh start NAME...  start them again as up did, and wait until each answers
#
# The Kubernetes components are built from the k8s.io/kubernetes Go module (testing/cluster) and
# CoreDNS from its module; etcd, containerd, runc and the CNI plugins are Debian unstable's packages.
# Everything runs in a network namespace of its own, reached from the host over one veth pair:
# the host side is $HOST_IP, the node is $NODE_IP. docs/local-cluster.md has the details.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${HAP_CACHE:-$HOME/.cache/hap}
cdir=$cache/cluster
state=${HAP_CLUSTER_STATE:-$cdir/state}   # certs, etcd, kubelet and containerd roots, logs
run=/run/hap-cluster                      # sockets and runtime state
netns=hap-cluster
logs=$state/logs

# Addresses from the benchmarking range 198.18.0.0/15 (RFC 2544), which real networks do not route.
HOST_IP=198.18.0.1
NODE_IP=198.18.0.2
POD_CIDR=198.18.128.0/24
SERVICE_CIDR=198.19.0.0/24
# The node ports NodePort Services take; narrowed only to test what happens when they run out
# (testing/cluster/faults.sh starts the API server again with HAP_NODE_PORT_RANGE=32766-32766).
NODE_PORTS=${HAP_NODE_PORT_RANGE:-30000-32767}
API_SERVICE_IP=198.19.0.1
DNS_SERVICE_IP=198.19.0.10
NODE_NAME=hap-node
# The release testing/cluster/go.mod pins, which the binaries report.
K8S_VERSION=$(awk '($1 == "k8s.io/kubernetes" || $2 == "k8s.io/kubernetes") && $NF ~ /^v[0-9]/ {print $NF}' "$repo/testing/cluster/go.mod")

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# debian_source and apt_download
source "$repo/scripts/lib/debian.sh"

# --- Binaries ------------------------------------------------------------------------------

debroot=$cdir/debian/root
# Debian's packages, unpacked with dpkg -x (no install, no maintainer scripts): unstable's, except
# runc, whose unstable build needs glibc 2.38 where this machine's release has 2.36; it comes from
# the machine's own release. The others need no newer C library than the machine has.
install_debian() {
  local stable stamp=$cdir/debian/packages packages p
  stable=$(debian_source | cut -d' ' -f2)
  packages="sid/etcd-server sid/containerd sid/containernetworking-plugins sid/busybox-static $stable/runc"
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$packages" ] && return
  log "fetching $packages from Debian"
  rm -rf "$cdir/debian" && mkdir -p "$cdir/debian/debs"
  for p in $packages; do
    apt_download "${p%/*}" "${p#*/}" "$cdir/debian/debs"
    ls "$cdir/debian/debs/${p#*/}"_*.deb >/dev/null
  done
  for p in "$cdir"/debian/debs/*.deb; do dpkg -x "$p" "$debroot"; done
  echo "$packages" > "$stamp"
}

# The Go toolchain: the one on PATH if it is recent enough for the modules (go 1.26), otherwise
# Debian unstable's, unpacked like the rest.
go_tool() {
  if command -v go >/dev/null && go version | grep -qE 'go1\.(2[6-9]|[3-9][0-9])'; then
    echo go
    return
  fi
  local root=$cdir/go/root p
  if [ ! -x "$root/usr/lib/go-1.26/bin/go" ]; then
    log "fetching Go 1.26 from Debian sid"
    rm -rf "$cdir/go" && mkdir -p "$cdir/go/debs"
    for p in golang-1.26-go golang-1.26-src; do apt_download sid "$p" "$cdir/go/debs"; done
    for p in "$cdir"/go/debs/*.deb; do dpkg -x "$p" "$root"; done
  fi
  echo "$root/usr/lib/go-1.26/bin/go"
}

# go_build MODULE_DIR NAME PACKAGE LDFLAGS: builds into $cdir/bin/<hash of the module's sources>/NAME,
# so a warm `up` finds it and a changed go.sum or source builds anew.
go_build() {
  local dir=$1 name=$2 pkg=$3 ldflags=$4 key out
  # The module's own sources: nested modules (testing/cluster/coredns) have keys of their own.
  key=$(cd "$dir" && cat go.mod go.sum $(find . -mindepth 1 -type d -exec test -e '{}/go.mod' \; -prune -o -name '*.go' -print | sort) |
    sha256sum | cut -c1-16)
  out=$cdir/bin/$key/$name
  if [ ! -x "$out" ]; then
    log "building $name from $dir (cold: many minutes)"
    local start=$SECONDS go
    go=$(go_tool)
    mkdir -p "$(dirname "$out")"
    # Modules come through the Go module proxy this machine's Go is configured with. A download that
    # times out (a busy machine can miss Go's 10 s TLS handshake limit) is tried again; what was
    # fetched and compiled already is kept in Go's caches.
    local attempt
    for attempt in 1 2 3; do
      (cd "$dir" && GOFLAGS="${GOFLAGS:-} -p=2" CGO_ENABLED=0 GOTOOLCHAIN=local nice -n 19 \
        "$go" build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg") && mv "$out.tmp" "$out" && break
      [ "$attempt" = 3 ] || { log "building $name failed (attempt $attempt of 3); trying again"; sleep 10; }
    done
    [ -x "$out" ] || die "building $name from $dir failed (see the go errors above)"
    log "built $name in $((SECONDS - start)) s"
  fi
  echo "$out"
}

install_binaries() {
  install_debian
  local ld="-s -w" p
  # What release the components report (kubectl version); upstream's build stamps the same fields.
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$(echo "$K8S_VERSION" | cut -d. -f1 | tr -d v)"
    ld+=" -X $p.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2) -X $p.gitTreeState=clean"
  done
  hapkube=$(go_build "$repo/testing/cluster" hapkube ./cmd/hapkube "$ld")
  pause=$(go_build "$repo/testing/cluster" pause ./cmd/pause "-s -w")
  coredns=$(go_build "$repo/testing/cluster/coredns" coredns . "-s -w")
  # NetworkPolicies are enforced by kube-router's firewall (iptables and ipset), built from its
  # module. (kube-network-policies needs the kernel's nft queue, which this machine's kernel lacks:
  # CONFIG_NFT_QUEUE is not set.)
  kube_router=$(go_build "$repo/testing/cluster/kube-router" kube-router github.com/cloudnativelabs/kube-router/v2/cmd/kube-router "-s -w")
  if ! command -v ipset >/dev/null; then
    log "installing ipset (kube-router keeps the policies' address sets in it)"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq ipset >/dev/null
  fi
  kubectl=$cache/bin/kubectl
  [ -x "$kubectl" ] || die "kubectl is missing: run scripts/setup.sh"
  export PATH=$debroot/usr/bin:$debroot/usr/sbin:$PATH
}

# --- Images without a registry ------------------------------------------------------------

# oci_archive NAME ROOTFS CMD OUT: a one-layer OCI image archive of the directory ROOTFS, made
# reproducibly (fixed owners and times), so the same inputs give the same image digest.
oci_archive() {
  local name=$1 rootfs=$2 cmd=$3 out=$4 dir layer config manifest
  dir=$(mktemp -d) && mkdir -p "$dir/blobs/sha256"
  tar -C "$rootfs" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$dir/layer.tar" .
  layer=$(sha256sum < "$dir/layer.tar" | cut -d' ' -f1)
  mv "$dir/layer.tar" "$dir/blobs/sha256/$layer"
  printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$cmd" "$layer" > "$dir/config"
  config=$(sha256sum < "$dir/config" | cut -d' ' -f1)
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
    "$config" "$(stat -c %s "$dir/config")" "$layer" "$(stat -c %s "$dir/blobs/sha256/$layer")" > "$dir/manifest"
  manifest=$(sha256sum < "$dir/manifest" | cut -d' ' -f1)
  mv "$dir/config" "$dir/blobs/sha256/$config" && mv "$dir/manifest" "$dir/blobs/sha256/$manifest"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$(stat -c %s "$dir/blobs/sha256/$manifest")" "$name" "${name##*:}" > "$dir/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$dir/oci-layout"
  tar -C "$dir" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$out" . && rm -rf "$dir"
}

PAUSE_IMAGE=hap.local/pause:1      # the pod sandbox, from testing/cluster/cmd/pause
BUSYBOX_IMAGE=hap.local/busybox:1  # a tiny image for tests: Debian's busybox-static, /bin/sh etc.

# The node's own images, made here because there is no registry to pull them from.
make_images() {
  local root=$cdir/images/rootfs applet
  rm -rf "$cdir/images" && mkdir -p "$root/pause" "$root/busybox/bin" "$root/busybox/etc" "$root/busybox/tmp"
  cp "$pause" "$root/pause/pause"
  oci_archive "$PAUSE_IMAGE" "$root/pause" '["/pause"]' "$cdir/images/pause.tar"
  cp "$debroot/usr/bin/busybox" "$root/busybox/bin/busybox"
  for applet in $("$debroot/usr/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/busybox/bin/$applet"
  done
  echo 'root:x:0:0:root:/:/bin/sh' > "$root/busybox/etc/passwd"
  echo 'root:x:0:' > "$root/busybox/etc/group"
  oci_archive "$BUSYBOX_IMAGE" "$root/busybox" '["/bin/sh"]' "$cdir/images/busybox.tar"
}

ctr_() { ctr --address "$run/containerd.sock" -n k8s.io "$@"; }

# --- Certificates and configuration --------------------------------------------------------

pki=$state/pki

# cert NAME CN [ORG] [SANS]: a key and a certificate for NAME signed by the cluster's CA.
cert() {
  local name=$1 cn=$2 org=${3:-} sans=${4:-} subj
  [ -f "$pki/$name.crt" ] && return
  subj="/CN=$cn"
  [ -z "$org" ] || subj="/O=$org/CN=$cn"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$pki/$name.key" \
    -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    # EC keys sign; they do not encipher keys (RFC 5480).
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [ -z "$sans" ] || echo "subjectAltName=$sans"
  } > "$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

# kubeconfig NAME: a kubeconfig that authenticates with NAME's client certificate.
kubeconfig() {
  cat > "$state/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: hap
  cluster: {server: "https://$NODE_IP:6443", certificate-authority: "$pki/ca.crt"}
users:
- name: $1
  user: {client-certificate: "$pki/$1.crt", client-key: "$pki/$1.key"}
contexts:
- name: hap
  context: {cluster: hap, user: $1}
current-context: hap
EOF
}

make_pki() {
  # A CA made before it carried its key usage is made again, with every certificate it signed:
  # strict verifiers (Python 3.13's default, rustls) refuse a CA without keyCertSign.
  if [ -f "$pki/ca.crt" ] && ! openssl x509 -in "$pki/ca.crt" -noout -ext keyUsage 2>/dev/null | grep -q 'Certificate Sign'; then
    log "the cluster CA lacks its key usage: new certificates"
    rm -rf "$pki"
  fi
  mkdir -p "$pki"
  if [ ! -f "$pki/ca.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj /CN=hap-cluster-ca -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
    # The ServiceAccount token signing key.
    openssl ecparam -name prime256v1 -genkey -noout -out "$pki/sa.key"
    openssl ec -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  fi
  cert apiserver kube-apiserver "" "IP:$NODE_IP,IP:127.0.0.1,IP:$API_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  cert admin hap-admin system:masters
  cert controller-manager system:kube-controller-manager
  cert scheduler system:kube-scheduler
  cert kubelet "system:node:$NODE_NAME" system:nodes
  cert kube-proxy system:kube-proxy
  cert coredns hap-coredns
  cert kube-router hap-kube-router
  local c
  for c in admin controller-manager scheduler kubelet kube-proxy coredns kube-router; do kubeconfig "$c"; done
}

write_configs() {
  mkdir -p "$state/cni" "$state/kubelet" "$state/pod-logs"
  cat > "$state/containerd.toml" <<EOF
version = 3
root = "$state/containerd"
state = "$run/containerd"
# Plugins that would reach outside the cluster's own directories, or that it does not use.
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs", "io.containerd.differ.v1.erofs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$run/containerd.sock"
[ttrpc]
  address = "$run/containerd.sock.ttrpc"

# The image service needs a verifier plugin; this one, with no verifiers in its directory, allows all.
[plugins.'io.containerd.image-verifier.v1.bindir']
  bin_dir = "$state/containerd-verifiers"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$PAUSE_IMAGE"

[plugins.'io.containerd.cri.v1.runtime']
  # This machine withholds CAP_SYS_RESOURCE even from root, so no process may lower its OOM score:
  # the kubelet's negative scores (-998 for a sandbox) are raised to containerd's own, 0.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_cdi = false
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = "$debroot/usr/sbin/runc"
      Root = "$run/runc"
      SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$debroot/usr/lib/cni"]
    conf_dir = "$state/cni"
EOF
  cat > "$state/cni/10-hap.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "hap",
  "plugins": [
    {"type": "bridge", "bridge": "hapbr0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$run/cni-ipam",
              "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  # Pods get only the cluster's DNS: there is no upstream resolver to forward to.
  echo "# no upstream resolver" > "$state/resolv.conf"
  cat > "$state/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine mounts cgroup v1 controllers (and an empty cgroup2); cgroupfs is the driver the
# runtime uses too (there is no systemd), and every cgroup lives under one root removed by down.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /hap-cluster
containerRuntimeEndpoint: unix://$run/containerd.sock
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: ["$DNS_SERVICE_IP"]
resolvConf: "$state/resolv.conf"
podLogsDir: "$state/pod-logs"
volumePluginDir: "$state/kubelet/volume-plugins"
readOnlyPort: 0
oomScoreAdj: 0  # it may not lower its own (see restrict_oom_score_adj in containerd.toml)
healthzBindAddress: 127.0.0.1
failSwapOn: false
# A shared test machine: neither evict pods nor delete the loaded images when its disk fills.
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
  cat > "$state/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$state/kube-proxy.kubeconfig"}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
nodePortAddresses: ["$NODE_IP/32"]
oomScoreAdj: 0
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# Leave the machine-wide conntrack settings alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  # Every request of the workloads (ServiceAccounts), one JSON line each in logs/audit.log, so tests
  # can count what a client really did (the operator's writes on a resync, say). The cluster's own
  # components and the admin (the tests poll as the admin) are left out: they are most of the traffic.
  cat > "$state/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  userGroups: ["system:nodes", "system:serviceaccounts:kube-system"]
- level: None
  users: ["system:kube-controller-manager", "system:kube-scheduler", "system:kube-proxy", "hap-coredns", "hap-kube-router", "system:apiserver", "hap-admin"]
- level: Metadata
EOF
  cat > "$state/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    ready 127.0.0.1:8181
    health 127.0.0.1:8080
    errors
    cache 30
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $state/coredns.kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
}
EOF
}

# What the API server needs beyond its defaults: CoreDNS's and kube-router's read access and the
# kube-dns Service, whose endpoint is CoreDNS on the node.
bootstrap_objects() {
  cat <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "hap:kube-router"}
rules:
- apiGroups: [""]
  resources: [pods, namespaces, nodes, services, endpoints]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "hap:kube-router"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "hap:kube-router"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: hap-kube-router}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "hap:coredns"}
rules:
- apiGroups: [""]
  resources: [services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "hap:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "hap:coredns"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: hap-coredns}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  clusterIP: $DNS_SERVICE_IP
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-node
  namespace: kube-system
  labels: {kubernetes.io/service-name: kube-dns, endpointslice.kubernetes.io/managed-by: hap-cluster}
addressType: IPv4
endpoints:
- addresses: ["$NODE_IP"]
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
EOF
}

# --- Processes -----------------------------------------------------------------------------

components="containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kube-router coredns"

in_ns() { nsenter --net="/run/netns/$netns" "$@"; }

# start NAME COMMAND...: runs COMMAND in the cluster's network namespace, detached, logging to a file.
start() {
  local name=$1; shift
  setsid nsenter --net="/run/netns/$netns" "$@" >>"$logs/$name.log" 2>&1 </dev/null &
  echo $! > "$run/$name.pid"
}

# launch NAME: starts one component as the cluster runs it (up starts them all; `start` one again).
launch() {
  case $1 in
    containerd) start containerd containerd --config "$state/containerd.toml" ;;
    etcd)
      start etcd etcd --name hap --data-dir "$state/etcd" \
        --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster hap=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 ;;
    kube-apiserver)
      start kube-apiserver "$hapkube" kube-apiserver \
        --etcd-servers=http://127.0.0.1:2379 --advertise-address="$NODE_IP" --secure-port=6443 \
        --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" --client-ca-file="$pki/ca.crt" \
        --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
        --kubelet-preferred-address-types=InternalIP \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
        --service-cluster-ip-range="$SERVICE_CIDR" --service-node-port-range="$NODE_PORTS" \
        --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
        --audit-policy-file="$state/audit-policy.yaml" --audit-log-path="$logs/audit.log" \
        --audit-log-maxsize=100 --audit-log-maxbackup=1 ;;
    kube-controller-manager)
      start kube-controller-manager "$hapkube" kube-controller-manager \
        --kubeconfig="$state/controller-manager.kubeconfig" \
        --authentication-kubeconfig="$state/controller-manager.kubeconfig" --authorization-kubeconfig="$state/controller-manager.kubeconfig" \
        --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" --use-service-account-credentials=true \
        --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
        --service-cluster-ip-range="$SERVICE_CIDR" --bind-address=127.0.0.1 --leader-elect=false \
        --flex-volume-plugin-dir="$state/kubelet/volume-plugins" ;;
    kube-scheduler)
      start kube-scheduler "$hapkube" kube-scheduler --kubeconfig="$state/scheduler.kubeconfig" \
        --authentication-kubeconfig="$state/scheduler.kubeconfig" --authorization-kubeconfig="$state/scheduler.kubeconfig" \
        --bind-address=127.0.0.1 --leader-elect=false ;;
    kubelet)
      start kubelet "$hapkube" kubelet --config="$state/kubelet.yaml" --kubeconfig="$state/kubelet.kubeconfig" \
        --root-dir="$state/kubelet" --cert-dir="$state/kubelet/pki" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" ;;
    kube-proxy)
      start kube-proxy "$hapkube" kube-proxy --config="$state/kube-proxy.yaml" ;;
    coredns)
      start coredns "$coredns" -conf "$state/Corefile" ;;
    kube-router)
      # --v=1 logs each firewall sync's start and duration: a policy not enforced in time shows
      # whether a sync ran. A full sync every 20 s (kube-router's default is 5 min) makes up within
      # seconds for an event its watches missed while the API server restarted.
      start kube-router "$kube_router" --run-firewall=true --run-router=false --run-service-proxy=false \
        --run-loadbalancer=false --enable-cni=false --kubeconfig="$state/kube-router.kubeconfig" \
        --hostname-override="$NODE_NAME" --service-cluster-ip-range="$SERVICE_CIDR" --metrics-port=0 \
        --health-port=20244 --iptables-sync-period=20s --v=1 ;;
    *) die "no component $1 (one of: $components)" ;;
  esac
}

pid_of() { cat "$run/$1.pid" 2>/dev/null; }
alive() { local pid; pid=$(pid_of "$1") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

# fail NAME MESSAGE: says why up failed, shows the end of NAME's log and stops what was started.
fail() {
  log "$2"
  log "last lines of $logs/$1.log:"
  tail -n 30 "$logs/$1.log" >&2 || true
  down >&2
  die "up failed; the logs stay in $logs"
}

# wait_for NAME SECONDS COMMAND...: until COMMAND succeeds, while NAME's process lives.
wait_for() {
  local name=$1 limit=$2 deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    alive "$name" || fail "$name" "$name exited"
    [ "$SECONDS" -lt "$deadline" ] || fail "$name" "$name not ready after ${limit} s: $*"
    sleep 0.5
  done
}

kubectl_() { "${kubectl:-$cache/bin/kubectl}" --kubeconfig "$state/admin.kubeconfig" "$@"; }
api_ready() { curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "https://$NODE_IP:6443/readyz"; }
node_ready() { [ "$(kubectl_ get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]; }

setup_network() {
  ip netns add "$netns"
  ip link add hap0 type veth peer name hapnode0 netns "$netns"
  ip addr add "$HOST_IP/30" dev hap0 && ip link set hap0 up
  in_ns ip addr add "$NODE_IP/30" dev hapnode0
  in_ns ip link set hapnode0 up
  in_ns ip link set lo up
  # The machine reaches pods through the node, as the operator in a pod does (the tests run it here,
  # outside the cluster, and it reads workspaces' activity from their pods).
  ip route add "$POD_CIDR" via "$NODE_IP" dev hap0
  # Routing between pods and the node, and bridged pod traffic seen by kube-proxy's rules; both
  # settings belong to this namespace alone.
  [ -d /proc/sys/net/bridge ] || modprobe br_netfilter
  in_ns sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
}

# Machine-wide settings the kubelet sets on start (as it does on any node); down puts them back.
kernel_tunables="vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes"

# The cgroup root the kubelet puts pods under, in every cgroup hierarchy mounted here.
cgroup_dirs() { awk '$3 == "cgroup" || $3 == "cgroup2" {print $2 "/hap-cluster"}' /proc/mounts; }

# Local volumes: a default StorageClass with no provisioner, and a pool of PersistentVolumes that are
# directories under $state/volumes on the node. The kubelet gives a local volume to the pod's fsGroup,
# so non-root pods can write to it (a hostPath volume stays root's). Each `up` wipes the volumes whose
# claims are gone (Released or Failed) and offers them again; `down` deletes them all.
VOLUME_POOL=120
volumes() {
  local name phase i
  kubectl_ apply -f - >/dev/null <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
EOF
  while read -r name phase; do
    [ -n "$name" ] || continue
    case $phase in Released|Failed)
      kubectl_ delete pv "$name" --wait=true --timeout=30s >/dev/null
      rm -rf "${state:?}/volumes/$name" ;;
    esac
  done < <(kubectl_ get pv -l hap.cloudian.com/local-volume -o 'jsonpath={range .items[*]}{.metadata.name} {.status.phase}{"\n"}{end}')
  local existing manifest=""
  existing=$(kubectl_ get pv -l hap.cloudian.com/local-volume -o name)
  for i in $(seq -w 1 $VOLUME_POOL); do
    name=hap-local-$i
    grep -qx "persistentvolume/$name" <<<"$existing" && continue
    rm -rf "${state:?}/volumes/$name" && mkdir -p "$state/volumes/$name"
    manifest+="---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $name
  labels: {hap.cloudian.com/local-volume: \"true\"}
spec:
  capacity: {storage: 20Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local
  local: {path: \"$state/volumes/$name\"}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [$NODE_NAME]}]
"
  done
  # One request for all of them: a PV each would add seconds to every up.
  [ -z "$manifest" ] || kubectl_ apply -f - >/dev/null <<<"$manifest"
}

up() {
  if alive kube-apiserver && alive kubelet; then
    volumes
    log "already running"
    echo "$state/admin.kubeconfig"
    return
  fi
  [ "$(id -u)" = 0 ] || die "up needs root (network namespace, mounts, cgroups)"
  local t0=$SECONDS d
  down >/dev/null 2>&1 || true
  install_binaries
  [ -f "$cdir/images/busybox.tar" ] && [ "$cdir/images/pause.tar" -nt "$pause" ] || make_images
  mkdir -p "$run" "$logs" && rm -f "$logs"/*.log
  make_pki
  write_configs
  setup_network
  for d in $(cgroup_dirs); do mkdir -p "$d"; done
  sysctl $kernel_tunables > "$run/sysctl.saved"

  log "starting containerd and etcd"
  launch containerd
  launch etcd
  wait_for containerd 60 ctr_ version
  ctr_ images ls -q | grep -qx "$PAUSE_IMAGE" || ctr_ images import "$cdir/images/pause.tar" >/dev/null
  ctr_ images ls -q | grep -qx "$BUSYBOX_IMAGE" || ctr_ images import "$cdir/images/busybox.tar" >/dev/null
  wait_for etcd 60 in_ns curl -sf http://127.0.0.1:2379/health

  log "starting kube-apiserver"
  launch kube-apiserver
  wait_for kube-apiserver 120 api_ready
  bootstrap_objects | kubectl_ apply -f - >/dev/null

  log "starting the controller manager, scheduler, kubelet, kube-proxy, kube-router and CoreDNS"
  for c in kube-controller-manager kube-scheduler kubelet kube-proxy coredns; do launch "$c"; done
  wait_for kubelet 120 node_ready
  # The firewall alone: pod networking stays the bridge plugin's, Services kube-proxy's. After the
  # kubelet registered the node, which kube-router reads first.
  launch kube-router
  wait_for kube-controller-manager 60 kubectl_ get serviceaccount default
  wait_for coredns 60 in_ns curl -sf http://127.0.0.1:8181/ready
  wait_for kube-router 60 in_ns curl -sf http://127.0.0.1:20244/healthz
  for d in kube-scheduler kube-proxy; do alive "$d" || fail "$d" "$d exited"; done
  volumes
  log "up in $((SECONDS - t0)) s: node $NODE_NAME at $NODE_IP, $("$hapkube" kube-apiserver --version 2>/dev/null)"
  echo "$state/admin.kubeconfig"
}

# stop NAME...: SIGTERM to each, then SIGKILL to those still running after 10 s.
stop() {
  local pids="" c i p left
  for c in "$@"; do pids+=" $(pid_of "$c" || true)"; rm -f "$run/$c.pid"; done
  [ -n "${pids// /}" ] || return 0
  kill $pids 2>/dev/null || true
  for i in $(seq 40); do
    left=""
    for p in $pids; do kill -0 "$p" 2>/dev/null && left+=" $p"; done
    [ -n "$left" ] || return 0
    sleep 0.25
  done
  kill -9 $left 2>/dev/null || true
}

down() {
  local t0=$SECONDS c d m pid
  [ "$(id -u)" = 0 ] || die "down needs root"
  # The kubelet first, so it does not restart what the runtime then tears down pod by pod
  # (CNI teardown, mounts).
  stop kubelet
  if alive containerd; then
    local k=${hapkube:-$(ls -t "$cdir"/bin/*/hapkube 2>/dev/null | head -1)}
    [ -z "$k" ] || timeout 120 "$k" stop-pods --runtime-endpoint "unix://$run/containerd.sock" >/dev/null 2>&1 || true
  fi
  # The API server's clients, the API server (it waits on etcd while shutting down), then the stores.
  stop coredns kube-router kube-proxy kube-scheduler kube-controller-manager
  stop kube-apiserver
  stop etcd containerd
  # Whatever is left: processes in the cluster's network namespace (shims) or in its cgroups (containers).
  for pid in $(ip netns pids "$netns" 2>/dev/null) \
             $(find $(cgroup_dirs) -name cgroup.procs -exec cat {} + 2>/dev/null); do
    kill -9 "$pid" 2>/dev/null || true
  done
  sleep 0.2
  # Mounts under the cluster's directories, deepest first.
  for m in $(awk -v s="$state/" -v r="$run/" 'index($2, s) == 1 || index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done
  ip netns del "$netns" 2>/dev/null || true
  ip link del hap0 2>/dev/null || true
  for d in $(cgroup_dirs); do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  # Fixed paths outside the cluster's directories: the kubelet's container log links and device
  # plugin socket, the CNI result cache, containerd's shim sockets. Directories go only when empty.
  find /var/log/containers -maxdepth 1 -lname "$state/*" -delete 2>/dev/null || true
  rm -f /var/lib/kubelet/device-plugins/kubelet.sock /var/lib/kubelet/device-plugins/kubelet_internal_checkpoint
  rmdir /var/log/containers /var/lib/kubelet/device-plugins /var/lib/kubelet /var/lib/cni/results /var/lib/cni \
    /run/containerd/s /run/containerd 2>/dev/null || true
  # `ip netns add` made /run/netns a mount of itself; undo that once no namespace is left in it.
  if [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ]; then
    ! mountpoint -q /run/netns || umount /run/netns
    rmdir /run/netns
  fi
  [ ! -f "$run/sysctl.saved" ] || sysctl -qp "$run/sysctl.saved"
  # A fresh cluster on each up; the images, certificates and logs stay.
  rm -rf "$run" "$state/etcd" "$state/kubelet" "$state/pod-logs" "$state/volumes"
  log "down in $((SECONDS - t0)) s"
}

# answers NAME: whether a component started again serves (those without a check: whether it runs).
answers() {
  case $1 in
    containerd) ctr_ version ;;
    etcd) in_ns curl -sf http://127.0.0.1:2379/health ;;
    kube-apiserver) api_ready ;;
    kubelet) in_ns curl -sf http://127.0.0.1:10248/healthz ;;
    coredns) in_ns curl -sf http://127.0.0.1:8181/ready ;;
    kube-router) in_ns curl -sf http://127.0.0.1:20244/healthz ;;
    *) alive "$1" ;;
  esac
}

stop_components() {
  local c
  alive kube-apiserver || die "the cluster is not running"
  for c in "$@"; do
    case " $components " in *" $c "*) ;; *) die "no component $c (one of: $components)" ;; esac
  done
  stop "$@"
  log "stopped $*"
}

start_components() {
  local c deadline
  [ -d "$run" ] || die "the cluster is not up"
  install_binaries
  # One after another, each once the one before answers (the kubelet needs containerd's socket).
  for c in "$@"; do
    if alive "$c"; then log "$c runs already"; else launch "$c"; fi
    deadline=$((SECONDS + 120))
    until answers "$c" >/dev/null 2>&1; do
      alive "$c" || { tail -n 20 "$logs/$c.log" >&2; die "$c exited"; }
      [ "$SECONDS" -lt "$deadline" ] || die "$c does not answer after 120 s (see $logs/$c.log)"
      sleep 0.2
    done
  done
  log "started $*"
}

status() {
  local c any=0
  for c in $components; do
    if alive "$c"; then echo "$c: running (pid $(pid_of "$c"))"; any=1; else echo "$c: stopped"; fi
  done
  if [ "$any" = 1 ] && alive kube-apiserver; then
    kubectl=$cache/bin/kubectl
    kubectl_ get nodes -o wide 2>&1 || true
    echo "kubeconfig: $state/admin.kubeconfig"
  fi
}

# The name containerd gives a Docker image reference: hap-operator:0.1.0 is
# docker.io/library/hap-operator:0.1.0.
containerd_ref() {
  local ref=$1
  case "$ref" in
    */*) case "${ref%%/*}" in *.*|*:*|localhost) ;; *) ref=docker.io/$ref ;; esac ;;
    *) ref=docker.io/library/$ref ;;
  esac
  case "${ref##*/}" in *:*|*@*) ;; *) ref=$ref:latest ;; esac
  echo "$ref"
}

# in_node IMAGE: the node's containerd holds IMAGE with the same image ID (config digest) as the
# local Docker engine, and that config is in its content store.
in_node() {
  local id target config
  id=$(docker image inspect -f '{{.Id}}' "$1" 2>/dev/null) || return 1
  target=$(ctr_ images ls "name==$(containerd_ref "$1")" 2>/dev/null | awk 'NR == 2 {print $3}')
  [ -n "$target" ] || return 1
  config=$(ctr_ content get "$target" 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin).get("config", {}).get("digest", ""))' 2>/dev/null) || return 1
  [ "$config" = "$id" ] && ctr_ content get "$config" >/dev/null 2>&1
}

# load IMAGE...: from the local Docker engine into the node's containerd, where the kubelet finds them.
# An image the node already holds with the same ID is skipped (HAP_LOAD_FORCE=1 loads it anyway).
load() {
  alive containerd || die "the cluster is not running: scripts/cluster.sh up"
  [ $# -gt 0 ] || die "usage: scripts/cluster.sh load IMAGE..."
  export PATH=$debroot/usr/bin:$PATH
  local image todo=()
  for image in "$@"; do
    docker image inspect "$image" >/dev/null 2>&1 || die "no image $image in the local Docker engine"
    if [ "${HAP_LOAD_FORCE:-0}" != 1 ] && in_node "$image"; then
      log "$image: already in the node, same image ID"
    else
      todo+=("$image")
    fi
  done
  if [ ${#todo[@]} -gt 0 ]; then
    docker save "${todo[@]}" | ctr_ images import - >&2
    for image in "${todo[@]}"; do in_node "$image" || die "$image: not in the node after the import"; done
    log "loaded ${todo[*]}"
  fi
  forget_replaced_images
}

# The kubelet refers to images by ID too (sha256:... references). A load that replaces an image
# leaves its old ID's reference behind, holding gigabytes of layers: drop every ID reference whose
# image no name points at any more, so that containerd's garbage collector frees them.
forget_replaced_images() {
  local named stale
  named=$(ctr_ images ls 2>/dev/null | awk 'NR > 1 && $1 !~ /^sha256:/ {print $3}')
  stale=$(ctr_ images ls 2>/dev/null |
    awk -v named="$named" 'BEGIN {split(named, n, "\n"); for (i in n) keep[n[i]] = 1}
      NR > 1 && $1 ~ /^sha256:/ && !($3 in keep) {print $1}')
  [ -z "$stale" ] || ctr_ images rm $stale >/dev/null
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  load) shift; load "$@" ;;
  stop) shift; stop_components "$@" ;;
  start) shift; start_components "$@" ;;
  *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
