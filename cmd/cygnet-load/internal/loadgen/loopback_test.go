package loadgen

import (
	"context"
	"flag"
	"net/netip"
	"os"
	"testing"
	"time"
)

var traceFlag = flag.Int("trace", 0, "trace the first N IKE SAs")

// newLoopbackResponder starts an in-process responder on 127.0.0.1 (ephemeral ports).
func newLoopbackResponder(t *testing.T, mod func(*ResponderConfig)) *Responder {
	t.Helper()
	cfg := ResponderConfig{
		Listen:       []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")},
		IKEProposals: "aes256gcm16-prfsha256-x25519", ESPProposals: "aes256gcm16",
		PSK: []byte("loopback test key"), LocalID: "responder.cygnet.test",
		RemoteTS: []netip.Prefix{netip.MustParsePrefix("10.128.0.0/9")},
		Shards:   2, Workers: 2,
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := NewResponder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	t.Cleanup(r.Close)
	return r
}

func loopbackConfig(r *Responder, count int) Config {
	return Config{
		Target: r.Addrs()[0], TargetNATTPort: r.NATTAddrs()[0].Port(),
		Sources: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, PortsPerAddr: 4,
		IKEProposals: "aes256gcm16-prfsha256-x25519", ESPProposals: "aes256gcm16",
		PSK: []byte("loopback test key"), RemoteID: "responder.cygnet.test",
		Children: 1, LocalTSPool: netip.MustParsePrefix("10.128.0.0/9"),
		Count: count, MaxInFlight: 64, Delete: true, Duration: 60 * time.Second, DrainTimeout: 20 * time.Second,
		Shards: 2, Workers: 2,
	}
}

// TestLoopbackEstablishRekeyDelete runs the whole life of a load against the
// in-process responder: every IKE SA and Child SA comes up, rekeys happen while they
// are held, and every one is deleted at the end, on both sides.
func TestLoopbackEstablishRekeyDelete(t *testing.T) {
	r := newLoopbackResponder(t, nil)
	cfg := loopbackConfig(r, 300)
	cfg.Children = 2
	cfg.ChildRekey, cfg.ChildLifeTime = time.Second, time.Minute
	cfg.IKERekey, cfg.IKEOverTime = 2*time.Second, time.Minute
	cfg.Hold = 3 * time.Second
	if *traceFlag > 0 {
		cfg.Trace, cfg.TraceFirst = os.Stderr, *traceFlag
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Established != 300 || rep.Failed != 0 || rep.Launched != 300 {
		t.Fatalf("launched %d established %d failed %d (%v), want 300/300/0", rep.Launched, rep.Established, rep.Failed, rep.Failures)
	}
	if rep.Stopped != "done" {
		t.Errorf("stopped: %s", rep.Stopped)
	}
	if rep.ChildRekeys == 0 || rep.IKERekeys == 0 {
		t.Errorf("rekeys: IKE %d, Child %d; want both > 0 with 1 s / 2 s lifetimes held 3 s", rep.IKERekeys, rep.ChildRekeys)
	}
	if rep.Deleted != 300 || rep.LeftUp != 0 || rep.ChildrenUp != 0 {
		t.Errorf("after delete: deleted %d, IKE SAs up %d, Child SAs up %d; want 300, 0, 0", rep.Deleted, rep.LeftUp, rep.ChildrenUp)
	}
	if rep.Latency.Count != 300 || rep.Latency.P50ms <= 0 || rep.Latency.P99ms < rep.Latency.P50ms {
		t.Errorf("latency %+v", rep.Latency)
	}
	t.Logf("report: lost %d %v, child failures %v, drops %v, notifies %v, rekeys %d/%d", rep.Lost, rep.Losses, rep.ChildFailures, rep.Drops, rep.NotifiesReceived, rep.IKERekeys, rep.ChildRekeys)
	st := r.Stats()
	t.Logf("responder drops %v", r.e.stats.snapshot(r.e.stats.drops))
	if st.Established != 300 || st.IKEUp != 0 || st.ChildUp != 0 || st.Families != 0 {
		t.Errorf("responder after delete: %+v; want 300 established, nothing left", st)
	}
	if st.ChildRekeys == 0 {
		t.Errorf("responder saw no Child SA rekeys: %+v", st)
	}
}
