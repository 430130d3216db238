# Sourced by build.sh and build-node.sh: how every test binary is built from
# the Go module proxy. Static binaries; -trimpath keeps Go's build cache valid
# across checkouts; a newer `go` line in a module must fail loudly, never make
# the go command download a toolchain.
command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"
export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS="-trimpath -buildvcs=false"
export GOMAXPROCS="${GOMAXPROCS:-$(nproc)}"
# shellcheck disable=SC2034  # used by the sourcing script
LDFLAGS_BASE="-s -w"
