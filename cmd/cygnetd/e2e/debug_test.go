package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/netns"
)

// daemon.debug_address serves Go's profiler (and /metrics does not); gc_percent and
// memory_limit reach the Go runtime, as its own metrics on /metrics show; a reload
// that drops them gives the runtime back Go's defaults.
func TestProfilerAndGCSettings(t *testing.T) {
	t.Parallel()
	p := netns.NewPair(t)
	d := newDaemon(t, "a", p.A)
	debugAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, p.A))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, p.A))
	for metricsAddr == debugAddr {
		metricsAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t, p.A))
	}
	conf := func(extra string) string {
		return fmt.Sprintf(`
daemon:
  listen_addrs: [%s]
  control_socket: %s
  metrics_address: %q
  log: {format: json, level: info}
%s
connections: {}
`, p.A.Outer.Addr(), d.socket, metricsAddr, extra)
	}
	d.writeConfig(conf(fmt.Sprintf("  debug_address: %q\n  gc_percent: 400\n  memory_limit: 3g", debugAddr)))
	d.start()

	heap, err := nsGet(p.A, debugAddr, "/debug/pprof/heap?debug=1")
	if err != nil || !strings.Contains(string(heap), "heap profile:") {
		t.Errorf("GET /debug/pprof/heap?debug=1: %v\n%.300s", err, heap)
	}
	if body, err := nsGet(p.A, metricsAddr, "/debug/pprof/"); err == nil {
		t.Errorf("the metrics endpoint serves the profiler:\n%.300s", body)
	}
	metric := func(name string) string {
		body, err := nsGet(p.A, metricsAddr, "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		for _, ln := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(ln, name+" "); ok {
				return v
			}
		}
		t.Fatalf("/metrics has no %s", name)
		return ""
	}
	if v := metric("go_gc_gogc_percent"); v != "400" {
		t.Errorf("go_gc_gogc_percent %s, want 400", v)
	}
	if v := metric("go_gc_gomemlimit_bytes"); v != "3.221225472e+09" {
		t.Errorf("go_gc_gomemlimit_bytes %s, want 3 GiB", v)
	}

	// Reload without them: Go's defaults again (the test runs cygnetd without GOGC).
	d.writeConfig(conf(fmt.Sprintf("  debug_address: %q", debugAddr)))
	d.mustCtl("reload")
	eventually(t, 10*time.Second, "the GC settings are Go's defaults again", func() string {
		if v := metric("go_gc_gogc_percent"); v != "100" {
			return "go_gc_gogc_percent " + v
		}
		if v := metric("go_gc_gomemlimit_bytes"); v != "9.223372036854776e+18" {
			return "go_gc_gomemlimit_bytes " + v
		}
		return ""
	})
}
