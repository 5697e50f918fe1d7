#!/usr/bin/env bash
# Builds the images, hap-workspace:<version>, hap-operator:<version> and hap-mariadb:<version> (the
# workspace version from Cargo.toml; never a "latest" tag), and, when named, hap-metastore:<version>,
# hap-trino:<version> and hap-superset:<version>, on the local Docker engine with BuildKit. The
# metastore and Superset images are also tagged as versions.env's METASTORE_IMAGE and SUPERSET_IMAGE
# (their Hive and Superset versions), the images a HapQuery runs when it names none.
#
#   scripts/images.sh [--ca-bundle FILE] [workspace] [operator] [mariadb] [metastore] [trino] [superset]
#                                           (default: workspace, operator and mariadb)
#
# The metastore's class path and Trino's server and CLI come from Maven Central through
# scripts/sql-stack.sh's installs (install-metastore, install-trino), which the loopback stack shares.
#
# Steps:
#   1. cargo build --release of hap-operator and hap-air-detection (target dir under $HAP_CACHE, so a
#      rebuild with unchanged sources is instant); the images copy the binaries in.
#   2. hadoop-aws and the AWS SDK bundle that match Spark's Hadoop, with `mvn dependency:copy` (the
#      machine's Maven settings), cached in $HAP_CACHE/images/jars.
#   3. A build context per image under $HAP_CACHE/images/context, then `docker buildx build`.
#
# --ca-bundle FILE (or HAP_CA_BUNDLE): extra CA certificates the build's pip step trusts, for a package
# index behind a TLS-intercepting proxy. It goes in as a BuildKit secret, so no layer keeps it. Without
# it, the CA bundle this machine's pip is configured with (PIP_CERT, pip config global.cert) is used
# when there is one. PIP_INDEX_URL, when set, is passed through the same way.
#
# The base images are debian:trixie-slim (debian:bookworm-slim for hap-superset), pulled as usual. On
# a machine without a registry, testing/images/base-image.sh makes them from Debian packages first.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${HAP_CACHE:-$HOME/.cache/hap}
log() { printf 'images: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The versions (versions.env): the S3A jars match Spark's Hadoop (SPARK_HADOOP_VERSION, AWS_SDK_VERSION;
# the workspace Dockerfile checks hadoop-aws against the Hadoop jars Spark ships), Trino's, and the
# tags of the images a HapQuery runs by default. Each Dockerfile gets the ones it declares with ARG.
# shellcheck source=../versions.env
. "$repo/versions.env"
# Where scripts/sql-stack.sh installs the metastore's class path and Trino.
sql_stack=$cache/sql-stack

ca_bundle=${HAP_CA_BUNDLE:-}
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --ca-bundle) [ $# -ge 2 ] || die "--ca-bundle needs a file"; ca_bundle=$2; shift 2 ;;
    --ca-bundle=*) ca_bundle=${1#*=}; shift ;;
    workspace|operator|mariadb|metastore|trino|superset) targets+=("$1"); shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see scripts/images.sh --help)" ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(workspace operator mariadb)

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml")
[ -n "$version" ] || die "no [workspace.package] version in Cargo.toml"

if [ -z "$ca_bundle" ]; then
  ca_bundle=${PIP_CERT:-$(pip3 config get global.cert 2>/dev/null || true)}
  [ -n "$ca_bundle" ] && log "extra CA bundle: pip's configured $ca_bundle"
fi
if [ -n "$ca_bundle" ] && [ ! -s "$ca_bundle" ]; then
  die "CA bundle '$ca_bundle' does not exist or is empty"
fi

# BuildKit: the docker CLI's buildx plugin, or the one scripts/setup.sh unpacks into the cache.
command -v docker >/dev/null 2>&1 || die "no docker CLI; install Docker (scripts/docker-engine.sh does on Debian)"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (scripts/docker-engine.sh starts one)"
if ! docker buildx version >/dev/null 2>&1; then
  [ -x "$cache/docker/cli-plugins/docker-buildx" ] ||
    die "BuildKit's docker-buildx plugin is missing: install it (Debian: docker-buildx) or run scripts/setup.sh"
  export DOCKER_CONFIG=$cache/docker
fi

