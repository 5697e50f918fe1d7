#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine, for the image builds and tests.
# - No engine installed: installs Debian's docker.io (needs root).
# - Engine installed but not running (no systemd here): starts dockerd as root in the background,
#   logging to $HAP_CACHE/dockerd.log. It keeps running after this script, as a service would.
# Safe to run again: when `docker info` answers, nothing is done.
set -euo pipefail
cache=${HAP_CACHE:-$HOME/.cache/hap}
log() { printf 'docker-engine: %s\n' "$*" >&2; }

docker info >/dev/null 2>&1 && exit 0

if ! command -v dockerd >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { log "no Docker engine here; install one (Debian: apt-get install docker.io) or run as root"; exit 1; }
  log "installing Debian's docker.io"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq docker.io >/dev/null
fi
command -v docker >/dev/null 2>&1 || { log "no docker CLI on PATH"; exit 1; }

if ! pgrep -x dockerd >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { log "dockerd is not running and starting it needs root"; exit 1; }
  mkdir -p "$cache"
  log "starting dockerd (log: $cache/dockerd.log)"
  # setsid: the daemon outlives the shell that started it, like a service.
  setsid dockerd >"$cache/dockerd.log" 2>&1 </dev/null &
fi
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && { log "engine $(docker version --format '{{.Server.Version}}') ready"; exit 0; }
  sleep 1
done
log "dockerd did not answer within 60 s; see $cache/dockerd.log"
exit 1
