package loadgen

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// A wrong PSK fails every IKE SA in IKE_AUTH, and the report says why (RFC 7296 §2.21.2).
func TestLoopbackWrongPSKCountsAuthenticationFailed(t *testing.T) {
	t.Parallel()
	r := newLoopbackResponder(t, nil)
	cfg := loopbackConfig(r, 20)
	cfg.PSK = []byte("not the responder's key")
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Established != 0 || rep.Failed != 20 || rep.Failures["AUTHENTICATION_FAILED"] != 20 {
		t.Fatalf("established %d failed %d by %v; want 0, 20 AUTHENTICATION_FAILED", rep.Established, rep.Failed, rep.Failures)
	}
	if rep.NotifiesReceived["AUTHENTICATION_FAILED"] != 20 {
		t.Errorf("notifies received %v, want 20 AUTHENTICATION_FAILED", rep.NotifiesReceived)
	}
	if st := r.Stats(); st.Established != 0 || st.Families != 0 {
		t.Errorf("responder: %+v; want nothing established or left", st)
	}
}

// An IKE proposal the responder does not accept ends in NO_PROPOSAL_CHOSEN, an
// unprotected notify the initiator acts on after its grace period (§2.21.1).
func TestLoopbackNoProposalChosen(t *testing.T) {
	t.Parallel()
	r := newLoopbackResponder(t, nil)
	cfg := loopbackConfig(r, 5)
	cfg.IKEProposals = "aes128-sha256-modp2048"
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 5 || rep.Failures["NO_PROPOSAL_CHOSEN"] != 5 {
		t.Fatalf("failed %d by %v; want 5 NO_PROPOSAL_CHOSEN", rep.Failed, rep.Failures)
	}
}

// Above its cookie threshold the responder answers N(COOKIE); initiators retry with it
// and still get through (RFC 7296 §2.6).
func TestLoopbackCookies(t *testing.T) {
	t.Parallel()
	r := newLoopbackResponder(t, func(c *ResponderConfig) { c.CookieThreshold = 1 })
	cfg := loopbackConfig(r, 100)
	cfg.MaxInFlight = 32
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Established != 100 || rep.Failed != 0 {
		t.Fatalf("established %d failed %d (%v)", rep.Established, rep.Failed, rep.Failures)
	}
	st := r.Stats()
	if st.CookiesSent == 0 || rep.CookiesSeen == 0 {
		t.Errorf("cookies sent %d, received %d; want both > 0 with 32 in flight over a threshold of 1", st.CookiesSent, rep.CookiesSeen)
	}
}

// Without -delete the load stops as a crashed client would: the responder keeps every
// IKE SA.
func TestLoopbackNoDeleteLeavesResponderHolding(t *testing.T) {
	t.Parallel()
	r := newLoopbackResponder(t, nil)
	cfg := loopbackConfig(r, 50)
	cfg.Delete = false
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Established != 50 || rep.Deleted != 0 {
		t.Fatalf("established %d deleted %d", rep.Established, rep.Deleted)
	}
	if st := r.Stats(); st.IKEUp != 50 {
		t.Errorf("responder holds %d IKE SAs, want 50", st.IKEUp)
	}
}

// A responder that does not answer: every IKE SA retransmits IKE_SA_INIT and gives up
// (RFC 7296 §2.1, §2.4), counted as a timeout.
func TestLoopbackSilentResponderTimesOut(t *testing.T) {
	t.Parallel()
	r := newLoopbackResponder(t, nil)
	cfg := loopbackConfig(r, 3)
	r.Close() // its port stays unanswered (nothing listens: ICMP errors are ignored)
	cfg.Retransmit.Timeout = 50 * time.Millisecond
	cfg.Retransmit.Tries = 2
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 3 || rep.Failures["timeout"] != 3 {
		t.Fatalf("failed %d by %v; want 3 timeouts", rep.Failed, rep.Failures)
	}
	if rep.RetransmitsBy["IKE_SA_INIT"] != 6 {
		t.Errorf("retransmissions %v, want 2 of IKE_SA_INIT per IKE SA", rep.RetransmitsBy)
	}
}

func TestParseAddrList(t *testing.T) {
	got, err := ParseAddrList("192.0.2.10, 192.0.2.20-192.0.2.22,198.51.100.0/30")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.10", "192.0.2.20", "192.0.2.21", "192.0.2.22",
		"198.51.100.0", "198.51.100.1", "198.51.100.2", "198.51.100.3"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	for _, bad := range []string{"", "192.0.2.5-192.0.2.1", "nonsense", "192.0.2.1-2001:db8::1"} {
		if _, err := ParseAddrList(bad); err == nil {
			t.Errorf("ParseAddrList(%q) succeeded", bad)
		}
	}
}

