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
if [ "${1:-}" = "--purge" ]; then rm -rf "$STATE"; log "removed $STATE"; fi
