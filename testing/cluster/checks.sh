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

# phase NAME: the previous phase ends, NAME begins; each one's duration is kept in `times` for the
# caller to print at the end.
times=() phase_name="" phase_t=$SECONDS
phase_end() {
  [ -z "$phase_name" ] || times+=("$(printf '%-38s %4d s' "$phase_name" $((SECONDS - phase_t)))")
  phase_name=""
}
phase() { phase_end; phase_name=$1 phase_t=$SECONDS; echo "--    $1"; }
