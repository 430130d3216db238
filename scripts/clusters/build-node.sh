#!/usr/bin/env bash
# Builds what a real test node needs besides the kubelet (which build.sh builds),
# from the Go module proxy and Debian's packages only:
#   containerd, containerd-shim-runc-v2, ctr   (github.com/containerd/containerd/v2)
#   loopback CNI plugin                         (github.com/containernetworking/plugins)
#   crictl                                      (sigs.k8s.io/cri-tools; debugging only, with --crictl)
#   argoexec                                    (github.com/argoproj/argo-workflows/v4;
#                                                tests only: v4.0.5 has reported security flaws)
#   runc                                        (Debian's package; apt-get install if missing)
# into the version-keyed cache of build.sh:
#   ${FLOTILLA_BIN_CACHE:-$HOME/.cache/flotilla/bin}/<component>-<version>/<binary>
# Whatever is cached is skipped (a warm run takes about a second). Throw-away
# builder folders live in ${FLOTILLA_BUILD_DIR:-$HOME/.cache/flotilla/build};
# no third-party source ever lands in the repository.
#
# Usage: scripts/clusters/build-node.sh [--print-env] [--no-argoexec] [--crictl]
#   --print-env  only print the resolved binary paths as shell assignments (no build)
set -euo pipefail

CONTAINERD_VERSION="${CONTAINERD_VERSION:-2.4.2}"
CNI_PLUGINS_VERSION="${CNI_PLUGINS_VERSION:-1.10.0}"
CRI_TOOLS_VERSION="${CRI_TOOLS_VERSION:-1.37.0}"
ARGO_VERSION="${ARGO_VERSION:-4.0.5}"

BIN_CACHE="${FLOTILLA_BIN_CACHE:-$HOME/.cache/flotilla/bin}"
BUILD_DIR="${FLOTILLA_BUILD_DIR:-$HOME/.cache/flotilla/build}"

CONTAINERD="$BIN_CACHE/containerd-v$CONTAINERD_VERSION/containerd"
CONTAINERD_SHIM="$BIN_CACHE/containerd-v$CONTAINERD_VERSION/containerd-shim-runc-v2"
CTR="$BIN_CACHE/containerd-v$CONTAINERD_VERSION/ctr"
CNI_BIN_DIR="$BIN_CACHE/cni-plugins-v$CNI_PLUGINS_VERSION"
CRICTL="$BIN_CACHE/crictl-v$CRI_TOOLS_VERSION/crictl"
ARGOEXEC="$BIN_CACHE/argoexec-v$ARGO_VERSION/argoexec"
# shellcheck disable=SC2034  # printed by --print-env
RUNC="$(command -v runc || echo /usr/sbin/runc)"

WANT_ARGOEXEC=1 WANT_CRICTL=0 PRINT_ENV=0
for a in "$@"; do
  case "$a" in
    --print-env) PRINT_ENV=1 ;;
    --no-argoexec) WANT_ARGOEXEC=0 ;;
    --crictl) WANT_CRICTL=1 ;;
    *) echo "usage: build-node.sh [--print-env] [--no-argoexec] [--crictl]" >&2; exit 2 ;;
  esac
done

if [ "$PRINT_ENV" = 1 ]; then
  for v in CONTAINERD CONTAINERD_SHIM CTR CNI_BIN_DIR CRICTL ARGOEXEC RUNC; do
    printf '%s=%q\n' "$v" "${!v}"
  done
  exit 0
fi

# shellcheck source=scripts/clusters/go-build-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/go-build-env.sh"
# shellcheck source=scripts/lib/argo-module.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/argo-module.sh"

