# syntax=docker/dockerfile:1
#
# The flotilla controller image (k8s/manager/manager.yaml runs it as
# `flotilla controller`). It holds only the controller: pods run in real
# clusters with Argo's own executor image, so no cowsay/python/etc. here.
#
#   docker build -t flotilla:latest .
#   kind load docker-image flotilla:latest     # or push to your registry
#   kubectl apply -k k8s
#
# Its contents come from one script, scripts/images/controller-rootfs.sh,
# which this build runs and which scripts/images/build.sh also runs to make
# the same image without any container engine (an OCI archive for
# `ctr images import`): a Debian bookworm base plus
#   /usr/local/bin/node       Node 24
#   /app/dist                 src compiled by tsc (relative imports already end in .js)
#   /app/node_modules         production dependencies only
#   /app/images               stand-in image entrypoints (argosay, cowsay), only used when
#                             this image runs the embedded runtime (`flotilla run`)
#   /usr/local/bin/flotilla   exec node <scripts/images/node-flags> /app/dist/cli/main.js
#   user node 1000:1000       in /etc/passwd and /etc/group, /home/node

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Dev dependencies for tsc; the `node` devDependency's binary is not needed (Node comes from this image).
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
COPY images ./images
COPY scripts/images/controller-rootfs.sh scripts/images/node-flags ./scripts/images/
# The runtime base's own passwd/group, to which the script adds user node.
COPY --from=debian:bookworm-slim /etc/passwd /etc/group /base-etc/
RUN NODE_BINARY=/usr/local/bin/node BASE_ETC=/base-etc bash scripts/images/controller-rootfs.sh /rootfs

FROM debian:bookworm-slim
COPY --from=build /rootfs/ /
COPY --from=build --chown=1000:1000 /rootfs/home/node /home/node
ENV NODE_ENV=production
WORKDIR /app
# The `node` user, numeric so runAsNonRoot can verify it.
USER 1000
EXPOSE 6060 9090
ENTRYPOINT ["flotilla"]
CMD ["controller"]
