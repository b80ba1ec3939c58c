# syntax=docker/dockerfile:1
# One image for `webgw controller`, `webgw gateway` and `webgw agent`: Node 24, compiled
# JavaScript, production dependencies only, running as uid 65532 with a read-only root
# filesystem (nothing is written outside mounted volumes).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No lifecycle scripts: the `node` devDependency's binary and the prepare step are not needed here.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
# The gateway binds 80 and 443 without root: a copy of node that carries the one file capability
# cap_net_bind_service. The gateway pod runs it as its command (src/controller/image.ts), adds
# NET_BIND_SERVICE and drops the rest; everything else runs on plain node, the entrypoint.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcap2-bin \
 && cp /usr/local/bin/node /usr/local/bin/node-net-bind \
 && setcap cap_net_bind_service=+ep /usr/local/bin/node-net-bind \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*
# The young-generation cap of every process (src/controller/image.ts IMAGE_NODE_OPTIONS).
ENV NODE_ENV=production NODE_OPTIONS=--max-semi-space-size=16
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/node", "/app/dist/cli/main.js"]
CMD ["help"]
