package actors

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/actors/sockets"
	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/cygnet-ipsec/cygnet/kernel/memkernel"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/proposal"
)

// This file is the shell tests' harness: a Manager over an in-memory kernel, a fake
// UDP layer that records what is sent, and scripted cores in place of ike.Family, so
// that a test says exactly which effects the core emits and checks what the shells did
// with them (actor lifecycles, kernel tables, routes, metrics).

var (
	localIP  = netip.MustParseAddr("192.0.2.1")
	remoteIP = netip.MustParseAddr("192.0.2.2")
	localAP  = netip.AddrPortFrom(localIP, 500)
	remoteAP = netip.AddrPortFrom(remoteIP, 500)
)

// sent is one datagram the shells sent.
type sent struct {
	local, remote netip.AddrPort
	data          []byte
}

// fakeSender is the UDP layer of the shell tests.
type fakeSender struct {
	onSend func() // called after each Send (benchmarks)
	mu     sync.Mutex
	sent   []sent
	flows  map[[2]netip.AddrPort]int
}

func (s *fakeSender) Send(local, remote netip.AddrPort, msg []byte) error {
	s.mu.Lock()
	s.sent = append(s.sent, sent{local, remote, append([]byte(nil), msg...)})
	s.mu.Unlock()
	if s.onSend != nil {
		s.onSend()
	}
	return nil
}

func (s *fakeSender) KeepAlive(local, remote netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flows == nil {
		s.flows = map[[2]netip.AddrPort]int{}
	}
	s.flows[[2]netip.AddrPort{local, remote}]++
}

func (s *fakeSender) StopKeepAlive(local, remote netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flows[[2]netip.AddrPort{local, remote}]--
	if s.flows[[2]netip.AddrPort{local, remote}] == 0 {
		delete(s.flows, [2]netip.AddrPort{local, remote})
	}
}

func (s *fakeSender) datagrams() []sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

func (s *fakeSender) keepaliveFlows() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.flows)
}

// script is a scripted core's behaviour: the effects for each event.
type script func(c *fakeCore, now time.Time, ev ike.Event) []ike.Effect

// fakeCore is a scripted ike.Family. It records every event it gets.
type fakeCore struct {
	env  ike.Env
	h    *harness
	id   int
	run  script
	mu   sync.Mutex
	got  []ike.Event
	snap ike.Snapshot
}

func (c *fakeCore) Step(now time.Time, ev ike.Event) []ike.Effect {
	c.mu.Lock()
	c.got = append(c.got, ev)
	c.mu.Unlock()
	if c.run == nil {
		return nil
	}
	return c.run(c, now, ev)
}

func (c *fakeCore) Snapshot() ike.Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snap
}

// events returns the events received so far, as strings.
func (c *fakeCore) events() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.got))
	for i, e := range c.got {
		out[i] = e.String()
	}
	return out
}

func (c *fakeCore) has(ev string) bool { return slices.Contains(c.events(), ev) }

// fakeCores is the core factory of the harness.
type fakeCores struct {
	h *harness
}

func (f fakeCores) NewInitiator(cfg *ike.Connection, env ike.Env, opts ike.Options) (core, error) {
	return f.h.newCore(env), nil
}

func (f fakeCores) NewResponder(now time.Time, candidates []*ike.Connection, env ike.Env, opts ike.Options, first ike.PacketReceived) (core, []ike.Effect, error) {
	if f.h.refuseResponder {
		return nil, nil, fmt.Errorf("not an acceptable IKE_SA_INIT")
	}
	c := f.h.newCore(env)
	return c, c.Step(now, first), nil
}

type harness struct {
	t      testing.TB
	k      *memkernel.Kernel
	sender *fakeSender
	rec    *telemetry.Tally
	m      *Manager
	script script // for new cores

	refuseResponder bool

	mu    sync.Mutex
	cores []*fakeCore
}

func (h *harness) newCore(env ike.Env) *fakeCore {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := &fakeCore{env: env, h: h, id: len(h.cores), run: h.script}
	h.cores = append(h.cores, c)
	return c
}

func (h *harness) core(i int) *fakeCore {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i >= len(h.cores) {
		h.t.Fatalf("core %d not created (%d cores)", i, len(h.cores))
	}
	return h.cores[i]
}

func (h *harness) coreCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.cores)
}

// newHarness starts a Manager with a scripted core. sync selects protoactor's
// synchronous dispatcher (every Send runs the receiver inline).
func newHarness(t testing.TB, sync bool, s script, mod ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, k: memkernel.New(memkernel.Options{}), sender: &fakeSender{}, rec: &telemetry.Tally{}, script: s}
	cfg := DefaultConfig()
	cfg.Connections = []*ike.Connection{testConn("gw")}
	cfg.HalfOpenPerPeer = 0
	cfg.Chaos = true
	cfg.Workers = 2
	cfg.ShutdownGrace = 100 * time.Millisecond // scripted cores that ignore Terminate
	if sync {
		cfg.Dispatcher = actor.NewSynchronizedDispatcher(300)
	}
	for _, f := range mod {
		f(&cfg)
	}
	m, err := newManager(cfg, h.k, nil, h.rec, fakeCores{h}, h.sender)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	return h
}

