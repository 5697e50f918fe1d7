#!/usr/bin/env bash
# The SQL stack as real processes on loopback, with no cluster:
#   an S3 server (versitygw) with one bucket, MariaDB, the Hive standalone metastore, Trino (one
#   coordinator that also runs tasks, with the `hive` catalog) and Superset.
#
#   scripts/sql-stack.sh up       install what is missing, start everything, print the connection lines
#   scripts/sql-stack.sh status   say what runs
#   scripts/sql-stack.sh down     stop everything and check that nothing is left
#   scripts/sql-stack.sh dashboard
#                                 provision the air-quality dashboard in Superset (once the job's
#                                 tables.sql has run through Trino), print its URL
#
# Downloads and installs are cached under $HAP_CACHE (default ~/.cache/hap)/sql-stack; the running
# stack keeps its data, logs and generated credentials in $HAP_SQL_STACK_STATE (default
# $HAP_CACHE/sql-stack/state, mode 0700), Trino's certificate and password file included (its
# clients use HTTPS and a password, as on a cluster). The metastore's, Trino's and Superset's configuration files
# are those `hap-operator render` prints for the sample HapQuery (deploy/crds/...hapquery_cr.yaml),
# with the cluster's addresses replaced by loopback ones; the few loopback-only files are in
# testing/sql-stack/config, with @NAME@ placeholders. See docs/sql-stack.md.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${HAP_CACHE:-$HOME/.cache/hap}
home=$cache/sql-stack
state=${HAP_SQL_STACK_STATE:-$home/state}
config=$repo/testing/sql-stack/config
sample=$repo/deploy/crds/hap.cloudian.com_v1alpha1_hapquery_cr.yaml
# hap-operator, built as testing/sql-stack/test.sh and scripts/images.sh build it.
# shellcheck source=lib/release.sh
. "$repo/scripts/lib/release.sh"

# The versions (TRINO_VERSION, HIVE_VERSION, SUPERSET_VERSION, ...), exported for Maven's pom and pip's
# requirements files, which name them.
set -a
# shellcheck source=../versions.env
. "$repo/versions.env"
set +a
# Superset with the hap-superset image's requirements (images/superset/requirements.txt), and DuckDB
# for the loopback test's comparison.
superset_requirements=$repo/images/superset/requirements.txt
superset_extra=duckdb==2.0.1

log() { printf 'sql-stack: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# --- installation (each step skipped when its result is already in the cache) -----------------

# Debian's private-apt helpers (debian_source, apt_download), shared with setup.sh and cluster.sh.
# shellcheck source=lib/debian.sh
. "$repo/scripts/lib/debian.sh"

# Packages from this machine's own Debian release, installed system-wide (CI runs as root).
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return
  [ "$(id -u)" -eq 0 ] || die "please install: ${missing[*]} (needs root)"
  log "installing ${missing[*]}"
  # Waits for another apt run (scripts/test.sh installs this beside other set-up) to let go of the lock.
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
}

install_system_packages() {
  # The MariaDB server and client binaries only: the service scripts of mariadb-server are not
  # wanted, since the stack runs its own server. Java 17 runs Maven and the metastore (Hadoop 3.3
  # does not run on Java 24+, where the security manager is gone).
  # openssl makes Trino's loopback certificate.
  apt_install mariadb-server-core mariadb-client-core openjdk-17-jre-headless maven python3-venv unzip openssl
}