func TestAddrAdd(t *testing.T) {
	for _, c := range []struct {
		a    string
		n    uint64
		want string
	}{{"10.128.0.0", 0, "10.128.0.0"}, {"10.128.0.0", 255, "10.128.0.255"}, {"10.128.0.0", 256, "10.128.1.0"},
		{"10.128.255.255", 1, "10.129.0.0"}, {"10.128.0.0", 100000, "10.129.134.160"}, {"2001:db8::ff", 1, "2001:db8::100"}} {
		if got := addrAdd(netip.MustParseAddr(c.a), c.n); got.String() != c.want {
			t.Errorf("addrAdd(%s, %d) = %v, want %s", c.a, c.n, got, c.want)
		}
	}
}

// A flood of spoofed IKE_SA_INIT requests (raw socket, needs root) pushes the responder
// over its cookie threshold: it challenges instead of keeping state, the half-open count
// stays near the threshold, and legitimate clients still get through with cookies.
func TestLoopbackFloodCookiesEngage(t *testing.T) {
	t.Parallel()
	const threshold = 20
	r := newLoopbackResponder(t, func(c *ResponderConfig) { c.CookieThreshold = threshold })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	floodDone := make(chan *FloodReport, 1)
	go func() {
		rep, err := Flood(ctx, FloodConfig{Target: r.Addrs()[0], Spoof: netip.MustParsePrefix("127.77.0.0/16"),
			Rate: 3000, Duration: 3 * time.Second, IKEProposals: "aes256gcm16-prfsha256-x25519", Templates: 8})
		if err != nil {
			t.Error(err)
		}
		floodDone <- rep
	}()
	// Let the flood fill the half-open table first.
	var maxHalf int64
	for i := 0; i < 100 && r.Stats().CookiesSent == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	cfg := loopbackConfig(r, 100)
	cfg.Rate, cfg.MaxInFlight = 100, 16
	done := make(chan *Report, 1)
	go func() {
		rep, err := Run(ctx, cfg)
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	var rep *Report
	for rep == nil {
		select {
		case rep = <-done:
		case <-time.After(20 * time.Millisecond):
			maxHalf = max(maxHalf, r.Stats().HalfOpen)
		}
	}
	fr := <-floodDone
	if rep == nil || fr == nil {
		t.Fatal("no report")
	}
	st := r.Stats()
	t.Logf("flood %+v; legit: established %d, cookies received %d, p99 %.1f ms; responder: %+v, max half-open %d",
		*fr, rep.Established, rep.CookiesSeen, rep.Latency.P99ms, st, maxHalf)
	if fr.Sent == 0 {
		t.Fatal("the flood sent nothing")
	}
	if rep.Established != 100 || rep.Failed != 0 {
		t.Errorf("legitimate clients: %d established, %d failed (%v); want all 100 through", rep.Established, rep.Failed, rep.Failures)
	}
	if st.CookiesSent == 0 || rep.CookiesSeen == 0 {
		t.Errorf("cookies sent %d, legitimate clients received %d; want both > 0", st.CookiesSent, rep.CookiesSeen)
	}
	// Half-open state is created only while below the threshold, plus the legitimate
	// clients whose cookies let them past it (at most MaxInFlight at a time).
	if maxHalf > threshold+int64(cfg.MaxInFlight)+5 {
		t.Errorf("half-open IKE SAs reached %d, want about the threshold %d", maxHalf, threshold)
	}
}

// SetupTimeout ends the setup phase on its own: launching stops and the run goes on
// with what is up (here nothing: the responder is silent).
func TestLoopbackSetupTimeout(t *testing.T) {
	t.Parallel()
	r := newLoopbackResponder(t, nil)
	cfg := loopbackConfig(r, 1000)
	r.Close()
	cfg.MaxInFlight = 10
	cfg.Retransmit.Timeout = time.Minute
	cfg.SetupTimeout = 300 * time.Millisecond
	cfg.Delete = false
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stopped != "setup-timeout" || rep.Established != 0 || rep.Launched != 10 {
		t.Fatalf("stopped %q, launched %d, established %d; want setup-timeout, 10 (the in-flight bound), 0",
			rep.Stopped, rep.Launched, rep.Established)
	}
}

type panicWriter struct{}

func (panicWriter) Write([]byte) (int, error) { panic("injected") }

// A panic while stepping a family (here injected through the trace hook) ends that
// family alone, counted with the panic as its reason; the others are unaffected.
func TestLoopbackPanicEndsOneFamily(t *testing.T) {
	t.Parallel()
	r := newLoopbackResponder(t, nil)
	cfg := loopbackConfig(r, 5)
	cfg.Trace, cfg.TraceFirst = panicWriter{}, 1
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Established != 4 || rep.Failed != 1 || rep.Failures["core panic: injected"] != 1 {
		t.Fatalf("established %d failed %d by %v; want 4 and one core panic", rep.Established, rep.Failed, rep.Failures)
	}
}
