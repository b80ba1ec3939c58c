#!/usr/bin/env bash
# Real Kubernetes nodes on this machine, for the real-node tests (issue 13). Every node and the
# client ("the Internet") is a network namespace with a veth on one host bridge, wgbr0
# (198.18.255.0/24; the host is .1, namespace INDEX is .(10+INDEX)). The host does not forward
# (ip_forward stays 0) and no namespace has a default route: nothing leaves the machine. A node
# also has its own mount namespace (a sysfs of its network namespace, /run and /var/lib/cni of its
# own, the sysctls kubelet wants as files), containerd, kubelet and kube-proxy.
# ../shared/real-node.md is the map this follows.
#
#   node.sh up NAME INDEX PLANE_DIR [LABEL=VALUE ...]  start a node (after cleaning up what a killed run left)
#   node.sh client NAME INDEX                          a bare namespace on the bridge (the Internet)
#   node.sh routes PLANE_DIR                           pod ranges routed to their nodes, everywhere
#   node.sh refuse-inbound NAME ADDRESS...             NAME refuses new connections from ADDRESSes
#   node.sh down NAME INDEX                            stop and remove one node or client
#   node.sh clean                                      remove every node, client, the bridge, routes
#
# PLANE_DIR: a control plane started with a node network (test/cluster/plane.ts, NodeNetwork):
# its ca.crt/ca.key sign the kubelet's and kube-proxy's client certificates, state.json gives the
# API port.
set -euo pipefail
cmd="${1:?up|client|routes|refuse-inbound|down|clean}"; name="${2:-}"; index=0
case "$cmd" in up|client|down) index="${3:?index 1..200}" ;; esac
cache="${WEBGW_CACHE_NODES:-$HOME/.cache/webgw/nodes}"
bin="$cache/bin"
dir="$cache/run/$name"
api_address=198.18.254.1
bridge=wgbr0
host_ip=198.18.255.1
node_ip="198.18.255.$((10 + index))"
pod_range=198.18.0.0/17   # plane.ts defaultNodeNetwork
veth="wgn$index"
holder_pid_file="$dir/holder.pid"
export PATH="$PATH:/usr/sbin:/sbin"

in_node() { nsenter -t "$(cat "$holder_pid_file")" -m -n -- "$@"; }

