package actors

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/cygnet-ipsec/cygnet/kernel/memkernel"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/proposal"
)

// This file runs two complete cygnet instances in one process: the real protocol core,
// the real UDP sockets on loopback (127.0.0.1 and 127.0.0.2, ephemeral ports) and an
// in-memory kernel each. Instance "a" initiates; "b" responds.

type node struct {
	name string
	addr netip.Addr
	k    *memkernel.Kernel
	m    *Manager
	rec  *telemetry.Tally
}

type pairOptions struct {
	conns int // connections, each one IKE SA with two Child SAs ("net0", "net1")
	cfg   func(*Config)
	conn  func(*ike.Connection)
	log   *zap.Logger
	recs  [2]telemetry.Recorder // newPairWithKernels: the recorders of a and b (nil: none)
}

func newNode(t testing.TB, name string, addr netip.Addr, first kernel.SPI, o pairOptions) *node {
	t.Helper()
	n := &node{name: name, addr: addr, k: memkernel.New(memkernel.Options{FirstSPI: first}), rec: &telemetry.Tally{}}
	cfg := DefaultConfig()
	cfg.Sockets.Addrs = []netip.Addr{addr}
	cfg.Sockets.IKEPort, cfg.Sockets.NATTPort = 0, 0
	cfg.Sockets.KernelESPInUDP = false
	cfg.HalfOpenPerPeer = 0
	cfg.ShutdownGrace = 2 * time.Second
	cfg.Chaos = true
	cfg.StartActions = false // the tests initiate themselves
	if os.Getenv("CYGNET_TEST_POOLED") != "" {
		cfg.PooledTurns = true
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	log := o.log
	if log != nil {
		log = log.Named(name)
	}
	m, err := New(cfg, n.k, log, n.rec)
	if err != nil {
		t.Fatal(err)
	}
	n.m = m
	return n
}

// pairConn is a's connection i towards b. Each has its own identity and subnets
// (10.<i>.<child*64>/26 <=> 20.<i>.<child*64>/26), so that its Child SAs' policies
// never collide with another connection's.
func pairConn(i int, self, peer *node, o pairOptions) *ike.Connection {
	selfPort, _ := self.m.Ports()
	peerPort, _ := peer.m.Ports()
	subnet := func(first byte, child int) ike.TrafficSelector {
		return ike.TSFromPrefix(netip.PrefixFrom(netip.AddrFrom4([4]byte{first, byte(i >> 8), byte(i), byte(child * 64)}), 26))
	}
	c := &ike.Connection{
		Name:        fmt.Sprintf("c%04d", i),
		LocalAddrs:  []netip.Addr{self.addr},
		RemoteAddrs: []netip.Addr{peer.addr},
		LocalPort:   selfPort,
		RemotePort:  peerPort,
		Proposals:   mustParse(wire.ProtoIKE, "aes128gcm16-prfsha256-x25519"),
		Local:       ike.AuthConfig{ID: mustID(fmt.Sprintf("@%s-%04d", self.name, i)), Auth: ike.AuthPSK},
		Remote:      ike.AuthConfig{ID: mustID("@" + peer.name), Auth: ike.AuthPSK},
		PSK:         pairPSK,
		Retransmit:  ike.Retransmit{Timeout: time.Second, Base: 1.5, Tries: 5},
	}
	for ch := range 2 {
		c.Children = append(c.Children, ike.ChildConfig{
			Name:         fmt.Sprintf("net%d", ch),
			LocalTS:      []ike.TrafficSelector{subnet(10, ch)},
			RemoteTS:     []ike.TrafficSelector{subnet(20, ch)},
			ESPProposals: mustParse(wire.ProtoESP, "aes128gcm16"),
			StartAction:  ike.ActionStart,
		})
	}
	if o.conn != nil {
		o.conn(c)
	}
	return c
}

// concentratorConn is b's single connection: any peer identity with the shared key,
// one child definition whose wide selectors (20/8 <=> 10/8) each initiator narrows to its
// own subnets (RFC 7296 §2.9) — a VPN concentrator's configuration.
func concentratorConn(self, peer *node, o pairOptions) *ike.Connection {
	selfPort, _ := self.m.Ports()
	peerPort, _ := peer.m.Ports()
	c := &ike.Connection{
		Name:        "concentrator",
		LocalAddrs:  []netip.Addr{self.addr},
		RemoteAddrs: []netip.Addr{peer.addr},
		LocalPort:   selfPort,
		RemotePort:  peerPort,
		Proposals:   mustParse(wire.ProtoIKE, "aes128gcm16-prfsha256-x25519"),
		Local:       ike.AuthConfig{ID: mustID("@" + self.name), Auth: ike.AuthPSK},
		Remote:      ike.AuthConfig{ID: mustID("%any"), Auth: ike.AuthPSK},
		PSK:         pairPSK,
		Retransmit:  ike.Retransmit{Timeout: time.Second, Base: 1.5, Tries: 5},
		Children: []ike.ChildConfig{{
			Name:         "net",
			LocalTS:      []ike.TrafficSelector{ike.TSFromPrefix(netip.MustParsePrefix("20.0.0.0/8"))},
			RemoteTS:     []ike.TrafficSelector{ike.TSFromPrefix(netip.MustParsePrefix("10.0.0.0/8"))},
			ESPProposals: mustParse(wire.ProtoESP, "aes128gcm16"),
		}},
	}
	if o.conn != nil {
		o.conn(c)
	}
	return c
}

var pairPSK = ike.Secret("a pre-shared key for the loopback pair")

func mustID(s string) ike.Identity {
	id, err := ike.ParseIdentity(s)
	if err != nil {
		panic(err)
	}
	return id
}

func mustParse(p wire.ProtocolID, s string) []wire.Proposal {
	props, err := proposal.Parse(p, s)
	if err != nil {
		panic(err)
	}
	return props
}

func newPair(t testing.TB, o pairOptions) (a, b *node) {
	t.Helper()
	a = newNode(t, "a", netip.MustParseAddr("127.0.0.1"), 0xa0000001, o)
	b = newNode(t, "b", netip.MustParseAddr("127.0.0.2"), 0xb0000001, o)
	var ac []*ike.Connection
	for i := range o.conns {
		ac = append(ac, pairConn(i, a, b, o))
	}
	ctx := context.Background()
	if err := a.m.SetConnections(ctx, ac); err != nil {
		t.Fatal(err)
	}
	if err := b.m.SetConnections(ctx, []*ike.Connection{concentratorConn(b, a, o)}); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func (n *node) shutdown(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.m.Shutdown(ctx); err != nil {
		t.Errorf("%s: shutdown: %v", n.name, err)
	}
}

// state summarises a node's listing: established IKE SAs, and installed Child SAs.
type state struct {
	families, established, children int
	spis                            map[string]ike.SPI // conn → current SPIi
	childSPIs                       map[string]uint32  // conn/child → inbound SPI
}

func (n *node) state() state {
	s := state{spis: map[string]ike.SPI{}, childSPIs: map[string]uint32{}}
	for _, sa := range n.m.ListSAs() {
		s.families++
		if len(sa.IKE) > 0 && sa.IKE[0].State == ike.IKEStateEstablished {
			s.established++
			s.spis[sa.Conn] = sa.IKE[0].SPIi
		}
		for _, c := range sa.Children {
			if c.State == ike.ChildStateUp {
				s.children++
				s.childSPIs[sa.Conn+"/"+c.Name] = c.SPIIn
			}
		}
	}
	return s
}

// waitState polls both nodes until cond holds for both; the wait is bounded only to
// turn a hang into a failure, never asserted on.
func waitState(t testing.TB, what string, limit time.Duration, cond func(s state) bool, nodes ...*node) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok := true
		for _, n := range nodes {
			if !cond(n.state()) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			for _, n := range nodes {
				s := n.state()
				t.Logf("%s: families %d established %d children %d; stats %+v\n%s", n.name, s.families, s.established, s.children, n.m.Stats(), n.rec)
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kernelEmpty reports whether a node's kernel holds no SA (larval included) and no
// policy.
func (n *node) kernelEmpty(t testing.TB) bool {
	tb, err := n.k.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(tb.SAs) == 0 && len(tb.Policies) == 0
}

// runLifecycle establishes, rekeys (IKE SAs and Child SAs, from both ends) and deletes
// o.conns IKE SAs with two Child SAs each, and checks both kernels end empty.
func runLifecycle(t *testing.T, o pairOptions) {
	a, b := newPair(t, o)
	defer b.shutdown(t)
	defer a.shutdown(t)
	n := o.conns
	limit := 2*time.Minute + time.Duration(n)*50*time.Millisecond
	ctx := context.Background()

	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.m.Initiate(ctx, fmt.Sprintf("c%04d", i), ""); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	up := func(s state) bool { return s.established == n && s.children == 2*n && s.families == n }
	waitState(t, "every IKE SA and Child SA up on both ends", limit, up, a, b)
	t.Logf("%d IKE SAs with %d Child SAs established in %v", n, 2*n, time.Since(start))
	for _, x := range []*node{a, b} {
		tb, _ := x.k.Snapshot(ctx)
		if len(tb.SAs) != 4*n || len(tb.Policies) != 6*n {
			t.Fatalf("%s kernel: %d SAs, %d policies; want %d and %d", x.name, len(tb.SAs), len(tb.Policies), 4*n, 6*n)
		}
	}

	// IKE SA rekey, initiated by a; Child SA rekeys: net0 by a, net1 by b.
	before := a.state()
	start = time.Now()
	for i := range n {
		if _, err := a.m.Rekey(Target{Conn: fmt.Sprintf("c%04d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	rekeyed := func(s state) bool {
		if !up(s) {
			return false
		}
		for conn, spi := range before.spis {
			if s.spis[conn] == spi {
				return false
			}
		}
		return true
	}
	waitState(t, "every IKE SA rekeyed", limit, rekeyed, a)
	waitState(t, "every IKE SA rekeyed (responder)", limit, up, b)
	t.Logf("%d IKE SA rekeys in %v", n, time.Since(start))

	// Child SA rekeys: net0 of every connection by a, then every Child SA by b.
	rekeyedSince := func(before state, which func(key string) bool) func(state) bool {
		return func(s state) bool {
			if !up(s) {
				return false
			}
			for k, spi := range before.childSPIs {
				if which(k) && s.childSPIs[k] == spi {
					return false
				}
			}
			return true
		}
	}
	before = a.state()
	start = time.Now()
	for i := range n {
		if _, err := a.m.Rekey(Target{Conn: fmt.Sprintf("c%04d", i), Child: "net0"}); err != nil {
			t.Fatal(err)
		}
	}
	waitState(t, "net0 rekeyed by a", limit, rekeyedSince(before, func(k string) bool { return strings.HasSuffix(k, "/net0") }), a)
	t.Logf("%d Child SA rekeys by the initiator in %v", n, time.Since(start))
	before = a.state()
	start = time.Now()
	if got, err := b.m.Rekey(Target{Conn: "concentrator", Child: "net"}); err != nil || got != 2*n {
		t.Fatalf("b rekeyed %d Child SAs (%v), want %d", got, err, 2*n)
	}
	waitState(t, "every Child SA rekeyed by b", limit, rekeyedSince(before, func(string) bool { return true }), a)
	t.Logf("%d Child SA rekeys by the responder in %v", 2*n, time.Since(start))
	for _, x := range []*node{a, b} {
		waitState(t, "old Child SAs gone from "+x.name+"'s kernel", limit, func(state) bool {
			tb, _ := x.k.Snapshot(ctx)
			return len(tb.SAs) == 4*n && len(tb.Policies) == 6*n
		}, x)
	}

	// Delete everything from a's end.
	start = time.Now()
	for i := range n {
		if _, err := a.m.Terminate(Target{Conn: fmt.Sprintf("c%04d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	gone := func(s state) bool { return s.families == 0 }
	waitState(t, "every family gone on both ends", limit, gone, a, b)
	for _, x := range []*node{a, b} {
		x.m.janitor.wait()
		if !x.kernelEmpty(t) {
			tb, _ := x.k.Snapshot(ctx)
			t.Fatalf("%s's kernel is not empty:\n%v", x.name, tb)
		}
		if x.m.Stats().HalfOpen != 0 {
			t.Fatalf("%s: %d half-open left", x.name, x.m.Stats().HalfOpen)
		}
	}
	t.Logf("%d IKE SAs deleted in %v", n, time.Since(start))
}

func TestPairLifecycleSmall(t *testing.T) {
	runLifecycle(t, pairOptions{conns: 3})
}

// TestPairLifecycle1000 is the "must show": two instances establish, rekey and
// delete 1,000 IKE SAs with 2 Child SAs each over loopback, and both in-memory kernels
// end empty.
func TestPairLifecycle1000(t *testing.T) {
	runLifecycle(t, pairOptions{conns: 1000})
}
