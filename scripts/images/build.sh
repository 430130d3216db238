#!/usr/bin/env bash
# Builds the container images that pods on real kubelet+containerd nodes need,
# without a container engine or a registry (only Debian's apt mirror, npm and
# the project's own files), as OCI image-layout archives that
# `ctr -n k8s.io images import FILE` accepts, named by the references the
# workflows use:
#
#   busybox      docker.io/library/busybox:latest, alpine:3.23, alpine:3.7, alpine:3.6, alpine:latest
#                  (Debian's busybox-static with every applet symlinked, CMD ["sh"])
#   argosay-v2   docker.io/argoproj/argosay:v2   busybox + /argosay (images/argosay), ENTRYPOINT ["/argosay"]
#   argosay-v1   docker.io/argoproj/argosay:v1   Debian + cowsay, CMD ["cowsay"], /usr/games on PATH
#   whalesay     docker.io/docker/whalesay:latest Debian + cowsay, CMD ["/bin/bash"], /usr/games on PATH
#   python       docker.io/library/python:alpine3.23, :alpine3.6, :alpine, :latest  Debian + python3 (`python` too)
#   node         docker.io/library/node:9.1-alpine  Debian + Node 24 (the scripts-javascript example)
#   debian       docker.io/library/debian:latest, :9.1, :bookworm  the Debian base alone
#   pause        registry.k8s.io/pause:3.10.2 (containerd 2.4's default sandbox image), static /pause
#   argoexec     quay.io/argoproj/argoexec:v4.0.5 and flotilla's default executor image
#                  (distroless-like: /bin/argoexec, CA bundle, tzdata, mime.types), ENTRYPOINT ["argoexec"]
#   flotilla     docker.io/library/flotilla:latest, the controller: Debian + Node 24 + the
#                  contents made by scripts/images/controller-rootfs.sh (the Dockerfile runs it too)
#
# The glibc images share one Debian base layer (debootstrap --variant=minbase,
# docs/man/locales dropped like the -slim images); node and flotilla share the
# Node layer; whalesay and argosay:v1 share the cowsay layer; busybox and
# argosay:v2 the busybox layer: containerd stores each once.
#
# Everything is cached by content under ${FLOTILLA_IMAGE_CACHE:-$HOME/.cache/flotilla/images}:
#   layers/<layer>-<key>/   one layer (layer.tar.gz + meta), key = hash of its recipe and inputs
#   <image>-<hash>.tar      an archive, hash = sha256 of its index.json (names + manifest digest)
#   images.tsv              reference <TAB> archive <TAB> manifest digest, one line per reference
#   images.env              FLOTILLA_IMAGE_ARCHIVES (all archives) and FLOTILLA_IMAGE_<IMAGE>=archive
# Layer tarballs are deterministic (sorted entries, mtime 0, numeric owners,
# gzip -n). A warm run rebuilds nothing and takes seconds; the Debian base is
# only rebuilt when its recipe changes (or with FLOTILLA_IMAGES_REFRESH=1, which
# rebuilds all package layers from the current mirror).
#
# Usage: scripts/images/build.sh [--only IMAGE[,IMAGE...]] [--print-env]
#   --only       build just these images (names as in the first column above)
#   --print-env  print the images.env of the last build (no build)
# Environment: ARGOEXEC (argoexec binary; default from scripts/clusters/build-node.sh
#   --print-env, else $FLOTILLA_BIN_CACHE/argoexec-v4.0.5/argoexec), DEBIAN_SUITE (bookworm),
#   DEBIAN_MIRROR (http://deb.debian.org/debian).
# Needs root (debootstrap, ownership in layers). Then, on a node (every name in an archive
# is registered by one import):
#   eval "$(scripts/images/build.sh --print-env)"
#   for t in $FLOTILLA_IMAGE_ARCHIVES; do ctr -n k8s.io images import "$t"; done
# scripts/images/verify.sh [--ctr] checks the archives (digests, chroot and containerd runs).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${FLOTILLA_IMAGE_CACHE:-$HOME/.cache/flotilla/images}"
BIN_CACHE="${FLOTILLA_BIN_CACHE:-$HOME/.cache/flotilla/bin}"
SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ARGOEXEC_VERSION="v4.0.5"
PAUSE_VERSION="3.10.2"
STD_PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ALL_IMAGES="busybox argosay-v2 argosay-v1 whalesay python node debian pause argoexec flotilla"

