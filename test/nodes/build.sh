#!/usr/bin/env bash
# Builds, once, what real nodes need (issue 13), cached in $WEBGW_CACHE_NODES (default
# ~/.cache/webgw/nodes), each piece keyed by its inputs:
#   bin/kubelet, bin/kube-proxy   from the test plane's Kubernetes wrapper module (same versions)
#   images/pause.tar              the sandbox image: a static Go program, packed with umoci/skopeo
#   bin/coredns, images/coredns.tar  CoreDNS from its Go module (components/coredns), the same way
#   images/webgw.tar              the project image, built by buildah from Dockerfile on a base made
#                                 here (mmdebstrap bookworm + the npm package's Node 24 + npm), as
#                                 webgw.test/webgw:dev
#   images/app.tar                the tenant app of the tests (app/), webgw.test/app:1
# Needs Debian's containerd runc containernetworking-plugins buildah umoci skopeo mmdebstrap.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${WEBGW_CACHE_NODES:-$HOME/.cache/webgw/nodes}"
mkdir -p "$cache/bin" "$cache/images" "$cache/build"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

stamp() { cat "$@" | sha256sum | cut -c1-16; }
fresh() { [[ -f "$cache/.$1.$2" ]]; }
done_() { rm -f "$cache/.$1".*; touch "$cache/.$1.$2"; }

# kubelet and kube-proxy, with the plane's version ldflags.
k8s="$root/test/cluster/components/k8s"
version="$(awk '/^require k8s.io\/kubernetes / {print $3}' "$k8s/go.mod")"
s="$(stamp "$k8s/go.mod" "$k8s/go.sum")"
if ! fresh node-k8s "$s"; then
  echo "[nodes] building kubelet and kube-proxy $version (minutes on 2 cores) ..."
  minor="${version#v*.}"; minor="${minor%%.*}"
  flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$k8s" && go build -trimpath -ldflags "$flags" -o "$cache/bin/" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
  done_ node-k8s "$s"
fi

# An image of one static program (no base, no shell), packed with umoci and skopeo.
static_image() { # program, image reference, user, entrypoint...
  local program="$1" ref="$2" user="$3"; shift 3
  local work; work="$(mktemp -d)"
  umoci init --layout "$work/oci"
  umoci new --image "$work/oci:img"
  umoci unpack --rootless --image "$work/oci:img" "$work/bundle" >/dev/null
  cp "$program" "$work/bundle/rootfs/"
  umoci repack --image "$work/oci:img" "$work/bundle"
  local entry=(); for e in "$@"; do entry+=(--config.entrypoint "$e"); done
  umoci config --image "$work/oci:img" "${entry[@]}" --config.user "$user"
  rm -f "$cache/images/$(basename "$program").tar"
  skopeo copy -q "oci:$work/oci:img" "docker-archive:$cache/images/$(basename "$program").tar:$ref"
  rm -rf "$work"
}

# The pause image.
s="$(stamp "$here/components/pause/go.mod" "$here/components/pause/main.go")"
if ! fresh pause "$s"; then
  echo "[nodes] building the pause image ..."
  (cd "$here/components/pause" && go build -trimpath -ldflags "-s -w" -o "$cache/bin/pause" .)
  static_image "$cache/bin/pause" webgw.test/pause:1 65535:65535 /pause
  done_ pause "$s"
fi

# CoreDNS, the cluster's DNS (Connector mode resolves <service>.<namespace>.svc).
s="$(stamp "$here/components/coredns/go.mod" "$here/components/coredns/go.sum")"
if ! fresh coredns "$s"; then
  echo "[nodes] building CoreDNS (minutes on 2 cores) ..."
  (cd "$here/components/coredns" && go build -trimpath -ldflags "-s -w" -o "$cache/bin/coredns" github.com/coredns/coredns)
  static_image "$cache/bin/coredns" webgw.test/coredns:1 65532:65532 /coredns
  done_ coredns "$s"
fi

# The base image standing in for node:24-bookworm-slim (no registry is reachable here).
node24="$(readlink -f "$root/node_modules/.bin/node")"
npm_version=11.21.2
s="$(echo "bookworm minbase ca-certificates npm@$npm_version $("$node24" --version)" | sha256sum | cut -c1-16)"
if ! fresh base "$s"; then
  echo "[nodes] building the base image (Debian bookworm, Node $("$node24" --version), npm $npm_version) ..."
  work="$(mktemp -d)"
  mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm "$work/rootfs.tar" http://deb.debian.org/debian
  (cd "$work" && npm pack "npm@$npm_version" --silent >/dev/null)
  ctr="$(buildah from scratch)"
  mnt="$(buildah mount "$ctr")"
  tar -xf "$work/rootfs.tar" -C "$mnt"
  mkdir -p "$mnt/usr/local/bin" "$mnt/usr/local/lib/node_modules/npm"
  cp "$node24" "$mnt/usr/local/bin/node"
  tar -xzf "$work"/npm-*.tgz -C "$mnt/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd node "$ctr"
  buildah commit -q "$ctr" webgw.test/node-base:24 >/dev/null
  buildah rm "$ctr" >/dev/null
  rm -rf "$work"
  done_ base "$s"
fi

# The project image, from the unchanged Dockerfile (its base is a build argument). npm inside the
# build trusts the host's CA bundle, mounted for the RUN steps only: nothing of it is baked in.
base_stamp="$(cd "$cache" && ls .base.*)"
s="$(cd "$root" && { echo "$base_stamp"; cat Dockerfile package.json package-lock.json tsconfig.json tsconfig.build.json; find src -type f | sort | xargs cat; } | sha256sum | cut -c1-16)"
if ! fresh webgw "$s"; then
  echo "[nodes] building the webgw image with buildah ..."
  printf 'cafile=/etc/ssl/certs/ca-certificates.crt\n' > "$cache/build/npmrc"
  (cd "$root" && buildah bud --quiet --network host --layers=false \
    --build-arg NODE_IMAGE=webgw.test/node-base:24 \
    -v /etc/ssl/certs:/etc/ssl/certs:ro -v "$cache/build/npmrc:/root/.npmrc:ro" \
    -t webgw.test/webgw:dev . >/dev/null)
  rm -f "$cache/images/webgw.tar"
  skopeo copy -q containers-storage:webgw.test/webgw:dev "docker-archive:$cache/images/webgw.tar:webgw.test/webgw:dev"
  done_ webgw "$s"
fi
# The tenant's app (test/nodes/app), on the same base.
s="$(cd "$here/app" && { echo "$base_stamp"; cat Containerfile server.mjs; } | sha256sum | cut -c1-16)"
if ! fresh app "$s"; then
  echo "[nodes] building the app image with buildah ..."
  buildah bud --quiet --layers=false -f "$here/app/Containerfile" -t webgw.test/app:1 "$here/app" >/dev/null
  rm -f "$cache/images/app.tar"
  skopeo copy -q containers-storage:webgw.test/app:1 "docker-archive:$cache/images/app.tar:webgw.test/app:1"
  done_ app "$s"
fi

echo "[nodes] ready in $cache: $(cd "$cache/bin" && ls | tr '\n' ' ')| images: $(cd "$cache/images" && ls | tr '\n' ' ')"
