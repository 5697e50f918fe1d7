#!/usr/bin/env bash
# A real OpenID Connect provider on loopback for the console's tests: Keycloak's server distribution
# (Maven Central, org.keycloak:keycloak-quarkus-dist) on the machine's Java (17 or later), in
# development mode (its own H2
# database, plain HTTP on 127.0.0.1 only), with one realm, `hap`:
#   - the confidential client `hap-console`, whose ID tokens carry a `groups` claim;
#   - the users `alice` (group team-a) and `bob` (group team-b).
# The client secret and the users' passwords are generated on the first start and written as shell
# variables to $state/credentials.env (mode 0600); the realm's database (Keycloak's data/ in the cache)
# is kept with them, so a later start skips the import and most of the start-up time.
#
#   testing/oidc/keycloak.sh install   download and unpack it (cached)
#   testing/oidc/keycloak.sh start     start it in the background (stopping one this script started
#                                      before); prints the credentials file's path on its last line
#                                      once the issuer answers (HAP_KEYCLOAK_PORT, default 18443)
#   testing/oidc/keycloak.sh stop
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${HAP_CACHE:-$HOME/.cache/hap}
version=26.7.3
home=$cache/keycloak
server=$home/keycloak-$version
state=$home/state
port=${HAP_KEYCLOAK_PORT:-18443}

log() { printf 'keycloak: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

install() {
  if ! command -v java >/dev/null || ! command -v mvn >/dev/null || ! command -v unzip >/dev/null; then
    [ "$(id -u)" -eq 0 ] || die "please install openjdk-17-jre-headless, maven and unzip (needs root)"
    log "installing Java 17, Maven and unzip"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
      openjdk-17-jre-headless maven unzip >&2
  fi
  if [ ! -x "$server/bin/kc.sh" ]; then
    mkdir -p "$home/dl"
    log "downloading keycloak-quarkus-dist $version"
    mvn -q -B -Dstyle.color=never dependency:copy -Dartifact="org.keycloak:keycloak-quarkus-dist:$version:zip" \
      -DoutputDirectory="$home/dl" >&2
    rm -rf "$server.part" && mkdir -p "$server.part"
    unzip -q "$home/dl/keycloak-quarkus-dist-$version.zip" -d "$server.part"
    mv "$server.part/keycloak-$version" "$server" && rmdir "$server.part"
  fi
}

# The realm, with the generated secrets; written once, with the database it is imported into.
write_realm() {
  mkdir -p "$state" && chmod 700 "$state"
  if [ ! -s "$state/credentials.env" ]; then
    local secret alice bob admin
    secret=$(openssl rand -hex 24) alice=$(openssl rand -hex 12) bob=$(openssl rand -hex 12)
    admin=$(openssl rand -hex 12)
    # New secrets need a new realm: the old database goes.
    rm -rf "$server/data/h2"
    umask 077
    cat > "$state/credentials.env" <<ENV
HAP_TEST_OIDC_ISSUER=http://127.0.0.1:$port/realms/hap
HAP_TEST_OIDC_CLIENT_ID=hap-console
HAP_TEST_OIDC_CLIENT_SECRET=$secret
HAP_TEST_OIDC_ALICE_PASSWORD=$alice
HAP_TEST_OIDC_BOB_PASSWORD=$bob
KEYCLOAK_ADMIN_PASSWORD=$admin
ENV
  fi
  # shellcheck source=/dev/null
  . "$state/credentials.env"
  mkdir -p "$server/data/import" && chmod 700 "$server/data"
  umask 077
  sed -e "s/@SECRET@/$HAP_TEST_OIDC_CLIENT_SECRET/" -e "s/@ALICE@/$HAP_TEST_OIDC_ALICE_PASSWORD/" \
    -e "s/@BOB@/$HAP_TEST_OIDC_BOB_PASSWORD/" "$repo/testing/oidc/realm.json" > "$server/data/import/hap-realm.json"
}

start() {
  install
  stop 2>/dev/null || true
  write_realm
  # shellcheck source=/dev/null
  . "$state/credentials.env"
  log "starting on 127.0.0.1:$port (log: $state/keycloak.log)"
  # --import-realm imports data/import/hap-realm.json only when the realm is not there yet.
  KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD=$KEYCLOAK_ADMIN_PASSWORD \
    setsid "$server/bin/kc.sh" start-dev --http-host=127.0.0.1 --http-port="$port" \
    --http-management-port="$((port + 1))" --import-realm >"$state/keycloak.log" 2>&1 </dev/null &
  echo $! > "$state/pid"
  local deadline=$((SECONDS + 300))
  until curl -fs -o /dev/null "$HAP_TEST_OIDC_ISSUER/.well-known/openid-configuration"; do
    if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then
      tail -30 "$state/keycloak.log" >&2
      die "Keycloak stopped while starting"
    fi
    [ $SECONDS -lt $deadline ] || { tail -30 "$state/keycloak.log" >&2; die "no issuer after 300 s"; }
    sleep 1
  done
  log "the issuer answers: $HAP_TEST_OIDC_ISSUER"
  echo "$state/credentials.env"
}

stop() {
  [ -s "$state/pid" ] || return 0
  local pid
  pid=$(cat "$state/pid")
  # kc.sh runs java as its child: the whole session goes.
  kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  rm -f "$state/pid"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 install|start|stop" ;;
esac
