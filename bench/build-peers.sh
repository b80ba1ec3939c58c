#!/usr/bin/env bash
# Builds, once, the peer tunnels `npm run bench` compares against: frp (frps, frpc), chisel and
# the load generator vegeta from the Go module proxy (versions in bench/peers/*/go.mod), rathole
# 0.5.0 and bore-cli 0.6.0 with `cargo install`. Cached in $WEBGW_BENCH_CACHE (default ~/.cache/webgw/bench/bin).
set -euo pipefail
cache="${WEBGW_BENCH_CACHE:-$HOME/.cache/webgw/bench}"
bin="$cache/bin"
mkdir -p "$bin"

here="$(cd "$(dirname "$0")" && pwd)"

# A wrapper module per Go tool (bench/peers/<name>/go.mod, `tool` directives): this machine's
# module proxy refuses the version lists that `go install pkg@version` reads, and frp needs its
# own replace directive; a wrapper module with a committed go.sum builds them all the same way.
go_wrapper() { # name (folder under bench/peers), packages...
  local name="$1"; shift
  local stamp; stamp="$(cat "$here/peers/$name/go.mod" "$here/peers/$name/go.sum" | sha256sum | cut -c1-16)"
  if [[ -f "$bin/.$name.$stamp" ]]; then echo "[peers] $name: cached"; return; fi
  echo "[peers] $name: building $* ..."
  local started=$SECONDS
  (cd "$here/peers/$name" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/" "$@")
  rm -f "$bin/.$name".* && touch "$bin/.$name.$stamp"
  echo "[peers] $name: done in $((SECONDS - started)) s"
}

cargo_tool() { # binary, crate, version
  if [[ -x "$bin/$1" ]]; then echo "[peers] $1: cached"; return; fi
  command -v cargo >/dev/null || { echo "[peers] cargo is needed for $2 (rustup or Debian's cargo)" >&2; exit 1; }
  echo "[peers] $1: cargo install $2 --version $3 ..."
  local started=$SECONDS
  cargo install --quiet "$2" --version "$3" --root "$cache/cargo" --target-dir "$cache/cargo-target"
  cp "$cache/cargo/bin/$1" "$bin/$1"
  echo "[peers] $1: done in $((SECONDS - started)) s"
}

go_wrapper frp github.com/fatedier/frp/cmd/frps github.com/fatedier/frp/cmd/frpc
# chisel v1.11.5 (asked for) is not served here (its source zip is refused); v1.11.3 is the newest that is.
go_wrapper chisel github.com/jpillora/chisel
# vegeta: fixed-rate load with latency percentiles (wrk cannot hold a rate).
go_wrapper vegeta github.com/tsenart/vegeta/v12
cargo_tool rathole rathole 0.5.0
cargo_tool bore bore-cli 0.6.0
echo "[peers] binaries in $bin: $(cd "$bin" && ls | tr '\n' ' ')"
