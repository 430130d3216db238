#!/usr/bin/env bash
# Installs the host programs that workflow steps call on the embedded runtime
# (it runs each pod's command on this machine instead of pulling its image):
# sh, python as `python`, cowsay (docker/whalesay's entrypoint), busybox (the
# sh of busybox and alpine images, src/images/ImageCommands.ts); the sandbox's
# unshare, setpriv, pivot_root (util-linux) and ip (iproute2); and openssl +
# curl + runc for the real test clusters.
# Idempotent and quick when everything is present; needs root + apt-get
# otherwise, and says exactly what is missing when it cannot install.
set -euo pipefail

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/games/$1" ]; }
# Pods get a container's PATH and run as an unprivileged uid, so a program
# found only on this shell's PATH (a pyenv shim under /root) is not theirs.
in_pods() { PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin have "$1"; }
in_pods cowsay || missing+=(cowsay)
in_pods python3 || missing+=(python3)
in_pods python || missing+=(python-is-python3)
in_pods bash || missing+=(bash)
# Debian's statically linked BusyBox, as in the busybox/alpine images of the real test nodes
# (scripts/images/build.sh); the `busybox` package would do as well.
in_pods busybox || missing+=(busybox-static)
in_pods unshare && in_pods setpriv && in_pods pivot_root || missing+=(util-linux)
in_pods ip || missing+=(iproute2)
# The end-to-end clusters (scripts/clusters/up.sh) make their own CA and poll /readyz.
have openssl || missing+=(openssl)
have curl || missing+=(curl)
# Real test nodes (scripts/clusters/node.sh): containerd runs containers with runc.
have runc || [ -x /usr/sbin/runc ] || missing+=(runc)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "host-tools: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "host-tools: missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]})" >&2
  exit 1
fi
