#!/usr/bin/env bash
# Spark on Kubernetes for real, on the local cluster (scripts/cluster.sh), as root: a HapContainer with
# `spark.executors: 2` runs a PySpark job from its workspace pod whose two executors are real pods,
# started from the operator's generated spark-defaults.conf and executor pod template, and the job
# reads its input from and writes its output to a real S3 server (versitygw) that the pods reach on
# the host's end of the cluster's veth, 198.18.0.1.
#
# The operator is installed from deploy/ in a fresh namespace as the journey does (the CRD is applied
# only when the cluster has none, and then deleted at the end). A cluster that runs already is reused
# and left running; one this script starts it brings down at the end, unless KEEP_CLUSTER=1.
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
# check, eventually, phase, start_s3, cluster_test, up_and_load, fresh_namespace, cluster_down
# shellcheck source=checks.sh
. "$repo/testing/cluster/checks.sh"
cluster_test spark
versitygw=${HAP_VERSITYGW:-$cache/sql-stack/versitygw/bin/versitygw}
host_ip=198.18.0.1 # the host's end of the cluster's veth: the only host address pods reach
bucket=hap-spark
hc=spark-job pod=spark-job-happod
[ -x "$versitygw" ] || "$repo/scripts/sql-stack.sh" install-s3
[ -x "$versitygw" ] || fail_now "no versitygw at $versitygw: scripts/sql-stack.sh install-s3 builds it"

job="" job_b=""
test_cleanup() {
  [ -z "$job" ] || kill "$job" 2>/dev/null
  [ -z "$job_b" ] || kill "$job_b" 2>/dev/null
}

# --- 1. The cluster and the images ---------------------------------------------------------------
up_and_load hap-operator:0.1.0 hap-workspace:0.1.0
fresh_namespace hap-spark

# --- 2. A real S3 server where pods reach it -----------------------------------------------------
phase "S3 server, bucket, input"
start_s3 "$tmp/s3" || fail_now "no S3 server"
endpoint=$s3_endpoint key_id=$s3_key_id secret_key=$s3_secret_key
s3() {
  AWS_ACCESS_KEY_ID=$key_id AWS_SECRET_ACCESS_KEY=$secret_key AWS_DEFAULT_REGION=us-east-1 \
    aws --endpoint-url "$endpoint" "$@"
}
make_bucket() { s3 s3api create-bucket --bucket "$bucket" >/dev/null; }
check "bucket $bucket created through the S3 API" make_bucket
wrong_secret_refused() {
  ! AWS_ACCESS_KEY_ID=$key_id AWS_SECRET_ACCESS_KEY=x$secret_key AWS_DEFAULT_REGION=us-east-1 \
    aws --endpoint-url "$endpoint" s3 ls "s3://$bucket/" >/dev/null 2>&1
}
check "a request signed with a wrong secret is refused" wrong_secret_refused

# The input: readings of six sensors in four CSV files, and what the job must compute from them.
mkdir -p "$tmp/input"
python3 - "$tmp/input" "$tmp/expected.csv" <<'EOF'
import collections, os, random, sys
out, expected = sys.argv[1], sys.argv[2]
rng = random.Random(20261203)
stats = collections.defaultdict(lambda: [0, 0, 0])
for f in range(4):
    with open(os.path.join(out, f"readings-{f}.csv"), "w") as fh:
        fh.write("sensor,hour,pm25\n")
        for i in range(5000):
            sensor = f"sensor-{rng.randrange(6)}"
            pm25 = rng.randrange(0, 500)
            fh.write(f"{sensor},{f * 5000 + i},{pm25}\n")
            s = stats[sensor]; s[0] += 1; s[1] += pm25; s[2] = max(s[2], pm25)
with open(expected, "w") as fh:
    for sensor in sorted(stats):
        fh.write("%s,%d,%d,%d\n" % (sensor, *stats[sensor]))
EOF
put_input() { s3 s3 cp --quiet --recursive "$tmp/input" "s3://$bucket/input/"; }
check "the input (4 files, 20000 readings) is put in s3://$bucket/input/" put_input
check "the bucket lists the 4 input files" test "$(s3 s3 ls "s3://$bucket/input/" | grep -c 'readings-.*\.csv$')" = 4

