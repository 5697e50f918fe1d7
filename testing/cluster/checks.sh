# Shared by the cluster's test scripts: each check prints ok or FAIL and is counted; the script ends
# with a line `N passed, N failed`. Sourced; the caller sets passed=0 failed=0.

# check NAME COMMAND...: one test, passing when COMMAND succeeds.
check() {
  local name=$1; shift
  if "$@"; then
    echo "ok    $name"; passed=$((passed + 1))
  else
    echo "FAIL  $name"; failed=$((failed + 1))
  fi
}

# eventually SECONDS COMMAND...: COMMAND succeeds within SECONDS (the cluster acts a moment after it
# is asked: kube-proxy programs rules after a Service appears, the kubelet starts containers).
eventually() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ "$SECONDS" -lt "$deadline" ] || return 1; sleep 1; done
}
