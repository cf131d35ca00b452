package ike_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/proposal"
)

// This file is a lean two-family harness for unit tests and benchmarks: no kernel, no
// network model, Work run inline, installs acknowledged at once. The full simulator is
// package actors/sim.

type testEnv struct {
	rng  *rand.ChaCha8
	next uint32
}

func (e *testEnv) Rand() io.Reader { return e.rng }

func (e *testEnv) AllocSPI(ike.ChildRef) (uint32, error) {
	e.next++
	return e.next, nil
}

func newEnv(seed uint64, spiBase uint32) *testEnv {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	s[2] = byte(spiBase >> 24)
	return &testEnv{rng: rand.NewChaCha8(s), next: spiBase}
}

var (
	addrA = netip.MustParseAddrPort("192.0.2.1:500")
	addrB = netip.MustParseAddrPort("192.0.2.2:500")
)

func testConn(local, remote netip.AddrPort, lnet, rnet string) *ike.Connection {
	ikeProps, err := proposal.Parse(wire.ProtoIKE, "aes256gcm16-prfsha256-x25519")
	if err != nil {
		panic(err)
	}
	espProps, err := proposal.Parse(wire.ProtoESP, "aes256gcm16")
	if err != nil {
		panic(err)
	}
	return &ike.Connection{
		Name: "ab", LocalAddrs: []netip.Addr{local.Addr()}, RemoteAddrs: []netip.Addr{remote.Addr()},
		Proposals: ikeProps,
		Local:     ike.AuthConfig{ID: ike.IdentityFromAddr(local.Addr())},
		Remote:    ike.AuthConfig{ID: ike.IdentityFromAddr(remote.Addr())},
		PSK:       ike.Secret("bench-psk-0123456789abcdef"),
		Children: []ike.ChildConfig{{Name: "net",
			LocalTS:      []ike.TrafficSelector{ike.TSFromPrefix(netip.MustParsePrefix(lnet))},
			RemoteTS:     []ike.TrafficSelector{ike.TSFromPrefix(netip.MustParsePrefix(rnet))},
			ESPProposals: espProps}},
	}
}

// pair is an initiator family A and, once the first datagram arrives, a responder B.
type pair struct {
	tb       testing.TB
	now      time.Time
	a, b     *ike.Family
	envA     *testEnv
	envB     *testEnv
	connB    *ike.Connection
	inflight []dgram
	events   []string // notable effects, for assertions
	childUp  int
	done     int
}

type dgram struct {
	toB  bool
	data []byte
	from netip.AddrPort
	to   netip.AddrPort
}

func newPair(tb testing.TB, seed uint64) *pair {
	p := &pair{tb: tb, now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		envA: newEnv(seed, 0xa0000000), envB: newEnv(seed+1000, 0xb0000000),
		connB: testConn(addrB, addrA, "203.0.113.1/32", "198.51.100.1/32")}
	a, err := ike.NewInitiator(testConn(addrA, addrB, "198.51.100.1/32", "203.0.113.1/32"), p.envA, ike.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	p.a = a
	return p
}

// step feeds ev to f (A when toA) and handles the effects: datagrams queue, Work runs
// inline, installs succeed at once.
func (p *pair) step(isA bool, f *ike.Family, ev ike.Event) {
	effects := f.Step(p.now, ev)
	p.apply(isA, f, effects)
}

func (p *pair) apply(isA bool, f *ike.Family, effects []ike.Effect) {
	var feedback []ike.Event
	for _, e := range effects {
		switch e := e.(type) {
		case ike.SendDatagram:
			p.inflight = append(p.inflight, dgram{toB: isA, data: append([]byte(nil), e.Data...), from: e.Local, to: e.Remote})
		case ike.Work:
			feedback = append(feedback, ike.WorkDone{Token: e.Token, Result: e.Run()})
		case ike.InstallChild:
			feedback = append(feedback, ike.ChildInstalled{Ref: e.SA.Ref})
		case ike.ChildUp:
			p.childUp++
		case ike.FamilyDone:
			p.done++
			p.events = append(p.events, fmt.Sprintf("%v done %s", isA, e.Reason))
		case ike.Established:
			p.events = append(p.events, fmt.Sprintf("%v established", isA))
		}
	}
	for _, ev := range feedback {
		p.step(isA, f, ev)
	}
}

// run delivers datagrams until none is in flight.
func (p *pair) run() {
	for len(p.inflight) > 0 {
		d := p.inflight[0]
		p.inflight = p.inflight[1:]
		pkt := ike.PacketReceived{Local: d.to, Remote: d.from, Data: d.data}
		if !d.toB {
			p.step(true, p.a, pkt)
			continue
		}
		if p.b == nil {
			b, effects, err := ike.NewResponder(p.now, []*ike.Connection{p.connB}, p.envB, ike.Options{}, pkt)
			if err != nil {
				p.tb.Fatal(err)
			}
			p.b = b
			p.apply(false, b, effects)
			continue
		}
		p.step(false, p.b, pkt)
	}
}

// establish runs IKE_SA_INIT and IKE_AUTH with the first Child SA.
func (p *pair) establish() {
	p.step(true, p.a, ike.InitiateChild{Name: "net"})
	p.run()
	if p.childUp != 2 {
		p.tb.Fatalf("after establishing: %d ChildUp effects, want 2 (events %v)", p.childUp, p.events)
	}
}

func installedRef(tb testing.TB, f *ike.Family) ike.ChildRef {
	for _, c := range f.Snapshot().Children {
		if c.State == ike.ChildStateUp {
			return c.Ref
		}
	}
	tb.Fatal("no installed Child SA")
	return 0
}