# --- 3. The operator, the credentials and the workspace ------------------------------------------
phase "operator installed"
install_operator
# With executors the operator creates the Spark driver's ServiceAccount, Role and RoleBinding by
# server-side apply, which the API server authorizes as `create` when the object is new.
operator_may() { kubectl auth can-i --as="system:serviceaccount:$ns:hap-operator" create "$1" >/dev/null 2>&1; }
rbac_gap=()
for r in serviceaccounts roles.rbac.authorization.k8s.io rolebindings.rbac.authorization.k8s.io; do
  operator_may "$r" || rbac_gap+=("$r")
done
check "deploy/role.yaml lets the operator create the Spark ServiceAccount, Role and RoleBinding" test ${#rbac_gap[@]} = 0
if [ ${#rbac_gap[@]} != 0 ]; then
  # Counted as a failure above; the missing verb is granted here so that the rest still runs.
  echo "      (deploy/role.yaml lacks create on: ${rbac_gap[*]}; granted by the test's Role hap-spark-test-rbac-gap)"
  kubectl create role hap-spark-test-rbac-gap --verb=create --resource="$(IFS=,; echo "${rbac_gap[*]}")" >/dev/null
  kubectl create rolebinding hap-spark-test-rbac-gap --role=hap-spark-test-rbac-gap \
    --serviceaccount="$ns:hap-operator" >/dev/null
fi

phase "workspace Running"
# The credentials go into the Secret from a file, never on a command line.
printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' "$key_id" "$secret_key" >"$tmp/s3.env"
check "Secret spark-s3 holds the S3 keys" bash -c \
  "'$kubectl_bin' create secret generic spark-s3 --from-env-file='$tmp/s3.env' >/dev/null && '$kubectl_bin' label secret spark-s3 hap.cloudian.com/allow-reference=true >/dev/null"
# Small requests, so the workspace and two executors fit on a 2-core node next to other tests.
cat >"$tmp/hc.yaml" <<EOF
apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata:
  name: $hc
spec:
  image: hap-workspace:0.1.0
  imagePullPolicy: IfNotPresent
  resources:
    requests: {cpu: 250m, memory: 1Gi}
  s3:
    endpoint: $endpoint
    bucket: $bucket
    pathStyle: true
    credentialsSecret: {name: spark-s3}
  spark:
    executors: 2
    executorCores: 1
    executorMemory: 512Mi
EOF
t_cr=$SECONDS
check "kubectl apply a HapContainer with spark.executors: 2 and the S3 server" bash -c \
  "'$kubectl_bin' apply -f '$tmp/hc.yaml' >/dev/null"
pod_running() {
  kubectl get pods --no-headers | awk -v p="$pod" '$1 == p && $2 == "1/1" && $3 == "Running" {n++} END {exit n != 1}'
}
check "$pod is 1/1 Running" eventually 600 pod_running
pod_running || {
  kubectl get pods; kubectl get hapcontainer "$hc" -o yaml | sed -n '/^status:/,$p'
  kubectl get events --sort-by=.lastTimestamp | tail -20; kubectl logs deployment/hap-operator --tail=40
  fail_now "no workspace pod"
}
echo "      (HapContainer applied to $pod Running: $((SECONDS - t_cr)) s)"

# The operator's Spark settings, as the pod sees them.
kubectl exec "$pod" -- sh -c 'cat "$SPARK_CONF_DIR/spark-defaults.conf"' >"$tmp/spark-defaults.conf" 2>&1
kubectl exec "$pod" -- sh -c 'cat "$SPARK_CONF_DIR/executor-pod-template.yaml"' >"$tmp/template.yaml" 2>&1
conf_has() { grep -qxF "$1" "$tmp/spark-defaults.conf"; }
check "spark-defaults.conf: spark.master k8s://https://kubernetes.default.svc:443" \
  conf_has "spark.master k8s://https://kubernetes.default.svc:443"
check "spark-defaults.conf: spark.executor.instances 2" conf_has "spark.executor.instances 2"
check "spark-defaults.conf: the executor pod template" \
  conf_has "spark.kubernetes.executor.podTemplateFile /opt/hap/spark-conf/executor-pod-template.yaml"
check "spark-defaults.conf: S3A at $endpoint" conf_has "spark.hadoop.fs.s3a.endpoint $endpoint"
check "the S3 secret is in neither file of the ConfigMap" bash -c \
  "! grep -qF '$secret_key' '$tmp/spark-defaults.conf' '$tmp/template.yaml'"
check "spark-defaults.conf: spark.authenticate true" conf_has "spark.authenticate true"
check "spark-defaults.conf: spark.network.crypto.enabled true" conf_has "spark.network.crypto.enabled true"
check "spark-defaults.conf: the secret from a file, /opt/hap/spark-auth/secret" \
  conf_has "spark.authenticate.secret.file /opt/hap/spark-auth/secret"
# The operator's generated Secret: owned by the HapContainer, one key, a value in no ConfigMap.
kubectl get secret "$hc-spark-auth" -o jsonpath='{.data.secret}' | base64 -d >"$tmp/spark-auth" 2>/dev/null
auth_secret_made() {
  [ "$(wc -c <"$tmp/spark-auth")" -ge 32 ] &&
    kubectl get secret "$hc-spark-auth" -o json | jq -e '(.data | keys) == ["secret"] and ([.metadata.ownerReferences[] | select(.kind == "HapContainer" and .controller)] | length == 1)' >/dev/null
}
check "Secret $hc-spark-auth holds a generated secret (one key), owned by the HapContainer" auth_secret_made
kubectl get configmaps -o json >"$tmp/configmaps.json"
check "the Spark authentication secret is in no ConfigMap of the namespace" bash -c "! grep -qF \"\$(cat '$tmp/spark-auth')\" '$tmp/configmaps.json'"
# The workspace's user reads the mounted file; other users of the node may not (0440, group fsGroup).
auth_file_readable() {
  [ "$(kubectl exec "$pod" -- stat -L -c '%a %g' /opt/hap/spark-auth/secret)" = "440 100" ] &&
    kubectl exec "$pod" -- cat /opt/hap/spark-auth/secret | cmp -s - "$tmp/spark-auth"
}
check "the workspace pod reads the secret's file (mode 0440, group 100: the pod's fsGroup)" auth_file_readable

# --- 4. The job ----------------------------------------------------------------------------------
phase "job to two executors Running"
stop=/tmp/hap-spark-stop
kubectl exec -i "$pod" -- sh -c 'cat > /tmp/hap-spark-job.py' <"$repo/testing/cluster/spark-job.py"
kubectl exec "$pod" -- rm -f "$stop" >/dev/null 2>&1
# Only what is the job's own goes on the command line: its name, its file and arguments.
timeout 1500 "$kubectl_bin" exec "$pod" -- spark-submit --name hap-spark-test /tmp/hap-spark-job.py \
  "s3a://$bucket/input/" "s3a://$bucket/output/per-sensor" "$stop" 2 >"$tmp/job.out" 2>&1 &
job=$!
t_job=$SECONDS
executors() { kubectl get pods -l spark-role=executor -o json; }
two_running() {
  executors | jq -e '[.items[] | select(.status.phase == "Running" and (.status.containerStatuses[0].state.running.startedAt != null))] | length == 2' >/dev/null
}
check "two executor pods (spark-role=executor) are Running" eventually 900 two_running
echo "      (spark-submit to two executors Running: $((SECONDS - t_job)) s)"
kubectl get pods -o wide
# Spark retries a refused executor without end: what the API server said is the line to show.
two_running || { grep -m3 'Message:' "$tmp/job.out" || tail -40 "$tmp/job.out"; kubectl get events --sort-by=.lastTimestamp | tail -20; }

phase "job results"
said() { grep -q "^HAP-SPARK $1" "$tmp/job.out"; }
check "the job reached its results (its output, then the wait)" eventually 900 said waiting
said waiting || { tail -60 "$tmp/job.out"; }
check "the SparkContext's master is the operator's k8s://https://kubernetes.default.svc:443" \
  said "master k8s://https://kubernetes.default.svc:443$"
check "both executors registered with the driver" said "registered 2$"
check "the job read all 20000 readings from S3" said "rows 20000$"

executors >"$tmp/executors.json"
names=$(jq -r '[.items[].metadata.name] | sort | join(",")' "$tmp/executors.json")
check "the tasks ran on the two executor pods ($names)" said "hosts $names$"
each() { jq -e "[.items[] | $1] | length == 2 and all" "$tmp/executors.json" >/dev/null; }
check "executors: real containers (containerd IDs, started)" \
  each '(.status.containerStatuses[0].containerID | startswith("containerd://")) and .status.containerStatuses[0].ready'
check "executors: from the workspace image" each '.spec.containers[0].image == "hap-workspace:0.1.0"'
check "executors: the template's pod securityContext (uid 1000, gid 100, RuntimeDefault seccomp)" \
  each '.spec.securityContext.runAsUser == 1000 and .spec.securityContext.runAsGroup == 100 and .spec.securityContext.runAsNonRoot and .spec.securityContext.seccompProfile.type == "RuntimeDefault"'
check "executors: the template's container securityContext (no escalation, capabilities dropped)" \
  each '.spec.containers[0].securityContext.allowPrivilegeEscalation == false and .spec.containers[0].securityContext.capabilities.drop == ["ALL"]'
check "executors: no API token (the template's automountServiceAccountToken: false)" \
  each '.spec.automountServiceAccountToken == false and ([.spec.volumes[]? | select(.name | startswith("kube-api-access"))] | length == 0)'
check "executors: the S3 keys from the operator's copy, Secret $hc-spark-s3, never inline" \
  each '[.spec.containers[0].env[] | select(.name | startswith("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))] | length == 2 and all(.valueFrom.secretKeyRef.name == "'"$hc"'-spark-s3" and .value == null)'
copy_is_faithful() {
  kubectl get secret "$hc-spark-s3" -o json | jq -e --argjson src "$(kubectl get secret spark-s3 -o json)" \
    '.data == ($src.data | with_entries(select(.key | test("^AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY)$"))))
     and ([.metadata.ownerReferences[] | select(.kind == "HapContainer")] | length == 1)
     and (.metadata.annotations["hap.cloudian.com/copied-from"] | startswith("spark-s3@"))' >/dev/null
}
check "Secret $hc-spark-s3 holds spark-s3's two keys, owned by the HapContainer, saying what it copies" copy_is_faithful
check "executors: owned by the workspace pod (spark.kubernetes.driver.pod.name)" \
  each "[.metadata.ownerReferences[] | select(.kind == \"Pod\" and .name == \"$pod\")] | length == 1"
check "executors: the authentication Secret $hc-spark-auth mounted read-only, mode 0440" \
  each '([.spec.volumes[] | select(.secret.secretName == "'"$hc"'-spark-auth" and .secret.defaultMode == 288)] | length == 1) and ([.spec.containers[0].volumeMounts[] | select(.mountPath == "/opt/hap/spark-auth" and .readOnly)] | length == 1)'
# Spark puts a secret it generated itself into each executor's environment (_SPARK_AUTH_SECRET), in
# plain text in the pod spec; with the secret in a file it must not.
check "executors: no _SPARK_AUTH_SECRET in their environment" \
  each '[.spec.containers[].env[]? | select(.name == "_SPARK_AUTH_SECRET")] | length == 0'
kubectl get pod "$pod" -o json >"$tmp/pod.json"
check "the secret is in neither the executors' pod specs nor the workspace pod's" bash -c \
  "! grep -qF \"\$(cat '$tmp/spark-auth')\" '$tmp/executors.json' '$tmp/pod.json'"
cpu=$(jq -r '[.items[].spec.containers[0].resources.requests.cpu] | unique | join(",")' "$tmp/executors.json")
conf_cpu=$(sed -n 's/^spark.kubernetes.executor.request.cores //p' "$tmp/spark-defaults.conf")
check "executors: the CPU request spark-defaults.conf sets ($conf_cpu)" test "$cpu" = "$conf_cpu"

# The output, read back from the store and compared with what the input says.
s3 s3 ls --recursive "s3://$bucket/output/per-sensor/" >"$tmp/output.ls" 2>&1
check "the output has _SUCCESS in s3://$bucket/output/per-sensor/" grep -q 'output/per-sensor/_SUCCESS$' "$tmp/output.ls"
mkdir -p "$tmp/output"
s3 s3 cp --quiet --recursive "s3://$bucket/output/per-sensor/" "$tmp/output/" >/dev/null 2>&1
cat "$tmp"/output/part-*.csv 2>/dev/null | grep -v '^sensor,' | sort >"$tmp/actual.csv"
check "the output's per-sensor count, sum and max equal the input's (6 sensors)" bash -c \
  "[ \$(wc -l <'$tmp/expected.csv') = 6 ] && cmp -s '$tmp/expected.csv' '$tmp/actual.csv'"
cmp -s "$tmp/expected.csv" "$tmp/actual.csv" || { echo "expected:"; cat "$tmp/expected.csv"; echo "actual:"; cat "$tmp/actual.csv"; }
check "no Spark attempt files are left in the bucket" bash -c "! grep -q _temporary '$tmp/output.ls'"

phase "an executor without the secret"
# A pod the NetworkPolicy takes for one of this workspace's executors (it has their labels), with
# the workspace's Secret mounted, runs Spark's own executor backend against the running driver as an
# executor pod does. With the secret's file it registers, which shows the driver reachable from
# there; with a wrong secret, or with no authentication at all, the driver refuses it.
driver_url="spark://CoarseGrainedScheduler@$(sed -n 's/^spark.driver.host //p' "$tmp/spark-defaults.conf"):7078"
impostor=$hc-impostor
cat >"$tmp/impostor.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $impostor
  labels: {spark-role: executor, hap.cloudian.com/workspace: $hc}
spec:
  automountServiceAccountToken: false
  restartPolicy: Never
  securityContext: {runAsNonRoot: true, runAsUser: 1000, runAsGroup: 100, fsGroup: 100, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: client
    image: hap-workspace:0.1.0
    imagePullPolicy: IfNotPresent
    command: [sleep, "900"]
    env: [{name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
    resources: {requests: {cpu: 50m, memory: 256Mi}}
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
    volumeMounts: [{name: spark-auth, mountPath: /opt/hap/spark-auth, readOnly: true}]
  volumes: [{name: spark-auth, secret: {secretName: $hc-spark-auth, defaultMode: 288}}]
YAML
impostor_ready() {
  kubectl apply -f "$tmp/impostor.yaml" >/dev/null && kubectl wait --for=condition=Ready "pod/$impostor" --timeout=120s >/dev/null
}
check "a pod labelled as $hc's executor runs" impostor_ready
# register OUT SETTINGS...: Spark's executor backend, with SETTINGS as its JVM's Spark settings, asks
# the driver for the application's settings and registers as executor 99; it is stopped once it has
# registered, or after 60 s. (Its memory manager wants a heap of 450 MiB at least.)
register() {
  local out=$1; shift
  timeout 100 "$kubectl_bin" exec "$impostor" -- env EXECUTOR_DRIVER_PROPS_FETCHER_MAX_ATTEMPTS=1 sh -c '
    "$JAVA_HOME/bin/java" "$@" -Xmx512m -cp "$SPARK_HOME/jars/*" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend --driver-url "'"$driver_url"'" \
      --executor-id 99 --cores 1 --app-id impostor --hostname "$POD_IP" >/tmp/backend.out 2>&1 &
    pid=$! n=0
    while kill -0 $pid 2>/dev/null && ! grep -q "Successfully registered with driver" /tmp/backend.out && [ $n -lt 60 ]; do
      sleep 1; n=$((n + 1))
    done
    kill $pid 2>/dev/null; wait $pid; cat /tmp/backend.out' java "$@" >"$out" 2>&1
}
registered() { grep -q 'Successfully registered with driver' "$1"; }
# refused_with OUT PATTERN: no registration, the client ended on an exception, and OUT says PATTERN.
refused_with() { ! registered "$1" && grep -q '^Exception in thread "main"' "$1" && grep -qE "$2" "$1"; }
# told OUT PATTERN: the first line of OUT that says PATTERN, shown as what the client was told.
told() { echo "      ($(grep -m1 -E "$2" "$1" | cut -c1-200))"; }
register "$tmp/right.out" -Dspark.master=k8s://x -Dspark.authenticate=true -Dspark.network.crypto.enabled=true \
  -Dspark.authenticate.secret.file=/opt/hap/spark-auth/secret
check "with the workspace's secret (its mounted file) it registers with the driver" registered "$tmp/right.out"
registered "$tmp/right.out" || tail -20 "$tmp/right.out"
# Why the executors' pod template sets -Dspark.master (JAVA_TOOL_OPTIONS): without it Spark 4.0
# does not read the secret's file for an executor's first connection. Should a Spark release read it
# anyway, this fails, and the template's setting can go.
register "$tmp/nomaster.out" -Dspark.authenticate=true -Dspark.network.crypto.enabled=true \
  -Dspark.authenticate.secret.file=/opt/hap/spark-auth/secret
nomaster_said='A secret key must be specified'
check "(with the file but no spark.master, the executor backend finds no secret: the template's reason)" \
  refused_with "$tmp/nomaster.out" "$nomaster_said"
refused_with "$tmp/nomaster.out" "$nomaster_said" || tail -20 "$tmp/nomaster.out"
# The driver answers the executor's challenge (Spark's AES-based protocol) with a refusal, the
# executor falls back to SASL, which fails too, and the driver closes the connection.
register "$tmp/wrong.out" -Dspark.authenticate=true -Dspark.network.crypto.enabled=true \
  -Dspark.authenticate.secret=not-the-workspace-secret
wrong_said='New auth protocol failed'
check "with a wrong secret the driver refuses it (its authentication fails, no registration)" \
  refused_with "$tmp/wrong.out" "$wrong_said"
told "$tmp/wrong.out" "$wrong_said"
refused_with "$tmp/wrong.out" "$wrong_said" || tail -20 "$tmp/wrong.out"
# The driver takes the first message of a client that does not authenticate for an authentication
# challenge, and says why it refuses it.
register "$tmp/none.out" -Dspark.authenticate=false
none_said='Expected SaslMessage, received something else'
check "without authentication the driver refuses it (it expects an authentication challenge)" \
  refused_with "$tmp/none.out" "$none_said"
told "$tmp/none.out" "$none_said"
refused_with "$tmp/none.out" "$none_said" || tail -20 "$tmp/none.out"
kubectl delete pod "$impostor" --wait=true --timeout=120s >/dev/null 2>&1
check "the job's own two executors still run" two_running

phase "a second application alongside"
# A second notebook of the same workspace starts its own application while the first still holds
# its executors: its executor pod must get a name of its own (a fixed name prefix would make it
# `...-exec-1` again, which the API server refuses). One executor is enough for that (job-specific).
app_a=$(jq -r '[.items[].metadata.labels["spark-app-selector"]] | unique | join(",")' "$tmp/executors.json")
stop_b=/tmp/hap-spark-stop-second
kubectl exec -i "$pod" -- sh -c "rm -f $stop_b; cat > /tmp/hap-spark-second.py" <<EOF
import os, time
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("hap-spark-second").getOrCreate()
print("HAP-SPARK second", spark.sparkContext.applicationId, flush=True)
deadline = time.time() + 600
while not os.path.exists("$stop_b") and time.time() < deadline:
    time.sleep(1)
spark.stop()
print("HAP-SPARK second end", flush=True)
EOF
timeout 900 "$kubectl_bin" exec "$pod" -- spark-submit --name hap-spark-second --conf spark.executor.instances=1 \
  /tmp/hap-spark-second.py >"$tmp/second.out" 2>&1 &
job_b=$!
other_executor() {
  kubectl get pods -l spark-role=executor -o json | jq -e --arg a "$app_a" \
    '[.items[] | select(.metadata.labels["spark-app-selector"] != $a)] | length == 1' >/dev/null
}
check "a second application gets an executor pod of its own" eventually 600 other_executor
kubectl get pods -l spark-role=executor -L spark-app-selector
# (With a fixed prefix the second application's creates are refused as already existing, and Spark
# then deletes the pod of that name: the first application's executor.)
check "no executor pod of the second application was refused as already existing" \
  bash -c "! grep -q 'already exists' '$tmp/second.out'"
uids_a=$(jq -r '[.items[].metadata.uid] | sort | join(",")' "$tmp/executors.json")
first_untouched() {
  kubectl get pods -l "spark-app-selector=$app_a" -o json | jq -e --arg u "$uids_a" \
    '([.items[] | select(.status.phase == "Running" and .metadata.deletionTimestamp == null) | .metadata.uid] | sort | join(",")) == $u' >/dev/null
}
check "the first application's two executors are the same pods, still running" first_untouched
kubectl exec "$pod" -- touch "$stop_b" >/dev/null 2>&1
wait "$job_b"; job_b_rc=$?; job_b=""
check "the second spark-submit ended with status 0" bash -c "[ $job_b_rc = 0 ] && grep -q '^HAP-SPARK second end' '$tmp/second.out'"
[ "$job_b_rc" = 0 ] || tail -30 "$tmp/second.out"

phase "job end, executors gone"
kubectl exec "$pod" -- touch "$stop" >/dev/null 2>&1
wait "$job"; job_rc=$?; job=""
check "spark-submit ended with status 0 and the job said so" bash -c "[ $job_rc = 0 ] && grep -q '^HAP-SPARK end' '$tmp/job.out'"
[ "$job_rc" = 0 ] || tail -30 "$tmp/job.out"
no_executors() { [ "$(kubectl get pods -l spark-role=executor -o name | wc -l)" = 0 ]; }
check "the executor pods are gone" eventually 180 no_executors
no_spark_objects() { [ -z "$(kubectl get pods,configmaps,services -l spark-app-selector -o name 2>/dev/null)" ]; }
check "nothing Spark made is left (pods, config maps, services labelled spark-app-selector)" eventually 120 no_spark_objects
check "the workspace pod still runs" pod_running

# --- 5. Cleanup ----------------------------------------------------------------------------------
phase "cleanup"
check "kubectl delete hapcontainer $hc" bash -c "timeout 300 '$kubectl_bin' delete hapcontainer '$hc' --timeout=240s >/dev/null"
leftovers() {
  {
    kubectl get pods,services,secrets,configmaps,persistentvolumeclaims,serviceaccounts,roles,rolebindings -o name |
      grep -e "$hc" -e spark-role
    kubectl get pods,services,configmaps -l 'app.kubernetes.io/managed-by=hap-operator' -o name
    kubectl get pods,services,configmaps -l spark-app-selector -o name
  } 2>/dev/null | sort -u
}
# The home volume's claim stays (spec.volume.keepOnDelete, the default), with no owner to take it.
claim=$hc-workspace
nothing_left() { [ "$(leftovers)" = "persistentvolumeclaim/$claim" ]; }
check "nothing of the HapContainer or of Spark is left in $ns but the home volume's claim" eventually 300 nothing_left
leftovers
check "the claim $claim is kept, owned by nothing" bash -c \
  "[ -z \"\$('$kubectl_bin' get pvc '$claim' -o jsonpath='{.metadata.ownerReferences}')\" ]"
for f in deploy/operator.yaml deploy/role_binding.yaml deploy/role.yaml deploy/service_account.yaml; do
  check "kubectl delete -f $f" bash -c "timeout 300 '$kubectl_bin' delete -f '$f' --timeout=240s >/dev/null"
done
check "the namespace deletes without hanging" bash -c \
  "timeout 240 '$kubectl_bin' delete namespace '$ns' --timeout=200s >/dev/null"
ns=""
delete_applied_crds
kill "$s3_pid" 2>/dev/null; wait "$s3_pid" 2>/dev/null; s3_pid=""
check "the S3 server is stopped and its port closed" bash -c "! python3 -c 'import socket; socket.create_connection((\"$host_ip\", $s3_port), 1)' 2>/dev/null"

cluster_down
finish
