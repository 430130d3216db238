#!/usr/bin/env bash
# The single source of the flotilla controller image's contents (on top of a
# Debian bookworm base): both the Dockerfile and scripts/images/build.sh run it.
#
#   scripts/images/controller-rootfs.sh DIR
#
# writes into DIR (which must be empty or absent):
#   /app/dist            src compiled by tsc (relative imports already end in .js), with source maps
#   /app/node_modules    production dependencies only (npm ci --omit=dev --ignore-scripts)
#   /app/package.json, /app/package-lock.json
#   /app/images          stand-in image entrypoints (argosay, cowsay): only used when the
#                        image runs the embedded runtime (`flotilla run`), resolved as
#                        ../../images from dist/kubelet
#   /usr/local/bin/node  the Node 24 binary (glibc-linked: libstdc++, libgcc_s, libc from the base)
#   /usr/local/bin/flotilla  `exec node <scripts/images/node-flags> /app/dist/cli/main.js "$@"`
#   /etc/passwd, /etc/group  the base's, plus user/group `node` 1000:1000 (as in node:*-slim),
#                        numeric so runAsNonRoot can verify it; /home/node owned by it
#
# Environment:
#   NODE_BINARY  Node 24 binary to install (default: the `node` devDependency's
#                node_modules/node/bin/node, else the `node` on PATH); it also runs tsc
#   BASE_ETC     directory holding the base image's passwd and group (default: /etc)
#   NPM          npm command (default: npm)
set -euo pipefail

DIR="${1:?usage: controller-rootfs.sh DIR}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BASE_ETC="${BASE_ETC:-/etc}"
NPM="${NPM:-npm}"
if [ -z "${NODE_BINARY:-}" ]; then
  if [ -x "$REPO/node_modules/node/bin/node" ]; then NODE_BINARY="$REPO/node_modules/node/bin/node"
  else NODE_BINARY="$(command -v node)"; fi
fi
major="$("$NODE_BINARY" -p 'process.versions.node.split(".")[0]')"
[ "$major" = 24 ] || { echo "controller-rootfs: $NODE_BINARY is Node $major, want 24" >&2; exit 1; }
[ -x "$REPO/node_modules/typescript/bin/tsc" ] || { echo "controller-rootfs: run npm ci first (typescript missing)" >&2; exit 1; }

if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then echo "controller-rootfs: $DIR is not empty" >&2; exit 1; fi
mkdir -p "$DIR/app" "$DIR/usr/local/bin" "$DIR/etc" "$DIR/home/node"
DIR="$(cd "$DIR" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# 1. src -> /app/dist (the repository tsconfig type-checks src, test and bench without emitting).
#    Compiled in a scratch copy laid out as /app was in the old Dockerfile (src/, dist/),
#    so the source maps say ../../src/... wherever the repository is checked out.
mkdir -p "$tmp/build"
cp -R "$REPO/src" "$REPO/tsconfig.json" "$REPO/package.json" "$tmp/build/"
ln -s "$REPO/node_modules" "$tmp/build/node_modules"
printf '%s' '{"extends":"./tsconfig.json","compilerOptions":{"noEmit":false,"outDir":"dist","rootDir":"src","sourceMap":true},"include":["src"]}' \
  > "$tmp/build/tsconfig.build.json"
(cd "$tmp/build" && "$NODE_BINARY" node_modules/typescript/bin/tsc -p tsconfig.build.json)
mv "$tmp/build/dist" "$DIR/app/dist"

# 2. production dependencies, exactly as locked.
cp "$REPO/package.json" "$REPO/package-lock.json" "$DIR/app/"
(cd "$DIR/app" && "$NPM" ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error --cache "$tmp/npm-cache" >&2)

# 3. stand-in entrypoints for the embedded runtime.
cp -R "$REPO/images" "$DIR/app/images"

# 4. node and the flotilla command.
cp "$NODE_BINARY" "$DIR/usr/local/bin/node"
chmod 0755 "$DIR/usr/local/bin/node"
# one flag per line, `#` comments, blank lines and CRLF endings ignored (as bench/imageNodeFlags.ts reads them)
node_flags="$(sed -e 's/\r$//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^#/d' -e '/^$/d' "$REPO/scripts/images/node-flags" | tr '\n' ' ' | sed 's/ $//')"
case "$node_flags" in
  *[!A-Za-z0-9=._\ -]*) echo "controller-rootfs.sh: scripts/images/node-flags: unexpected characters in: $node_flags" >&2; exit 1 ;;
esac
printf '#!/bin/sh\nexec node %s /app/dist/cli/main.js "$@"\n' "$node_flags" > "$DIR/usr/local/bin/flotilla"
chmod 0755 "$DIR/usr/local/bin/flotilla"

# 5. user node (1000:1000), as the node:*-slim images have it.
cp "$BASE_ETC/passwd" "$BASE_ETC/group" "$DIR/etc/"
grep -q '^node:' "$DIR/etc/group" || echo 'node:x:1000:' >> "$DIR/etc/group"
grep -q '^node:' "$DIR/etc/passwd" || echo 'node:x:1000:1000::/home/node:/bin/bash' >> "$DIR/etc/passwd"
chmod 0644 "$DIR/etc/passwd" "$DIR/etc/group"
chown 1000:1000 "$DIR/home/node"

# Normalize modes (npm and tsc honour the caller's umask).
chmod -R u+rwX,go+rX,go-w "$DIR/app"
