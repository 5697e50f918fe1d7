# The release build of the operator and the data job, shared by every script that needs their
# binaries (scripts/images.sh, scripts/sql-stack.sh, testing/sql-stack/test.sh,
# testing/cluster/sql.sh), so that all build them alike and none builds again what another built.
# Sourced by scripts that set $repo and $cache; sets $release, the target directory.
#
# - Always both packages: building one alone unifies dependency features differently and
#   recompiles them.
# - From a copy of the sources at a fixed path, $cache/release-src: cargo keys a workspace crate's
#   artifacts by its path and rebuilds it when a source file is newer than its last build, so in
#   every fresh clone (a new path, every file new) it built the three crates from nothing (over two
#   minutes). The copy keeps the files whose content has not changed as they were, so the crates
#   that did not change are not built again.
# - The operator's crate is compiled incrementally: an operator waits on the API server, not on
#   code that a whole-crate optimization would speed up, and after a change to one of its modules
#   it built in 80 s rather than about 2 minutes. The data job, whose speed is measured, is not.

release=${HAP_RELEASE_TARGET_DIR:-$cache/target-release}

# same_tree FROM TO PATH...: makes TO's copy of each PATH (a file or a folder) the same as FROM's,
# writing only the files whose content differs (they get a new time; the others keep theirs) and
# removing the files FROM no longer has. (rsync -c does this; it is not among the tools installed.)
same_tree() {
  local from=$1 to=$2 f
  shift 2
  (cd "$from" && find "$@" -type f) | while IFS= read -r f; do
    cmp -s "$from/$f" "$to/$f" && continue
    mkdir -p "$(dirname "$to/$f")"
    cp "$from/$f" "$to/$f"
  done
  [ -d "$to" ] || return 0
  (cd "$to" && find "$@" -type f 2>/dev/null) | while IFS= read -r f; do
    [ -e "$from/$f" ] || rm -f "$to/$f"
  done
}

# release_build: both binaries into $release/release/. Two scripts may build at once (the test
# command installs the SQL stack beside the images): the lock keeps the copy still while one builds.
release_build() {
  local src=$cache/release-src
  mkdir -p "$src"
  (
    flock 9
    same_tree "$repo" "$src" Cargo.toml Cargo.lock versions.env crates testing/images
    cd "$src" && CARGO_TARGET_DIR=$release cargo build --quiet --release --locked \
      --config 'profile.release.package.hap-operator.incremental=true' -p hap-operator -p hap-air-detection
  ) 9>"$cache/release-src.lock"
}
