#!/usr/bin/env bash
# Smoke test of the local cluster (scripts/cluster.sh), as root: it comes up with a Ready node and a
# v1.36 API server, runs a real pod from the node's busybox image, execs into it, answers on a
# NodePort at the node IP from this machine, resolves Service names in the pod, and `down` leaves
# no process, mount, interface, namespace or cgroup behind.
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${HAP_CACHE:-$HOME/.cache/hap}
kubectl=$cache/bin/kubectl
cluster=$repo/scripts/cluster.sh
passed=0 failed=0
t0=$SECONDS

# check and eventually
# shellcheck source=checks.sh
. "$repo/testing/cluster/checks.sh"
finish() { echo "smoke test took $((SECONDS - t0)) s"; echo "$passed passed, $failed failed"; [ "$failed" = 0 ]; exit; }

[ -x "$kubectl" ] || "$repo/scripts/setup.sh" >/dev/null

kc=$("$cluster" up | tail -1)
check "up prints a kubeconfig on its last line" test -f "$kc"
[ -f "$kc" ] || { "$cluster" down; finish; }
k() { "$kubectl" --kubeconfig "$kc" "$@"; }

node_ip=$(k get nodes -o 'jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address}')
check "one node, Ready" test "$(k get nodes --no-headers | awk '{print $2}' | tr '\n' ' ')" = "Ready "
check "server is v1.36" bash -c "'$kubectl' --kubeconfig '$kc' version | grep -q '^Server Version: v1\.36\.'"
check "a second up is harmless" test "$("$cluster" up 2>/dev/null | tail -1)" = "$kc"
# Python 3.13 verifies with VERIFY_X509_STRICT by default (a CA needs its key usage, a certificate its
# authority key identifier): a Python Kubernetes client in a workspace must get through.
strict_tls() {
  python3 - "$kc" <<'PY'
import re, socket, ssl, sys, urllib.parse
kubeconfig = open(sys.argv[1]).read()
server = urllib.parse.urlparse(re.search(r'server: "?([^"\n]+)', kubeconfig).group(1))
ca = re.search(r'certificate-authority: "?([^"\n]+)', kubeconfig).group(1)
ctx = ssl.create_default_context(cafile=ca)
ctx.verify_flags |= ssl.VERIFY_X509_STRICT
with socket.create_connection((server.hostname, server.port), 5) as s:
    ctx.wrap_socket(s, server_hostname=server.hostname).close()
PY
}
check "the API server's certificate passes strict X.509 checks (Python 3.13's default)" strict_tls

# The suites before this one delete their namespaces as they end. A pod still terminating keeps its
# address in the API after the node has freed it for the next pod, and kube-router keys its rules by
# pod address: this test's pods would share a departing pod's rules. So they start once those are gone.
settled() {
  [ -z "$(k get namespaces --no-headers 2>/dev/null | awk '$2 == "Terminating"')" ] &&
    [ -z "$(k get pods -A --no-headers 2>/dev/null | awk '$4 == "Terminating"')" ]
}
check "no namespace or pod of an earlier test is still terminating" eventually 180 settled

k apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: smoke, labels: {app: smoke}}
spec:
  containers:
  - name: web
    image: hap.local/busybox:1
    command: [sh, -c, "mkdir -p /www && echo hello from hap > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: smoke}
spec:
  type: NodePort
  selector: {app: smoke}
  ports: [{port: 8080, targetPort: 8080}]
EOF
check "the pod runs" eventually 120 k wait --for=condition=Ready pod/smoke --timeout=120s
check "exec in the pod" test "$(k exec smoke -- cat /www/index.html)" = "hello from hap"
node_port=$(k get service smoke -o 'jsonpath={.spec.ports[0].nodePort}')
check "NodePort answers at $node_ip:$node_port from the host" eventually 30 \
  bash -c "curl -sf --max-time 10 http://$node_ip:$node_port/ | grep -qx 'hello from hap'"
api_ip=$(k get service kubernetes -o 'jsonpath={.spec.clusterIP}')
check "DNS: kubernetes.default resolves in the pod" eventually 30 \
  bash -c "'$kubectl' --kubeconfig '$kc' exec smoke -- nslookup kubernetes.default.svc.cluster.local | grep -q 'Address: $api_ip'"
check "DNS and ClusterIP: the pod reaches its Service by name" eventually 30 \
  bash -c "'$kubectl' --kubeconfig '$kc' exec smoke -- wget -qO- -T 10 http://smoke.default:8080/ | grep -qx 'hello from hap'"
check "a Job's pod completes" bash -c "
  '$kubectl' --kubeconfig '$kc' create job smoke-job --image=hap.local/busybox:1 -- true >/dev/null &&
  '$kubectl' --kubeconfig '$kc' wait --for=condition=Complete job/smoke-job --timeout=120s >/dev/null"

# NetworkPolicies are enforced (kube-router's firewall): a policy on the web pod that admits only
# pods labelled role=friend refuses the client, until the client carries that label.
k run smoke-client --image=hap.local/busybox:1 --restart=Never -- sleep 600 >/dev/null
check "a second pod runs" eventually 120 k wait --for=condition=Ready pod/smoke-client --timeout=120s
web_ip=$(k get pod smoke -o 'jsonpath={.status.podIP}')
reaches() { k exec smoke-client -- wget -qO- -T 3 "http://$web_ip:8080/" 2>/dev/null | grep -qx 'hello from hap'; }
refused() { ! reaches; }
check "with no policy, the client reaches the web pod" eventually 30 reaches
k apply -f - >/dev/null <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: friends-only}
spec:
  podSelector: {matchLabels: {app: smoke}}
  policyTypes: [Ingress]
  ingress: [{from: [{podSelector: {matchLabels: {role: friend}}}]}]
EOF
# When the firewall has not acted in time, what kube-router last did and what it has made, for the log.
firewall_state() {
  local rules
  rules=$(nsenter --net=/run/netns/hap-cluster iptables -S 2>&1)
  echo "      kube-router's pod chains: $(grep -c '^-N KUBE-POD-FW-' <<<"$rules"), rules naming $web_ip: $(grep -c -- "$web_ip" <<<"$rules")"
  echo "      those rules:"
  grep -- "$web_ip" <<<"$rules" | cut -c1-240 | sed 's/^/        /'
  echo "      pods with that address (deletion time): $(k get pods -A -o jsonpath="{range .items[?(@.status.podIP=='$web_ip')]}{.metadata.namespace}/{.metadata.name} ({.metadata.deletionTimestamp}); {end}")"
  echo "      its health: $(nsenter --net=/run/netns/hap-cluster curl -s --max-time 5 http://127.0.0.1:20244/healthz 2>&1)"
  echo "      its last lines:"
  tail -n 15 "$cache/cluster/state/logs/kube-router.log" | cut -c1-240 | sed 's/^/        /'
}
before=$failed
# 45 s: kube-router acts on the policy's event at once, and its full sync every 20 s covers an
# event it missed (this test runs after the fault suite has restarted the API server).
check "NetworkPolicy: a pod the policy does not admit is refused" eventually 45 refused
[ "$failed" = "$before" ] || firewall_state
node_reaches() { nsenter --net=/run/netns/hap-cluster curl -sf --max-time 5 "http://$web_ip:8080/" | grep -qx 'hello from hap'; }
check "... and the node still reaches the pod (the kubelet's probes)" node_reaches
k label pod smoke-client role=friend >/dev/null
check "... and admitted once it carries the label the policy names" eventually 30 reaches

"$cluster" down
check "down: no cluster process left" bash -c "! ps -eo args | grep -v grep | grep -q -e '$cache/cluster/' -e 'pause$'"
check "down: no mount left" bash -c "! grep -q -e hap-cluster -e '$cache/cluster' -e /run/netns /proc/mounts"
check "down: no interface or namespace left" bash -c "! ip -o link | grep -q hap && ! ip netns | grep -q hap"
check "down: no cgroup left" bash -c "! ls -d /sys/fs/cgroup/*/hap-cluster 2>/dev/null | grep -q ."
check "status: everything stopped" bash -c "! '$cluster' status | grep -q running"
finish
