#!/usr/bin/env bash
# Builds the binaries for the end-to-end clusters from the Go module proxy
# (no binary downloads, no container images):
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  (k8s.io/kubernetes)
#   etcd                                                              (go.etcd.io/etcd/server/v3)
#   kwok                                                              (sigs.k8s.io/kwok/cmd/kwok)
# into a cache outside the repository, keyed by version:
#   ${FLOTILLA_BIN_CACHE:-$HOME/.cache/flotilla/bin}/<component>-<version>/<component>
# Whatever is already cached is skipped, so a warm run takes about a second.
# The throw-away builder modules live in ${FLOTILLA_BUILD_DIR:-$HOME/.cache/flotilla/build};
# no third-party source ever lands in the repository.
#
# Usage: scripts/clusters/build.sh [--print-env]
#   --print-env  only print the resolved binary paths as shell assignments (no build)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.36.3}"       # k8s.io/kubernetes v1.36.3 <-> staging v0.36.3
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-0.8.0}"

BIN_CACHE="${FLOTILLA_BIN_CACHE:-$HOME/.cache/flotilla/bin}"
BUILD_DIR="${FLOTILLA_BUILD_DIR:-$HOME/.cache/flotilla/build}"

bin_path() { echo "$BIN_CACHE/$1-v$2/$1"; }
KUBE_APISERVER="$(bin_path kube-apiserver "$K8S_VERSION")"
KUBE_CONTROLLER_MANAGER="$(bin_path kube-controller-manager "$K8S_VERSION")"
KUBE_SCHEDULER="$(bin_path kube-scheduler "$K8S_VERSION")"
KUBECTL="$(bin_path kubectl "$K8S_VERSION")"
KUBELET="$(bin_path kubelet "$K8S_VERSION")"
ETCD="$(bin_path etcd "$ETCD_VERSION")"
KWOK="$(bin_path kwok "$KWOK_VERSION")"
KWOK_STAGES_DIR="$BIN_CACHE/kwok-v$KWOK_VERSION/stages"

if [ "${1:-}" = "--print-env" ]; then
  for v in KUBE_APISERVER KUBE_CONTROLLER_MANAGER KUBE_SCHEDULER KUBECTL KUBELET ETCD KWOK KWOK_STAGES_DIR; do
    printf '%s=%q\n' "$v" "${!v}"
  done
  exit 0
fi

# shellcheck source=scripts/clusters/go-build-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/go-build-env.sh"

