#!/usr/bin/env bash
# Checks the archives of scripts/images/build.sh (listed in images.tsv):
#   1. oci.ts verify: oci-layout, index.json, names, every blob's digest and size, diff_ids;
#   2. unpacks each image's layers and runs a smoke command per image in a chroot,
#      with the image's Env and User (needs root);
#   3. with --ctr: imports every archive into a private containerd (its own root,
#      state and socket under a temp dir; stopped afterwards) with
#      `ctr images import` and checks every reference is there, then runs the
#      smoke commands again as real containers with `ctr run` (runc).
#      containerd/ctr come from scripts/clusters/build-node.sh --print-env
#      (or CONTAINERD, CTR and CONTAINERD_SHIM in the environment).
#
# Usage: scripts/images/verify.sh [--ctr]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${FLOTILLA_IMAGE_CACHE:-$HOME/.cache/flotilla/images}"
NODE="$REPO/node_modules/node/bin/node"
OCI=("$NODE" --no-warnings "$HERE/oci.ts")
TSV="$CACHE/images.tsv"
[ -f "$TSV" ] || { echo "no $TSV: run scripts/images/build.sh first" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "verify.sh needs root (chroot)" >&2; exit 1; }
WITH_CTR=0
[ "${1:-}" = --ctr ] && WITH_CTR=1

failures=0
ok() { printf '  ok    %s\n' "$*"; }
bad() { printf '  FAIL  %s\n' "$*"; failures=$((failures + 1)); }

# smoke ID: the command (argv, one per line) run in image ID and a regexp its output must match.
smoke() {
  case "$1" in
    busybox) printf '%s\n' sh -c 'echo "rnd=$RANDOM"; awk "BEGIN { print 6 * 7 }"; sleep 0.1; ls /bin/sh' ;;
    argosay-v2) printf '%s\n' /argosay echo "hello argo v2" ;;
    argosay-v1) printf '%s\n' sh -c 'cowsay hello' ;;
    whalesay) printf '%s\n' cowsay hi ;;
    python) printf '%s\n' python -c 'import json, random, sys; print("py", json.dumps(list(sys.version_info[:2])), random.randint(1, 1))' ;;
    node) printf '%s\n' node -e 'console.log("node", process.version)' ;;
    debian) printf '%s\n' bash -c 'echo debian $(cat /etc/debian_version)' ;;
    pause) printf '%s\n' /pause -v ;;
    argoexec) printf '%s\n' argoexec version ;;
    flotilla) printf '%s\n' flotilla --help ;;
  esac
}
expect() {
  case "$1" in
    busybox) echo '^42$' ;;
    argosay-v2) echo '^hello argo v2$' ;;
    argosay-v1) echo '< hello >' ;;
    whalesay) echo '< hi >' ;;
    python) echo '^py \[3, [0-9]+\] 1$' ;;
    node) echo '^node v24\.' ;;
    debian) echo '^debian [0-9]' ;;
    pause) echo '^pause\.c ' ;;
    argoexec) echo 'v4\.0\.5|argoexec' ;;
    flotilla) echo 'controller' ;;
  esac
}