# Trino 476 needs Java 24+: a JDK 25 the machine has (JAVA25_HOME, or one under /usr/lib/jvm), else
# Debian unstable's OpenJDK 25, unpacked into the cache together with unstable's C library, which it is
# built against, and run through that library's loader. Sets $jdk25 to the JDK's directory.
install_jdk25() {
  local dir=$home/jdk25 candidate
  for candidate in ${JAVA25_HOME:-} /usr/lib/jvm/*-25-*; do
    if [ -x "$candidate/bin/java" ]; then jdk25=$candidate; return; fi
  done
  jdk25=$dir
  [ -x "$dir/bin/java" ] && return
  log "fetching OpenJDK 25 from Debian unstable"
  rm -rf "$dir" && mkdir -p "$dir/bin"
  apt_download sid openjdk-25-jre-headless "$dir/debs"
  apt_download sid libc6 "$dir/debs"
  for deb in "$dir"/debs/*.deb; do dpkg -x "$deb" "$dir/root"; done
  # Debian links the JDK's configuration files into /etc; point the links at the unpacked copies.
  find "$dir/root/usr/lib/jvm" -type l -lname '/etc/*' | while read -r link; do
    ln -sfn "$dir/root$(readlink "$link")" "$link"
  done
  cat > "$dir/bin/java" <<EOF
#!/bin/sh
lib=$dir/root/usr/lib/x86_64-linux-gnu
exec "\$lib/ld-linux-x86-64.so.2" --library-path "\$lib" $dir/root/usr/lib/jvm/java-25-openjdk-amd64/bin/java "\$@"
EOF
  chmod +x "$dir/bin/java"
  "$dir/bin/java" -version 2>&1 | head -1 >&2
}

install_trino() {
  local dir=$home/trino
  if [ ! -x "$dir/trino-server-$TRINO_VERSION/bin/launcher" ]; then
    log "fetching Trino $TRINO_VERSION (about 800 MB)"
    mkdir -p "$home/dl" "$dir"
    mvn -q -B dependency:copy -Dartifact="io.trino:trino-server:$TRINO_VERSION:tar.gz" -DoutputDirectory="$home/dl" >&2
    tar -xzf "$home/dl/trino-server-$TRINO_VERSION.tar.gz" -C "$dir"
    rm "$home/dl/trino-server-$TRINO_VERSION.tar.gz"
  fi
  # Only the plugins this stack uses (the hive connector and the password file authenticator):
  # loading all sixty would slow every start.
  mkdir -p "$dir/plugins"
  local plugin
  for plugin in hive password-authenticators; do
    ln -sfn "$dir/trino-server-$TRINO_VERSION/plugin/$plugin" "$dir/plugins/$plugin"
  done
  if [ ! -f "$dir/trino-cli-$TRINO_VERSION-executable.jar" ]; then
    mvn -q -B dependency:copy -Dartifact="io.trino:trino-cli:$TRINO_VERSION:jar:executable" -DoutputDirectory="$dir" >&2
  fi
}

install_metastore() {
  local lib=$home/metastore-lib pom=$repo/images/metastore/pom.xml wanted
  # Fetched again when the pom or a version it takes changes (by content: a fresh clone's files are
  # all new).
  wanted="$HIVE_VERSION $METASTORE_HADOOP_VERSION $MARIADB_JDBC_VERSION $(sha256sum <"$pom" | cut -c1-16)"
  [ -f "$lib/.done" ] && [ "$(cat "$lib/.done")" = "$wanted" ] && return
  log "fetching the Hive metastore and its class path"
  rm -rf "$lib"
  # Old log bindings that Hadoop's dependencies bring would compete with the metastore's log4j2.
  mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
    -DexcludeArtifactIds=slf4j-log4j12,slf4j-reload4j,log4j,reload4j -DoutputDirectory="$lib" >&2
  echo "$wanted" > "$lib/.done"
}

install_s3() {
  [ -x "$home/versitygw/bin/versitygw" ] && return
  log "building versitygw $VERSITYGW_VERSION (a few minutes)"
  GOBIN=$home/versitygw/bin go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" >&2
}

install_superset() {
  local venv=$home/superset-venv wanted
  # What is installed is kept as the requirements with their versions filled in.
  wanted="$SUPERSET_VERSION $superset_extra $(sha256sum <"$superset_requirements" | cut -c1-16)"
  [ -f "$venv/.done" ] && [ "$(cat "$venv/.done")" = "$wanted" ] && return
  log "installing Superset into $venv (a few minutes)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  # pip fills in ${SUPERSET_VERSION} from the environment.
  "$venv/bin/pip" install --quiet -r "$superset_requirements" "$superset_extra" >&2
  echo "$wanted" > "$venv/.done"
}

install_all() {
  install_system_packages
  install_jdk25
  install_trino
  install_metastore
  install_s3
  install_superset
}

# --- running -------------------------------------------------------------------------------------

components=(superset trino metastore mariadb s3)

# A port nobody listens on now, preferring $1 when it is free.
free_port() {
  python3 - "${1:-0}" <<'EOF'
import socket, sys
def try_bind(p):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no obstacle
    try:
        s.bind(("127.0.0.1", p)); return s.getsockname()[1]
    except OSError:
        return None
    finally:
        s.close()
print(try_bind(int(sys.argv[1])) or try_bind(0))
EOF
}

secret() { python3 -c 'import secrets; print(secrets.token_hex(int(__import__("sys").argv[1])))' "$1"; }

# wait_for NAME SECONDS COMMAND...: polls COMMAND until it succeeds, failing if NAME's process dies.
wait_for() {
  local name=$1 deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    running "$name" || die "$name exited during start; see $state/logs/$name.log"
    [ $SECONDS -lt $deadline ] || die "$name did not become ready; see $state/logs/$name.log"
    sleep 1
  done
}

running() { [ -f "$state/pids/$1" ] && kill -0 "$(cat "$state/pids/$1")" 2>/dev/null; }

# start NAME COMMAND...: runs COMMAND in its own session, output to logs/NAME.log, pid in pids/NAME.
start() {
  local name=$1; shift
  setsid "$@" > "$state/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$state/pids/$name"
}

port_open() { python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1"; }

# render SRC DEST: a loopback-only file with its @NAME@ placeholders filled in.
render() {
  mkdir -p "$(dirname "$2")"
  sed -e "s|@STATE@|$state|g" -e "s|@MARIADB_PORT@|$MARIADB_PORT|g" "$1" > "$2"
  if grep -q '@[A-Z0-9_]*@' "$2"; then die "unfilled placeholder in $2"; fi
}

# The sample HapQuery's name and the spec values the stack is built around, as shell assignments.
read_sample() {
  "$home/superset-venv/bin/python" - "$sample" <<'EOF'
import shlex, sys, yaml
q = yaml.safe_load(open(sys.argv[1]))
s3 = q["spec"]["s3"]
for k, v in [("HAP_QUERY", q["metadata"]["name"]), ("TRINO_SCHEMA", q["spec"].get("schema", "air_quality")),
             ("S3_BUCKET", s3["bucket"]), ("S3_REGION", s3.get("region", "us-east-1")),
             ("SAMPLE_S3_ENDPOINT", s3["endpoint"])]:
    print(f"{k}={shlex.quote(v)}")
EOF
}

# `hap-operator render` of the sample, and every ConfigMap's files from it: one directory per
# ConfigMap under $state/rendered, one file per key, exactly as the operator would apply them.
render_sample() {
  release_build >&2 || die "building hap-operator failed"
  "$release/release/hap-operator" render -f "$sample" > "$state/rendered.yaml"
  "$home/superset-venv/bin/python" - "$state/rendered.yaml" "$state/rendered" <<'EOF'
import os, sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ConfigMap":
        out = os.path.join(sys.argv[2], d["metadata"]["name"])
        os.makedirs(out, exist_ok=True)
        for key, text in d.get("data", {}).items():
            with open(os.path.join(out, key), "w") as f:
                f.write(text)
EOF
}

# loopback CONFIGMAP/KEY DEST: a rendered file with the cluster's addresses replaced by this stack's:
# the Services' names and ports by 127.0.0.1 and this run's ports, the bind-all address by
# 127.0.0.1, the sample's S3 endpoint by the local S3 server, Trino's data directory (/data/trino
# in the image) by one under the state directory, the directories a pod mounts Trino's certificate
# and password file into (/etc/trino/tls, /etc/trino/auth) by the state directory's (trino_secrets),
# and Trino's configuration directory (/etc/trino, where a pod mounts the coordinator's ConfigMap)
# by the one Trino is started with. Nothing else changes.
loopback() {
  local src=$state/rendered/$1
  # A Service's name, alone or with its namespace's DNS suffix (`.default.svc`, `…svc.cluster.local`).
  local dns='\(\.[a-z0-9.-]*\)\{0,1\}'
  [ -f "$src" ] || die "hap-operator render printed no $1"
  mkdir -p "$(dirname "$2")"
  sed -e "s|$HAP_QUERY-mariadb$dns:3306|127.0.0.1:$MARIADB_PORT|g" \
      -e "s|$HAP_QUERY-metastore$dns:9083|127.0.0.1:$METASTORE_PORT|g" \
      -e "s|$HAP_QUERY-trino-coordinator$dns:8080|127.0.0.1:$TRINO_PORT|g" \
      -e "s|$HAP_QUERY-trino-coordinator$dns:8443|127.0.0.1:$TRINO_HTTPS_PORT|g" \
      -e "s|localhost:8080|127.0.0.1:$TRINO_PORT|g" \
      -e "s|^http-server.http.port=8080\$|http-server.http.port=$TRINO_PORT|" \
      -e "s|^http-server.https.port=8443\$|http-server.https.port=$TRINO_HTTPS_PORT|" \
      -e "s|/etc/trino/tls/|$state/trino/tls/|g" \
      -e "s|/etc/trino/auth/|$state/trino/auth/|g" \
      -e "s|/etc/trino/|$state/trino/etc/|g" \
      -e "s|<name>metastore.thrift.port</name><value>9083</value>|<name>metastore.thrift.port</name><value>$METASTORE_PORT</value>|" \
      -e "s|<value>0.0.0.0</value>|<value>127.0.0.1</value>|g" \
      -e "s|$SAMPLE_S3_ENDPOINT|$S3_ENDPOINT|g" \
      -e "s|/data/trino|$state/trino/data|g" "$src" > "$2"
  if grep -q -e "$HAP_QUERY-" -e '0\.0\.0\.0' -e '/etc/trino/' "$2"; then die "an in-cluster address or path is left in $2"; fi
}

# Trino's secrets for this run, made as the operator makes them for a pod, into the state directory
# only: a self-signed certificate for 127.0.0.1 and localhost (tls.pem, the key then the
# certificate, as http-server.https.keystore.path takes it; ca.crt, the certificate alone, for
# clients to trust), the password file for the users admin and hap (TRINO_ADMIN_PASSWORD and
# TRINO_PASSWORD from the env file), and hap's password alone in a file for clients
# (TRINO_PASSWORD_FILE). Passwords travel in the environment, never on a command line.
trino_secrets() {
  local tls=$state/trino/tls auth=$state/trino/auth mask
  mask=$(umask); umask 077
  mkdir -p "$tls" "$auth"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=localhost" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$tls/tls.key" -out "$tls/ca.crt" 2> "$state/logs/trino-tls.log" ||
    die "making Trino's certificate failed; see $state/logs/trino-tls.log"
  cat "$tls/tls.key" "$tls/ca.crt" > "$tls/tls.pem"
  rm "$tls/tls.key"
  printf '%s\n' "$TRINO_PASSWORD" > "$state/trino/hap.password"
  # PBKDF2 entries, ITERATIONS:SALT:HASH in lower-case hex. Trino 476's file authenticator checks
  # them with PBKDF2WithHmacSHA1 (its EncryptionUtil; not SHA-256), a key as long as the hash,
  # and refuses fewer than 1000 iterations.
  TRINO_ADMIN_PASSWORD=$TRINO_ADMIN_PASSWORD TRINO_PASSWORD=$TRINO_PASSWORD python3 - "$auth/password.db" <<'EOF' ||
import hashlib, os, sys
iterations = 100_000
with open(sys.argv[1], "w") as out:
    for user, var in (("admin", "TRINO_ADMIN_PASSWORD"), ("hap", "TRINO_PASSWORD")):
        salt = os.urandom(16)
        digest = hashlib.pbkdf2_hmac("sha1", os.environ[var].encode(), salt, iterations)
        out.write(f"{user}:{iterations}:{salt.hex()}:{digest.hex()}\n")
EOF
    die "writing Trino's password file failed"
  umask "$mask"
  # Clients read the CA certificate; it is no secret.
  chmod 644 "$tls/ca.crt"
}

print_lines() {
  # shellcheck disable=SC1091
  . "$state/env"
  # Trino's clients: HTTPS, as hap, with the password in a file (never printed) and the CA to trust.
  echo "TRINO_URL=https://127.0.0.1:$TRINO_HTTPS_PORT"
  echo "TRINO_USER=hap"
  echo "TRINO_PASSWORD_FILE=$state/trino/hap.password"
  echo "TRINO_CA=$state/trino/tls/ca.crt"
  echo "SUPERSET_URL=http://127.0.0.1:$SUPERSET_PORT"
  echo "S3_ENDPOINT=$S3_ENDPOINT"
  echo "S3_BUCKET=$S3_BUCKET"
  echo "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID"
  echo "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY"
  echo "TRINO_CATALOG=hive"
  echo "TRINO_SCHEMA=$TRINO_SCHEMA"
}

all_running() { for c in "${components[@]}"; do running "$c" || return 1; done; }

up() {
  if all_running; then log "already running"; print_lines; return; fi
  [ -d "$state" ] && down
  install_all

  # Credentials and ports for this run, readable by this user only.
  rm -rf "$state" && mkdir -p "$state" && chmod 700 "$state"
  mkdir -p "$state/logs" "$state/pids" "$state/s3" "$state/mariadb" "$state/superset"
  S3_PORT=$(free_port); MARIADB_PORT=$(free_port)
  METASTORE_PORT=$(free_port 9083); TRINO_PORT=$(free_port); TRINO_HTTPS_PORT=$(free_port); SUPERSET_PORT=$(free_port)
  S3_ENDPOINT=http://127.0.0.1:$S3_PORT
  TRINO_NODE_ID=$(python3 -c 'import uuid; print(uuid.uuid4())')
  local sample_values; sample_values=$(read_sample) || die "reading $sample failed"
  (umask 077; cat > "$state/env" <<EOF
S3_PORT=$S3_PORT MARIADB_PORT=$MARIADB_PORT METASTORE_PORT=$METASTORE_PORT TRINO_PORT=$TRINO_PORT TRINO_HTTPS_PORT=$TRINO_HTTPS_PORT SUPERSET_PORT=$SUPERSET_PORT
S3_ENDPOINT=$S3_ENDPOINT TRINO_NODE_ID=$TRINO_NODE_ID
$(echo "$sample_values" | tr '\n' ' ')
AWS_ACCESS_KEY_ID=hap$(secret 8) AWS_SECRET_ACCESS_KEY=$(secret 20)
HAP_METASTORE_DB_PASSWORD=$(secret 16)
SUPERSET_SECRET_KEY=$(secret 32) SUPERSET_ADMIN_USER=admin SUPERSET_ADMIN_PASSWORD=$(secret 12)
TRINO_SHARED_SECRET=$(secret 32) TRINO_ADMIN_PASSWORD=$(secret 16) TRINO_PASSWORD=$(secret 16)
EOF
  )
  # shellcheck disable=SC1091
  . "$state/env"
  local t0=$SECONDS
  # A failed start stops what it had started.
  trap 'rc=$?; if [ $rc -ne 0 ]; then log "start failed; stopping what was started"; down; fi' EXIT
  log "rendering HapQuery $HAP_QUERY from $sample"
  render_sample

  log "S3 server on $S3_ENDPOINT, bucket $S3_BUCKET"
  # versitygw serves the directory tree under its root as buckets and objects, one plain file per
  # object, and checks every request's signature; its root keys come from the environment.
  start s3 env ROOT_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" ROOT_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
    VGW_REGION="$S3_REGION" "$home/versitygw/bin/versitygw" --port "127.0.0.1:$S3_PORT" posix "$state/s3"
  wait_for s3 30 port_open "$S3_PORT"
  create_bucket

  log "MariaDB on 127.0.0.1:$MARIADB_PORT"
  render "$config/mariadb/my.cnf" "$state/mariadb/my.cnf"
  cp "$state/rendered/$HAP_QUERY-mariadb/hap.cnf" "$state/mariadb/hap.cnf"
  mariadb-install-db --defaults-file="$state/mariadb/my.cnf" --user="$(id -un)" \
    --skip-test-db > "$state/logs/mariadb-install.log" 2>&1 || die "mariadb-install-db failed; see $state/logs/mariadb-install.log"
  start mariadb mariadbd --defaults-file="$state/mariadb/my.cnf" --user="$(id -un)"
  wait_for mariadb 60 port_open "$MARIADB_PORT"
  # The install made this OS user a MariaDB administrator over the socket. The password goes
  # through stdin, not the command line.
  mariadb --defaults-file="$state/mariadb/my.cnf" -u "$(id -un)" <<EOF
CREATE DATABASE metastore CHARACTER SET latin1 COLLATE latin1_bin;
CREATE USER 'hive'@'127.0.0.1' IDENTIFIED BY '$HAP_METASTORE_DB_PASSWORD';
GRANT ALL PRIVILEGES ON metastore.* TO 'hive'@'127.0.0.1';
EOF

  log "Hive metastore schema"
  init_metastore_schema
  log "Hive metastore on 127.0.0.1:$METASTORE_PORT"
  loopback "$HAP_QUERY-metastore/metastore-site.xml" "$state/metastore/conf/metastore-site.xml"
  loopback "$HAP_QUERY-metastore/metastore-log4j2.properties" "$state/metastore/conf/metastore-log4j2.properties"
  start metastore env HAP_METASTORE_DB_USER=hive HAP_METASTORE_DB_PASSWORD="$HAP_METASTORE_DB_PASSWORD" \
    AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
    "$(java17)" -Xmx512m $(java_opens) -cp "$state/metastore/conf:$home/metastore-lib/*" \
    org.apache.hadoop.hive.metastore.HiveMetaStore
  wait_for metastore 180 port_open "$METASTORE_PORT"

  log "Trino on 127.0.0.1: HTTPS $TRINO_HTTPS_PORT for clients, HTTP $TRINO_PORT for its own calls"
  trino_secrets
  # Every file of the coordinator's ConfigMap, as the pod mounts it into Trino's etc directory.
  for f in "$state/rendered/$HAP_QUERY-trino-coordinator"/*; do
    loopback "$HAP_QUERY-trino-coordinator/${f##*/}" "$state/trino/etc/${f##*/}"
  done
  loopback "$HAP_QUERY-trino-catalog/hive.properties" "$state/trino/etc/catalog/hive.properties"
  # What a pod gets from its image and network rather than from these files: a node id (the pod's
  # name there), the address to serve and announce on (both ports bind to it), and a plugin
  # directory holding only the plugins used, which starts much faster than the tarball's sixty. The
  # shared secret that signs the node's own calls comes from the environment, as in a pod (assigned
  # before the call, so that it is on no program's command line, not even env's).
  TRINO_SHARED_SECRET=$TRINO_SHARED_SECRET \
  start trino env AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
    "$home/trino/trino-server-$TRINO_VERSION/bin/launcher" --jvm-dir "$jdk25" \
    --etc-dir "$state/trino/etc" --data-dir "$state/trino/data" \
    -Dnode.id="$TRINO_NODE_ID" -Dnode.bind-ip=127.0.0.1 -Dnode.internal-address=127.0.0.1 \
    -Dplugin.dir="$home/trino/plugins" run
  wait_for trino 300 trino_ready
  log "Trino answered $((SECONDS - t0)) s after the start of the first server"

  log "Superset on 127.0.0.1:$SUPERSET_PORT"
  loopback "$HAP_QUERY-superset/superset_config.py" "$state/superset/superset_config.py"
  loopback "$HAP_QUERY-superset/superset-init.sh" "$state/superset/superset-init.sh"
  superset_init
  # As the operator's Superset pod: hap's password (assigned before the call, on no command line),
  # and the CA Trino's certificate is checked against.
  TRINO_PASSWORD=$TRINO_PASSWORD \
  start superset env SUPERSET_CONFIG_PATH="$state/superset/superset_config.py" SUPERSET_SECRET_KEY="$SUPERSET_SECRET_KEY" \
    SUPERSET_HOME="$state/superset" REQUESTS_CA_BUNDLE="$state/trino/tls/ca.crt" \
    "$home/superset-venv/bin/gunicorn" --workers 1 --threads 4 --timeout 120 --bind "127.0.0.1:$SUPERSET_PORT" \
    'superset.app:create_app()'
  wait_for superset 180 curl -sf "http://127.0.0.1:$SUPERSET_PORT/health"

  trap - EXIT
  log "up in $((SECONDS - t0)) s; Superset admin: $SUPERSET_ADMIN_USER, password in $state/env; Trino's users hap and admin, passwords in $state/env"
  print_lines
}

