#!/usr/bin/env bash
# Installs what the tests need, without touching the system: everything goes under $HAP_CACHE
# (default ~/.cache/hap) and is linked into $HAP_CACHE/bin, where the tests look for it.
#
#   kubectl        the current kubectl (Debian unstable's package), the local cluster's version
#   kubernetes-validate  upstream JSON schemas for the manifests (PyPI), in a virtualenv
#   maven          system-wide from Debian when missing (needs root), for the workspace image's jars
#   chromium, chromium-driver  system-wide from Debian when missing (needs root): the console's browser
#                  test drives headless Chromium through its WebDriver
#   docker-buildx  the BuildKit client plugin of the docker CLI (Debian unstable's docker-buildx; the
#                  image builds use BuildKit secrets and cache mounts), in $HAP_CACHE/docker/cli-plugins
#
# Debian packages come through a private apt configuration derived from this machine's own sources,
# so no registry host is named here. Safe to run again: finished steps are skipped.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${HAP_CACHE:-$HOME/.cache/hap}
bin=$cache/bin
mkdir -p "$bin"

log() { printf 'setup: %s\n' "$*" >&2; }

# debian_source and apt_download, shared with scripts/cluster.sh.
source "$repo/scripts/lib/debian.sh"

# install_kubectl NAME SUITE PACKAGE: unpacks kubectl from PACKAGE into the cache, linked as bin/NAME.
install_kubectl() {
  local name=$1 suite=$2 package=$3 dir=$cache/$1
  if [ ! -x "$dir/root/usr/bin/kubectl" ]; then
    log "fetching $package from Debian $suite"
    rm -rf "$dir" && mkdir -p "$dir"
    apt_download "$suite" "$package" "$dir/debs"
    dpkg -x "$dir"/debs/*.deb "$dir/root"
  fi
  ln -sf "$dir/root/usr/bin/kubectl" "$bin/$name"
  log "$name: $("$bin/$name" version --client 2>/dev/null | head -1)"
}

install_kubectl kubectl sid kubectl

venv=$cache/venv
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  log "installing kubernetes-validate into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'kubernetes-validate>=1.35,<2'
fi
ln -sf "$venv/bin/kubernetes-validate" "$bin/kubernetes-validate"
log "kubernetes-validate: $("$bin/kubernetes-validate" --version 2>/dev/null | head -1)"

# Maven fetches Spark's S3A jars for the workspace image (scripts/images.sh), with this machine's settings.
if ! command -v mvn >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { log "Maven (mvn) is missing: install it (Debian: apt-get install maven)"; exit 1; }
  log "installing Debian's maven"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq maven >/dev/null
fi

# Headless Chromium and its WebDriver for the console's browser test (crates/hap-console/tests/browser.rs).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { log "chromium and chromium-driver are missing: install them (Debian: apt-get install chromium chromium-driver)"; exit 1; }
  log "installing Debian's chromium and chromium-driver"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    chromium chromium-driver >/dev/null
fi

# The docker CLI finds plugins in $DOCKER_CONFIG/cli-plugins; scripts/images.sh points DOCKER_CONFIG there.
buildx=$cache/docker-buildx
if [ ! -x "$buildx/root/usr/libexec/docker/cli-plugins/docker-buildx" ]; then
  log "fetching docker-buildx from Debian sid"
  rm -rf "$buildx" && mkdir -p "$buildx"
  apt_download sid docker-buildx "$buildx/debs"
  dpkg -x "$buildx"/debs/*.deb "$buildx/root"
fi
mkdir -p "$cache/docker/cli-plugins"
ln -sf "$buildx/root/usr/libexec/docker/cli-plugins/docker-buildx" "$cache/docker/cli-plugins/docker-buildx"
log "docker-buildx: $("$cache/docker/cli-plugins/docker-buildx" version 2>/dev/null | head -1)"

echo "$bin"