want() { local t; for t in "${targets[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }

# The base image each wanted Dockerfile starts FROM, pulled when missing.
for t in "${targets[@]}"; do
  base_image=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' "$repo/images/$t/Dockerfile" | head -1)
  docker image inspect "$base_image" >/dev/null 2>&1 && continue
  log "pulling $base_image"
  docker pull "$base_image" >&2 ||
    die "the base image $base_image is not here and cannot be pulled; without a registry, make it from Debian packages with testing/images/base-image.sh $base_image"
done

# 1. The release binaries, for the images that hold them.
# shellcheck source=lib/release.sh
. "$repo/scripts/lib/release.sh"
if want operator || want workspace; then
  log "cargo build --release -p hap-operator -p hap-air-detection (target dir $release)"
  started=$(date +%s)
  release_build
  log "binaries ready in $(( $(date +%s) - started ))s"
fi

# 2. The S3A jars.
jars=$cache/images/jars
if want workspace; then
  mkdir -p "$jars"
  for artifact in org.apache.hadoop:hadoop-aws:$SPARK_HADOOP_VERSION software.amazon.awssdk:bundle:$AWS_SDK_VERSION; do
    IFS=: read -r _ name ver <<<"$artifact"
    [ -s "$jars/$name-$ver.jar" ] && continue
    command -v mvn >/dev/null 2>&1 || die "mvn is needed to fetch $artifact (Debian: apt-get install maven)"
    log "fetching $artifact with Maven"
    mvn -q -B dependency:copy -Dartifact="$artifact" -DoutputDirectory="$jars.part" >&2 ||
      die "Maven could not fetch $artifact (no network, or no Maven repository configured?)"
    mv "$jars.part/$name-$ver.jar" "$jars/"
  done
  rm -rf "$jars.part"
fi

# 3. Build contexts and builds. Large files are hard links when the cache shares a file system.
link() { cp -l "$@" 2>/dev/null || cp "$@"; }
secrets=()
[ -n "$ca_bundle" ] && secrets+=(--secret "id=ca,src=$ca_bundle")
if [ -n "${PIP_INDEX_URL:-}" ]; then
  printf '%s' "$PIP_INDEX_URL" > "$cache/images/pip-index"
  chmod 600 "$cache/images/pip-index"
  secrets+=(--secret "id=pip-index,src=$cache/images/pip-index")
fi

build() {
  local name=$1 context=$cache/images/context/$1 image=hap-$1:$version
  local logfile=$cache/images/build-$1.log started
  rm -rf "$context" && mkdir -p "$context"
  cp -a "$repo/images/$name/." "$context/"
  # The build steps every Dockerfile shares, bind-mounted by its RUNs (never copied into a layer).
  cp -a "$repo/images/build" "$context/build"
  # The versions this Dockerfile declares with ARG, as build arguments.
  local args=() arg
  for arg in $(sed -n 's/^ARG \([A-Z0-9_]*\)$/\1/p' "$context/Dockerfile"); do
    [ -n "${!arg:-}" ] || die "images/$name/Dockerfile declares ARG $arg, which versions.env does not set"
    args+=(--build-arg "$arg=${!arg}")
  done
  case "$name" in
    operator) link "$release/release/hap-operator" "$context/" ;;
    workspace)
      link "$release/release/hap-air-detection" "$context/"
      mkdir "$context/jars"
      link "$jars/hadoop-aws-$SPARK_HADOOP_VERSION.jar" "$jars/bundle-$AWS_SDK_VERSION.jar" "$context/jars/"
      ;;
    metastore)
      "$repo/scripts/sql-stack.sh" install-metastore
      rm "$context/pom.xml"
      mkdir "$context/lib"
      link "$sql_stack"/metastore-lib/*.jar "$context/lib/"
      ;;
    trino)
      "$repo/scripts/sql-stack.sh" install-trino
      local server=$sql_stack/trino/trino-server-$TRINO_VERSION
      mkdir -p "$context/trino-server/plugin"
      cp -al "$server/bin" "$server/lib" "$context/trino-server/" 2>/dev/null ||
        cp -a "$server/bin" "$server/lib" "$context/trino-server/"
      # The catalog's plugin, and the file password authenticator a HapQuery's Trino signs users in with.
      for plugin in hive password-authenticators; do
        cp -al "$server/plugin/$plugin" "$context/trino-server/plugin/" 2>/dev/null ||
          cp -a "$server/plugin/$plugin" "$context/trino-server/plugin/"
      done
      link "$sql_stack/trino/trino-cli-$TRINO_VERSION-executable.jar" "$context/trino-cli"
      ;;
  esac
  log "building $image (log: $logfile)"
  started=$(date +%s)
  if ! docker buildx build --progress=plain "${secrets[@]}" "${args[@]}" -t "$image" "$context" >"$logfile" 2>&1; then
    grep -h 'BUILD ERROR' "$logfile" | sed 's/^#[0-9]* [0-9.]* //' | sort -u >&2 || true
    tail -25 "$logfile" >&2
    die "building $image failed (log: $logfile)"
  fi
  log "built $image in $(( $(date +%s) - started ))s, $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1 / 1e6}')"
  # The tag a HapQuery uses when it names no image (versions.env), the version of what the image runs.
  local default=""
  case "$name" in
    metastore) default=$METASTORE_IMAGE ;;
    superset) default=$SUPERSET_IMAGE ;;
  esac
  if [ -n "$default" ]; then
    docker tag "$image" "$default"
    log "tagged $default (the HapQuery default)"
  fi
}

want operator && build operator
want workspace && build workspace
want mariadb && build mariadb
want metastore && build metastore
want trino && build trino
want superset && build superset
exit 0