only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only="${2:?--only needs a list}"; shift 2 ;;
    --only=*) only="${1#--only=}"; shift ;;
    --print-env) cat "$CACHE/images.env"; exit 0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
selected="${only//,/ }"
selected="${selected:-$ALL_IMAGES}"
for i in $selected; do
  case " $ALL_IMAGES " in *" $i "*) ;; *) echo "unknown image $i (one of: $ALL_IMAGES)" >&2; exit 2 ;; esac
done

log() { printf '[images %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, file ownership inside layers)"

NODE="$REPO/node_modules/node/bin/node"
[ -x "$NODE" ] || die "$NODE missing: run npm ci (the node devDependency ships Node 24)"
OCI=("$NODE" --no-warnings "$HERE/oci.ts")

mkdir -p "$CACHE/layers"
exec 9>"$CACHE/.lock"
flock -n 9 || { log "waiting for another build.sh on $CACHE"; flock 9; }
WORK="$(mktemp -d "$CACHE/work.XXXXXX")"

# Never rm -rf through a mount (debootstrap mounts /proc and /sys in its target).
unmount_under() {
  local d="$1" m
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(awk -v p="$d/" '{ if (index($5 "/", p) == 1) print $5 }' /proc/self/mountinfo | sort -r)
}
safe_rm() {
  local d
  for d in "$@"; do
    [ -e "$d" ] || continue
    unmount_under "$(realpath "$d")"
    rm -rf --one-file-system "$d"
  done
}
trap 'safe_rm "$WORK"' EXIT
# Work directories of an earlier run that was killed (the lock says none is in use).
for w in "$CACHE"/work.*; do [ "$w" = "$WORK" ] || safe_rm "$w"; done

t_start=$SECONDS
built=()
key() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---------------------------------------------------------------- layers
used_layers=()

# have_layer NAME KEY: sets LAYER (its directory); true when already cached.
have_layer() {
  LAYER="$CACHE/layers/$1-$2"
  used_layers+=("$1-$2")
  [ -f "$LAYER/meta" ] && [ -f "$LAYER/layer.tar.gz" ] && { [ "${FLOTILLA_IMAGES_REFRESH:-}" != 1 ] || [ -n "${refreshed[$1]:-}" ]; }
}
declare -A refreshed=()

# pack_layer ROOTFS COMMENT: the deterministic layer tarball of ROOTFS into $LAYER
# (extra files may already be in $LAYER.tmp).
pack_layer() {
  local src="$1" comment="$2" out="$LAYER" t0=$SECONDS
  mkdir -p "$out.tmp"
  (cd "$src" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) > "$out.tmp/files"
  tar --create --file="$out.tmp/layer.tar" --directory="$src" --no-recursion \
    --verbatim-files-from --files-from="$out.tmp/files" \
    --format=posix --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
    --mtime=@0 --numeric-owner
  local diff_id digest
  diff_id="sha256:$(sha "$out.tmp/layer.tar")"
  gzip -n -6 < "$out.tmp/layer.tar" > "$out.tmp/layer.tar.gz"
  rm -f "$out.tmp/layer.tar" "$out.tmp/files"
  digest="sha256:$(sha "$out.tmp/layer.tar.gz")"
  echo "$digest $diff_id $(stat -c %s "$out.tmp/layer.tar.gz")" > "$out.tmp/meta"
  printf '%s\n' "$comment" > "$out.tmp/comment"
  safe_rm "$out"
  mv "$out.tmp" "$out"
  refreshed[$(basename "$out" | sed 's/-[0-9a-f]\{16\}$//')]=1
  log "  layer $(basename "$out"): $(du -h "$out/layer.tar.gz" | cut -f1) gzip ($((SECONDS - t0))s to pack)"
}

start_layer() { safe_rm "$LAYER.tmp"; mkdir -p "$LAYER.tmp"; }

# file_layer NAME FILE DEST COMMENT [SHA]: a layer holding only the executable FILE at DEST,
# cached by FILE's content (SHA when the caller has it already); sets LAYER.
file_layer() {
  local name="$1" file="$2" dest="$3" comment="$4" digest="${5:-}"
  [ -n "$digest" ] || digest="$(sha "$file")"
  have_layer "$name" "$(key "$name-v1" "$digest")" && return
  local root="$WORK/$name"
  start_layer
  mkdir -p "$root$(dirname "$dest")"
  install -m 0755 "$file" "$root$dest"
  pack_layer "$root" "$comment"
  safe_rm "$root"
}

# Drop what Debian's -slim images drop (documentation but copyright, man pages, locales).
slim_rootfs() {
  local r="$1"
  rm -rf "$r/usr/share/man" "$r/usr/share/info" "$r/usr/share/locale" "$r/usr/share/lintian" "$r/usr/share/linda" "$r/usr/share/groff"
  if [ -d "$r/usr/share/doc" ]; then
    find "$r/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$r/usr/share/doc" -mindepth 1 -depth -type d -empty -delete
  fi
}

# ---------------------------------------------------------------- private apt (the base's suite, no host lists)
APT="$CACHE/apt"
APT_OPTS=(
  -o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=$APT/empty.d"
  -o "Dir::Etc::Preferences=$APT/empty.d/none" -o "Dir::Etc::PreferencesParts=$APT/empty.d"
  -o "Dir::State=$APT/state" -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache"
  -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root" -o "APT::Architecture=amd64" -o "APT::Architectures::=amd64"
  -o "Acquire::Retries=3"
)
apt_ready=""
apt_update() {
  mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/state" "$APT/empty.d"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SUITE main" > "$APT/sources.list"
  : > "$APT/empty-status"
  log "apt: updating the package lists of $SUITE (private, under $APT)"
  apt-get "${APT_OPTS[@]}" -o "Dir::State::status=$APT/empty-status" -qq update >&2
  apt_ready=1
}
apt_prepare() {
  [ -n "$apt_ready" ] && return
  if [ ! -f "$APT/sources.list" ] || ! grep -q " $MIRROR $SUITE main" "$APT/sources.list" || ! compgen -G "$APT/lists/*_Packages*" >/dev/null \
     || [ "${FLOTILLA_IMAGES_REFRESH:-}" = 1 ]; then
    apt_update
  fi
  apt_ready=1
}
# apt_resolve STATUS PKG...: name=version of everything to add on top of STATUS (no recommends).
apt_resolve() {
  local status="$1"; shift
  apt-get "${APT_OPTS[@]}" -o "Dir::State::status=$status" -s -qq install --no-install-recommends "$@" \
    | sed -n 's/^Inst \([^ ]*\) \(\[[^]]*\] \)\{0,1\}(\([^ ]*\) .*/\1=\3/p'
}
# apt_fetch DIR STATUS PKG...: downloads the .debs of apt_resolve into DIR (refreshing stale lists once).
apt_fetch() {
  local dir="$1" status="$2"; shift 2
  apt_prepare
  local pkgs
  mkdir -p "$dir"
  pkgs="$(apt_resolve "$status" "$@")" || die "apt cannot resolve $*"
  [ -n "$pkgs" ] || die "apt resolved nothing for $* (already in the base?)"
  # shellcheck disable=SC2086
  if ! (cd "$dir" && apt-get "${APT_OPTS[@]}" -qq download $pkgs >&2); then
    log "apt: download failed, refreshing the lists once"
    apt_update
    pkgs="$(apt_resolve "$status" "$@")"
    # shellcheck disable=SC2086
    (cd "$dir" && apt-get "${APT_OPTS[@]}" -qq download $pkgs >&2) || die "apt-get download $pkgs failed"
  fi
  echo "$pkgs" | tr '\n' ' '
}

# fold_usrmerge ROOT: the base has /bin -> usr/bin etc.; a layer must never carry a
# real /bin directory (it would hide the symlink and everything behind it).
fold_usrmerge() {
  local r="$1" d
  for d in bin sbin lib lib32 lib64 libx32; do
    if [ -d "$r/$d" ] && [ ! -L "$r/$d" ]; then
      mkdir -p "$r/usr/$d"
      cp -a "$r/$d/." "$r/usr/$d/"
      rm -rf "$r/${d:?}"
    fi
  done
}

# ---------------------------------------------------------------- layer: Debian base
L_BASE=""
layer_base() {
  [ -n "$L_BASE" ] && return
  if have_layer debian-base "$(key debian-base-v1 "$SUITE" "$MIRROR" minbase)"; then L_BASE="$LAYER"; return; fi
  local t0=$SECONDS root="$WORK/debian-base"
  start_layer
  command -v debootstrap >/dev/null || { log "installing debootstrap"; apt-get install -y -qq debootstrap >&2; }
  log "debian-base: debootstrap --variant=minbase $SUITE (about a minute)"
  mkdir -p "$CACHE/debootstrap-debs"
  if ! debootstrap --variant=minbase --cache-dir="$CACHE/debootstrap-debs" "$SUITE" "$root" "$MIRROR" > "$WORK/debootstrap.log" 2>&1; then
    tail -20 "$WORK/debootstrap.log" >&2
    unmount_under "$root"
    die "debootstrap failed (log above)"
  fi
  unmount_under "$root"
  # What a container runtime provides, and what names this host, goes.
  find "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/var/tmp" -mindepth 1 -delete
  rm -f "$root/etc/hostname" "$root/etc/resolv.conf" "$root/etc/hosts" "$root/var/cache/ldconfig/aux-cache"
  rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/cache/apt"/*.bin "$root/var/lib/apt/lists"/*
  rm -f "$root/var/lib/dpkg"/*-old "$root/var/cache/debconf"/*-old
  find "$root/var/log" -type f -delete
  slim_rootfs "$root"
  # Keep it slim when someone apt-get installs in a container (as debian:*-slim does).
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
    'path-exclude /usr/share/lintian/*' 'path-exclude /usr/share/groff/*' > "$root/etc/dpkg/dpkg.cfg.d/docker-slim"
  mkdir -p "$LAYER.tmp/etc"
  cp "$root/var/lib/dpkg/status" "$LAYER.tmp/dpkg-status"
  cp "$root/etc/passwd" "$root/etc/group" "$LAYER.tmp/etc/"
  pack_layer "$root" "debootstrap --variant=minbase $SUITE (slim)"
  safe_rm "$root"
  L_BASE="$LAYER"
  built+=("debian-base:$((SECONDS - t0))s")
}

# layer_debs NAME "PKG..." [HOOK]: Debian packages (and their dependencies not in
# the base) unpacked with dpkg-deb -x on top of the base (no maintainer scripts).
layer_debs() {
  local name="$1" pkgs="$2" hook="${3:-}"
  layer_base
  local base_digest
  base_digest="$(cut -d' ' -f1 "$L_BASE/meta")"
  if have_layer "$name" "$(key debs-v1 "$base_digest" "$pkgs" "$(declare -f fold_usrmerge slim_rootfs ${hook:+"$hook"})")"; then return; fi
  local t0=$SECONDS root="$WORK/$name" debs="$WORK/$name-debs" got deb
  start_layer
  apt_prepare
  log "$name: apt $pkgs"
  # shellcheck disable=SC2086
  got="$(apt_fetch "$debs" "$L_BASE/dpkg-status" $pkgs)"
  log "$name: $got"
  mkdir -p "$root"
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$root"; done
  fold_usrmerge "$root"
  slim_rootfs "$root"
  [ -z "$hook" ] || "$hook" "$root"
  pack_layer "$root" "dpkg-deb -x $got"
  safe_rm "$root" "$debs"
  built+=("$name:$((SECONDS - t0))s")
}

hook_python() { ln -sfn python3 "$1/usr/bin/python"; }
hook_cowsay() { mkdir -p "$1/usr/local/bin"; ln -sfn /usr/games/cowsay "$1/usr/local/bin/cowsay"; }
L_PYTHON="" L_COWSAY=""
layer_python() { [ -n "$L_PYTHON" ] || { layer_debs python3 "python3" hook_python; L_PYTHON="$LAYER"; }; }
layer_cowsay() { [ -n "$L_COWSAY" ] || { layer_debs cowsay "cowsay" hook_cowsay; L_COWSAY="$LAYER"; }; }

# ---------------------------------------------------------------- layer: busybox
L_BUSYBOX=""
layer_busybox() {
  [ -n "$L_BUSYBOX" ] && return
  if have_layer busybox "$(key busybox-v1 "$SUITE" "$MIRROR" "$(declare -f layer_busybox)")"; then L_BUSYBOX="$LAYER"; return; fi
  local t0=$SECONDS root="$WORK/busybox" x="$WORK/busybox-x" got applet
  start_layer
  apt_prepare
  got="$(apt_fetch "$x" "$APT/empty-status" busybox-static)"
  dpkg-deb -x "$x"/busybox-static_*.deb "$x/root"
  mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/etc" "$root/home" "$root/var/spool/mail" \
    "$root/usr/share/doc/busybox-static" "$root/dev" "$root/proc" "$root/sys"
  install -m 0755 "$x/root/bin/busybox" "$root/bin/busybox"
  cp "$x/root/usr/share/doc/busybox-static/copyright" "$root/usr/share/doc/busybox-static/"
  # `busybox --install -s`: a symlink to /bin/busybox at each applet's full path.
  while read -r applet; do
    case "$applet" in bin/busybox|linuxrc) continue ;; esac
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
  done < <("$root/bin/busybox" --list-full | LC_ALL=C sort)
  install -d -m 1777 "$root/tmp" "$root/var/tmp"
  install -d -m 0700 "$root/root"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'daemon:x:1:1:daemon:/usr/sbin:/bin/false' 'bin:x:2:2:bin:/bin:/bin/false' \
    'sys:x:3:3:sys:/dev:/bin/false' 'sync:x:4:100:sync:/bin:/bin/sync' 'mail:x:8:8:mail:/var/spool/mail:/bin/false' \
    'www-data:x:33:33:www-data:/var/www:/bin/false' 'operator:x:37:37:Operator:/var:/bin/false' \
    'nobody:x:65534:65534:nobody:/home:/bin/false' > "$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'daemon:x:1:' 'bin:x:2:' 'sys:x:3:' 'adm:x:4:' 'tty:x:5:' 'disk:x:6:' 'wheel:x:10:root' \
    'mail:x:8:' 'www-data:x:33:' 'operator:x:37:' 'staff:x:50:' 'users:x:100:' 'nogroup:x:65534:' > "$root/etc/group"
  chmod 0644 "$root/etc/passwd" "$root/etc/group"
  pack_layer "$root" "busybox-static ($got) with every applet symlinked"
  safe_rm "$root" "$x"
  L_BUSYBOX="$LAYER"
  built+=("busybox:$((SECONDS - t0))s")
}

# ---------------------------------------------------------------- layer: /argosay
L_ARGOSAY=""
layer_argosay() { [ -n "$L_ARGOSAY" ] || { file_layer argosay "$REPO/images/argosay" /argosay "ADD images/argosay /argosay"; L_ARGOSAY="$LAYER"; }; }

# ---------------------------------------------------------------- layer: /pause
L_PAUSE=""
layer_pause() {
  [ -n "$L_PAUSE" ] && return
  if have_layer pause "$(key pause-v1 "$PAUSE_VERSION" "$(sha "$HERE/pause.c")" "$(gcc --version | head -1)")"; then L_PAUSE="$LAYER"; return; fi
  local root="$WORK/pause"
  start_layer
  mkdir -p "$root"
  command -v gcc >/dev/null || { log "installing gcc"; apt-get install -y -qq gcc libc6-dev >&2; }
  gcc -static -Os -s -Wall -Werror -DVERSION="\"$PAUSE_VERSION\"" -o "$root/pause" "$HERE/pause.c"
  chmod 0755 "$root/pause"
  pack_layer "$root" "gcc -static scripts/images/pause.c -o /pause"
  safe_rm "$root"
  L_PAUSE="$LAYER"
}

# ---------------------------------------------------------------- layers: argoexec (distroless-like static base + binary)
L_STATIC=""
layer_static() {
  [ -n "$L_STATIC" ] && return
  if have_layer static-base "$(key static-base-v1 "$SUITE" "$MIRROR" "$(declare -f layer_static)")"; then L_STATIC="$LAYER"; return; fi
  local t0=$SECONDS root="$WORK/static" x="$WORK/static-x" got deb f
  start_layer
  apt_prepare
  got="$(apt_fetch "$x" "$APT/empty-status" ca-certificates media-types tzdata)"
  mkdir -p "$x/root"
  for deb in "$x"/ca-certificates_*.deb "$x"/media-types_*.deb "$x"/tzdata_*.deb; do dpkg-deb -x "$deb" "$x/root"; done
  mkdir -p "$root/etc/ssl/certs" "$root/usr/share" "$root/bin" "$root/home/nonroot" "$root/var"
  # What update-ca-certificates would make of the default set: every Mozilla CA, sorted.
  for f in $(cd "$x/root/usr/share/ca-certificates" && find . -name '*.crt' | sed 's#^\./##' | LC_ALL=C sort); do
    sed -e '$a\' "$x/root/usr/share/ca-certificates/$f"
  done > "$root/etc/ssl/certs/ca-certificates.crt"
  cp "$x/root/etc/mime.types" "$root/etc/mime.types"
  cp -a "$x/root/usr/share/zoneinfo" "$root/usr/share/zoneinfo"
  for f in ca-certificates media-types tzdata; do
    mkdir -p "$root/usr/share/doc/$f"
    cp "$x/root/usr/share/doc/$f/copyright" "$root/usr/share/doc/$f/"
  done
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > "$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' > "$root/etc/group"
  echo 'hosts: files dns' > "$root/etc/nsswitch.conf"
  chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/nsswitch.conf" "$root/etc/mime.types" "$root/etc/ssl/certs/ca-certificates.crt"
  chown 65532:65532 "$root/home/nonroot"
  install -d -m 1777 "$root/tmp"
  install -d -m 0700 "$root/root"
  pack_layer "$root" "static base: passwd, CA certificates, tzdata, mime.types ($got)"
  safe_rm "$root" "$x"
  L_STATIC="$LAYER"
  built+=("static-base:$((SECONDS - t0))s")
}

ARGOEXEC_BIN=""
find_argoexec() {
  if [ -n "${ARGOEXEC:-}" ]; then ARGOEXEC_BIN="$ARGOEXEC"; return; fi
  if [ -f "$REPO/scripts/clusters/build-node.sh" ]; then
    ARGOEXEC_BIN="$(ARGOEXEC='' bash "$REPO/scripts/clusters/build-node.sh" --print-env 2>/dev/null \
      | sed -n 's/^ARGOEXEC=//p' | head -1)"
    ARGOEXEC_BIN="$(eval "printf '%s' $ARGOEXEC_BIN")"   # %q-quoted
  fi
  [ -n "$ARGOEXEC_BIN" ] || ARGOEXEC_BIN="$BIN_CACHE/argoexec-$ARGOEXEC_VERSION/argoexec"
}

L_ARGOEXEC=""
layer_argoexec() { [ -n "$L_ARGOEXEC" ] || { file_layer argoexec "$ARGOEXEC_BIN" /bin/argoexec "COPY argoexec /bin/"; L_ARGOEXEC="$LAYER"; }; }

# ---------------------------------------------------------------- layers: node, controller
NODE_SHA=""
L_NODE=""
layer_node() {
  [ -n "$L_NODE" ] && return
  NODE_SHA="${NODE_SHA:-$(sha "$NODE")}"
  file_layer node "$NODE" /usr/local/bin/node "COPY node $("$NODE" --version) /usr/local/bin/node" "$NODE_SHA"
  L_NODE="$LAYER"
}

L_CONTROLLER=""
layer_controller() {
  [ -n "$L_CONTROLLER" ] && return
  layer_base
  layer_node
  local inputs
  inputs="$(cd "$REPO" && find src images package.json package-lock.json tsconfig.json scripts/images/controller-rootfs.sh scripts/images/node-flags -type f -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)"
  if have_layer controller "$(key controller-v1 "$inputs" "$NODE_SHA" "$(cut -d' ' -f1 "$L_BASE/meta")")"; then L_CONTROLLER="$LAYER"; return; fi
  local t0=$SECONDS root="$WORK/controller"
  start_layer
  log "controller: scripts/images/controller-rootfs.sh (tsc + npm ci --omit=dev)"
  NODE_BINARY="$NODE" BASE_ETC="$L_BASE/etc" bash "$HERE/controller-rootfs.sh" "$root"
  # /usr/local/bin/node is the node layer's (shared with the node image).
  cmp -s "$root/usr/local/bin/node" "$NODE" || die "controller-rootfs.sh installed another node binary"
  rm "$root/usr/local/bin/node"
  pack_layer "$root" "scripts/images/controller-rootfs.sh (app, production node_modules, flotilla command, user node)"
  safe_rm "$root"
  L_CONTROLLER="$LAYER"
  built+=("controller:$((SECONDS - t0))s")
}

# ---------------------------------------------------------------- images
tsv="$WORK/images.tsv"
: > "$tsv"
# image ID oci.ts-args...: writes (or finds) the archive and records every reference.
image() {
  local id="$1"; shift
  local line out digest names
  line="$("${OCI[@]}" image --out-dir "$CACHE" --id "$id" "$@")" || die "oci.ts image $id failed"
  IFS=$'\t' read -r out digest names <<< "$line"
  tr ',' '\n' <<< "$names" | while read -r n; do printf '%s\t%s\t%s\n' "$n" "$out" "$digest"; done >> "$tsv"
  # Older archives of this image go.
  find "$CACHE" -maxdepth 1 -name "$id-*.tar" ! -path "$out" -delete
  log "image $id: $(basename "$out") ($(du -h "$out" | cut -f1))"
}

image_busybox() {
  layer_busybox
  image busybox --name busybox:latest --name alpine:3.23 --name alpine:3.7 --name alpine:3.6 --name alpine:latest \
    --env "PATH=$STD_PATH" --cmd sh --layer "$L_BUSYBOX"
}
image_argosay-v2() {
  layer_busybox; layer_argosay
  image argosay-v2 --name argoproj/argosay:v2 --env "PATH=$STD_PATH" --entrypoint /argosay \
    --layer "$L_BUSYBOX" --layer "$L_ARGOSAY"
}
image_argosay-v1() {
  layer_base; layer_cowsay
  image argosay-v1 --name argoproj/argosay:v1 --env "PATH=$STD_PATH:/usr/games" --cmd cowsay \
    --layer "$L_BASE" --layer "$L_COWSAY"
}
image_whalesay() {
  layer_base; layer_cowsay
  image whalesay --name docker/whalesay:latest --env "PATH=$STD_PATH:/usr/games" --cmd /bin/bash \
    --layer "$L_BASE" --layer "$L_COWSAY"
}
image_python() {
  layer_base; layer_python
  image python --name python:alpine3.23 --name python:alpine3.6 --name python:alpine --name python:latest \
    --env "PATH=$STD_PATH" --env LANG=C.UTF-8 --cmd python3 --layer "$L_BASE" --layer "$L_PYTHON"
}
image_node() {
  layer_base; layer_node
  image node --name node:9.1-alpine --env "PATH=$STD_PATH" --cmd node --layer "$L_BASE" --layer "$L_NODE"
}
image_debian() {
  layer_base
  image debian --name debian:latest --name debian:9.1 --name "debian:$SUITE" --env "PATH=$STD_PATH" --cmd bash --layer "$L_BASE"
}
image_pause() {
  layer_pause
  image pause --name "registry.k8s.io/pause:$PAUSE_VERSION" --env "PATH=$STD_PATH" --user 65535:65535 \
    --entrypoint /pause --layer "$L_PAUSE"
}
image_argoexec() {
  find_argoexec
  if [ ! -x "$ARGOEXEC_BIN" ]; then
    log "SKIPPED argoexec: no argoexec binary at $ARGOEXEC_BIN (build it first, or set ARGOEXEC=/path/to/argoexec)"
    skipped+=(argoexec)
    return
  fi
  if file "$ARGOEXEC_BIN" 2>/dev/null | grep -q 'dynamically linked'; then
    log "warning: $ARGOEXEC_BIN is dynamically linked: emissary copies it into every main container, it must be static"
  fi
  local default
  default="$(sed -n 's/^export const defaultExecutorImage = "\(.*\)".*/\1/p' "$REPO/src/controller/ControllerConfig.ts")"
  local names=(--name "quay.io/argoproj/argoexec:$ARGOEXEC_VERSION")
  [ -z "$default" ] || [ "$default" = "quay.io/argoproj/argoexec:$ARGOEXEC_VERSION" ] || names+=(--name "$default")
  layer_static; layer_argoexec
  image argoexec "${names[@]}" --env "PATH=$STD_PATH" --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --entrypoint argoexec --layer "$L_STATIC" --layer "$L_ARGOEXEC"
}
image_flotilla() {
  layer_base; layer_node; layer_controller
  image flotilla --name flotilla:latest --env "PATH=$STD_PATH" --env NODE_ENV=production --user 1000 --workdir /app \
    --port 6060/tcp --port 9090/tcp --entrypoint flotilla --cmd controller \
    --layer "$L_BASE" --layer "$L_NODE" --layer "$L_CONTROLLER"
}

skipped=()
for i in $selected; do "image_$i"; done

# Superseded layers of the kinds used in this run go (other kinds are left alone).
for l in "${used_layers[@]}"; do
  kind="${l%-*}"
  for d in "$CACHE/layers/$kind"-*; do
    [ -d "$d" ] || continue
    b="$(basename "$d")"
    [[ "$b" =~ ^${kind}-[0-9a-f]{16}(\.tmp)?$ ]] || continue
    case " ${used_layers[*]} " in *" $b "*) ;; *) safe_rm "$d" ;; esac
  done
