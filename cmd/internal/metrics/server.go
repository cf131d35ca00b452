package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Server serves /metrics on its own mux (never http.DefaultServeMux).
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen binds addr (host:port) at once, so the daemon fails at start when the address
// is taken, and returns a Server ready to Serve.
func Listen(addr string, m *Metrics) (*Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	return listen("metrics", addr, mux, "cygnetd: metrics at /metrics", 30*time.Second)
}

// listen binds addr for one of the daemon's HTTP servers (what names it in errors):
// mux, a plain-text index at "/" saying what is served, and bounded timeouts.
func listen(what, addr string, mux *http.ServeMux, index string, writeTimeout time.Duration) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", what, addr, err)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, index)
	})
	return &Server{ln: ln, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}}, nil
}

// Addr is the address actually bound (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until ctx is done, then shuts down (waiting up to 5 s for scrapes in
// flight). It returns nil after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics: serve: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := s.srv.Shutdown(sctx)
		if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
		if err != nil {
			return fmt.Errorf("metrics: shutdown: %w", err)
		}
		return nil
	}
}
