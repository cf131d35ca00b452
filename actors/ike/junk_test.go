package ike_test

import (
	"reflect"
	"testing"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
)

// capturePair establishes a pair, rekeys a Child SA and returns every datagram that
// went to A and to B, for use as fuzz seeds.
func capturePair(tb testing.TB) (*pair, [][]byte) {
	p := newPair(tb, 3)
	var seen [][]byte
	p.step(true, p.a, ike.InitiateChild{Name: "net"})
	for len(p.inflight) > 0 {
		seen = append(seen, p.inflight[0].data)
		p.run1()
	}
	p.step(false, p.b, ike.RekeyChild{Ref: installedRef(tb, p.b)})
	for len(p.inflight) > 0 {
		seen = append(seen, p.inflight[0].data)
		p.run1()
	}
	return p, seen
}

// run1 delivers one datagram.
func (p *pair) run1() {
	rest := p.inflight[1:]
	p.inflight = p.inflight[:1]
	p.run()
	p.inflight = append(rest, p.inflight...)
}

// FuzzJunk feeds arbitrary datagrams to an established family: it never panics, never
// ends, and its state does not change (DESIGN.md: junk changes nothing).
func FuzzJunk(f *testing.F) {
	_, seeds := capturePair(f)
	for _, s := range seeds {
		f.Add(s)
		if len(s) > 40 {
			m := append([]byte(nil), s...)
			m[len(m)-5] ^= 1
			f.Add(m)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, _ := capturePair(t)
		for _, fam := range []*ike.Family{p.a, p.b} {
			before := fam.Snapshot()
			effects := fam.Step(p.now, ike.PacketReceived{Local: addrA, Remote: addrB, Data: data})
			for _, e := range effects {
				switch e.(type) {
				case ike.Dropped, ike.Log, ike.NotifySeen, ike.SendDatagram, ike.ArmTimer:
				default:
					t.Fatalf("junk caused %v", e)
				}
			}
			if after := fam.Snapshot(); !reflect.DeepEqual(before, after) {
				t.Fatalf("junk changed the state:\n%+v\n%+v", before, after)
			}
		}
	})
}
