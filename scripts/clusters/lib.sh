# Shared by up.sh and restart.sh (sourced, not run): logging, process start,
# readiness checks, and the one definition of how etcd and kube-apiserver
# are started, so that a restart uses exactly the flags of the first start.
# Callers set STATE, PKI, ETCD and KUBE_APISERVER first.

log() { printf '[clusters %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

start() { # name logfile cmd...  (detached; pid in $STATE/run/<name>.pid)
  local name="$1" logf="$2"; shift 2
  setsid nohup "$@" >>"$logf" 2>&1 </dev/null &
  echo $! > "$STATE/run/$name.pid"
}

wait_http() { # what url timeout [token]
  local what="$1" url="$2" timeout="$3" token="${4:-}" t0=$SECONDS
  local auth=()
  [ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
  until curl -fsS --max-time 2 --cacert "$PKI/ca.crt" "${auth[@]}" "$url" >/dev/null 2>&1; do
    [ $((SECONDS - t0)) -lt "$timeout" ] || return 1
    sleep 0.3
  done
  log "$what ready after $((SECONDS - t0))s"
}

check_alive() { # cluster component
  local pid
  pid="$(cat "$STATE/run/$1-$2.pid")"
  kill -0 "$pid" 2>/dev/null || { tail -20 "$STATE/$1/logs/$2.log" >&2; die "$1/$2 exited; see $STATE/$1/logs/$2.log"; }
}

admin_token() { sed -n 1p "$STATE/$1/tokens.csv" | cut -d, -f1; }

start_etcd() { # cluster  (keeps whatever is in its data dir)
  local c="$1" d="$STATE/$1"
  # shellcheck disable=SC1091
  . "$d/ports.env"
  mkdir -p "$d/etcd" && chmod 700 "$d/etcd"
  start "$c-etcd" "$d/logs/etcd.log" "$ETCD" \
    --name=etcd-"$c" --data-dir="$d/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="etcd-$c=http://127.0.0.1:$ETCD_PEER_PORT" \
    --listen-metrics-urls="" \
    --quota-backend-bytes=$((512 * 1024 * 1024)) --auto-compaction-mode=periodic --auto-compaction-retention=5m \
    --snapshot-count=5000 --unsafe-no-fsync=true --log-level=warn
}

wait_etcd() { # cluster
  . "$STATE/$1/ports.env"
  wait_http "$1/etcd" "http://127.0.0.1:$ETCD_CLIENT_PORT/health" 30 || { check_alive "$1" etcd; die "$1/etcd not healthy"; }
}

# Admission: keep NamespaceLifecycle and ServiceAccount (a pod needs its SA, as
# on a real cluster) and MutatingAdmissionPolicy (the real nodes' host-network
# policy, host-network-policy.yaml); switch the other default-on plugins off.
DISABLED_ADMISSION=LimitRanger,ResourceQuota,PodSecurity,Priority,DefaultTolerationSeconds,TaintNodesByCondition
DISABLED_ADMISSION+=,DefaultStorageClass,DefaultIngressClass,StorageObjectInUseProtection,PersistentVolumeClaimResize
DISABLED_ADMISSION+=,RuntimeClass,CertificateApproval,CertificateSigning,CertificateSubjectRestriction,ClusterTrustBundleAttest
DISABLED_ADMISSION+=,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy

start_apiserver() { # cluster [extra kube-apiserver flags...]
  local c="$1" d="$STATE/$1"; shift
  # shellcheck disable=SC1091
  . "$d/ports.env"
  start "$c-kube-apiserver" "$d/logs/kube-apiserver.log" "$KUBE_APISERVER" \
    --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" --etcd-prefix=/registry \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
    --tls-cert-file="$d/pki/apiserver.crt" --tls-private-key-file="$d/pki/apiserver.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$d/pki/sa.pub" --service-account-signing-key-file="$d/pki/sa.key" \
    --authorization-mode=Node,RBAC --token-auth-file="$d/tokens.csv" --anonymous-auth=false \
    --client-ca-file="$PKI/ca.crt" \
    --kubelet-client-certificate="$d/pki/apiserver-kubelet-client.crt" --kubelet-client-key="$d/pki/apiserver-kubelet-client.key" \
    --allow-privileged=true --endpoint-reconciler-type=none \
    --enable-admission-plugins=NamespaceLifecycle,ServiceAccount,NodeRestriction \
    --disable-admission-plugins="$DISABLED_ADMISSION" \
    --audit-policy-file="$d/audit-policy.yaml" --audit-log-path="$d/logs/audit.log" \
    --audit-log-maxsize=50 --audit-log-maxbackup=1 \
    --enable-priority-and-fairness=false --max-requests-inflight=0 --max-mutating-requests-inflight=0 \
    --profiling=false --enable-logs-handler=false \
    --event-ttl=10m --v=1 "$@"
}

wait_apiserver() { # cluster
  . "$STATE/$1/ports.env"
  wait_http "$1/kube-apiserver" "https://127.0.0.1:$APISERVER_PORT/readyz" "$READY_TIMEOUT" "$(admin_token "$1")" \
    || { check_alive "$1" kube-apiserver; die "$1/kube-apiserver not ready after ${READY_TIMEOUT}s; see $STATE/$1/logs/kube-apiserver.log"; }
}

stop_component() { # cluster component  (SIGTERM, SIGKILL after 10s; removes the pid file)
  local f="$STATE/run/$1-$2.pid" pid
  [ -f "$f" ] || { log "$1/$2 is not running (no $f)"; return 0; }
  pid="$(cat "$f")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then log "$1/$2 (pid $pid) ignored SIGTERM: SIGKILL"; kill -KILL "$pid" 2>/dev/null; sleep 0.2; fi
  rm -f "$f"
}