// newHarnessSockets is newHarness with real UDP sockets on 127.0.0.1 (ephemeral ports)
// and goroutine dispatch.
func newHarnessSockets(t testing.TB, s script, mod ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, k: memkernel.New(memkernel.Options{}), sender: &fakeSender{}, rec: &telemetry.Tally{}, script: s}
	cfg := DefaultConfig()
	cfg.Connections = []*ike.Connection{testConn("gw")}
	cfg.Connections[0].RemoteAddrs = nil // any peer, on any address
	cfg.Connections[0].LocalAddrs = nil
	cfg.Sockets.Addrs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	cfg.Sockets.IKEPort, cfg.Sockets.NATTPort, cfg.Sockets.KernelESPInUDP = 0, 0, false
	cfg.HalfOpenPerPeer = 0
	cfg.ShutdownGrace = 100 * time.Millisecond
	for _, f := range mod {
		f(&cfg)
	}
	m, err := newManager(cfg, h.k, nil, h.rec, fakeCores{h}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	return h
}

// stop shuts the manager down and waits.
func (h *harness) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.m.Shutdown(ctx); err != nil {
		h.t.Fatalf("shutdown: %v", err)
	}
}

func testConn(name string) *ike.Connection {
	return &ike.Connection{
		Name:        name,
		LocalAddrs:  []netip.Addr{localIP},
		RemoteAddrs: []netip.Addr{remoteIP},
		Proposals:   proposal.Defaults(wire.ProtoIKE),
		Local:       ike.AuthConfig{ID: ike.IdentityFromAddr(localIP), Auth: ike.AuthPSK},
		Remote:      ike.AuthConfig{ID: ike.IdentityFromAddr(remoteIP), Auth: ike.AuthPSK},
		PSK:         ike.Secret("test-psk-0123456789"),
		Children: []ike.ChildConfig{{
			Name:         "net",
			ESPProposals: proposal.Defaults(wire.ProtoESP),
			LocalTS:      []ike.TrafficSelector{ike.TSFromPrefix(netip.MustParsePrefix("10.1.0.0/16"))},
			RemoteTS:     []ike.TrafficSelector{ike.TSFromPrefix(netip.MustParsePrefix("10.2.0.0/16"))},
		}},
	}
}

// ikeInit returns an IKE_SA_INIT request header (RFC 7296 §3.1) from initiator SPI
// spiI, padded with a Nonce payload so that COOKIE checks can read it.
func ikeInit(spiI uint64) []byte {
	nonce := make([]byte, 32)
	b := binary.BigEndian.AppendUint64(nil, spiI)
	b = binary.BigEndian.AppendUint64(b, 0)
	b = append(b, 40 /* Nonce */, 0x20, 34 /* IKE_SA_INIT */, 0x08 /* I */)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(28+4+len(nonce)))
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(nonce)))
	return append(b, nonce...)
}

// ikeMsg returns an IKE message header addressed to our SPI local (as responder: the
// peer is the original initiator, I flag set, our SPI is SPIr).
func ikeMsg(spiI, spiR uint64, msgID uint32) []byte {
	b := binary.BigEndian.AppendUint64(nil, spiI)
	b = binary.BigEndian.AppendUint64(b, spiR)
	b = append(b, 0, 0x20, 37 /* INFORMATIONAL */, 0x08)
	b = binary.BigEndian.AppendUint32(b, msgID)
	return binary.BigEndian.AppendUint32(b, 28)
}

// inject hands a datagram to the manager as a socket reader would.
func (h *harness) inject(data []byte) bool {
	return h.m.deliver(sockets.NewDatagram(localAP, remoteAP, data))
}

// eventually polls cond until it holds (the actors run on their own goroutines unless
// the test uses the synchronous dispatcher). It never asserts on how long that takes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// tables returns the kernel's SAD and SPD, larval SAs included.
func (h *harness) tables() kernel.Tables {
	tb, err := h.k.Snapshot(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return tb
}

// installed returns the SPIs of the installed (non-larval) SAs, sorted.
func (h *harness) installed() []kernel.SPI {
	var out []kernel.SPI
	for _, e := range h.tables().SAs {
		if !e.Larval {
			out = append(out, e.SA.SPI)
		}
	}
	slices.Sort(out)
	return out
}

func (h *harness) policies() int { return len(h.tables().Policies) }

// childSA describes a tunnel-mode Child SA 10.1/16 <=> 10.2/16 with AES-GCM.
func childSA(ref, replaces ike.ChildRef, in, out uint32) ike.ChildSA {
	key := func() []byte { return make([]byte, 20) }
	return ike.ChildSA{
		Ref: ref, Name: "net", Replaces: replaces, Mode: ike.ModeTunnel,
		Local: localIP, Remote: remoteIP,
		Inbound:      ike.ESPKeys{SPI: in, Encr: wire.EncrAESGCM16, EncrKeyLen: 128, EncrKey: key()},
		Outbound:     ike.ESPKeys{SPI: out, Encr: wire.EncrAESGCM16, EncrKeyLen: 128, EncrKey: key()},
		LocalTS:      []ike.TrafficSelector{ike.TSFromPrefix(netip.MustParsePrefix("10.1.0.0/16"))},
		RemoteTS:     []ike.TrafficSelector{ike.TSFromPrefix(netip.MustParsePrefix("10.2.0.0/16"))},
		ReplayWindow: 32,
	}
}

func joined(evs []string) string { return strings.Join(evs, "\n") }