# The metastore's tables, keys and indexes, created in one go from the mapping in the metastore jar
# (package.jdo) by DataNucleus SchemaTool, before the metastore starts.
init_metastore_schema() {
  local dir=$state/metastore/schema-init lib=$home/metastore-lib
  mkdir -p "$dir"
  unzip -q -o "$lib/hive-standalone-metastore-server-"*.jar package.jdo -d "$dir"
  # The only file holding the database password: private, and deleted straight after the run.
  (umask 077
   sed "s|@METASTORE_DB_PASSWORD@|$HAP_METASTORE_DB_PASSWORD|" "$config/metastore/schema-init.properties" > "$dir/in"
   render "$dir/in" "$dir/schema-init.properties"; rm "$dir/in")
  local rc=0
  "$(java17)" -cp "$lib/*" org.datanucleus.store.schema.SchemaTool -create -api JDO \
    -props "$dir/schema-init.properties" "$dir/package.jdo" > "$state/logs/metastore-schema.log" 2>&1 || rc=$?
  rm -f "$dir/schema-init.properties"
  [ $rc -eq 0 ] && ! grep -q ' ERROR ' "$state/logs/metastore-schema.log" ||
    die "metastore schema creation failed; see $state/logs/metastore-schema.log"
  log "metastore schema: $(mariadb --defaults-file="$state/mariadb/my.cnf" -u "$(id -un)" -N -e \
    "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'metastore'") tables"
}

