package sockets

import (
	"net/netip"
	"testing"
)

// BenchmarkReceive measures one datagram from a peer socket to the Handler over
// loopback, including the recycled buffer: allocs/op shows the reader's own cost.
func BenchmarkReceive(b *testing.B) {
	for _, natt := range []bool{false, true} {
		name := "ike"
		if natt {
			name = "natt"
		}
		b.Run(name, func(b *testing.B) {
			got := make(chan struct{}, 1)
			s, err := Open(Config{Addrs: []netip.Addr{lo4}}, func(d *Datagram) bool {
				d.Release()
				got <- struct{}{}
				return true
			})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ike, nattPort := s.Ports()
			dst := netip.AddrPortFrom(lo4, ike)
			msg := ikeMsg(500, 1)
			if natt {
				dst = netip.AddrPortFrom(lo4, nattPort)
				msg = append([]byte{0, 0, 0, 0}, msg...)
			}
			p := peerB(b)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := p.WriteToUDPAddrPort(msg, dst); err != nil {
					b.Fatal(err)
				}
				<-got
			}
		})
	}
}

// BenchmarkSend measures Send on the NAT-T port (marker prepended) to a sink.
func BenchmarkSend(b *testing.B) {
	s, err := Open(Config{Addrs: []netip.Addr{lo4}}, func(d *Datagram) bool { return false })
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	_, natt := s.Ports()
	p := peerB(b)
	to := p.LocalAddr().(interface{ String() string })
	dst := netip.MustParseAddrPort(to.String())
	msg := ikeMsg(500, 1)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Send(netip.AddrPortFrom(lo4, natt), dst, msg); err != nil {
			b.Fatal(err)
		}
	}
}
