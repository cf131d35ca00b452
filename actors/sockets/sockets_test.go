package sockets

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	lo4 = netip.MustParseAddr("127.0.0.1")
	lo6 = netip.MustParseAddr("::1")
)

// ikeMsg returns a syntactically plausible IKE message of n octets (n ≥ 28) whose
// content identifies it.
func ikeMsg(n int, tag byte) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint64(b, 0x1122334455667700|uint64(tag))
	b[17] = 0x20
	binary.BigEndian.PutUint32(b[24:], uint32(n))
	for i := 28; i < n; i++ {
		b[i] = tag
	}
	return b
}

// received collects what the handler got.
type received chan *Datagram

func (r received) handler(d *Datagram) bool {
	select {
	case r <- d:
		return true
	default:
		return false
	}
}

func (r received) next(t *testing.T) *Datagram {
	t.Helper()
	select {
	case d := <-r:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no datagram reached the handler")
		return nil
	}
}

func (r received) none(t *testing.T, s *Set, what string) {
	t.Helper()
	select {
	case d := <-r:
		t.Fatalf("%s reached the handler: %v→%v %x", what, d.Remote, d.Local, d.Data)
	default:
	}
}

func open(t *testing.T, c Config, h Handler) *Set {
	t.Helper()
	s, err := Open(c, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func peer(t testing.TB, a netip.Addr) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readFrom(t *testing.T, c *net.UDPConn) ([]byte, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 65536)
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("peer read: %v", err)
	}
	return buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
}