# The bucket, created through the S3 API as any client would.
create_bucket() {
  AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
    "$home/superset-venv/bin/python" - "$S3_ENDPOINT" "$S3_BUCKET" "$S3_REGION" <<'EOF'
import os, sys
from urllib.parse import urlparse
import pyarrow.fs as fs
endpoint, bucket, region = urlparse(sys.argv[1]), sys.argv[2], sys.argv[3]
s3 = fs.S3FileSystem(access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                     endpoint_override=endpoint.netloc, scheme=endpoint.scheme, region=region,
                     allow_bucket_creation=True)
s3.create_dir(bucket)
assert s3.get_file_info(bucket).type == fs.FileType.Directory
EOF
}

java17() { ls /usr/lib/jvm/java-17-openjdk-*/bin/java | head -1; }
# What Hadoop and DataNucleus reach into on Java 17.
java_opens() {
  local p
  for p in java.base/java.lang java.base/java.net java.base/java.nio java.base/java.util \
           java.base/sun.nio.ch java.base/java.util.concurrent java.base/java.lang.reflect; do
    printf -- '--add-opens=%s=ALL-UNNAMED ' "$p"
  done
}

# Trino is ready when the coordinator has left its starting state and has an active worker
# (itself), i.e. it can run a query, over HTTPS as hap, as every client does.
trino_ready() {
  curl -sf --cacert "$state/trino/tls/ca.crt" "https://127.0.0.1:$TRINO_HTTPS_PORT/v1/info" | grep -q '"starting":false' &&
    trino_cli --execute 'SELECT 1' | grep -q 1
}

