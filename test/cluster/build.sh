#!/usr/bin/env bash
# Builds, once, the control-plane components the cluster tests run, from the Go module proxy:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, helm and Pebble (and Toxiproxy,
# which the fault tests run). Each comes from a
# small wrapper module in components/ (committed go.mod/go.sum). Binaries are cached outside the
# repo, in $WEBGW_CACHE (default ~/.cache/webgw/k8s-<version>), keyed by the wrapper's go.sum.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
k8s_version="$(awk '/^require k8s.io\/kubernetes / {print $3}' "$here/components/k8s/go.mod")"
cache="${WEBGW_CACHE:-$HOME/.cache/webgw/k8s-$k8s_version}"
bin="$cache/bin"
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

stamp_of() { { cat "$here/components/$1/go.mod" "$here/components/$1/go.sum"; echo "$2"; } | sha256sum | cut -c1-16; }

build() { # component, ldflags, packages...
  local component="$1" ldflags="$2"; shift 2
  local stamp; stamp="$(stamp_of "$component" "$ldflags")"
  if [[ -f "$bin/.$component.$stamp" ]]; then
    echo "[build] $component: cached in $bin"
    return
  fi
  echo "[build] $component: building $* (cold builds take minutes on 2 cores) ..."
  local started=$SECONDS
  (cd "$here/components/$component" && go build -trimpath -ldflags "$ldflags" -o "$bin/" "$@")
  rm -f "$bin/.$component".*
  touch "$bin/.$component.$stamp"
  echo "[build] $component: done in $((SECONDS - started)) s"
}

major="${k8s_version#v}"; major="${major%%.*}"
minor="${k8s_version#v*.}"; minor="${minor%%.*}"
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

build etcd "-s -w" go.etcd.io/etcd/server/v3
# go build names the binary after the package folder (server/v3 -> server).
[[ -x "$bin/server" ]] && mv "$bin/server" "$bin/etcd"
build k8s "$k8s_ldflags" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
build kwok "-s -w" sigs.k8s.io/kwok/cmd/kwok
# As helm's Makefile: the Kubernetes version it assumes offline (`helm template`, `helm lint`)
# is that of its k8s.io modules (v0.34 -> 1.34), not the v1.20 default of a plain go build.
helm_k8s_minor="$(awk '$1 == "k8s.io/client-go" {split($2, v, "."); print v[2]}' "$here/components/helm/go.sum" | sort -n | tail -1)"
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=v3.19.5"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  helm_ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$helm_k8s_minor"
done
build helm "$helm_ldflags" helm.sh/helm/v3/cmd/helm
# Pebble (the ACME test server) and pebble-challtestsrv (the DNS server it resolves test names with).
build pebble "-s -w" github.com/letsencrypt/pebble/v2/cmd/pebble github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv
# The Prometheus Operator's ServiceMonitor CRD (from its Go module), so the chart's optional
# ServiceMonitor is validated by the API server like everything else it renders.
crds="$cache/crds"
servicemonitor_crd="$crds/monitoring.coreos.com_servicemonitors.yaml"
if [[ ! -f "$servicemonitor_crd" ]]; then
  mkdir -p "$crds"
  dir="$(cd "$here/components/helm" && go mod download -json github.com/prometheus-operator/prometheus-operator@v0.77.1 | awk -F'"' '$2 == "Dir" {print $4}')"
  cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" "$servicemonitor_crd"
  echo "[build] ServiceMonitor CRD: $servicemonitor_crd"
fi
# Toxiproxy, the TCP proxy the fault tests (test/faults) put between agents and gateways.
build toxiproxy "-s -w" github.com/Shopify/toxiproxy/v2/cmd/server
[[ -x "$bin/server" ]] && mv "$bin/server" "$bin/toxiproxy-server"
echo "[build] binaries in $bin: $(cd "$bin" && ls | tr '\n' ' ')"
