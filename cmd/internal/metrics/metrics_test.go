package metrics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
)

// record drives every Recorder method at least once.
func record(m *Metrics) {
	m.SetConnections([]string{"ab", "cd"})
	m.IKESAEstablished("ab")
	m.IKESAEstablished("ab")
	m.IKESAClosed("ab")
	m.HalfOpenChanged(3)
	m.HalfOpenChanged(-1)
	m.ChildSAInstalled("ab")
	m.ChildSAInstalled("ab")
	m.ChildSARemoved("ab")
	m.ExchangeDone(telemetry.ExchangeCreateChildSA, telemetry.RoleInitiator, telemetry.OutcomeRejected)
	m.ExchangeDone(telemetry.ExchangeIKEAuth, telemetry.RoleResponder, telemetry.OutcomeOK)
	m.NotifySent("COOKIE")
	m.NotifyReceived("TS_UNACCEPTABLE")
	m.ChildFailed("ab", telemetry.ReasonTSUnaccept)
	m.FamilyTeardown(telemetry.ReasonTimeout)
	m.Retransmitted(telemetry.ExchangeIKESAInit)
	m.PacketDropped(telemetry.DropIntegrity)
	m.CookieSent()
	m.ActorStopped(telemetry.ActorChild, telemetry.StopPanic)
	m.KernelOp(telemetry.KernelAddSA, telemetry.ResultOK, 300*time.Microsecond)
	m.KernelOp(telemetry.KernelAddSA, telemetry.ResultError, 2*time.Millisecond)
	m.HandshakeDone(telemetry.RoleInitiator, 40*time.Millisecond)
	m.ConfigReloaded(true, time.Unix(1700000000, 0))
	m.ConfigReloaded(false, time.Time{})
}

func scrape(t *testing.T, m *Metrics) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

// promtool lints the real exposition output: naming conventions, HELP, types, units.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (%v): install Debian's prometheus package (.ci/deps.sh does)", err)
	}
	m := New(Options{Version: "test"})
	record(m)
	out := scrape(t, m)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(out)
	res, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(res)) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, res)
	}
	// The exposition holds our families, the process and Go collectors.
	for _, want := range []string{"cygnet_ike_sas_established{connection=\"ab\"} 1", "process_cpu_seconds_total", "go_goroutines"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}

func TestRecorderValues(t *testing.T) {
	m := New(Options{})
	record(m)
	for _, c := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"ike_sas ab", m.ikeSAs.WithLabelValues("ab"), 1},
		{"ike_sas cd", m.ikeSAs.WithLabelValues("cd"), 0},
		{"half_open", m.halfOpen, 2},
		{"child_sas ab", m.childSAs.WithLabelValues("ab"), 1},
		{"exchange", m.exchanges.WithLabelValues("CREATE_CHILD_SA", "initiator", "rejected"), 1},
		{"exchange untouched", m.exchanges.WithLabelValues("INFORMATIONAL", "responder", "timeout"), 0},
		{"notify sent", m.notifiesSent.WithLabelValues("COOKIE"), 1},
		{"notify received", m.notifiesRecv.WithLabelValues("TS_UNACCEPTABLE"), 1},
		{"child failure", m.childFailures.WithLabelValues("ab", "TS_UNACCEPTABLE"), 1},
		{"teardown", m.familyTeardowns.WithLabelValues("timeout"), 1},
		{"retransmission", m.retransmissions.WithLabelValues("IKE_SA_INIT"), 1},
		{"dropped", m.dropped.WithLabelValues("integrity"), 1},
		{"cookies", m.cookies, 1},
		{"actor stops", m.actorStops.WithLabelValues("child", "panic"), 1},
		{"kernel ops ok", m.kernelOps.WithLabelValues("add_sa", "ok"), 1},
		{"kernel ops error", m.kernelOps.WithLabelValues("add_sa", "error"), 1},
		{"reloads ok", m.reloads.WithLabelValues("success"), 1},
		{"reloads failed", m.reloads.WithLabelValues("failure"), 1},
		{"last reload", m.lastReload, 1700000000},
		{"connections", m.connections, 2},
	} {
		if got := value(t, c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	if got, want := m.Totals(), (Totals{IKESAs: 1, HalfOpen: 2, ChildSAs: 1, Retransmits: 1, Dropped: 1, ChildSAFailures: 1}); got != want {
		t.Errorf("Totals = %+v, want %+v", got, want)
	}
	if n := count(m.kernelLatency, "cygnet_kernel_operation_duration_seconds"); n != len(kernelOps) {
		t.Errorf("kernel latency series = %d, want one per operation (%d)", n, len(kernelOps))
	}
	out := string(scrape(t, m))
	for _, want := range []string{
		`cygnet_ike_handshake_duration_seconds_bucket{role="initiator",le="0.001"} 0`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="initiator",le="0.0025"} 0`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="initiator",le="0.00625"} 0`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="initiator",le="0.015625"} 0`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="initiator",le="0.0390625"} 0`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="initiator",le="0.09765625"} 1`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="initiator",le="0.244140625"} 1`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="initiator",le="0.6103515625"} 1`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="initiator",le="1.52587890625"} 1`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="initiator",le="3.814697265625"} 1`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="initiator",le="9.5367431640625"} 1`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="initiator",le="23.84185791015625"} 1`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="initiator",le="+Inf"} 1`,
		`cygnet_ike_handshake_duration_seconds_sum{role="initiator"} 0.04`,
		`cygnet_ike_handshake_duration_seconds_count{role="initiator"} 1`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="responder",le="0.001"} 0`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="responder",le="0.0025"} 0`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="responder",le="0.00625"} 0`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="responder",le="0.015625"} 0`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="responder",le="0.0390625"} 0`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="responder",le="0.09765625"} 0`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="responder",le="0.244140625"} 0`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="responder",le="0.6103515625"} 0`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="responder",le="1.52587890625"} 0`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="responder",le="3.814697265625"} 0`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="responder",le="9.5367431640625"} 0`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="responder",le="23.84185791015625"} 0`,
		`cygnet_ike_handshake_duration_seconds_bucket{role="responder",le="+Inf"} 0`,
		`cygnet_ike_handshake_duration_seconds_sum{role="responder"} 0`,
		`cygnet_ike_handshake_duration_seconds_count{role="responder"} 0`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("exposition lacks %s", want)
		}
	}
}

