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

# start_s3 ROOT: a versitygw S3 server on the host's end of the cluster's veth ($host_ip), where pods
# reach it, serving the directories under ROOT as buckets, with generated root keys (from the
# environment, never the command line). Sets s3_port, s3_endpoint, s3_key_id, s3_secret_key and
# s3_pid (the caller stops it), and checks that it listens. Needs $versitygw and $host_ip.
start_s3() {
  local root=$1
  s3_port=$(python3 - "$host_ip" <<'PY'
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1]); s.close()
PY
)
  s3_endpoint=http://$host_ip:$s3_port
  s3_key_id=hap$(python3 -c 'import secrets; print(secrets.token_hex(8))')
  s3_secret_key=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
  mkdir -p "$root"
  ROOT_ACCESS_KEY_ID=$s3_key_id ROOT_SECRET_ACCESS_KEY=$s3_secret_key VGW_REGION=us-east-1 \
    setsid "$versitygw" --port "$host_ip:$s3_port" posix "$root" >"$root.log" 2>&1 </dev/null &
  s3_pid=$!
  check "versitygw listens on $s3_endpoint" eventually 60 s3_listening
  s3_listening || { tail -20 "$root.log"; return 1; }
}
s3_listening() { python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1)' "$host_ip" "$s3_port"; }