tmp="$(mktemp -d)"
cleanup() {
  if [ -n "${CTRD_PID:-}" ]; then
    kill "$CTRD_PID" 2>/dev/null || true
    wait "$CTRD_PID" 2>/dev/null || true
  fi
  # Nothing is mounted by the chroot checks; containerd may leave its own mounts behind.
  awk -v p="$tmp/" '{ if (index($5 "/", p) == 1) print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

archives="$(cut -f2 "$TSV" | LC_ALL=C sort -u)"
echo "== oci.ts verify"
# shellcheck disable=SC2086
"${OCI[@]}" verify $archives || failures=$((failures + 1))

echo "== chroot smoke tests"
for tar in $archives; do
  id="$(basename "$tar")"; id="${id%-*}"
  root="$tmp/rootfs-$id"
  "${OCI[@]}" unpack "$tar" "$root"
  mkdir -p "$root/dev"
  for d in null:1:3 zero:1:5 random:1:8 urandom:1:9; do
    IFS=: read -r n ma mi <<< "$d"
    [ -e "$root/dev/$n" ] || mknod -m 0666 "$root/dev/$n" c "$ma" "$mi"
  done
  mapfile -t env < <("${OCI[@]}" env "$tar")
  mapfile -t argv < <(smoke "$id")
  [ ${#argv[@]} -gt 0 ] || { bad "$id: no smoke test defined"; continue; }
  user=0:0
  [ "$id" = flotilla ] && user=1000:1000
  [ "$id" = pause ] && user=65535:65535
  if out="$(cd / && env -i "${env[@]}" HOME=/root timeout 60 chroot --userspec="$user" "$root" "${argv[@]}" 2>&1)" \
     && grep -Eq "$(expect "$id")" <<< "$out"; then
    ok "$id: ${argv[*]} -> $(grep -E "$(expect "$id")" <<< "$out" | head -1)"
  else
    bad "$id: ${argv[*]}"; sed 's/^/        /' <<< "$out" | head -20
  fi
  if [ "$id" = flotilla ]; then
    if out="$(cd / && env -i "${env[@]}" HOME=/home/node chroot --userspec=1000:1000 "$root" flotilla controller --help 2>&1)" && grep -q configmap <<< "$out"; then
      ok "flotilla: flotilla controller --help (as 1000:1000)"
    else
      bad "flotilla controller --help"; sed 's/^/        /' <<< "$out" | head -20
    fi
  fi
  rm -rf --one-file-system "$root"
done

if [ "$WITH_CTR" = 1 ]; then
  echo "== private containerd: ctr images import + ctr run"
  if [ -z "${CTR:-}" ] && [ -f "$REPO/scripts/clusters/build-node.sh" ]; then eval "$(bash "$REPO/scripts/clusters/build-node.sh" --print-env)"; fi
  [ -x "${CONTAINERD:-}" ] && [ -x "${CTR:-}" ] || { bad "containerd/ctr not found (CONTAINERD, CTR)"; exit 1; }
  PATH="$(dirname "$CONTAINERD_SHIM"):$(dirname "${RUNC:-/usr/sbin/runc}"):$PATH"
  export PATH
  d="$tmp/ctrd"
  mkdir -p "$d"
  cat > "$d/config.toml" <<EOF
version = 3
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.podsandbox.controller.v1.podsandbox", "io.containerd.sandbox.controller.v1.shim"]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
EOF
  "$CONTAINERD" --config "$d/config.toml" > "$d/containerd.log" 2>&1 &
  CTRD_PID=$!
  for _ in $(seq 50); do [ -S "$d/containerd.sock" ] && break; sleep 0.1; done
  ctr() { "$CTR" --address "$d/containerd.sock" -n k8s.io "$@"; }
  for tar in $archives; do
    if out="$(ctr images import "$tar" 2>&1)"; then ok "import $(basename "$tar")"; else bad "import $(basename "$tar")"; echo "$out" | head; fi
  done
  listed="$(ctr images ls -q 2>/dev/null)"
  while IFS=$'\t' read -r ref _ digest; do
    if grep -qxF "$ref" <<< "$listed" && [ "$(ctr images ls "name==$ref" 2>/dev/null | awk 'NR==2 { print $3 }')" = "$digest" ]; then ok "$ref -> ${digest:7:12}"
    else bad "$ref not imported with manifest $digest"; fi
  done < "$TSV"
  n=0
  for tar in $archives; do
    id="$(basename "$tar")"; id="${id%-*}"
    ref="$(awk -F'\t' -v t="$tar" '$2 == t { print $1; exit }' "$TSV")"
    mapfile -t argv < <(smoke "$id")
    n=$((n + 1))
    if out="$(timeout 120 "$CTR" --address "$d/containerd.sock" -n k8s.io run --rm --net-host "$ref" "smoke-$n" "${argv[@]}" 2>&1)" \
       && grep -Eq "$(expect "$id")" <<< "$out"; then
      ok "ctr run $ref ${argv[*]} -> $(grep -E "$(expect "$id")" <<< "$out" | head -1)"
    else
      bad "ctr run $ref ${argv[*]}"; sed 's/^/        /' <<< "$out" | head -20
    fi
  done
fi

echo "== $failures failure(s)"
[ "$failures" = 0 ]
