#!/usr/bin/env bash
# Builds upstream Argo's workflow-controller (github.com/argoproj/argo-workflows/v4,
# ./cmd/workflow-controller) from the Go module proxy, for the side-by-side
# benchmark of issue 14 only: a benchmark reference, never shipped, not part of
# `npm test` or .ci/run (v4.0.5 has reported security flaws).
# Same module copy, module cache and Go build cache as argoexec in
# scripts/clusters/build-node.sh (scripts/lib/argo-module.sh), so the shared
# dependencies are compiled once. Output, cached by version:
#   ${FLOTILLA_BIN_CACHE:-$HOME/.cache/flotilla/bin}/workflow-controller-v<version>/workflow-controller
#
# Usage: scripts/bench/build-upstream.sh [--print-env]
#   --print-env  only print the resolved binary path as a shell assignment (no build)
set -euo pipefail

ARGO_VERSION="${ARGO_VERSION:-4.0.5}"
BIN_CACHE="${FLOTILLA_BIN_CACHE:-$HOME/.cache/flotilla/bin}"
BUILD_DIR="${FLOTILLA_BUILD_DIR:-$HOME/.cache/flotilla/build}"
WORKFLOW_CONTROLLER="$BIN_CACHE/workflow-controller-v$ARGO_VERSION/workflow-controller"

case "${1:-}" in
  "") ;;
  --print-env) printf 'WORKFLOW_CONTROLLER=%q\n' "$WORKFLOW_CONTROLLER"; exit 0 ;;
  *) echo "usage: build-upstream.sh [--print-env]" >&2; exit 2 ;;
esac

here="$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/clusters/go-build-env.sh
. "$here/../clusters/go-build-env.sh"
# shellcheck source=scripts/lib/argo-module.sh
. "$here/../lib/argo-module.sh"

log() { printf '[build-upstream %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
t_start=$SECONDS

if [ -x "$WORKFLOW_CONTROLLER" ]; then
  log "workflow-controller v$ARGO_VERSION: cached"
else
  argo_module_build workflow-controller "$ARGO_VERSION" "$BUILD_DIR" ./cmd/workflow-controller "$WORKFLOW_CONTROLLER"
  log "workflow-controller v$ARGO_VERSION: built in $((SECONDS - t_start))s"
fi
log "done in $((SECONDS - t_start))s: $WORKFLOW_CONTROLLER"