func addrPort(c *net.UDPConn) netip.AddrPort {
	ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func TestIKEPortRoundTrip(t *testing.T) {
	for _, a := range []netip.Addr{lo4, lo6} {
		t.Run(a.String(), func(t *testing.T) {
			r := make(received, 4)
			s := open(t, Config{Addrs: []netip.Addr{a}}, r.handler)
			ike, natt := s.Ports()
			if ike == 0 || natt == 0 || ike == natt {
				t.Fatalf("ports %d/%d", ike, natt)
			}
			p := peer(t, a)
			msg := ikeMsg(300, 1)
			if _, err := p.WriteToUDPAddrPort(msg, netip.AddrPortFrom(a, ike)); err != nil {
				t.Fatal(err)
			}
			d := r.next(t)
			if !bytes.Equal(d.Data, msg) || d.Local != netip.AddrPortFrom(a, ike) || d.Remote != addrPort(p) || d.NATT {
				t.Fatalf("got %v→%v natt=%v %d octets", d.Remote, d.Local, d.NATT, len(d.Data))
			}
			d.Release()

			reply := ikeMsg(64, 2)
			if err := s.Send(netip.AddrPortFrom(a, ike), addrPort(p), reply); err != nil {
				t.Fatal(err)
			}
			got, from := readFrom(t, p)
			if !bytes.Equal(got, reply) || from != netip.AddrPortFrom(a, ike) {
				t.Fatalf("peer got %x from %v", got, from)
			}
		})
	}
}

func TestNATTPortMarkerKeepaliveAndESP(t *testing.T) {
	r := make(received, 4)
	s := open(t, Config{Addrs: []netip.Addr{lo4}}, r.handler)
	_, natt := s.Ports()
	local := netip.AddrPortFrom(lo4, natt)
	p := peer(t, lo4)
	send := func(b []byte) {
		t.Helper()
		if _, err := p.WriteToUDPAddrPort(b, local); err != nil {
			t.Fatal(err)
		}
	}
	msg := ikeMsg(100, 3)

	// Junk first, then an IKE message: the handler must see only the IKE message, and
	// as the datagrams arrive in order on loopback, the junk was classified by then.
	send([]byte{0xff})                                    // NAT keepalive
	send(append([]byte{0, 0, 1, 2}, ikeMsg(100, 9)...))   // ESP: SPI 0x00000102
	send([]byte{0, 0})                                    // too short for the marker
	send(append([]byte{0, 0, 0, 0}, make([]byte, 20)...)) // marker, then too short for IKE
	send(append([]byte{0, 0, 0, 0}, msg...))
	d := r.next(t)
	if !bytes.Equal(d.Data, msg) || !d.NATT || d.Local != local {
		t.Fatalf("got natt=%v local=%v %x", d.NATT, d.Local, d.Data)
	}
	d.Release()
	r.none(t, s, "junk")
	st := s.Stats()
	if st.KeepalivesIn != 1 || st.NotOurs != 1 || st.Malformed != 2 || st.Received != 1 {
		t.Fatalf("stats %+v", st)
	}

	// Sending from the NAT-T port prepends the marker.
	if err := s.Send(local, addrPort(p), msg); err != nil {
		t.Fatal(err)
	}
	got, _ := readFrom(t, p)
	if !bytes.Equal(got, append([]byte{0, 0, 0, 0}, msg...)) {
		t.Fatalf("peer got %x", got[:8])
	}
}

func TestRefusedDatagramsAreCounted(t *testing.T) {
	s := open(t, Config{Addrs: []netip.Addr{lo4}}, func(*Datagram) bool { return false })
	ike, _ := s.Ports()
	p := peer(t, lo4)
	for range 3 {
		p.WriteToUDPAddrPort(ikeMsg(40, 1), netip.AddrPortFrom(lo4, ike))
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Refused < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", s.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if st := s.Stats(); st.Received != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWildcardSocketKnowsItsLocalAddressAndSendsFromIt(t *testing.T) {
	r := make(received, 4)
	s := open(t, Config{Addrs: []netip.Addr{netip.IPv4Unspecified()}}, r.handler)
	ike, _ := s.Ports()
	// 127.0.0.2 is local on Linux loopback (127/8) without configuration.
	lo2 := netip.MustParseAddr("127.0.0.2")
	p := peer(t, lo4)
	p.WriteToUDPAddrPort(ikeMsg(40, 1), netip.AddrPortFrom(lo2, ike))
	d := r.next(t)
	if d.Local != netip.AddrPortFrom(lo2, ike) {
		t.Fatalf("local %v, want %v", d.Local, netip.AddrPortFrom(lo2, ike))
	}
	d.Release()
	if err := s.Send(netip.AddrPortFrom(lo2, ike), addrPort(p), ikeMsg(40, 2)); err != nil {
		t.Fatal(err)
	}
	if _, from := readFrom(t, p); from != netip.AddrPortFrom(lo2, ike) {
		t.Fatalf("reply from %v, want %v", from, netip.AddrPortFrom(lo2, ike))
	}
}

func TestKeepalivesOnRegisteredFlows(t *testing.T) {
	s := open(t, Config{Addrs: []netip.Addr{lo4}, KeepaliveInterval: 100 * time.Millisecond}, func(*Datagram) bool { return false })
	_, natt := s.Ports()
	local := netip.AddrPortFrom(lo4, natt)
	p := peer(t, lo4)
	s.KeepAlive(local, addrPort(p))
	s.KeepAlive(local, addrPort(p)) // a second family on the same flow
	for range 2 {
		got, from := readFrom(t, p)
		if !bytes.Equal(got, []byte{0xff}) || from != local {
			t.Fatalf("peer got %x from %v", got, from)
		}
	}
	s.StopKeepAlive(local, addrPort(p))
	if n := s.Stats().KeepaliveFlows; n != 1 {
		t.Fatalf("%d flows after one of two StopKeepAlive", n)
	}
	s.StopKeepAlive(local, addrPort(p))
	if n := s.Stats().KeepaliveFlows; n != 0 {
		t.Fatalf("%d flows after StopKeepAlive", n)
	}
}

func TestFailedSocketIsReopenedOnTheSamePort(t *testing.T) {
	r := make(received, 4)
	s := open(t, Config{Addrs: []netip.Addr{lo4}, ReopenBackoff: time.Millisecond}, r.handler)
	ike, _ := s.Ports()
	sk := s.exact[netip.AddrPortFrom(lo4, ike)]
	// Break the socket under the reader, as a failing device would.
	sk.conn.Load().Close()
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Reopens < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("not reopened: %+v", s.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	p := peer(t, lo4)
	msg := ikeMsg(50, 5)
	p.WriteToUDPAddrPort(msg, netip.AddrPortFrom(lo4, ike))
	d := r.next(t)
	if !bytes.Equal(d.Data, msg) {
		t.Fatal("wrong datagram after reopen")
	}
	d.Release()
	if st := s.Stats(); st.ReadErrors != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDatagramReleaseRecycles(t *testing.T) {
	d := NewDatagram(netip.AddrPort{}, netip.AddrPort{}, ikeMsg(40, 1))
	d.Release()
	d.Release() // no-op
	if d.Data != nil {
		t.Fatal("Data kept after Release")
	}
	big := NewDatagram(netip.AddrPort{}, netip.AddrPort{}, make([]byte, smallCap+1))
	if len(big.Data) != smallCap+1 {
		t.Fatal("large datagram truncated")
	}
	big.Release()
}

func peerB(b *testing.B) *net.UDPConn { return peer(b, lo4) }