log() { printf '[build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
t_start=$SECONDS
built=()

# ---------------------------------------------------------------- kubernetes
build_k8s() {
  local kv="$K8S_VERSION" sv="v0.${K8S_VERSION#1.}" minor
  minor="$(echo "$kv" | cut -d. -f2)"
  if [ -x "$KUBE_APISERVER" ] && [ -x "$KUBE_CONTROLLER_MANAGER" ] && [ -x "$KUBE_SCHEDULER" ] && [ -x "$KUBECTL" ] && [ -x "$KUBELET" ]; then
    log "kubernetes v$kv: cached"
    return
  fi
  local t0=$SECONDS dir="$BUILD_DIR/k8s-v$kv"
  mkdir -p "$dir"
  cd "$dir"
  log "kubernetes v$kv: resolving module (staging $sv)"
  # The proxy serves k/k's go.mod verbatim, replace block included: use it to
  # generate one replace per staging module (k/k requires them at v0.0.0).
  local gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@v$kv" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [ -f "$gomod" ] || { echo "cannot find go.mod of k8s.io/kubernetes@v$kv" >&2; exit 1; }
  local godebug
  godebug="$(grep -E '^godebug ' "$gomod" || true)"
  cat > go.mod <<EOF
module local.test/flotilla-k8sbin

go 1.26

$godebug

require k8s.io/kubernetes v$kv

tool (
	k8s.io/kubernetes/cmd/kube-apiserver
	k8s.io/kubernetes/cmd/kube-controller-manager
	k8s.io/kubernetes/cmd/kube-scheduler
	k8s.io/kubernetes/cmd/kubectl
	k8s.io/kubernetes/cmd/kubelet
)
EOF
  sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$gomod" \
    | grep -v -e sample-cli-plugin -e sample-controller -e sample-apiserver \
    | while read -r m; do go mod edit -replace="$m=$m@$sv"; done
  log "kubernetes v$kv: go mod tidy ($(grep -c '=>' go.mod) replaces)"
  go mod tidy
  local V=k8s.io/component-base/version C=k8s.io/client-go/pkg/version
  local ldf="$LDFLAGS_BASE -X $V.gitVersion=v$kv -X $V.gitMajor=1 -X $V.gitMinor=$minor -X $V.gitTreeState=clean"
  ldf="$ldf -X $C.gitVersion=v$kv -X $C.gitMajor=1 -X $C.gitMinor=$minor -X $C.gitTreeState=clean"
  log "kubernetes v$kv: go build kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet"
  rm -rf out && mkdir out
  go build -ldflags "$ldf" -o out/ \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kubelet
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet; do
    mkdir -p "$BIN_CACHE/$c-v$kv"
    mv -f "out/$c" "$BIN_CACHE/$c-v$kv/$c"
  done
  log "kubernetes v$kv: built in $((SECONDS - t0))s"
  built+=("kubernetes:$((SECONDS - t0))s")
}

# ---------------------------------------------------------------- etcd
build_etcd() {
  if [ -x "$ETCD" ]; then log "etcd v$ETCD_VERSION: cached"; return; fi
  local t0=$SECONDS dir="$BUILD_DIR/etcd-v$ETCD_VERSION"
  mkdir -p "$dir"
  cd "$dir"
  # server/go.mod has replace lines (../api, ...) so `go install` is refused, but its
  # requires carry real versions: a consumer module needs no replaces.
  cat > go.mod <<EOF
module local.test/flotilla-etcdbin

go 1.26

require go.etcd.io/etcd/server/v3 v$ETCD_VERSION

tool go.etcd.io/etcd/server/v3
EOF
  log "etcd v$ETCD_VERSION: go mod tidy"
  go mod tidy
  log "etcd v$ETCD_VERSION: go build"
  mkdir -p "$(dirname "$ETCD")"
  go build -ldflags "$LDFLAGS_BASE" -o "$ETCD.tmp" go.etcd.io/etcd/server/v3   # -o: default name would be "v3"
  mv -f "$ETCD.tmp" "$ETCD"
  log "etcd v$ETCD_VERSION: built in $((SECONDS - t0))s"
  built+=("etcd:$((SECONDS - t0))s")
}

# ---------------------------------------------------------------- kwok
build_kwok() {
  if [ -x "$KWOK" ] && [ -d "$KWOK_STAGES_DIR" ]; then log "kwok v$KWOK_VERSION: cached"; return; fi
  local t0=$SECONDS
  mkdir -p "$(dirname "$KWOK")"
  log "kwok v$KWOK_VERSION: go install sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  (cd "$(dirname "$KWOK")" && GOBIN="$(dirname "$KWOK")" go install -ldflags "$LDFLAGS_BASE" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION")
  # v0.8 has no built-in stages: keep the upstream node stages next to the binary
  # (copied from the module cache, never into the repository).
  local moddir
  moddir="$(go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  rm -rf "$KWOK_STAGES_DIR.tmp" && mkdir -p "$KWOK_STAGES_DIR.tmp"
  cp -r "$moddir/kustomize/stage/." "$KWOK_STAGES_DIR.tmp/"
  chmod -R u+w "$KWOK_STAGES_DIR.tmp"
  rm -rf "$KWOK_STAGES_DIR" && mv "$KWOK_STAGES_DIR.tmp" "$KWOK_STAGES_DIR"
  log "kwok v$KWOK_VERSION: built in $((SECONDS - t0))s"
  built+=("kwok:$((SECONDS - t0))s")
}

build_etcd
build_kwok
build_k8s

log "done in $((SECONDS - t_start))s ${built[*]:-(everything cached)}"
"$KUBECTL" version --client 2>/dev/null | head -1 >&2 || true