# The Trino CLI over HTTPS as hap, trusting this run's certificate; --password makes the CLI take the
# password from TRINO_PASSWORD in its environment (it prompts only when that is unset).
trino_cli() {
  TRINO_PASSWORD=$TRINO_PASSWORD "$jdk25/bin/java" -jar "$home/trino/trino-cli-$TRINO_VERSION-executable.jar" \
    --server "https://127.0.0.1:$TRINO_HTTPS_PORT" --truststore-path "$state/trino/tls/ca.crt" \
    --user hap --password "$@"
}

# Superset's first start: the init Job's script as rendered (tables, admin, roles, Trino registered
# as hap over HTTPS, with hap's password from TRINO_PASSWORD and the CA in REQUESTS_CA_BUNDLE, as the
# Job's pod gets them).
superset_init() {
  local venv=$home/superset-venv
  TRINO_PASSWORD=$TRINO_PASSWORD \
  env PATH="$venv/bin:$PATH" FLASK_APP=superset SUPERSET_CONFIG_PATH="$state/superset/superset_config.py" \
    SUPERSET_HOME="$state/superset" SUPERSET_SECRET_KEY="$SUPERSET_SECRET_KEY" \
    SUPERSET_ADMIN_PASSWORD="$SUPERSET_ADMIN_PASSWORD" REQUESTS_CA_BUNDLE="$state/trino/tls/ca.crt" \
    sh "$state/superset/superset-init.sh" > "$state/logs/superset-init.log" 2>&1 ||
    die "Superset's init failed; see $state/logs/superset-init.log"
}

