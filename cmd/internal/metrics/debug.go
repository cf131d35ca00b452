package metrics

import (
	"net/http"
	"net/http/pprof"
	"time"
)

// maxProfileTime bounds a CPU profile or trace request (?seconds=N), and so the debug
// server's write timeout.
const maxProfileTime = 5 * time.Minute

// ListenDebug binds addr (host:port) for Go's profiler and returns a Server that serves
// net/http/pprof under /debug/pprof/ on its own mux: the index, cmdline, profile (CPU,
// ?seconds=N), symbol, trace, and the named profiles (heap, goroutine, allocs, block,
// mutex, threadcreate). Use it with `go tool pprof http://ADDR/debug/pprof/profile`.
//
// It is opt-in (cygnetd: daemon.debug_address) and must stay on loopback: anyone who
// can connect sees the daemon's command line, stacks and heap profile, and can make it
// spend CPU on profiling. (Importing net/http/pprof also registers its handlers on
// http.DefaultServeMux, which cygnetd never serves.)
func ListenDebug(addr string) (*Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // also serves the named profiles
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// A CPU profile writes after ?seconds=N; pprof refuses N beyond the write timeout.
	return listen("debug", addr, mux, "cygnetd: Go profiler at /debug/pprof/", maxProfileTime+10*time.Second)
}
