# shellcheck shell=bash
# Real nodes for the end-to-end clusters (sourced, not run): kubelets and
# containerds (runc) on this machine, for a cluster that scripts/clusters/up.sh
# started. Used by node.sh, up.sh and down.sh.
#
# Callers set STATE (the clusters dir), PKI ($STATE/pki), HERE (scripts/clusters),
# have sourced lib.sh (log, die, start) and set the binaries (build.sh and
# build-node.sh --print-env). Entry points: node_up CLUSTER [INDEX],
# node_load CLUSTER TAR... (every running node), node_teardown CLUSTER (every node),
# node_down CLUSTER INDEX, node_pki CLUSTER [INDEX...], node_running/node_has_traces
# CLUSTER [INDEX], node_indices CLUSTER.
#
# A node is (cluster C, index I), I = 0..253; a cluster may have several. Node I of C:
#   - is named 127.0.0.<I+1>, with that InternalIP (--hostname-override=127.0.0.<I+1>:
#     the only way to get a loopback InternalIP; kubelet refuses --node-ip=127.x).
#     Labels type=real and flotilla.dev/node=real, taint flotilla.dev/node=real:NoSchedule
#     (only pods that tolerate it land there). hostNetwork pods there get that address
#     as pod IP. The clusters are separate API servers: each has its own "127.0.0.1".
#   - kubelet on 127.0.0.<I+1>:<apiserver port + 6>, healthz on <apiserver port + 7>:
#     the same ports for every node of a cluster, each on its own address; the API
#     server dials the node's address at node.status.daemonEndpoints.kubeletEndpoint.Port.
#     containerd's CRI streaming server: the node's address, a random port.
#   - state in $STATE/C/node (I = 0) or $STATE/C/node-I (containerd root, state, opt,
#     socket, config, CNI config, the namespace's private dirs); logs
#     $STATE/C/logs/{kubelet,containerd}[-I].log; pids
#     $STATE/run/C-node[-I]-{kubelet,containerd}.pid.
#   - image pulls go to ${FLOTILLA_NODE_REGISTRY:-127.0.0.1:<apiserver port + 8>} for
#     every registry (containerd hosts _default): never off the machine. Load
#     images with node.sh load; imagePullPolicy Always (the default for :latest)
#     needs a registry serving them there.
#   - its own mount namespace (a file bind-mounted at <node dir>/ns/mnt): private
#     /var/lib/kubelet (kubelet's root dir: pods, device-plugins, plugins_registry,
#     pod-resources, pki, checkpoints), /var/log/pods, /var/log/containers,
#     /run/containerd (shim sockets, runc state) and /var/lib/cni (CNI cache), which
#     the nodes would otherwise share; every mount made by kubelet, containerd and
#     runc stays in there and goes away with it.
#   - its own cgroup root /flotilla-C-I-<8 hex of sha256 of $STATE> in every
#     hierarchy (cgroup v1 per controller plus cgroup2 at /sys/fs/cgroup/unified here).
#   - credentials: client certificate $STATE/C/pki/node[-I].crt, CN=system:node:127.0.0.<I+1>,
#     O=system:nodes, signed by the shared CA (the Node authorizer and NodeRestriction
#     key on the name); the API server needs --client-ca-file and
#     --kubelet-client-certificate/--kubelet-client-key (see node_apiserver_flags).

NODE_PAUSE_REF="registry.k8s.io/pause:3.10.2"   # containerd 2.4.2's default sandbox image
NODE_LABELS="type=real,flotilla.dev/node=real"
NODE_TAINTS="flotilla.dev/node=real:NoSchedule"

