#!/bin/sh
# Installs Debian packages during an image build, then drops apt's lists (shared by the Dockerfiles,
# bind-mounted for the RUN that calls it, never copied into a layer):
#   apt-install.sh PACKAGE... [SUITE:PACKAGE...]
# A package written SUITE:PACKAGE comes from that Debian suite (sid for Java 25, bookworm for Java 17),
# which is added for it at pin priority 100, so nothing else is taken from there. No network fails at
# once with a BUILD ERROR line, which scripts/images.sh prints.
set -eu
base=$(. /etc/os-release && echo "$VERSION_CODENAME")
suites=""
for p in "$@"; do
  case $p in
    *:*) case " $suites " in *" ${p%%:*} "*) ;; *) suites="$suites ${p%%:*}" ;; esac ;;
  esac
done
for s in $suites; do
  # Unstable's Release file says how long it is valid; a mirror that is a snapshot (as this project's
  # machines use) outlives that, so the date is not checked for that suite.
  valid=""
  [ "$s" = sid ] && valid="[check-valid-until=no] "
  sed "s/^deb /deb $valid/; s/ $base / $s /" /etc/apt/sources.list >"/etc/apt/sources.list.d/$s.list"
  printf 'Package: *\nPin: release n=%s\nPin-Priority: 100\n' "$s" >"/etc/apt/preferences.d/$s"
done
# JRE packages link their manual pages, and slim images have no man directory.
mkdir -p /usr/share/man/man1
apt-get update
ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || {
  echo "BUILD ERROR: no network: apt-get update reached no Debian mirror (see /etc/apt/sources.list.d in the base image)" >&2
  exit 1
}
export DEBIAN_FRONTEND=noninteractive
plain=""
for p in "$@"; do
  case $p in
    *:*) apt-get install -y --no-install-recommends -t "${p%%:*}" "${p#*:}" ;;
    *) plain="$plain $p" ;;
  esac
done
# shellcheck disable=SC2086 # one word per package
[ -z "$plain" ] || apt-get install -y --no-install-recommends $plain
rm -rf /var/lib/apt/lists/*
