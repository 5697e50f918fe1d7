# Debian packages without touching the system: a private apt configuration derived from this
# machine's own sources (so no registry host is named in the project) and `dpkg -x` into a cache.
# Sourced by scripts that set $cache (the download state lives there) and define log().

# The first non-security Debian mirror and release this machine's apt sources name.
debian_source() {
  local uri suite
  uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  suite=$(grep -h '^Suites:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | grep -v security | awk '{print $2}' | head -1 || true)
    suite=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | grep -v security | awk '{print $3}' | head -1 || true)
  fi
  [ -n "$uri" ] && [ -n "$suite" ] || { log "no Debian mirror found in this machine's apt sources"; exit 1; }
  echo "$uri $suite"
}

# apt_download SUITE PACKAGE DEST: downloads PACKAGE from SUITE into DEST with a private apt state.
apt_download() {
  local suite=$1 package=$2 dest=$3 uri
  uri=$(debian_source | cut -d' ' -f1)
  local state=$cache/apt-$suite
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$dest"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main" > "$state/sources.list"
  local opts=(-o Dir::Etc::sourcelist="$state/sources.list" -o Dir::Etc::sourceparts=/nonexistent
              -o Dir::State::Lists="$state/lists" -o Dir::Cache="$state/cache" -o Debug::NoLocking=1)
  apt-get -qq "${opts[@]}" update
  (cd "$dest" && apt-get -qq "${opts[@]}" download "$package/$suite" 2>&1 | grep -v 'Download is performed unsandboxed' || true)
  ls "$dest"/*.deb >/dev/null
}
