//go:build tools

// Package components pins CoreDNS for the real-node tests: build.sh builds
// github.com/coredns/coredns from this module's go.sum (the Go module proxy is the only source).
package components

import _ "github.com/coredns/coredns"