down() {
  [ -d "$state/pids" ] || { log "not running"; return; }
  local c pid
  for c in "${components[@]}"; do
    [ -f "$state/pids/$c" ] || continue
    pid=$(cat "$state/pids/$c")
    # Each component runs in its own session: stop the whole group it started.
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for c in "${components[@]}"; do
    [ -f "$state/pids/$c" ] || continue
    pid=$(cat "$state/pids/$c")
    for _ in $(seq 60); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 -- "-$pid" 2>/dev/null; then
      log "$c did not stop in 30 s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || true
      sleep 1
    fi
    kill -0 -- "-$pid" 2>/dev/null && die "$c (process group $pid) is still running"
    rm -f "$state/pids/$c"
  done
  log "stopped"
}

status() {
  local c rc=0
  for c in "${components[@]}"; do
    if running "$c"; then log "$c: running (pid $(cat "$state/pids/$c"))"; else log "$c: stopped"; rc=3; fi
  done
  return $rc
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  install) install_all ;;
  # Only the S3 server, for the cluster's Spark test (testing/cluster/spark.sh).
  install-s3) install_s3 ;;
  # What scripts/images.sh copies into the metastore and Trino images.
  install-metastore) apt_install openjdk-17-jre-headless maven; install_metastore ;;
  install-trino) apt_install maven; install_trino ;;
  # The Trino CLI against the running stack as hap over HTTPS, e.g. `trino --execute 'SHOW SCHEMAS FROM hive'`.
  trino)
    shift
    all_running || die "the stack is not running: scripts/sql-stack.sh up"
    install_jdk25
    # shellcheck disable=SC1091
    . "$state/env"
    trino_cli "$@"
    ;;
  # The air-quality dashboard, through Superset's REST API (the hap-superset image's program):
  # idempotent; prints DASHBOARD_URL=…. The admin's and hap's passwords reach it in the environment only.
  dashboard)
    all_running || die "the stack is not running: scripts/sql-stack.sh up"
    # shellcheck disable=SC1091
    . "$state/env"
    SUPERSET_URL=http://127.0.0.1:$SUPERSET_PORT TRINO_URL=https://127.0.0.1:$TRINO_HTTPS_PORT TRINO_SCHEMA=$TRINO_SCHEMA \
      TRINO_USER=hap TRINO_PASSWORD=$TRINO_PASSWORD \
      SUPERSET_ADMIN_USER=$SUPERSET_ADMIN_USER SUPERSET_ADMIN_PASSWORD=$SUPERSET_ADMIN_PASSWORD \
      "$home/superset-venv/bin/python" "$repo/images/superset/air_quality_dashboard.py"
    ;;
  *) echo "usage: $0 up|down|status|install|trino [CLI ARGS]|dashboard" >&2; exit 2 ;;
esac