done

# Record: merge this run's references into images.tsv (a partial --only run keeps the others).
if [ -f "$CACHE/images.tsv" ]; then
  cut -f1 "$tsv" > "$WORK/refs"
  awk -F'\t' 'NR==FNR { r[$1]=1; next } !($1 in r)' "$WORK/refs" "$CACHE/images.tsv" | while IFS=$'\t' read -r n t d; do
    [ -f "$t" ] && printf '%s\t%s\t%s\n' "$n" "$t" "$d"
  done >> "$tsv"
fi
LC_ALL=C sort -o "$tsv" "$tsv"
cp "$tsv" "$CACHE/images.tsv.tmp"
mv "$CACHE/images.tsv.tmp" "$CACHE/images.tsv"
{
  printf 'FLOTILLA_IMAGE_CACHE=%q\n' "$CACHE"
  printf 'FLOTILLA_IMAGE_ARCHIVES=%q\n' "$(cut -f2 "$tsv" | LC_ALL=C sort -u | tr '\n' ' ' | sed 's/ $//')"
  for t in $(cut -f2 "$tsv" | LC_ALL=C sort -u); do
    b="$(basename "$t")"; b="${b%-*}"; b="${b//-/_}"
    printf 'FLOTILLA_IMAGE_%s=%q\n' "${b^^}" "$t"
  done
} > "$CACHE/images.env.tmp"
mv "$CACHE/images.env.tmp" "$CACHE/images.env"

log "done in $((SECONDS - t_start))s ${built[*]:-(all layers cached)}${skipped[*]:+; skipped: ${skipped[*]}}"
cat "$tsv"
