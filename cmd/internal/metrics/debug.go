package metrics

import (
	"fmt"
	"net"
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
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // also serves the named profiles
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "cygnetd: Go profiler at /debug/pprof/")
	})
	return &Server{ln: ln, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		// A CPU profile writes after ?seconds=N; pprof refuses N beyond the timeout.
		WriteTimeout:   maxProfileTime + 10*time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 16 << 10,
	}}, nil
}
