# shellcheck shell=bash
# Sourced (not run) by scripts/clusters/build-node.sh (argoexec) and
# scripts/bench/build-upstream.sh (workflow-controller): the one definition of
# how a binary of upstream Argo Workflows is built from the Go module proxy
# (github.com/argoproj/argo-workflows/v4). Callers source go-build-env.sh first
# (LDFLAGS_BASE, GOFLAGS, ...) and define log().
#
# Both builds share one patched copy of the module in
#   $build_dir/argo-workflows-v<version>
# and Go's module and build caches, so the dependencies compiled for one binary
# are reused by the other.

ARGO_MODULE=github.com/argoproj/argo-workflows/v4

# argo_module_prepare <label> <version> <build_dir>
# Sets ARGO_MODULE_COPY to the patched copy of the module (created once).
# The module zip drops workflow/executor/osspecific/signal_linux.go, a symlink to
# signal_darwin.go upstream (module zips omit symlinks), so Setpgid & co. are
# undefined on linux. Copy the module out of the module cache, restore the file
# as a copy of signal_darwin.go (no build tags: its _linux name selects it) and
# build there.
argo_module_prepare() {
  local label="$1" version="$2" build_dir="$3" dir moddir
  dir="$build_dir/argo-workflows-v$version"
  mkdir -p "$build_dir"
  log "$label v$version: go mod download $ARGO_MODULE@v$version (security advisories exist: tests only)"
  moddir="$(cd "$build_dir" && go mod download -json "$ARGO_MODULE@v$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$moddir" ] || { log "ERROR: cannot find $ARGO_MODULE@v$version in the module cache"; exit 1; }
  if [ ! -f "$dir/.copied" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    cp -r "$moddir/." "$dir/"
    chmod -R u+w "$dir"
    local os="$dir/workflow/executor/osspecific"
    [ -f "$os/signal_linux.go" ] || cp "$os/signal_darwin.go" "$os/signal_linux.go"
    grep -q '^//go:build' "$os/signal_linux.go" && { log "ERROR: $os/signal_darwin.go has build tags now; check them"; exit 1; }
    touch "$dir/.copied"
  fi
  ARGO_MODULE_COPY="$dir"
}

# argo_module_build <label> <version> <build_dir> <cmd dir, e.g. ./cmd/argoexec> <output binary>
# Builds (version-stamped, static) into <output binary> via a .tmp file, so an
# interrupted build never leaves a half-written binary that looks cached.
argo_module_build() {
  local label="$1" version="$2" build_dir="$3" pkg="$4" out="$5"
  argo_module_prepare "$label" "$version" "$build_dir"
  mkdir -p "$(dirname "$out")"
  log "$label v$version: go build $pkg"
  (cd "$ARGO_MODULE_COPY" && go build -mod=mod \
    -ldflags "$LDFLAGS_BASE -X $ARGO_MODULE.version=v$version -X $ARGO_MODULE.gitTag=v$version -X $ARGO_MODULE.gitTreeState=clean" \
    -o "$out.tmp" "$pkg" && mv -f "$out.tmp" "$out")
}
