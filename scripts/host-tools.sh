#!/usr/bin/env bash
# Installs the host programs that workflow steps call on the embedded runtime
# (it runs each pod's command on this machine instead of pulling its image):
# sh, python as `python`, node, cowsay (docker/whalesay's entrypoint), unshare;
# and openssl + curl + runc for the real test clusters.
# Idempotent and quick when everything is present; needs root + apt-get
# otherwise, and says exactly what is missing when it cannot install.
set -euo pipefail

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/games/$1" ]; }
have cowsay || missing+=(cowsay)
have python3 || missing+=(python3)
have python || missing+=(python-is-python3)
have unshare || missing+=(util-linux)
have bash || missing+=(bash)
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
