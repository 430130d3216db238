#!/usr/bin/env bash
# Stops every process scripts/clusters/up.sh started (pids in
# $FLOTILLA_CLUSTERS_DIR/run) and checks that none is left.
#   scripts/clusters/down.sh           # stop, keep state (pki, logs, etcd data)
#   scripts/clusters/down.sh --purge   # stop and remove the state dir
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STATE="${FLOTILLA_CLUSTERS_DIR:-$REPO/.clusters}"
log() { printf '[clusters %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

pids=()
shopt -s nullglob
# real nodes (scripts/clusters/node.sh; every node of every cluster) first, while
# their API servers still answer: clusters with a node state dir or a node cgroup
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=scripts/clusters/node-lib.sh
. "$HERE/node-lib.sh"
declare -A node_clusters=()
for n in "$STATE"/*/node "$STATE"/*/node-[0-9]*; do [ -d "$n" ] && node_clusters["$(basename "$(dirname "$n")")"]=1; done
hash="$(_node_state_hash)"
for n in /sys/fs/cgroup/flotilla-*-"$hash" /sys/fs/cgroup/*/flotilla-*-"$hash"; do
  n="${n##*/flotilla-}"; n="${n%-"$hash"}"; n="${n%-*}"   # flotilla-<cluster>-<index>-<hash>
  [ -d "$STATE/$n" ] && node_clusters["$n"]=1
done
if [ ${#node_clusters[@]} -gt 0 ]; then
  eval "$(bash "$HERE/build.sh" --print-env)"
  eval "$(bash "$HERE/build-node.sh" --print-env)"
  for c in "${!node_clusters[@]}"; do node_has_traces "$c" && node_teardown "$c" & done
  wait
fi
# stop kwok/scheduler/kcm first, then apiservers, then etcd
for pat in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  for f in "$STATE"/run/*-"$pat".pid "$STATE"/run/*.pid; do
    [ -f "$f" ] || continue
    case "$(basename "$f" .pid)" in *-"$pat") ;; *) continue ;; esac
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    fi
    rm -f "$f"
  done
done
# any other pid file (e.g. a node agent a test left behind)
for f in "$STATE"/run/*.pid; do
  pid="$(cat "$f")"
  kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  rm -f "$f"
done

for _ in $(seq 1 50); do
  alive=()
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
  [ ${#alive[@]} -eq 0 ] && break
  sleep 0.2
done
for pid in "${alive[@]}"; do log "pid $pid ignored SIGTERM: SIGKILL"; kill -KILL "$pid" 2>/dev/null; done

# Verify: nothing whose command line names this state dir may survive.
left="$(pgrep -f -- "$STATE/" || true)"
if [ -n "$left" ]; then
  log "still running, started with $STATE:"; ps -o pid,args -p $left >&2
  for pid in $left; do kill -KILL "$pid" 2>/dev/null; done
  sleep 0.5
  left="$(pgrep -f -- "$STATE/" || true)"
  [ -z "$left" ] || { log "ERROR: could not stop $left"; exit 1; }
fi
log "stopped ${#pids[@]} processes; none left"
cgleft=(/sys/fs/cgroup/flotilla-*-"$hash" /sys/fs/cgroup/*/flotilla-*-"$hash")   # nullglob
[ ${#cgleft[@]} -eq 0 ] || log "WARNING: node cgroups left: ${cgleft[*]}"
if [ "${1:-}" = "--purge" ]; then
  if findmnt -rn -o TARGET | grep -q -- "^$STATE/"; then
    log "ERROR: still mounted under $STATE, not removing it:"; findmnt -rn -o TARGET | grep -- "^$STATE/" >&2; exit 1
  fi
  rm -rf "$STATE"; log "removed $STATE"
fi
