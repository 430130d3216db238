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
# The TypeScript sources are compiled in a build stage (relative imports
# already end in .js), and the runtime stage has production dependencies only.

FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
# Emit src only (the repository tsconfig type-checks src, test and bench without emitting).
RUN printf '%s' '{"extends":"./tsconfig.json","compilerOptions":{"noEmit":false,"outDir":"dist","rootDir":"src","sourceMap":true},"include":["src"]}' > tsconfig.build.json \
 && npx tsc -p tsconfig.build.json

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
# Stand-in image entrypoints (argosay, cowsay): only used when this image runs
# the embedded runtime (`flotilla run`), resolved as ../../images from dist/kubelet.
COPY images ./images
RUN printf '#!/bin/sh\nexec node --enable-source-maps /app/dist/cli/main.js "$@"\n' > /usr/local/bin/flotilla \
 && chmod 0755 /usr/local/bin/flotilla
# The `node` user of the base image, numeric so runAsNonRoot can verify it.
USER 1000
EXPOSE 6060 9090
ENTRYPOINT ["flotilla"]
CMD ["controller"]