log() { printf '[build-node %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
t_start=$SECONDS
built=()

# ---------------------------------------------------------------- runc (Debian)
ensure_runc() {
  if command -v runc >/dev/null 2>&1; then log "runc: $(runc --version | head -1)"; return; fi
  local t0=$SECONDS
  log "runc: apt-get install runc"
  command -v apt-get >/dev/null || { log "ERROR: no runc and no apt-get: install runc (>= 1.1)"; exit 1; }
  if ! apt-get install -y -qq runc >/dev/null 2>&1; then
    apt-get update -qq >/dev/null && apt-get install -y -qq runc >/dev/null
  fi
  log "runc: installed in $((SECONDS - t0))s ($(runc --version | head -1))"
  built+=("runc:$((SECONDS - t0))s")
}

# ---------------------------------------------------------------- containerd
build_containerd() {
  if [ -x "$CONTAINERD" ] && [ -x "$CONTAINERD_SHIM" ] && [ -x "$CTR" ]; then
    log "containerd v$CONTAINERD_VERSION: cached"; return
  fi
  local t0=$SECONDS out P=github.com/containerd/containerd/v2
  out="$(dirname "$CONTAINERD")"
  mkdir -p "$BUILD_DIR" "$out"
  # The module's go.mod has no replace directives, so `go install pkg@version` works.
  local ldf="$LDFLAGS_BASE -X $P/version.Version=v$CONTAINERD_VERSION -X $P/version.Revision=module-proxy -X $P/version.Package=$P"
  log "containerd v$CONTAINERD_VERSION: go install cmd/containerd cmd/containerd-shim-runc-v2 cmd/ctr"
  (cd "$BUILD_DIR" && GOBIN="$out.tmp" go install -tags "no_btrfs no_devmapper no_zfs" -ldflags "$ldf" \
    "$P/cmd/containerd@v$CONTAINERD_VERSION" "$P/cmd/containerd-shim-runc-v2@v$CONTAINERD_VERSION" "$P/cmd/ctr@v$CONTAINERD_VERSION")
  mv -f "$out.tmp"/* "$out/" && rmdir "$out.tmp"
  log "containerd v$CONTAINERD_VERSION: built in $((SECONDS - t0))s"
  built+=("containerd:$((SECONDS - t0))s")
}

# ---------------------------------------------------------------- CNI loopback
build_cni() {
  if [ -x "$CNI_BIN_DIR/loopback" ]; then log "cni-plugins v$CNI_PLUGINS_VERSION: cached"; return; fi
  local t0=$SECONDS P=github.com/containernetworking/plugins
  mkdir -p "$BUILD_DIR" "$CNI_BIN_DIR"
  log "cni-plugins v$CNI_PLUGINS_VERSION: go install plugins/main/loopback"
  (cd "$BUILD_DIR" && GOBIN="$CNI_BIN_DIR" go install \
    -ldflags "$LDFLAGS_BASE -X $P/pkg/utils/buildversion.BuildVersion=v$CNI_PLUGINS_VERSION" \
    "$P/plugins/main/loopback@v$CNI_PLUGINS_VERSION")
  log "cni-plugins v$CNI_PLUGINS_VERSION: built in $((SECONDS - t0))s"
  built+=("cni-loopback:$((SECONDS - t0))s")
}

# ---------------------------------------------------------------- crictl
build_crictl() {
  if [ -x "$CRICTL" ]; then log "crictl v$CRI_TOOLS_VERSION: cached"; return; fi
  local t0=$SECONDS
  mkdir -p "$BUILD_DIR" "$(dirname "$CRICTL")"
  log "crictl v$CRI_TOOLS_VERSION: go install sigs.k8s.io/cri-tools/cmd/crictl"
  (cd "$BUILD_DIR" && GOBIN="$(dirname "$CRICTL")" go install \
    -ldflags "$LDFLAGS_BASE -X sigs.k8s.io/cri-tools/pkg/version.Version=v$CRI_TOOLS_VERSION" \
    "sigs.k8s.io/cri-tools/cmd/crictl@v$CRI_TOOLS_VERSION")
  log "crictl v$CRI_TOOLS_VERSION: built in $((SECONDS - t0))s"
  built+=("crictl:$((SECONDS - t0))s")
}

# ---------------------------------------------------------------- argoexec
# Built from a patched copy of the module (the zip drops the symlinked
# signal_linux.go): scripts/lib/argo-module.sh, shared with
# scripts/bench/build-upstream.sh (upstream's workflow-controller).
build_argoexec() {
  if [ -x "$ARGOEXEC" ]; then log "argoexec v$ARGO_VERSION: cached"; return; fi
  local t0=$SECONDS
  argo_module_build argoexec "$ARGO_VERSION" "$BUILD_DIR" ./cmd/argoexec "$ARGOEXEC"
  log "argoexec v$ARGO_VERSION: built in $((SECONDS - t0))s"
  built+=("argoexec:$((SECONDS - t0))s")
}

ensure_runc
build_cni
build_containerd
[ "$WANT_CRICTL" = 1 ] && build_crictl
[ "$WANT_ARGOEXEC" = 1 ] && build_argoexec

log "done in $((SECONDS - t_start))s ${built[*]:-(everything cached)}"
