package metrics

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// The debug server serves the profiler, and only there: /metrics is not on it, and the
// metrics server does not serve /debug/pprof/ (TestServer).
func TestDebugServer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv, err := ListenDebug("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get("http://" + srv.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, c := range []struct{ path, want string }{
		{"/debug/pprof/", "goroutine"},
		{"/debug/pprof/heap?debug=1", "heap profile:"},
		{"/debug/pprof/goroutine?debug=1", "goroutine profile:"},
		{"/debug/pprof/cmdline", "metrics.test"},
	} {
		if code, body := get(c.path); code != 200 || !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %d, want 200 with %q\n%.300s", c.path, code, c.want, body)
		}
	}
	if code, _ := get("/metrics"); code != 404 {
		t.Errorf("GET /metrics on the debug server: %d, want 404", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
}

func TestListenDebugError(t *testing.T) {
	a, err := ListenDebug("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.ln.Close()
	if _, err := ListenDebug(a.Addr().String()); err == nil || !strings.Contains(err.Error(), "debug: listen on") {
		t.Errorf("second ListenDebug on the same address: %v", err)
	}
}
