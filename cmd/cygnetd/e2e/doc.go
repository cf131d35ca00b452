// Package e2e holds cygnetd's end-to-end tests: real cygnetd processes, built by the
// test with `go build`, run in network namespaces (cmd/internal/netns) and driven with
// the real cygnetctl binary; a real Prometheus server scrapes one of them.
//
// What they show (issue 6, "Must show"): two daemons establish IKE and Child SAs and
// agree on every SPI and traffic selector; list, rekey (Child SA and IKE SA) and
// terminate work from cygnetctl; a reload with a changed connection replaces only that
// connection's SAs; a bad configuration is refused with file, line and key, at start and
// at reload (the running configuration stays); a daemon killed with SIGKILL and
// restarted leaves nothing it owned in the kernel's XFRM tables; Prometheus's query for
// established IKE SAs returns the number the test established.
//
// Prerequisites (root, iproute2, /usr/bin/prometheus, a Go toolchain) are checked at the
// start; a missing one fails the tests with a message saying what to install. Nothing
// is skipped.
package e2e
