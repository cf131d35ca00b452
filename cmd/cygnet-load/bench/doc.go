// Package bench is the concentrator benchmark (issue 8): cygnetd, the bare core
// (cygnet-load respond) and strongSwan's charon as IKEv2 responders in one network
// namespace, cygnet-load in another, on the same machine in the same run. It measures
// the responder setup rate and CPU per IKE SA against the key-exchange floor, holding
// 10k/50k/100k IKE SAs (RSS, list-sas, /metrics, steady-state rekeys), mass
// re-establishment after the load generator restarts, and a half-open flood.
//
// It is a Go test behind the build tag "concentrator", run by `make bench-concentrator`
// (not by `make test`): it needs root, iproute2, perf and strongSwan, and takes a while.
// Smaller runs: `make bench-concentrator BENCH_ARGS='-quick'`. Results go to -out
// (default a fresh directory under /tmp) as results.json, results.md and the
// responders' CPU profiles; docs/benchmarks.md holds a reviewed copy.
package bench