down() {
  # Daemons first (or kubelet starts the containers again), then every process in the node's
  # cgroups (containers outlive a killed shim), then the shims of the node's mount namespace.
  pkill -9 -f -- "--config $dir/kubelet.yaml" 2>/dev/null || true
  pkill -9 -f -- "--config $dir/kube-proxy.yaml" 2>/dev/null || true
  pkill -9 -f -- "--config $dir/containerd.toml" 2>/dev/null || true
  local holder=""; [[ -f "$holder_pid_file" ]] && holder="$(cat "$holder_pid_file")"
  local holder_mnt=""; [[ -n "$holder" && -e "/proc/$holder/ns/mnt" ]] && holder_mnt="$(readlink "/proc/$holder/ns/mnt")"
  for _ in 1 2 3; do
    for ctrl in /sys/fs/cgroup/*/; do
      [[ -d "$ctrl$name" ]] || continue
      find "$ctrl$name" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    done
    # Shims of this node, and orphans of a node whose holder is gone (a killed run): any shim in
    # a mount namespace that is neither the host's nor a live node's.
    local host_mnt live_mnts=" "; host_mnt="$(readlink /proc/self/ns/mnt)"
    for f in "$cache"/run/*/holder.pid; do
      [[ -f "$f" && "$f" != "$holder_pid_file" ]] && live_mnts+="$(readlink "/proc/$(cat "$f")/ns/mnt" 2>/dev/null) "
    done
    for pid in $(pgrep -f containerd-shim-runc-v2 || true); do
      local m; m="$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" || continue
      if [[ "$m" == "$holder_mnt" || ( "$m" != "$host_mnt" && "$live_mnts" != *" $m "* ) ]]; then kill -9 "$pid" 2>/dev/null || true; fi
    done
    sleep 0.2
  done
  [[ -n "$holder" ]] && kill -9 "$holder" 2>/dev/null || true
  for ctrl in /sys/fs/cgroup/*/; do
    [[ -d "$ctrl$name" ]] && find "$ctrl$name" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  ip link del "$veth" 2>/dev/null || true
  ip netns del "$name" 2>/dev/null || true
  rm -f "$dir"/*.pid
}

# The shared segment: a host bridge, the API server's address on the host's loopback (no dummy
# module here; Linux delivers to any local address whichever interface a packet came in on).
bridge_up() {
  # Nodes come up in parallel: every step may find it done already.
  ip link add "$bridge" type bridge 2>/dev/null || ip link show "$bridge" >/dev/null
  ip addr replace "$host_ip/24" dev "$bridge"
  ip link set "$bridge" up
  ip addr replace "$api_address/32" dev lo
}

# A network namespace with its veth on the bridge; only the API server is routed to, via the host.
netns_up() {
  bridge_up
  ip netns add "$name"
  ip link add "$veth" type veth peer name eth0 netns "$name"
  ip link set "$veth" master "$bridge" up
  ip netns exec "$name" sh -c "ip link set lo up; ip addr add $node_ip/24 dev eth0; ip link set eth0 up; ip route add $api_address/32 via $host_ip"
}

client() {
  down
  mkdir -p "$dir"
  echo "$index" > "$dir/index"; touch "$dir/netns"
  netns_up
  echo "client $name: $node_ip"
}

# Every node's pod range routed to that node, in every namespace on the bridge and on the host
# (the API server calls webhooks at pod IPs).
routes() {
  local plane="${2:?plane dir}"
  local table; table="$(kubectl --kubeconfig "$plane/kubeconfig" get nodes -o jsonpath='{range .items[*]}{.spec.podCIDR} {.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}')"
  local namespaces; namespaces="$(ip netns list | awk '{print $1}')"
  while read -r cidr via; do
    [[ -n "$cidr" && -n "$via" ]] || continue
    ip route replace "$cidr" via "$via"
    for ns in $namespaces; do
      [[ -f "$cache/run/$ns/netns" ]] || continue
      ip netns exec "$ns" ip -4 addr show dev eth0 | grep -q "inet $via/" && continue
      ip netns exec "$ns" ip route replace "$cidr" via "$via"
    done
  done <<< "$table"
}

# New connections from the given addresses are refused (rejected with a TCP reset), to the node
# itself and to its pods; replies to the node's own connections still flow.
refuse_inbound() {
  shift 2
  ip netns exec "$name" sh -c '
    iptables -N WEBGW-NO-INBOUND 2>/dev/null || iptables -F WEBGW-NO-INBOUND
    iptables -A WEBGW-NO-INBOUND -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
    for a in "$@"; do iptables -A WEBGW-NO-INBOUND -s "$a" -p tcp -j REJECT --reject-with tcp-reset; iptables -A WEBGW-NO-INBOUND -s "$a" -j DROP; done
    for chain in INPUT FORWARD; do iptables -C "$chain" -j WEBGW-NO-INBOUND 2>/dev/null || iptables -I "$chain" 1 -j WEBGW-NO-INBOUND; done
  ' refuse "$@"
}

clean() {
  for d in "$cache"/run/*/; do
    [[ -d "$d" ]] || continue
    name="$(basename "$d")"; dir="$cache/run/$name"
    index=0; [[ -f "$dir/index" ]] && index="$(cat "$dir/index")"
    veth="wgn$index"
    down
    rm -rf "$dir"
  done
  # Shims that outlived every node (their containerd is gone): any in a mount namespace other than
  # the host's belongs to a node of ours.
  local host_mnt; host_mnt="$(readlink /proc/self/ns/mnt)"
  for _ in 1 2 3; do
    for pid in $(pgrep -f containerd-shim-runc-v2 || true); do
      local m; m="$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" || continue
      [[ "$m" != "$host_mnt" ]] && kill -9 "$pid" 2>/dev/null || true
    done
    sleep 0.2
  done
  ip link del "$bridge" 2>/dev/null || true
  ip addr del "$api_address/32" dev lo 2>/dev/null || true
  # `ip netns add` bind-mounts /run/netns on itself; drop that when no namespace is left.
  if [[ -z "$(ip netns list)" ]] && mountpoint -q /run/netns; then umount /run/netns 2>/dev/null || true; fi
  # Routes to pod ranges went with the bridge; anything else still in the node ranges is ours too.
  ip route show | awk '$1 ~ /^198\.1[89]\./ {print $1}' | xargs -r -n1 ip route del 2>/dev/null || true
}

