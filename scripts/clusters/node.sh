#!/usr/bin/env bash
# Real nodes for clusters that scripts/clusters/up.sh started: per node a kubelet
# and a containerd (runc) on this machine, each in its own mount namespace and
# cgroup root. Node I (0-based) of a cluster is named 127.0.0.<I+1> (its
# InternalIP; kubelet on that address), labelled type=real and
# flotilla.dev/node=real, tainted flotilla.dev/node=real:NoSchedule. Pods there
# really run; hostNetwork pods are the supported kind (the CNI config has only
# the loopback plugin). See node-lib.sh for the layout.
#
#   scripts/clusters/node.sh up CLUSTER[:COUNT]...     # start COUNT (default 1) nodes, 127.0.0.1..;
#                                                      #   waits for them Ready (e.g. up main:2 cluster-1)
#   scripts/clusters/node.sh down CLUSTER...           # every node of it: delete its pods, stop, remove every trace
#   scripts/clusters/node.sh load CLUSTER TAR...       # import OCI/docker image tarballs into every node of it
#   scripts/clusters/node.sh ctr CLUSTER[@INDEX] ARGS...    # ctr -n k8s.io against a node's containerd (default 0)
#   scripts/clusters/node.sh crictl CLUSTER[@INDEX] ARGS... # crictl against a node's containerd (default 0)
#   scripts/clusters/node.sh apiserver-flags CLUSTER   # kube-apiserver flags a node needs
#
# Images come from `load` (imagePullPolicy Never or IfNotPresent): a pull goes to
# 127.0.0.1:<apiserver port + 8> ($FLOTILLA_NODE_REGISTRY) for every registry,
# never off the machine. The sandbox (pause) image is scripts/images/build.sh's
# (built with --only pause if missing). scripts/clusters/down.sh stops the nodes too.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STATE="${FLOTILLA_CLUSTERS_DIR:-$REPO/.clusters}"
# shellcheck disable=SC2034  # used by node-lib.sh
PKI="$STATE/pki"
# shellcheck source=scripts/clusters/lib.sh
. "$HERE/lib.sh"
# shellcheck source=scripts/clusters/node-lib.sh
. "$HERE/node-lib.sh"

usage() { sed -n '2,/^set /p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd="$1"; shift
[ "$(id -u)" = 0 ] || die "node.sh needs root (mount namespaces, cgroups)"

if [ "$cmd" = up ]; then
  bash "$HERE/build.sh" >&2
  bash "$HERE/build-node.sh" --no-argoexec >&2
fi
eval "$(bash "$HERE/build.sh" --print-env)"
eval "$(bash "$HERE/build-node.sh" --print-env)"

node_arg() { # CLUSTER[@INDEX] -> sets C and I
  C="${1%%@*}"; I=0
  [ "$C" = "$1" ] || I="${1#*@}"
  _node_check_index "$I"
}

case "$cmd" in
  up)
    # every node's cluster prepared first (certificates, API server flags, RBAC,
    # pause image), then all nodes start at once
    t0=$SECONDS up_c=() up_i=() names=""
    for spec in "$@"; do
      c="${spec%%:*}"; count=1
      [ "$c" = "$spec" ] || count="${spec#*:}"
      if ! [[ "$count" =~ ^[1-9][0-9]{0,2}$ ]] || [ "$count" -gt 254 ]; then
        die "bad node count in '$spec' (CLUSTER[:COUNT], 1..254)"
      fi
      [ -f "$STATE/$c/ports.env" ] || die "no cluster $c in $STATE (scripts/clusters/up.sh first)"
      # shellcheck disable=SC2046  # a list of indices
      node_prepare "$c" $(seq 0 $((count - 1)))
      for ((i = 0; i < count; i++)); do up_c+=("$c"); up_i+=("$i"); done
    done
    FLOTILLA_NODE_PAUSE_TAR="$(node_pause_tar)"
    export FLOTILLA_NODE_PAUSE_TAR
    pids=()
    for ((j = 0; j < ${#up_c[@]}; j++)); do
      node_up "${up_c[j]}" "${up_i[j]}" & pids+=($!)
      names+="${up_c[j]}/$(node_name "${up_i[j]}") "
    done
    rc=0
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    [ $rc = 0 ] || die "some nodes did not come up (see above); scripts/clusters/node.sh down CLUSTER stops them"
    log "nodes ${names% } up in $((SECONDS - t0))s" ;;
  down)
    for c in "$@"; do node_teardown "$c" & done
    wait ;;
  load)
    c="$1"; shift
    node_running "$c" || die "$c: no node running"
    t0=$SECONDS
    node_load "$c" "$@"
    log "$c: loaded $# image tarball(s) into node(s) $(for i in $(node_indices "$c"); do node_running "$c" "$i" && printf '%s ' "$(node_name "$i")"; done)in $((SECONDS - t0))s" ;;
  ctr)
    node_arg "$1"; shift
    node_ctr "$C" "$I" "$@" ;;
  crictl)
    node_arg "$1"; shift
    [ -x "$CRICTL" ] || die "no crictl (scripts/clusters/build-node.sh --crictl)"
    exec "$CRICTL" --runtime-endpoint "unix://$(node_dir "$C" "$I")/containerd.sock" \
      --image-endpoint "unix://$(node_dir "$C" "$I")/containerd.sock" "$@" ;;
  apiserver-flags)
    node_apiserver_flags "$1" ;;
  *) usage ;;
esac
