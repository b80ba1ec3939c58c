// The sandbox ("pause") image's only program, built here because no registry is reachable:
// it holds a pod's namespaces open and exits on SIGTERM or SIGINT.
module webgw.local/test/nodes/pause

go 1.24.0
