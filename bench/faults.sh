#!/usr/bin/env bash
# The control-plane fault suite (testing/cluster/faults.sh) run several times in a row on one local
# cluster, as root, and per fault the median and the max of three times: from the fault's end to the
# API server answering the operator's pod again through its Service ("route back"); from then to every
# resource's status converged (the goal: 30 s); and from then to the deleted resources' children
# collected by the garbage collector. Not part of the test command.
#
#   bench/faults.sh [RUNS]     (default 5; the images must be built: scripts/images.sh)
#
# Every run must pass; the script stops at the first that fails. The cluster is started if it is not
# running, and brought down at the end only if this script started it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
case $runs in '' | *[!0-9]*) echo "usage: bench/faults.sh [RUNS]" >&2; exit 2 ;; esac
cluster=$repo/scripts/cluster.sh
started=0
"$cluster" status 2>/dev/null | grep -q '^kube-apiserver: running' || started=1
# Each run's whole output is kept in $logs, with the operator's log for any fault past 10 s.
logs=${HAP_FAULT_LOGS:-$(mktemp -d)}
mkdir -p "$logs"
results=$logs/results
: >"$results"
trap '[ "$started" = 0 ] || "$cluster" down >/dev/null 2>&1 || true' EXIT
for i in $(seq "$runs"); do
  echo "bench: run $i of $runs (output in $logs/run-$i.log)" >&2
  if ! HAP_FAULT_RESULTS=$logs/run-$i.results FAULTS_LOG_AFTER=10 KEEP_CLUSTER=1 \
    "$repo/testing/cluster/faults.sh" >"$logs/run-$i.log" 2>&1; then
    tail -40 "$logs/run-$i.log" >&2
    echo "bench: run $i failed (the whole output above ends with its checks)" >&2
    exit 1
  fi
  cat "$logs/run-$i.results" >>"$results"
done
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); $runs runs"
python3 - "$results" <<'EOF'
import collections, re, statistics, sys
times = collections.OrderedDict()
for line in open(sys.argv[1]):
    m = re.match(r"(route back|converged|collected) after (.*): (\d+) s", line.strip())
    if m:
        times.setdefault(m[2], {}).setdefault(m[1], []).append(int(m[3]))
def cell(t):
    return f"{statistics.median(t):>6}s {max(t):>4}s" if t else f"{'-':>7} {'-':>5}"
kinds = ("route back", "converged", "collected")
print(f"{'':34} " + "   ".join(f"{k:>13}" for k in kinds))
print(f"{'fault':34} " + "   ".join(f"{'median':>7} {'max':>5}" for k in kinds) + "   converged per run (s)")
for fault, t in times.items():
    cells = "   ".join(cell(t.get(k, [])) for k in kinds)
    print(f"{fault:34} {cells}   {' '.join(map(str, t.get('converged', [])))}")
EOF
