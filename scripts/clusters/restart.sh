#!/usr/bin/env bash
# Restarts one cluster's kube-apiserver (and by default its etcd, data kept),
# as an API server upgrade or a control-plane crash would, for the resilience
# e2e tests. The cluster's other components keep running and reconnect.
#
#   scripts/clusters/restart.sh CLUSTER [--apiserver-only] [--down SECONDS]
#                               [--compact] [--apiserver-arg=FLAG]...
#
#   --apiserver-only   keep etcd running
#   --down SECONDS     stay down this long before starting again (default 0)
#   --compact          while the API server is down, advance etcd's revision
#                      and compact its history up to the current revision
#                      (physically), so every resourceVersion a client saw
#                      before is gone: resuming a watch from one must get 410
#   --apiserver-arg=F  extra kube-apiserver flag for this start (repeatable;
#                      e.g. --apiserver-arg=--watch-cache=false); a later
#                      restart without it goes back to up.sh's flags
#
# Prints `compacted=<revision>` on stdout with --compact.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STATE="${FLOTILLA_CLUSTERS_DIR:-$REPO/.clusters}"
PKI="$STATE/pki"
READY_TIMEOUT="${FLOTILLA_CLUSTERS_TIMEOUT:-180}"
# shellcheck source=scripts/clusters/lib.sh
. "$HERE/lib.sh"
eval "$(bash "$HERE/build.sh" --print-env)"

[ $# -ge 1 ] || die "usage: restart.sh CLUSTER [--apiserver-only] [--down SECONDS] [--compact] [--apiserver-arg=FLAG]..."
CLUSTER="$1"; shift
[ -f "$STATE/$CLUSTER/ports.env" ] || die "no cluster $CLUSTER in $STATE (scripts/clusters/up.sh first)"
[ -f "$STATE/run/$CLUSTER-kube-apiserver.pid" ] || die "$CLUSTER/kube-apiserver is not running"
WITH_ETCD=1 DOWN=0 COMPACT=0
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --apiserver-only) WITH_ETCD=0 ;;
    --down) DOWN="$2"; shift ;;
    --compact) COMPACT=1 ;;
    --apiserver-arg=*) EXTRA+=("${1#--apiserver-arg=}") ;;
    *) die "unknown option $1" ;;
  esac
  shift
done
. "$STATE/$CLUSTER/ports.env"
ETCD_URL="http://127.0.0.1:$ETCD_CLIENT_PORT"

t0=$SECONDS
stop_component "$CLUSTER" kube-apiserver
[ "$WITH_ETCD" = 1 ] && stop_component "$CLUSTER" etcd
log "$CLUSTER: $([ "$WITH_ETCD" = 1 ] && echo "kube-apiserver and etcd" || echo "kube-apiserver") stopped"
sleep "$DOWN"
if [ "$WITH_ETCD" = 1 ]; then
  start_etcd "$CLUSTER"
  wait_etcd "$CLUSTER"
fi

if [ "$COMPACT" = 1 ]; then
  # etcd's JSON gateway (v3 API): two writes outside /registry move the
  # revision past anything the API server has served, then compact there.
  key="$(printf '/flotilla-e2e/compaction-marker' | base64 -w0)"
  rev=""
  for i in 1 2; do
    value="$(printf 'restart %s %s' "$(date +%s%N)" "$i" | base64 -w0)"
    answer="$(curl -fsS --max-time 5 -X POST "$ETCD_URL/v3/kv/put" -d "{\"key\":\"$key\",\"value\":\"$value\"}")"
    rev="$(printf '%s' "$answer" | grep -o '"revision":"[0-9]*"' | head -1 | grep -o '[0-9][0-9]*')" \
      || die "$CLUSTER: no revision in etcd's answer: $answer"
  done
  curl -fsS --max-time 30 -X POST "$ETCD_URL/v3/kv/compaction" -d "{\"revision\":\"$rev\",\"physical\":true}" >/dev/null \
    || die "$CLUSTER: compaction at revision $rev failed"
  log "$CLUSTER: etcd compacted at revision $rev"
  echo "compacted=$rev"
fi

start_apiserver "$CLUSTER" ${EXTRA[@]+"${EXTRA[@]}"}
wait_apiserver "$CLUSTER"
log "$CLUSTER: restarted in $((SECONDS - t0))s${EXTRA[*]:+ (extra flags: ${EXTRA[*]})}"