_node_sfx() { if [ "${1:-0}" = 0 ]; then echo ""; else echo "-$1"; fi; }
_node_check_index() { # index: dies unless 0..253
  if ! [[ "$1" =~ ^(0|[1-9][0-9]{0,2})$ ]] || [ "$1" -gt 253 ]; then die "bad node index '$1' (0..253)"; fi
}
node_name() { echo "127.0.0.$((${1:-0} + 1))"; }                           # index -> node name = InternalIP
node_dir() { echo "$STATE/$1/node$(_node_sfx "${2:-0}")"; }                 # cluster index
_node_pidfile() { echo "$STATE/run/$1-node$(_node_sfx "$2")-$3.pid"; }      # cluster index kubelet|containerd
_node_logfile() { echo "$STATE/$1/logs/$3$(_node_sfx "$2").log"; }        # cluster index kubelet|containerd
_node_state_hash() { printf '%s' "$STATE" | sha256sum | cut -c1-8; }

node_cgroup_root() { # cluster index -> /flotilla-<cluster>-<index>-<8 hex of the state dir>
  echo "/flotilla-$1-${2:-0}-$(_node_state_hash)"
}

node_cgroup_dirs() { # cluster index: the node's cgroup root in each hierarchy where it exists
  local root h
  root="$(node_cgroup_root "$1" "$2")"
  [ -d "/sys/fs/cgroup$root" ] && echo "/sys/fs/cgroup$root"   # cgroup v2 only (unverified here)
  for h in /sys/fs/cgroup/*; do
    [ -d "$h$root" ] && echo "$h$root"
  done
  return 0
}

node_indices() { # cluster: indices of its nodes that left any trace (state dir, pid file, cgroup), ascending
  local c="$1" f b hash
  hash="$(_node_state_hash)"
  {
    [ -d "$STATE/$c/node" ] && echo 0
    for f in "$STATE/$c"/node-*; do
      b="${f##*/node-}"
      [ -d "$f" ] && [[ "$b" =~ ^[1-9][0-9]*$ ]] && echo "$b"
    done
    for f in "$STATE/run/$c"-node-*.pid; do
      b="${f#"$STATE/run/$c-node-"}"; b="${b%.pid}"
      case "$b" in
        kubelet|containerd) echo 0 ;;
        *-kubelet|*-containerd) b="${b%-*}"; [[ "$b" =~ ^[1-9][0-9]*$ ]] && echo "$b" ;;
      esac
    done
    for f in /sys/fs/cgroup/flotilla-"$c"-*-"$hash" /sys/fs/cgroup/*/flotilla-"$c"-*-"$hash"; do
      b="${f##*/flotilla-"$c"-}"; b="${b%-"$hash"}"
      [ -d "$f" ] && [[ "$b" =~ ^(0|[1-9][0-9]*)$ ]] && echo "$b"
    done
    true
  } | sort -nu
}

node_ports() { # cluster: sets KUBELET_PORT, KUBELET_HEALTHZ_PORT, NODE_REGISTRY (and the cluster's ports)
  # shellcheck disable=SC1090,SC1091
  . "$STATE/$1/ports.env"
  KUBELET_PORT=$((APISERVER_PORT + 6))
  KUBELET_HEALTHZ_PORT=$((APISERVER_PORT + 7))
  NODE_REGISTRY="${FLOTILLA_NODE_REGISTRY:-127.0.0.1:$((APISERVER_PORT + 8))}"
}

_node_alive() { # pidfile: 0 if its process runs (a zombie does not: here PID 1 reaps orphans late)
  local st
  [ -f "$1" ] || return 1
  st="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$(cat "$1")/status" 2>/dev/null)"
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