# $dir/WHO.kubeconfig with a client certificate for SUBJECT signed by the plane's CA.
kubeconfig_for() {
  local who="$1" subject="$2" plane="$3" port="$4"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/$who.key" -subj "$subject" -out "$dir/$who.csr" 2>/dev/null
  openssl x509 -req -in "$dir/$who.csr" -CA "$plane/ca.crt" -CAkey "$plane/ca.key" -CAcreateserial -days 1 -out "$dir/$who.crt" 2>/dev/null
  cat > "$dir/$who.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: plane, cluster: {server: "https://$api_address:$port", certificate-authority: "$plane/ca.crt"}}]
users: [{name: $who, user: {client-certificate: "$dir/$who.crt", client-key: "$dir/$who.key"}}]
contexts: [{name: plane, context: {cluster: plane, user: $who}}]
current-context: plane
KC
}

up() {
  local plane="${4:?plane dir}"; shift 4
  local labels=("$@")
  down
  mkdir -p "$dir"/{containerd,kubelet,logs,cni/net.d,cni/ipam,sysctl}
  echo "$index" > "$dir/index"; touch "$dir/netns"
  netns_up
  # tcp_migrate_req: a gateway handing its shared ports over loses no queued connection (proxy/config.ts).
  ip netns exec "$name" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.tcp_migrate_req=1

  # A mount namespace held by a sleeping process: sysfs of the node's network, cgroups moved back in.
  nsenter --net="/run/netns/$name" unshare --mount --propagation private sleep infinity > /dev/null 2>&1 < /dev/null &
  echo $! > "$holder_pid_file"
  sleep 0.2
  in_node sh -c "
    set -e
    mkdir -p /tmp/webgw-cgroup-$name && mount --rbind /sys/fs/cgroup /tmp/webgw-cgroup-$name
    mount -t sysfs sysfs /sys
    mount --move /tmp/webgw-cgroup-$name /sys/fs/cgroup
    mount -t tmpfs tmpfs /run
    mkdir -p /var/lib/cni && mount --bind $dir/cni/ipam /var/lib/cni
  "
  # The sysctls kubelet insists on, as files (kernel.* and vm.* are not per network namespace).
  for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
    local key="${kv%%=*}" value="${kv#*=}" file="$dir/sysctl/${kv%%=*}"
    mkdir -p "$(dirname "$file")"; echo "$value" > "$file"
    in_node mount --bind "$file" "/proc/sys/$key"
  done

  # cgroupRoot /<name> in every v1 hierarchy (cpuset needs cpus and mems).
  for ctrl in /sys/fs/cgroup/*/; do
    [[ -L "${ctrl%/}" ]] && continue
    mkdir -p "$ctrl$name"
    if [[ -f "${ctrl}cpuset.cpus" ]]; then cat "${ctrl}cpuset.cpus" > "$ctrl$name/cpuset.cpus"; cat "${ctrl}cpuset.mems" > "$ctrl$name/cpuset.mems"; fi
  done

  cat > "$dir/containerd.toml" <<TOML
version = 2
root = "$dir/containerd/root"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "webgw.test/pause:1"
  restrict_oom_score_adj = true
  enable_unprivileged_ports = false
  enable_unprivileged_icmp = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
TOML
  in_node containerd --config "$dir/containerd.toml" > "$dir/containerd.log" 2>&1 < /dev/null &
  echo $! > "$dir/containerd.pid"
  for _ in $(seq 50); do in_node test -S /run/containerd/containerd.sock && break; sleep 0.1; done
  for image in "$cache"/images/*.tar; do
    [[ -f "$image" ]] && in_node ctr --address /run/containerd/containerd.sock -n k8s.io images import --no-unpack "$image" >/dev/null
  done

  # The kubelet's identity: system:node:<name>, signed by the plane's CA.
  local port; port="$(sed -n 's/.*"apiserver": \([0-9]*\).*/\1/p' "$plane/state.json")"
  kubeconfig_for kubelet "/O=system:nodes/CN=system:node:$name" "$plane" "$port"
  cat > "$dir/kubelet.yaml" <<KY
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /$name
failSwapOn: false
failCgroupV1: false
address: $node_ip
readOnlyPort: 0
authentication: {x509: {clientCAFile: "$plane/ca.crt"}, anonymous: {enabled: false}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
podLogsDir: $dir/logs
evictionHard: {memory.available: "1%", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageMinimumGCAge: 8760h
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
clusterDomain: cluster.local
clusterDNS: [198.19.0.10]
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
KY
  local label_arg; label_arg="$(IFS=,; echo "${labels[*]:-}")"
  in_node "$bin/kubelet" --config "$dir/kubelet.yaml" --kubeconfig "$dir/kubelet.kubeconfig" \
    --root-dir "$dir/kubelet" --node-ip "$node_ip" --hostname-override "$name" ${label_arg:+--node-labels "$label_arg"} --v=1 > "$dir/kubelet.log" 2>&1 < /dev/null &
  echo $! > "$dir/kubelet.pid"

  # Pod network: a bridge on the pod range node IPAM gave this node (known once it registered).
  # Up to 60 s: on 2 busy cores a kubelet took about 20 s to register (CI runs, 2026-12-07),
  # and one run failed at the old 20 s bound.
  local cidr=""
  for _ in $(seq 300); do
    cidr="$(kubectl --kubeconfig "$plane/kubeconfig" get node "$name" -o jsonpath='{.spec.podCIDR}' 2>/dev/null || true)"
    [[ -n "$cidr" ]] && break
    sleep 0.2
  done
  [[ -n "$cidr" ]] || { echo "node $name got no pod range (see $dir/kubelet.log)" >&2; exit 1; }
  cat > "$dir/cni/net.d/10-webgw.conflist" <<CNI
{"cniVersion": "0.4.0", "name": "webgw", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$cidr"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "loopback"}
]}
CNI
  # The API server reaches pods (webhooks) through the node.
  ip route replace "$cidr" via "$node_ip"

  # kube-proxy (iptables) as system:kube-proxy. conntrack fields 0: the table is global to the
  # machine, leave it alone; masqueradeAll: a pod reaching a Service backed by a pod on its own
  # bridge gets the reply through the node (no br_netfilter needed).
  kubeconfig_for kube-proxy "/CN=system:kube-proxy" "$plane" "$port"
  cat > "$dir/kube-proxy.yaml" <<KP
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$dir/kube-proxy.kubeconfig"}
mode: iptables
hostnameOverride: $name
clusterCIDR: $pod_range
bindAddress: $node_ip
healthzBindAddress: $node_ip:10256
metricsBindAddress: $node_ip:10249
nodePortAddresses: ["$node_ip/32"]
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s, udpTimeout: 0s, udpStreamTimeout: 0s}
iptables: {localhostNodePorts: false, masqueradeAll: true, syncPeriod: 30s, minSyncPeriod: 1s}
KP
  in_node "$bin/kube-proxy" --config "$dir/kube-proxy.yaml" --v=1 > "$dir/kube-proxy.log" 2>&1 < /dev/null &
  echo $! > "$dir/kube-proxy.pid"
  echo "node $name: $node_ip, pods $cidr"
}

case "$cmd" in
  up) up "$@" ;;
  client) client ;;
  routes) routes "$@" ;;
  refuse-inbound) refuse_inbound "$@" ;;
  down) down ;;
  clean) clean ;;
  *) echo "usage: $0 up|client|routes|refuse-inbound|down|clean ..." >&2; exit 2 ;;
esac
