#!/usr/bin/env bash
# Builds SeaweedFS's `weed` binary, the real S3 server that the artifact tests
# run on 127.0.0.1 (test/support/s3Server.ts), from the Go module proxy (no
# binary download, no container image), into the same cache as the Kubernetes
# binaries, keyed by version:
#   ${FLOTILLA_BIN_CACHE:-$HOME/.cache/flotilla/bin}/weed-v<version>/weed
# A cached binary is skipped, so a warm run takes well under a second. Cold
# (empty GOMODCACHE and GOCACHE): `go mod tidy` fetches 3.7 GB of modules
# (77 s here), then the compile takes about 480 s of CPU (7 min 48 s of wall
# time measured on a shared 2-core machine); the binary is 157 MB. SeaweedFS's
# heavy optional stores (rocksdb, sqlite, ydb, tikv, elastic, ...) are behind
# build tags that are off by default; there are no tags that drop more.
# The throw-away builder module lives in ${FLOTILLA_BUILD_DIR:-$HOME/.cache/flotilla/build};
# no third-party source ever lands in the repository.
#
# Usage: scripts/s3/build.sh [--print-env]
#   --print-env  only print the resolved binary path as a shell assignment (no build)
set -euo pipefail

# github.com/seaweedfs/seaweedfs publishes no semver tags that the proxy lists:
# a pseudo-version pins one commit (its go.mod asks for go 1.26.6).
WEED_VERSION="${WEED_VERSION:-0.0.0-20261109003541-7506e5f91cd6}"

BIN_CACHE="${FLOTILLA_BIN_CACHE:-$HOME/.cache/flotilla/bin}"
BUILD_DIR="${FLOTILLA_BUILD_DIR:-$HOME/.cache/flotilla/build}"

WEED="$BIN_CACHE/weed-v$WEED_VERSION/weed"

if [ "${1:-}" = "--print-env" ]; then
  printf '%s=%q\n' WEED "$WEED"
  exit 0
fi

# shellcheck source=scripts/clusters/go-build-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/../clusters/go-build-env.sh"

log() { printf '[build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if [ -x "$WEED" ]; then
  log "seaweedfs v$WEED_VERSION: cached"
  exit 0
fi

t0=$SECONDS
dir="$BUILD_DIR/weed-v$WEED_VERSION"
mkdir -p "$dir"
cd "$dir"
# The module has a replace directive (go-bip39), so `go install pkg@version`
# is refused and a consumer module must repeat it: copy it from the module's
# own go.mod as the proxy serves it.
gomod="$(go mod download -json "github.com/seaweedfs/seaweedfs@v$WEED_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
[ -f "$gomod" ] || { echo "cannot find go.mod of github.com/seaweedfs/seaweedfs@v$WEED_VERSION" >&2; exit 1; }
cat > go.mod <<EOM
module local.test/flotilla-weedbin

go 1.26

require github.com/seaweedfs/seaweedfs v$WEED_VERSION

tool github.com/seaweedfs/seaweedfs/weed
EOM
{ sed -n 's/^replace \(.* => .*\)$/\1/p' "$gomod"
  sed -n '/^replace (/,/^)/{/^replace (/d;/^)/d;p}' "$gomod"
} | while read -r old _ new newv; do
  [ -n "$old" ] || continue
  go mod edit -replace="$old=$new${newv:+@$newv}"
done
log "seaweedfs v$WEED_VERSION: go mod tidy"
go mod tidy
log "seaweedfs v$WEED_VERSION: go build weed"
mkdir -p "$(dirname "$WEED")"
go build -ldflags "$LDFLAGS_BASE" -o "$WEED.tmp" github.com/seaweedfs/seaweedfs/weed
mv -f "$WEED.tmp" "$WEED"
log "seaweedfs v$WEED_VERSION: built in $((SECONDS - t0))s ($(du -h "$WEED" | cut -f1))"
"$WEED" version 2>/dev/null | head -1 >&2 || true