node_running() { # cluster [index]: 0 if a kubelet or containerd of the node (any node without index) is alive or its namespace exists
  local c="$1" i f
  if [ $# -lt 2 ]; then
    for i in $(node_indices "$c"); do node_running "$c" "$i" && return 0; done
    return 1
  fi
  i="$2"
  for f in "$(_node_pidfile "$c" "$i" kubelet)" "$(_node_pidfile "$c" "$i" containerd)"; do
    _node_alive "$f" && return 0
  done
  mountpoint -q "$(node_dir "$c" "$i")/ns/mnt" 2>/dev/null
}

node_has_traces() { # cluster [index]: 0 if node_running or its cgroups exist
  local i
  if [ $# -lt 2 ]; then
    for i in $(node_indices "$1"); do node_has_traces "$1" "$i" && return 0; done
    return 1
  fi
  node_running "$1" "$2" || [ -n "$(node_cgroup_dirs "$1" "$2")" ]
}

# ---------------------------------------------------------------- PKI
# node client certificate (kubelet -> API server) and the API server's client
# certificate for the kubelet API (logs, exec, attach, port-forward). Idempotent.
node_pki() { # cluster [index...]  (default: node 0)
  local c="$1" p="$STATE/$1/pki" i
  shift
  mkdir -p "$p"
  for i in "${@:-0}"; do
    _node_check_index "$i"
    _node_cert "$p/node$(_node_sfx "$i")" "/O=system:nodes/CN=system:node:$(node_name "$i")"
  done
  _node_cert "$p/apiserver-kubelet-client" "/O=system:masters/CN=kube-apiserver-kubelet-client-$c"
}
_node_cert() { # path-prefix subject
  [ -f "$1.crt" ] && [ -f "$1.key" ] && return 0
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
  chmod 600 "$1.key"
}

# The kube-apiserver flags a real node needs (one per line), for lib.sh's start_apiserver.
node_apiserver_flags() { # cluster
  local d="$STATE/$1"
  printf '%s\n' \
    "--client-ca-file=$PKI/ca.crt" \
    "--kubelet-client-certificate=$d/pki/apiserver-kubelet-client.crt" \
    "--kubelet-client-key=$d/pki/apiserver-kubelet-client.key"
}

_apiserver_cmdline() { # cluster
  local f="$STATE/run/$1-kube-apiserver.pid"
  [ -f "$f" ] || return 1
  tr '\0' '\n' < "/proc/$(cat "$f")/cmdline" 2>/dev/null
}

# Makes sure the cluster's API server accepts the node's certificate and can call
# the kubelet: if it was started without the flags above (lib.sh before the node
# change), restart it once with them (scripts/clusters/restart.sh --apiserver-only).
node_prepare_apiserver() { # cluster
  local c="$1" args=() f cmd
  node_pki "$c"
  cmd="$(_apiserver_cmdline "$c")" || die "$c/kube-apiserver is not running (scripts/clusters/up.sh first)"
  while read -r f; do
    grep -qx -- "$f" <<<"$cmd" || args+=("--apiserver-arg=$f")
  done < <(node_apiserver_flags "$c")
  if [ ${#args[@]} -gt 0 ]; then
    [ "${FLOTILLA_NODE_RESTART_APISERVER:-1}" = 1 ] \
      || die "$c/kube-apiserver lacks $(node_apiserver_flags "$c" | tr '\n' ' ')(add them to lib.sh start_apiserver)"
    log "$c: kube-apiserver lacks the node flags: restarting it with them (lib.sh should pass them; see node_apiserver_flags)"
    grep -q -- '^--enable-admission-plugins=.*NodeRestriction' <<<"$cmd" || args+=("--apiserver-arg=--enable-admission-plugins=NodeRestriction")
    bash "$HERE/restart.sh" "$c" --apiserver-only "${args[@]}" >&2
  fi
}

# RBAC for the node identity. With --authorization-mode=Node,RBAC the Node
# authorizer covers it; with RBAC alone bind the system:node role to the group.
node_rbac() { # cluster
  local c="$1"
  if _apiserver_cmdline "$c" | grep -q -- '^--authorization-mode=.*Node'; then return 0; fi
  "$KUBECTL" --kubeconfig="$STATE/$c/kubeconfig/admin.yaml" apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: flotilla:system:nodes
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: system:nodes
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:node
EOF
}

# ---------------------------------------------------------------- images
# The sandbox image tarball: $FLOTILLA_NODE_PAUSE_TAR if set; else the pause image
# of scripts/images/build.sh (FLOTILLA_IMAGE_PAUSE: a static C /pause, named
# $NODE_PAUSE_REF), built with `build.sh --only pause` if it is not there yet.
node_pause_tar() { # -> path of the pause image tarball
  local img
  if [ -n "${FLOTILLA_NODE_PAUSE_TAR:-}" ]; then echo "$FLOTILLA_NODE_PAUSE_TAR"; return; fi
  img="$(_node_image_env FLOTILLA_IMAGE_PAUSE)"
  if [ -z "$img" ] || [ ! -f "$img" ]; then
    log "no pause image yet: scripts/images/build.sh --only pause"
    bash "$HERE/../images/build.sh" --only pause >&2 || die "scripts/images/build.sh --only pause failed"
    img="$(_node_image_env FLOTILLA_IMAGE_PAUSE)"
    if [ -z "$img" ] || [ ! -f "$img" ]; then die "scripts/images/build.sh --print-env names no pause image (FLOTILLA_IMAGE_PAUSE)"; fi
  fi
  echo "$img"
}
_node_image_env() { # variable: its value in scripts/images/build.sh --print-env (empty if none)
  # shellcheck disable=SC1090
  ( eval "$(bash "$HERE/../images/build.sh" --print-env 2>/dev/null)" 2>/dev/null; printf '%s' "${!1:-}" )
}

node_ctr() { # cluster index ctr-args...  (in the node's mount namespace, namespace k8s.io)
  local n
  n="$(node_dir "$1" "$2")"; shift 2
  timeout "${NODE_CTR_TIMEOUT:-300}" nsenter --mount="$n/ns/mnt" -- "$CTR" --address "$n/containerd.sock" --namespace k8s.io "$@" \
    2> >(grep -v 'DEPRECATION: The support for cgroup v1' >&2)
}

node_load() { # cluster oci-or-docker-archive.tar...: into every running node of the cluster (in parallel)
  local c="$1" i p rc=0 idx=() pids=()
  shift
  for i in $(node_indices "$c"); do node_running "$c" "$i" && idx+=("$i"); done
  [ ${#idx[@]} -gt 0 ] || die "$c: no node running"
  for i in "${idx[@]}"; do node_load_one "$c" "$i" "$@" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [ $rc = 0 ] || die "$c: loading images failed"
}

node_load_one() { # cluster index oci-or-docker-archive.tar...
  local c="$1" i="$2" t
  shift 2
  for t in "$@"; do
    node_ctr "$c" "$i" images import --snapshotter overlayfs --platform "linux/$(_node_arch)" "$t" >/dev/null \
      || die "$c/$(node_name "$i"): could not import $t"
  done
}
_node_arch() { case "$(uname -m)" in x86_64) echo amd64 ;; aarch64) echo arm64 ;; *) uname -m ;; esac; }

# ---------------------------------------------------------------- config files
_node_write_configs() { # cluster index
  local c="$1" i="$2" n cgroot ip
  n="$(node_dir "$c" "$i")"; cgroot="$(node_cgroup_root "$c" "$i")"; ip="$(node_name "$i")"
  node_ports "$c"
  mkdir -p "$n/cni/net.d" "$n/certs.d/_default"
  # Every registry host resolves to $NODE_REGISTRY on loopback: a pull (imagePullPolicy
  # Always, the default for :latest) never leaves the machine; it fails fast with
  # "connection refused" unless a local registry serves the images there.
  printf 'server = "http://%s"\n' "$NODE_REGISTRY" > "$n/certs.d/_default/hosts.toml"
  cat > "$n/cni/net.d/99-loopback.conflist" <<'EOF'
{"cniVersion": "1.0.0", "name": "flotilla-loopback", "plugins": [{"type": "loopback"}]}
EOF
  # containerd: own root/state/socket; CRI with runc (cgroupfs), restrict_oom_score_adj
  # (root here lacks CAP_SYS_RESOURCE: a negative oom_score_adj makes runc fail
  # with "can't get final child's PID from pipe: EOF"), no NRI, no CDI dirs, the local
  # pause image pinned (never pulled), CRI streaming on the node's address only, no
  # host config imports.
  cat > "$n/containerd.toml" <<EOF
version = 4
root = "$n/containerd/root"
state = "$n/containerd/state"
imports = []
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[plugins.'io.containerd.server.v1.grpc']
  address = "$n/containerd.sock"

[plugins.'io.containerd.server.v1.ttrpc']
  address = "$n/containerd.sock.ttrpc"

[plugins.'io.containerd.internal.v1.opt']
  path = "$n/containerd/opt"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  image_pull_progress_timeout = "1m"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$NODE_PAUSE_REF"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "$n/certs.d"

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  cdi_spec_dirs = []
  enable_selinux = false
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      runtime_path = "$CONTAINERD_SHIM"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$RUNC"
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$CNI_BIN_DIR"]
    conf_dir = "$n/cni/net.d"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "$ip"
  stream_server_port = "0"
EOF
  cat > "$n/kubelet.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $c
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: system:node:$ip
  user:
    client-certificate: $STATE/$c/pki/node$(_node_sfx "$i").crt
    client-key: $STATE/$c/pki/node$(_node_sfx "$i").key
contexts:
- name: $c
  context: {cluster: $c, user: "system:node:$ip"}
current-context: $c
EOF
  chmod 600 "$n/kubelet.kubeconfig"
  # kubelet: paths are the namespace's private /var/lib/kubelet and /var/log/pods.
  cat > "$n/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $ip
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: $ip
healthzPort: $KUBELET_HEALTHZ_PORT
containerRuntimeEndpoint: unix://$n/containerd.sock
imageServiceEndpoint: unix://$n/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: $cgroot
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
oomScoreAdj: 0
resolvConf: ""
volumePluginDir: /var/lib/kubelet/volume-plugins
podLogsDir: /var/log/pods
staticPodPath: ""
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
evictionPressureTransitionPeriod: 10s
maxPods: 110
nodeStatusReportFrequency: 1m
shutdownGracePeriod: 0s
rotateCertificates: false
serverTLSBootstrap: false
EOF
}

# ---------------------------------------------------------------- mount namespace
# A persistent mount namespace bound to <node dir>/ns/mnt; private binds of the fixed
# host paths two nodes would share. Kubelet would also set vm.overcommit_memory=1,
# kernel.panic=10 and kernel.panic_on_oops=1 on the host (protectKernelDefaults:
# false) or refuse to start (true): files holding those values are bound over the
# /proc/sys entries inside the namespace, so the kubelet finds them set and the
# host keeps its own.
_node_ns_create() { # cluster index
  local c="$1" n p
  n="$(node_dir "$c" "$2")"
  mkdir -p "$n/ns" "$n/kubelet" "$n/log/pods" "$n/log/containers" "$n/run-containerd" "$n/cni/cache" "$n/sysctl"
  mountpoint -q "$n/ns" || { mount --bind "$n/ns" "$n/ns" && mount --make-private "$n/ns"; } \
    || die "$c: cannot bind-mount $n/ns"
  : > "$n/ns/mnt"
  unshare --mount="$n/ns/mnt" --propagation private true || die "$c: unshare --mount failed"
  for p in /var/lib/kubelet /var/log/pods /var/log/containers /run/containerd /var/lib/cni; do mkdir -p "$p"; done
  printf '1\n' > "$n/sysctl/vm.overcommit_memory"
  printf '0\n' > "$n/sysctl/vm.panic_on_oom"
  printf '10\n' > "$n/sysctl/kernel.panic"
  printf '1\n' > "$n/sysctl/kernel.panic_on_oops"
  # shellcheck disable=SC2016
  nsenter --mount="$n/ns/mnt" -- bash -euc '
    n="$1" state="$2"
    # the copies of other nodes namespace files (and of this one dir) must not
    # keep those namespaces alive from in here
    findmnt -rn -o TARGET | grep -E "^$state/[^/]+/node(-[0-9]+)?/ns(/mnt)?\$" | sort -r | while read -r m; do umount -l "$m"; done
    mount --bind "$n/kubelet" /var/lib/kubelet
    mount --bind "$n/log/pods" /var/log/pods
    mount --bind "$n/log/containers" /var/log/containers
    mount --bind "$n/run-containerd" /run/containerd
    mount --bind "$n/cni/cache" /var/lib/cni
    for f in "$n"/sysctl/*; do
      k="$(basename "$f")"
      mount --bind "$f" "/proc/sys/$(echo "$k" | tr . /)"
    done
  ' _ "$n" "$STATE" || die "$c: could not set up the node's mount namespace"
}

_node_cgroups_create() { # cluster index
  local root h
  root="$(node_cgroup_root "$1" "$2")"
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then   # cgroup v2 only (unverified here)
    mkdir -p "/sys/fs/cgroup$root"; return 0
  fi
  for h in /sys/fs/cgroup/*/; do   # v1 per controller (+ cgroup2 at unified when hybrid)
    h="${h%/}"
    [ -f "$h/cgroup.procs" ] || continue
    mkdir -p "$h$root"
    if [ -f "$h/cpuset.cpus" ]; then
      [ -n "$(cat "$h$root/cpuset.cpus")" ] || cat "$h/cpuset.cpus" > "$h$root/cpuset.cpus"
      [ -n "$(cat "$h$root/cpuset.mems")" ] || cat "$h/cpuset.mems" > "$h$root/cpuset.mems"
    fi
  done
}

# ---------------------------------------------------------------- up
# What the cluster needs once before its nodes start (idempotent): node
# certificates, API server flags, RBAC, the pause image. node_up does it too;
# call it first when starting several nodes at once.
node_prepare() { # cluster [index...]
  local c="$1"
  shift
  node_pki "$c" "${@:-0}"
  node_prepare_apiserver "$c"
  node_rbac "$c"
}

node_up() { # cluster [index]  (default 0: node 127.0.0.1)
  local c="$1" i="${2:-0}" n d name who pause t0=$SECONDS t1 t_kubelet p
  _node_check_index "$i"
  d="$STATE/$c"; n="$(node_dir "$c" "$i")"; name="$(node_name "$i")"; who="$c/$name"
  [ -f "$d/ports.env" ] || die "no cluster $c in $STATE (scripts/clusters/up.sh first)"
  if node_running "$c" "$i"; then die "$who: the node is running already (scripts/clusters/node.sh down $c)"; fi
  node_ports "$c"
  for p in "$KUBELET_PORT" "$KUBELET_HEALTHZ_PORT"; do
    ! (exec 3<>"/dev/tcp/$name/$p") 2>/dev/null || die "$who: port $name:$p (kubelet) is in use"
  done
  for p in "$CONTAINERD" "$CONTAINERD_SHIM" "$CTR" "$KUBELET" "$RUNC" "$CNI_BIN_DIR/loopback"; do
    [ -x "$p" ] || die "missing $p (scripts/clusters/build.sh and build-node.sh)"
  done
  node_prepare "$c" "$i"
  pause="$(node_pause_tar)"
  local k=("$KUBECTL" --kubeconfig="$d/kubeconfig/admin.yaml" --request-timeout=10s)
  node_down "$c" "$i" quiet   # leftovers of an earlier node (crash, kill -9)
  # a stale Node object: the kubelet sets labels and taints only when it creates it
  "${k[@]}" delete node "$name" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  rm -rf "$n"
  mkdir -p "$n" "$d/logs" "$STATE/run"
  _node_write_configs "$c" "$i"
  _node_cgroups_create "$c" "$i"
  _node_ns_create "$c" "$i"

  # containerd (its shims and runc find themselves through PATH)
  PATH="$(dirname "$CONTAINERD"):$PATH" start "$c-node$(_node_sfx "$i")-containerd" "$(_node_logfile "$c" "$i" containerd)" \
    nsenter --mount="$n/ns/mnt" -- "$CONTAINERD" --config "$n/containerd.toml" --log-level warn
  t1=$SECONDS
  until node_ctr "$c" "$i" version >/dev/null 2>&1; do
    _node_alive "$(_node_pidfile "$c" "$i" containerd)" \
      || { tail -20 "$(_node_logfile "$c" "$i" containerd)" >&2; die "$who: containerd exited; see $(_node_logfile "$c" "$i" containerd)"; }
    [ $((SECONDS - t1)) -lt 30 ] || die "$who: containerd not answering after 30s; see $(_node_logfile "$c" "$i" containerd)"
    sleep 0.2
  done
  node_load_one "$c" "$i" "$pause"
  log "$who: containerd up, pause image loaded ($((SECONDS - t0))s)"

  t_kubelet=$SECONDS
  start "$c-node$(_node_sfx "$i")-kubelet" "$(_node_logfile "$c" "$i" kubelet)" \
    nsenter --mount="$n/ns/mnt" -- "$KUBELET" --config="$n/kubelet.yaml" --kubeconfig="$n/kubelet.kubeconfig" \
    --hostname-override="$name" --node-labels="$NODE_LABELS" --register-with-taints="$NODE_TAINTS" \
    --v="${FLOTILLA_KUBELET_V:-1}"
  until [ "$("${k[@]}" get node "$name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; do
    _node_alive "$(_node_pidfile "$c" "$i" kubelet)" \
      || { tail -20 "$(_node_logfile "$c" "$i" kubelet)" >&2; die "$who: kubelet exited; see $(_node_logfile "$c" "$i" kubelet)"; }
    [ $((SECONDS - t_kubelet)) -lt "${FLOTILLA_NODE_TIMEOUT:-90}" ] \
      || die "$who: node not Ready after ${FLOTILLA_NODE_TIMEOUT:-90}s; see $(_node_logfile "$c" "$i" kubelet)"
    sleep 0.3
  done
  log "$who: node Ready $((SECONDS - t_kubelet))s after kubelet start (node up in $((SECONDS - t0))s; kubelet $name:$KUBELET_PORT)"
}

# ---------------------------------------------------------------- down
_node_stop_pid() { # pidfile seconds
  local f="$1" pid i
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if ! _node_alive "$f" || ! kill -TERM "$pid" 2>/dev/null; then rm -f "$f"; return 0; fi
  for ((i = 0; i < $2 * 5; i++)); do _node_alive "$f" || break; sleep 0.2; done
  _node_alive "$f" && kill -KILL "$pid" 2>/dev/null
  rm -f "$f"
}

_node_pids() { # cluster index: every process of the node: in its mount namespace or its cgroups
  local n ino p
  n="$(node_dir "$1" "$2")"
  if mountpoint -q "$n/ns/mnt" 2>/dev/null; then
    ino="$(stat -L -c %i "$n/ns/mnt")"
    for p in /proc/[0-9]*; do
      [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "mnt:[$ino]" ] && echo "${p#/proc/}"
    done
  fi
  node_cgroup_dirs "$1" "$2" | while read -r p; do find "$p" -name cgroup.procs -exec cat {} + 2>/dev/null; done
}

# Stops every node of the cluster (in parallel); see node_down.
node_teardown() { # cluster [quiet]
  local c="$1" i p pids=()
  for i in $(node_indices "$c"); do node_down "$c" "$i" "${2:-}" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || true; done
  return 0
}

# Stops one node and removes all it left: pods (if the API server answers; not
# with "quiet"), kubelet, containers, containerd, shims, the namespace (and with
# it every mount inside), cgroups, the Node object. Keeps its state dir.
node_down() { # cluster index [quiet]
  local c="$1" i="$2" quiet="${3:-}" n d name who t0=$SECONDS
  d="$STATE/$c"; n="$(node_dir "$c" "$i")"; name="$(node_name "$i")"; who="$c/$name"
  [ -d "$n" ] || [ -n "$(node_cgroup_dirs "$c" "$i")" ] || [ -f "$(_node_pidfile "$c" "$i" kubelet)" ] \
    || [ -f "$(_node_pidfile "$c" "$i" containerd)" ] || return 0
  local k=("$KUBECTL" --kubeconfig="$d/kubeconfig/admin.yaml" --request-timeout=5s)
  local kubelet_alive=0 kpid cpid traces=0
  kpid="$(_node_pidfile "$c" "$i" kubelet)"; cpid="$(_node_pidfile "$c" "$i" containerd)"
  node_has_traces "$c" "$i" && traces=1
  _node_alive "$kpid" && kubelet_alive=1
  # 1. pods on the node, through the API server, while the kubelet still runs; cordoned
  #    first, or the scheduler puts pending pods there as soon as these free the room
  if [ -z "$quiet" ] && [ $kubelet_alive = 1 ] && "${k[@]}" get node "$name" >/dev/null 2>&1; then
    "${k[@]}" patch node "$name" -p '{"spec":{"unschedulable":true}}' >/dev/null 2>&1 || true
    "${k[@]}" delete pods -A --field-selector "spec.nodeName=$name" --grace-period=1 --wait=false >/dev/null 2>&1 || true
    local j
    for ((j = 0; j < 50; j++)); do
      [ -z "$("${k[@]}" get pods -A --field-selector "spec.nodeName=$name" -o name 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  # 2. kubelet
  _node_stop_pid "$kpid" 10
  # 3. tasks and containers, through containerd
  if _node_alive "$cpid" && mountpoint -q "$n/ns/mnt" 2>/dev/null; then
    local id NODE_CTR_TIMEOUT=10
    for id in $(node_ctr "$c" "$i" tasks ls -q 2>/dev/null); do
      node_ctr "$c" "$i" tasks kill -s KILL "$id" >/dev/null 2>&1 || true
    done
    for id in $(node_ctr "$c" "$i" tasks ls -q 2>/dev/null); do
      node_ctr "$c" "$i" tasks delete -f "$id" >/dev/null 2>&1 || true
    done
    for id in $(node_ctr "$c" "$i" containers ls -q 2>/dev/null); do
      node_ctr "$c" "$i" containers delete "$id" >/dev/null 2>&1 || true
    done
  fi
  # 4. containerd
  _node_stop_pid "$cpid" 10
  # 5. whatever is left: shims (setsid'd, they outlive containerd), container processes
  local left j
  for ((j = 0; j < 25; j++)); do
    left="$(_node_pids "$c" "$i" | sort -u | grep -vx -e "$$" -e "$BASHPID" || true)"
    [ -z "$left" ] && break
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
    sleep 0.2
  done
  [ -z "$left" ] || log "$who: WARNING: node processes still alive: $left"
  # 6. the namespace: once nothing is in it and nothing binds it, it and all its mounts are gone
  mountpoint -q "$n/ns/mnt" 2>/dev/null && umount "$n/ns/mnt"
  mountpoint -q "$n/ns" 2>/dev/null && umount "$n/ns"
  # 7. cgroups, deepest first, in every hierarchy (cgroup2 at unified included)
  local h cg
  for ((j = 0; j < 10; j++)); do
    cg="$(node_cgroup_dirs "$c" "$i")"
    [ -z "$cg" ] && break
    for h in $cg; do find "$h" -depth -type d -exec rmdir {} + 2>/dev/null; done
    [ -z "$(node_cgroup_dirs "$c" "$i")" ] && break
    sleep 0.3
  done
  cg="$(node_cgroup_dirs "$c" "$i")"
  [ -z "$cg" ] || log "$who: WARNING: cgroups left: $cg"
  # 8. the Node object, so that nothing gets scheduled onto a node that is gone
  if [ -z "$quiet" ]; then
    "${k[@]}" delete node "$name" --wait=false >/dev/null 2>&1 || true
    [ $traces = 0 ] || log "$who: node stopped in $((SECONDS - t0))s"
  fi
  return 0
}
