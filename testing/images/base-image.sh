#!/usr/bin/env bash
# Test set-up for machines without a container registry: makes the base images the Dockerfiles start
# FROM (debian:trixie-slim; debian:bookworm-slim for hap-superset) out of Debian packages, so the
# Dockerfiles stay exactly what users build.
#
#   testing/images/base-image.sh [IMAGE ...]     (default: debian:trixie-slim)
#
# The root filesystem comes from debootstrap (minbase variant) against the Debian mirror this machine's
# apt sources name, is trimmed the way Debian's slim images are (no docs, man pages or locales; empty apt
# lists), and is imported with `docker import`. The tarball is cached under $HAP_CACHE/images, so later
# runs only import it. Nothing happens when the image already exists. Needs root (debootstrap).
set -euo pipefail

cache=${HAP_CACHE:-$HOME/.cache/hap}
log() { printf 'base-image: %s\n' "$*" >&2; }

if [ $# -eq 0 ]; then set -- "${HAP_BASE_IMAGE:-debian:trixie-slim}"; fi
for image in "$@"; do
  [[ $image =~ ^debian:[a-z]+-slim$ ]] || { log "'$image' is not of the form debian:SUITE-slim"; exit 2; }
done

# The first non-security Debian mirror of this machine's apt sources (deb822 or one-line format).
mirror() {
  local uri
  uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  [ -n "$uri" ] || uri=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | grep -v security | awk '{print $2}' | head -1 || true)
  [ -n "$uri" ] || { log "no Debian mirror found in this machine's apt sources"; exit 1; }
  echo "$uri"
}

# make IMAGE: debootstrap the suite into a cached tarball (once), then import it.
make() {
  local image=$1 suite tarball uri root
  suite=${image#debian:}
  suite=${suite%-slim}
  tarball=$cache/images/$suite-slim-rootfs.tar
  if docker image inspect "$image" >/dev/null 2>&1; then
    log "$image present"
    return
  fi
  if [ ! -s "$tarball" ]; then
    [ "$(id -u)" = 0 ] || { log "debootstrap needs root to make $image"; exit 1; }
    command -v debootstrap >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq debootstrap >/dev/null
    uri=$(mirror)
    mkdir -p "$cache/images"
    root=$(mktemp -d "$cache/images/rootfs.XXXXXX")
    # A global, so that the exit trap still sees it when debootstrap fails.
    rootfs=$root
    trap 'rm -rf "$rootfs"' EXIT
    log "debootstrap $suite (minbase) from $uri"
    debootstrap --variant=minbase "$suite" "$root" "$uri" >"$cache/images/debootstrap-$suite.log" 2>&1 ||
      { tail -20 "$cache/images/debootstrap-$suite.log" >&2; log "debootstrap failed (log: $cache/images/debootstrap-$suite.log)"; exit 1; }
    # Slim: dpkg leaves out docs, man pages and translations from now on, as in Debian's slim images.
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    # apt keeps no downloaded packages in images.
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/usr/share/locale/"* \
      "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb \
      "$root/var/log/"*.log "$root/tmp/"*
    tar --numeric-owner -C "$root" -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    rm -rf "$root"
    trap - EXIT
    log "cached $tarball ($(du -h "$tarball" | cut -f1))"
  fi

  docker import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tarball" "$image" >/dev/null
  log "imported $image from $tarball"
}

for image in "$@"; do make "$image"; done
