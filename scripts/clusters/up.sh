#!/usr/bin/env bash
# Starts real Kubernetes clusters for the end-to-end tests, all on 127.0.0.1:
# each has its own etcd, kube-apiserver (Node+RBAC, static bearer tokens,
# audit log), kube-controller-manager, kube-scheduler and kwok (fake nodes);
# every cluster also gets real nodes (kubelet, containerd, runc: node.sh; two in main)
# with the test images (scripts/images/build.sh) imported.
# Binaries come from scripts/clusters/build.sh and build-node.sh (built if missing).
#
#   scripts/clusters/up.sh            # clusters main, cluster-1, cluster-2
#   FLOTILLA_CLUSTERS="main cluster-1" scripts/clusters/up.sh
#   FLOTILLA_REAL_NODES="main:2 cluster-1 cluster-2" (default; "" for none): real nodes per cluster
#
# State (pki, tokens, kubeconfigs, logs, etcd data, pids) goes to
# ${FLOTILLA_CLUSTERS_DIR:-<repo>/.clusters}; see the README written there.
# Ports: cluster i (0-based) uses ${FLOTILLA_CLUSTERS_PORT_BASE:-26400} + 10*i + {0..5}.
# Stop everything with scripts/clusters/down.sh.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STATE="${FLOTILLA_CLUSTERS_DIR:-$REPO/.clusters}"
CLUSTERS=(${FLOTILLA_CLUSTERS:-main cluster-1 cluster-2})
PORT_BASE="${FLOTILLA_CLUSTERS_PORT_BASE:-26400}"
KWOK_NODES="${FLOTILLA_KWOK_NODES:-1}"
READY_TIMEOUT="${FLOTILLA_CLUSTERS_TIMEOUT:-180}"

# shellcheck source=scripts/clusters/lib.sh
. "$HERE/lib.sh"
# shellcheck source=scripts/clusters/node-lib.sh
. "$HERE/node-lib.sh"
t_start=$SECONDS

# ------------------------------------------------------------------ binaries
bash "$HERE/build.sh" >&2
eval "$(bash "$HERE/build.sh" --print-env)"
command -v openssl >/dev/null || die "openssl is needed (Debian: apt-get install openssl)"
command -v curl >/dev/null || die "curl is needed (Debian: apt-get install curl)"