// A peer sending many distinct notify types (or a bug producing many reasons) cannot
// grow the label set without bound.
func TestLabelValuesBounded(t *testing.T) {
	m := New(Options{})
	for i := range 1000 {
		m.NotifyReceived(fmt.Sprintf("NOTIFY(%d)", 20000+i))
		m.ChildFailed("ab", fmt.Sprintf("reason-%d", i))
		m.FamilyTeardown(fmt.Sprintf("reason-%d", i))
	}
	m.NotifyReceived("")
	if n := count(m.notifiesRecv); n != maxLabelValues+2 {
		t.Errorf("notify series = %d, want %d (+other, +unknown)", n, maxLabelValues+2)
	}
	if got := value(t, m.notifiesRecv.WithLabelValues("other")); got != 1000-maxLabelValues {
		t.Errorf("other = %v, want %d", got, 1000-maxLabelValues)
	}
	if n := count(m.childFailures); n != maxLabelValues+1 {
		t.Errorf("child failure series = %d, want %d", n, maxLabelValues+1)
	}
	if n := count(m.familyTeardowns); n != maxLabelValues+1 {
		t.Errorf("teardown series = %d, want %d", n, maxLabelValues+1)
	}
}

func TestSetConnectionsDropsRemoved(t *testing.T) {
	m := New(Options{})
	m.SetConnections([]string{"ab", "cd"})
	m.IKESAEstablished("cd")
	m.ChildFailed("cd", "kernel")
	m.SetConnections([]string{"ab", "ef"})
	out := string(scrape(t, m))
	if strings.Contains(out, `connection="cd"`) {
		t.Errorf("series of removed connection cd still exported:\n%s", grep(out, "cd"))
	}
	for _, want := range []string{`cygnet_ike_sas_established{connection="ef"} 0`, `cygnet_child_sas_installed{connection="ab"} 0`, "cygnet_connections_configured 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The package never registers with the default registry nor DefaultServeMux.
func TestNoGlobalRegistration(t *testing.T) {
	m := New(Options{})
	record(m)
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "cygnet_") {
			t.Errorf("%s registered in the default registry", mf.GetName())
		}
	}
	if _, pattern := http.DefaultServeMux.Handler(httptest.NewRequest("GET", "/metrics", nil)); pattern != "" {
		t.Errorf("DefaultServeMux serves /metrics (pattern %q)", pattern)
	}
}

func TestServer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	m := New(Options{})
	m.SetConnections([]string{"ab"})
	srv, err := Listen("127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + srv.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `cygnet_ike_sas_established{connection="ab"} 0`) {
		t.Errorf("GET /metrics: %d\n%.500s", resp.StatusCode, body)
	}
	resp, err = client.Get("http://" + srv.Addr().String() + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET /debug/pprof/: %d, want 404 (nothing but /metrics is served)", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
	if _, err := Listen(srv.Addr().String(), m); err != nil {
		t.Errorf("address not released after shutdown: %v", err)
	}
}

func TestListenError(t *testing.T) {
	m := New(Options{})
	a, err := Listen("127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	defer a.ln.Close()
	_, err = Listen(a.Addr().String(), m)
	if err == nil || !strings.Contains(err.Error(), "metrics: listen on "+a.Addr().String()) {
		t.Errorf("second Listen on the same address: %v", err)
	}
}

func BenchmarkRecorder(b *testing.B) {
	m := New(Options{})
	m.SetConnections([]string{"ab"})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ExchangeDone(telemetry.ExchangeCreateChildSA, telemetry.RoleInitiator, telemetry.OutcomeOK)
			m.ChildSAInstalled("ab")
			m.NotifyReceived("TS_UNACCEPTABLE")
			m.KernelOp(telemetry.KernelAddSA, telemetry.ResultOK, time.Millisecond)
		}
	})
}

// value reads a single counter or gauge.
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	close(ch)
	var d dto.Metric
	if err := (<-ch).Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("%v is neither a counter nor a gauge", c)
	return 0
}

// count is the number of series a collector exports.
func count(c prometheus.Collector, _ ...string) int {
	ch := make(chan prometheus.Metric, 1024)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}