if [ -f "$STATE/clusters.env" ] && [ -d "$STATE/run" ] && ls "$STATE"/run/*.pid >/dev/null 2>&1; then
  die "clusters seem to be running already (pids in $STATE/run); run scripts/clusters/down.sh first"
fi
mkdir -p "$STATE/run" "$STATE/pki"
on_exit() {
  local rc=$?
  if [ $rc -ne 0 ] && [ -z "${FLOTILLA_KEEP_ON_FAILURE:-}" ]; then
    log "up failed (exit $rc): stopping what was started (FLOTILLA_KEEP_ON_FAILURE=1 keeps it running)"
    bash "$HERE/down.sh" || true
  fi
}
trap on_exit EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ------------------------------------------------------------------ PKI (shared CA)
PKI="$STATE/pki"
if [ ! -f "$PKI/ca.crt" ]; then
  log "generating CA"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
    -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -subj "/CN=flotilla-e2e-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
CA_DATA="$(base64 -w0 < "$PKI/ca.crt")"

# identity name -> "user,uid,groups" (token-auth-file columns 2-4)
declare -A IDENTITY=(
  [admin]='flotilla-e2e-admin,uid-admin,system:masters'
  [controller]='flotilla-controller,uid-controller,'
  [workflow]='workflow-user,uid-workflow,'
  [tenant]='tenant-b,uid-tenant,'
  [node-agent]='flotilla-node-agent,uid-node-agent,flotilla:node-agents'
  [kube-controller-manager]='system:kube-controller-manager,uid-kcm,system:masters'
  [kube-scheduler]='system:kube-scheduler,uid-scheduler,system:masters'
  [kwok]='kwok-controller,uid-kwok,system:masters'
)
IDENTITIES=(admin controller workflow tenant node-agent kube-controller-manager kube-scheduler kwok)

write_kubeconfig() { # file cluster port user token [namespace]
  local ns=""
  [ -n "${6:-}" ] && ns="
    namespace: $6"
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $2
  cluster:
    server: https://127.0.0.1:$3
    certificate-authority-data: $CA_DATA
users:
- name: $4
  user:
    token: $5
contexts:
- name: $2
  context:
    cluster: $2
    user: $4$ns
current-context: $2
EOF
  chmod 600 "$1"
}

# ------------------------------------------------------------------ per-cluster files
i=0
for c in "${CLUSTERS[@]}"; do
  base=$((PORT_BASE + 10 * i)); i=$((i + 1))
  d="$STATE/$c"
  mkdir -p "$d/logs" "$d/pki" "$d/kubeconfig"
  for p in $base $((base + 1)) $((base + 2)) $((base + 3)) $((base + 4)) $((base + 5)); do
    port_free "$p" || die "port $p (cluster $c) is in use; set FLOTILLA_CLUSTERS_PORT_BASE"
  done
  cat > "$d/ports.env" <<EOF
APISERVER_PORT=$base
ETCD_CLIENT_PORT=$((base + 1))
ETCD_PEER_PORT=$((base + 2))
KCM_PORT=$((base + 3))
SCHEDULER_PORT=$((base + 4))
KWOK_PORT=$((base + 5))
EOF
  if [ ! -f "$d/pki/apiserver.crt" ]; then
    openssl req -newkey rsa:2048 -nodes -keyout "$d/pki/apiserver.key" -out "$d/pki/apiserver.csr" \
      -subj "/CN=kube-apiserver-$c" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' > "$d/pki/apiserver.ext"
    openssl x509 -req -in "$d/pki/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
      -days 3650 -sha256 -extfile "$d/pki/apiserver.ext" -out "$d/pki/apiserver.crt" 2>/dev/null
    openssl genrsa -out "$d/pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$d/pki/sa.key" -pubout -out "$d/pki/sa.pub" 2>/dev/null
  fi
  node_pki "$c"   # client certs: kubelet -> apiserver (system:node:127.0.0.1) and apiserver -> kubelet
  if [ ! -f "$d/tokens.csv" ]; then
    : > "$d/tokens.csv"
    for id in "${IDENTITIES[@]}"; do
      IFS=, read -r user uid groups <<<"${IDENTITY[$id]}"
      tok="$(openssl rand -hex 24)"
      if [ -n "$groups" ]; then echo "$tok,$user,$uid-$c,\"$groups\"" >> "$d/tokens.csv"
      else echo "$tok,$user,$uid-$c" >> "$d/tokens.csv"; fi
    done
    chmod 600 "$d/tokens.csv"
  fi
  # kubeconfig/<identity>.yaml, one context named after the cluster
  n=0
  for id in "${IDENTITIES[@]}"; do
    n=$((n + 1))
    line="$(sed -n "${n}p" "$d/tokens.csv")"
    tok="${line%%,*}"; rest="${line#*,}"; user="${rest%%,*}"
    write_kubeconfig "$d/kubeconfig/$id.yaml" "$c" "$base" "$user" "$tok"
  done
  cp "$HERE/audit-policy.yaml" "$d/audit-policy.yaml"
  cat "$KWOK_STAGES_DIR/node/fast/node-initialize.yaml" > "$d/kwok.yaml"
  printf '\n---\n' >> "$d/kwok.yaml"
  cat "$KWOK_STAGES_DIR/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" >> "$d/kwok.yaml"
  printf '\n---\n' >> "$d/kwok.yaml"
  cat "$KWOK_STAGES_DIR/pod/fast/pod-ready.yaml" >> "$d/kwok.yaml"
  printf '\n---\n' >> "$d/kwok.yaml"
  cat "$KWOK_STAGES_DIR/pod/fast/pod-delete.yaml" >> "$d/kwok.yaml"
  printf '\n---\n' >> "$d/kwok.yaml"
  cat "$HERE/kwok-pod-stages.yaml" >> "$d/kwok.yaml"
done

# combined admin kubeconfig: one context per cluster
{
  echo "apiVersion: v1"; echo "kind: Config"; echo "clusters:"
  for c in "${CLUSTERS[@]}"; do
    . "$STATE/$c/ports.env"
    printf -- '- name: %s\n  cluster:\n    server: https://127.0.0.1:%s\n    certificate-authority-data: %s\n' "$c" "$APISERVER_PORT" "$CA_DATA"
  done
  echo "users:"
  for c in "${CLUSTERS[@]}"; do
    printf -- '- name: admin@%s\n  user:\n    token: %s\n' "$c" "$(sed -n 1p "$STATE/$c/tokens.csv" | cut -d, -f1)"
  done
  echo "contexts:"
  for c in "${CLUSTERS[@]}"; do
    printf -- '- name: %s\n  context:\n    cluster: %s\n    user: admin@%s\n' "$c" "$c" "$c"
  done
  echo "current-context: ${CLUSTERS[0]}"
} > "$STATE/kubeconfig"
chmod 600 "$STATE/kubeconfig"

# ------------------------------------------------------------------ etcd
for c in "${CLUSTERS[@]}"; do
  d="$STATE/$c"; . "$d/ports.env"
  # fresh clusters on every start (FLOTILLA_CLUSTERS_KEEP_DATA=1 keeps etcd's data)
  [ -n "${FLOTILLA_CLUSTERS_KEEP_DATA:-}" ] || rm -rf "$d/etcd" "$d/logs"/*.log
  start_etcd "$c"
done
for c in "${CLUSTERS[@]}"; do wait_etcd "$c"; done

# ------------------------------------------------------------------ kube-apiserver
for c in "${CLUSTERS[@]}"; do start_apiserver "$c"; done
for c in "${CLUSTERS[@]}"; do wait_apiserver "$c"; done
t_apiservers=$((SECONDS - t_start))

# ------------------------------------------------------------------ kcm, scheduler, kwok
# All default controllers but node lifecycle / taint eviction: flotilla's local
# kubelet keeps no node lease, and its node must not be tainted unreachable.
KCM_CONTROLLERS="${FLOTILLA_KCM_CONTROLLERS:-*,-node-lifecycle-controller,-taint-eviction-controller}"
for c in "${CLUSTERS[@]}"; do
  d="$STATE/$c"; . "$d/ports.env"
  # Disabled: node lifecycle/taint eviction (the local kubelet keeps no lease),
  # and what needs a cloud or real storage.
  start "$c-kube-controller-manager" "$d/logs/kube-controller-manager.log" "$KUBE_CONTROLLER_MANAGER" \
    --kubeconfig="$d/kubeconfig/kube-controller-manager.yaml" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
    --service-account-private-key-file="$d/pki/sa.key" --root-ca-file="$PKI/ca.crt" \
    --use-service-account-credentials=false \
    --controllers="$KCM_CONTROLLERS" \
    --kube-api-qps=200 --kube-api-burst=400 \
    --authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics --profiling=false --v=1
  start "$c-kube-scheduler" "$d/logs/kube-scheduler.log" "$KUBE_SCHEDULER" \
    --kubeconfig="$d/kubeconfig/kube-scheduler.yaml" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" \
    --kube-api-qps=200 --kube-api-burst=400 \
    --authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics --profiling=false --v=1
  # kwok: manages only nodes annotated kwok.x-k8s.io/node=fake; node address 127.0.0.1.
  start "$c-kwok" "$d/logs/kwok.log" "$KWOK" \
    --kubeconfig="$d/kubeconfig/kwok.yaml" --config="$d/kwok.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip=127.0.0.1 --node-lease-duration-seconds=40 --cidr=10.0.0.0/24
done

for c in "${CLUSTERS[@]}"; do
  d="$STATE/$c"
  sleep 0.5
  for comp in kube-controller-manager kube-scheduler kwok; do check_alive "$c" "$comp"; done
  k=("$KUBECTL" --kubeconfig="$d/kubeconfig/admin.yaml")
  "${k[@]}" apply -f "$HERE/node-agent-rbac.yaml" >/dev/null
  # fake nodes, tainted so that only pods that tolerate it land there
  for n in $(seq 0 $((KWOK_NODES - 1))); do
    "${k[@]}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-$c-$n
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: kwok-$c-$n
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
spec:
  taints:
  - key: kwok.x-k8s.io/node
    value: fake
    effect: NoSchedule
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
EOF
  done
  # CRDs (argoproj.io): all of them on main (the workflows' cluster); in a remote
  # cluster only the task results' and the artifact GC tasks' (as
  # k8s/rbac/remote-cluster.yaml installs them: the controller makes GC tasks and
  # pods there), never Workflow's, so that the owner reference argoexec puts on a
  # task result (kind Workflow) cannot be resolved there and the garbage
  # collector leaves it alone.
  if ls "$REPO"/k8s/crd/*.yaml >/dev/null 2>&1; then
    for f in "$REPO"/k8s/crd/*.yaml; do
      [ "$(basename "$f")" = kustomization.yaml ] && continue
      case "$(basename "$f")" in
        argoproj.io_workflowtaskresults.yaml|argoproj.io_workflowartifactgctasks.yaml) ;;
        *) [ "$c" = "${CLUSTERS[0]}" ] || continue ;;
      esac
      "${k[@]}" apply --server-side --force-conflicts -f "$f" >/dev/null
    done
  else
    log "WARNING: no CRDs in $REPO/k8s/crd"
  fi
done
for c in "${CLUSTERS[@]}"; do
  d="$STATE/$c"
  k=("$KUBECTL" --kubeconfig="$d/kubeconfig/admin.yaml")
  "${k[@]}" wait --for=condition=Established crd --all --timeout=60s >/dev/null
  # the service-account controller (kcm) creates "default"; proves kcm works
  t0=$SECONDS
  until "${k[@]}" -n default get serviceaccount default >/dev/null 2>&1; do
    [ $((SECONDS - t0)) -lt 60 ] || die "$c: no default service account after 60s (kube-controller-manager?)"
    sleep 0.5
  done
  for n in $(seq 0 $((KWOK_NODES - 1))); do
    "${k[@]}" wait --for=condition=Ready "node/kwok-$c-$n" --timeout=60s >/dev/null \
      || die "$c: kwok node kwok-$c-$n not Ready (see $d/logs/kwok.log)"
  done
done

# ------------------------------------------------------------------ real nodes
# "cluster[:count] ...": kubelet + containerd + runc nodes (scripts/clusters/node.sh),
# tainted flotilla.dev/node=real, every test image imported, and the cluster's
# host-network admission policy for namespaces labelled flotilla.dev/real-nodes=true.
REAL_NODES=()
for spec in ${FLOTILLA_REAL_NODES-main:2 cluster-1 cluster-2}; do
  for c in "${CLUSTERS[@]}"; do [ "${spec%%:*}" = "$c" ] && REAL_NODES+=("$spec"); done
done
if [ ${#REAL_NODES[@]} -gt 0 ]; then
  t_nodes=$SECONDS
  bash "$HERE/build-node.sh" >&2
  bash "$REPO/scripts/images/build.sh" >&2
  eval "$(bash "$REPO/scripts/images/build.sh" --print-env)"
  bash "$HERE/node.sh" up "${REAL_NODES[@]}"
  for spec in "${REAL_NODES[@]}"; do
    c="${spec%%:*}"; . "$STATE/$c/ports.env"
    # shellcheck disable=SC2086  # a list of archives
    bash "$HERE/node.sh" load "$c" $FLOTILLA_IMAGE_ARCHIVES
    sed -e "s/@CLUSTER@/$c/g" -e "s/@APISERVER_PORT@/$APISERVER_PORT/g" "$HERE/host-network-policy.yaml" \
      | "$KUBECTL" --kubeconfig="$STATE/$c/kubeconfig/admin.yaml" apply -f - >/dev/null
  done
  log "real nodes ${REAL_NODES[*]} up with images in $((SECONDS - t_nodes))s"
fi

# ------------------------------------------------------------------ summary for tests
{
  echo "# written by scripts/clusters/up.sh"
  echo "FLOTILLA_CLUSTERS_DIR=$STATE"
  echo "FLOTILLA_CLUSTERS=\"${CLUSTERS[*]}\""
  echo "KUBECTL=$KUBECTL"
  echo "KUBECONFIG_ALL=$STATE/kubeconfig"
  echo "FLOTILLA_REAL_NODES=\"${REAL_NODES[*]}\""
  for c in "${CLUSTERS[@]}"; do
    . "$STATE/$c/ports.env"
    v="$(echo "$c" | tr 'a-z-' 'A-Z_')"
    echo "${v}_SERVER=https://127.0.0.1:$APISERVER_PORT"
  done
} > "$STATE/clusters.env"
cat > "$STATE/README" <<EOF
Written by scripts/clusters/up.sh; removed state is recreated on the next run.
kubeconfig                     admin of every cluster, one context per cluster (${CLUSTERS[*]})
<cluster>/kubeconfig/<id>.yaml one identity (static bearer token), context named after the cluster:
                               admin (system:masters), controller (flotilla-controller),
                               workflow (workflow-user), tenant (tenant-b),
                               node-agent (flotilla-node-agent, group flotilla:node-agents)
<cluster>/tokens.csv           --token-auth-file (token,user,uid,groups)
<cluster>/logs/*.log           component logs; logs/audit.log: who created/deleted pods
pki/ca.crt                     CA of every apiserver's serving certificate
run/*.pid                      processes, stopped by scripts/clusters/down.sh
EOF
log "clusters ${CLUSTERS[*]} up in $((SECONDS - t_start))s (apiservers ready after ${t_apiservers}s)"
log "kubectl --kubeconfig $STATE/kubeconfig --context ${CLUSTERS[0]} get nodes"
