package sockets

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
)

// Protocol constants (RFC 3948).
const (
	// nonESPMarkerLen is the length of the zero Non-ESP Marker in front of an IKE
	// message on the NAT-T port (RFC 3948 §2.2).
	nonESPMarkerLen = 4
	// keepaliveOctet is the payload of a NAT-keepalive packet (RFC 3948 §2.3).
	keepaliveOctet = 0xff
	// ikeHeaderLen is the length of the IKE header (RFC 7296 §3.1); anything shorter is
	// not an IKE message.
	ikeHeaderLen = 28
)

// Implementation defaults.
const (
	DefaultKeepaliveInterval = 20 * time.Second // strongSwan charon.keep_alive
	defaultReopenBackoff     = 100 * time.Millisecond
	defaultMaxReopenBackoff  = 5 * time.Second
	defaultReadBuffer        = 4 << 20
	readBufferLen            = 65536
)

// Config says where to listen.
type Config struct {
	// Addrs are the local addresses to bind. An unspecified address (0.0.0.0 or ::)
	// binds a wildcard socket for that family. Empty means both wildcards.
	Addrs []netip.Addr
	// IKEPort and NATTPort are the ports to bind (500 and 4500 in production). 0 binds an
	// ephemeral port (tests); Bound reports it.
	IKEPort, NATTPort uint16
	// KernelESPInUDP sets UDP_ENCAP_ESPINUDP on the NAT-T sockets so that the kernel
	// decapsulates ESP-in-UDP itself (needed for NAT-T Child SAs on a real kernel).
	KernelESPInUDP bool
	// KeepaliveInterval between NAT keepalives on a registered flow; default 20 s.
	KeepaliveInterval time.Duration
	// ReadBuffer is the socket receive buffer in octets (SO_RCVBUF, forced past
	// net.core.rmem_max with SO_RCVBUFFORCE when the process may); default 4 MiB, so
	// that a burst of thousands of IKE_SA_INIT requests is not lost in the kernel.
	ReadBuffer int
	// ReopenBackoff and MaxReopenBackoff bound the delay between reopen attempts of a
	// failed socket; defaults 100 ms and 5 s.
	ReopenBackoff, MaxReopenBackoff time.Duration
	Log                             *zap.Logger
	Metrics                         telemetry.Recorder
}

// Handler receives each IKE message. It must not block; it returns false to refuse
// the datagram (the Set then releases and counts it). On true it owns d.
type Handler func(d *Datagram) bool

// Stats are a Set's counters since Open.
type Stats struct {
	Received       uint64 // IKE messages handed to the Handler
	Refused        uint64 // refused by the Handler (queue full)
	KeepalivesIn   uint64 // NAT keepalives received (and dropped)
	KeepalivesOut  uint64 // NAT keepalives sent
	NotOurs        uint64 // ESP on the NAT-T port (non-zero marker)
	Malformed      uint64 // too short to be an IKE message, or truncated
	Sent           uint64
	SendErrors     uint64
	ReadErrors     uint64
	Reopens        uint64
	KeepaliveFlows int
}

type counters struct {
	received, refused, keepalivesIn, keepalivesOut, notOurs, malformed atomic.Uint64
	sent, sendErrors, readErrors, reopens                              atomic.Uint64
}

// Set is the group of UDP sockets of one daemon. Its methods are safe for concurrent
// use.
type Set struct {
	cfg     Config
	handler Handler
	log     *zap.Logger
	metrics telemetry.Recorder

	sockets []*socket
	// exact maps a bound (address, port) to its socket; wildcard maps (is IPv4, port)
	// to the wildcard socket of that family.
	exact    map[netip.AddrPort]*socket
	wildcard map[wildKey]*socket

	ka *keepalives

	closing atomic.Bool
	stop    chan struct{}
	wg      sync.WaitGroup
	n       counters
}

type wildKey struct {
	v4   bool
	port uint16
}

// socket is one bound UDP socket and its reader.
type socket struct {
	set      *Set
	local    netip.AddrPort // as bound; the port is the real one after the first open
	natt     bool
	wildcard bool
	conn     atomic.Pointer[net.UDPConn]
}

// Open binds every socket of c and starts the readers. On error nothing stays open.
func Open(c Config, h Handler) (*Set, error) {
	if h == nil {
		return nil, errors.New("sockets: nil handler")
	}
	if c.KeepaliveInterval <= 0 {
		c.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if c.ReopenBackoff <= 0 {
		c.ReopenBackoff = defaultReopenBackoff
	}
	if c.MaxReopenBackoff < c.ReopenBackoff {
		c.MaxReopenBackoff = max(defaultMaxReopenBackoff, c.ReopenBackoff)
	}
	if c.ReadBuffer <= 0 {
		c.ReadBuffer = defaultReadBuffer
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	if c.Metrics == nil {
		c.Metrics = telemetry.Nop{}
	}
	addrs := c.Addrs
	if len(addrs) == 0 {
		addrs = []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}
	}
	s := &Set{
		cfg: c, handler: h, log: c.Log.Named("sockets"), metrics: c.Metrics,
		exact: map[netip.AddrPort]*socket{}, wildcard: map[wildKey]*socket{},
		stop: make(chan struct{}),
	}
	for _, a := range addrs {
		a = a.Unmap()
		for _, natt := range []bool{false, true} {
			port := c.IKEPort
			if natt {
				port = c.NATTPort
			}
			sk := &socket{set: s, local: netip.AddrPortFrom(a, port), natt: natt, wildcard: a.IsUnspecified()}
			conn, err := sk.open()
			if err != nil {
				s.closeAll()
				return nil, err
			}
			sk.conn.Store(conn)
			sk.local = netip.AddrPortFrom(a, uint16(conn.LocalAddr().(*net.UDPAddr).Port))
			s.sockets = append(s.sockets, sk)
			if sk.wildcard {
				s.wildcard[wildKey{a.Is4(), sk.local.Port()}] = sk
			} else {
				s.exact[sk.local] = sk
			}
		}
	}
	s.ka = newKeepalives(s, c.KeepaliveInterval)
	for _, sk := range s.sockets {
		s.wg.Add(1)
		go sk.read()
	}
	s.wg.Add(1)
	go s.ka.run()
	return s, nil
}

func (s *Set) closeAll() {
	for _, sk := range s.sockets {
		if c := sk.conn.Load(); c != nil {
			_ = c.Close()
		}
	}
}

// Close closes every socket and waits for the readers and the keepalive sender.
func (s *Set) Close() error {
	if !s.closing.CompareAndSwap(false, true) {
		return nil
	}
	close(s.stop)
	s.closeAll()
	s.wg.Wait()
	return nil
}

// Bound returns the bound local address of every socket: for each configured address
// its IKE socket then its NAT-T socket.
func (s *Set) Bound() []netip.AddrPort {
	out := make([]netip.AddrPort, len(s.sockets))
	for i, sk := range s.sockets {
		out[i] = sk.local
	}
	return out
}

// Ports returns the bound IKE and NAT-T ports (the same for every address: the first
// address's ephemeral ports are the ones reported when several were bound with 0).
func (s *Set) Ports() (ike, natt uint16) {
	for _, sk := range s.sockets {
		if sk.natt && natt == 0 {
			natt = sk.local.Port()
		}
		if !sk.natt && ike == 0 {
			ike = sk.local.Port()
		}
	}
	return ike, natt
}

// Stats returns the counters.
func (s *Set) Stats() Stats {
	return Stats{
		Received: s.n.received.Load(), Refused: s.n.refused.Load(),
		KeepalivesIn: s.n.keepalivesIn.Load(), KeepalivesOut: s.n.keepalivesOut.Load(),
		NotOurs: s.n.notOurs.Load(), Malformed: s.n.malformed.Load(),
		Sent: s.n.sent.Load(), SendErrors: s.n.sendErrors.Load(),
		ReadErrors: s.n.readErrors.Load(), Reopens: s.n.reopens.Load(),
		KeepaliveFlows: s.ka.len(),
	}
}

// lookup finds the socket to send from.
func (s *Set) lookup(local netip.AddrPort, remote netip.Addr) (*socket, error) {
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	if sk := s.exact[local]; sk != nil {
		return sk, nil
	}
	port := local.Port()
	if port == 0 {
		port, _ = s.Ports()
	}
	v4 := remote.Unmap().Is4()
	if sk := s.wildcard[wildKey{v4, port}]; sk != nil {
		return sk, nil
	}
	if !local.Addr().IsValid() || local.Addr().IsUnspecified() {
		// Any socket of the right family and port will do.
		for _, sk := range s.sockets {
			if sk.local.Port() == port && sk.local.Addr().Is4() == v4 {
				return sk, nil
			}
		}
	}
	return nil, fmt.Errorf("sockets: no socket bound to %v for a peer at %v", local, remote)
}

// IsNATT reports whether local is one of the NAT-T sockets (messages sent from it carry
// the non-ESP marker).
func (s *Set) IsNATT(local netip.AddrPort) bool {
	_, natt := s.Ports()
	return local.Port() == natt
}

var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, smallCap+nonESPMarkerLen); return &b }}

// Send sends one IKE message from local to remote. On the NAT-T port it prepends the
// non-ESP marker (RFC 3948 §2.2). msg is not retained.
func (s *Set) Send(local, remote netip.AddrPort, msg []byte) error {
	sk, err := s.lookup(local, remote.Addr())
	if err != nil {
		s.n.sendErrors.Add(1)
		return err
	}
	b := msg
	if sk.natt {
		bp := scratchPool.Get().(*[]byte)
		defer scratchPool.Put(bp)
		*bp = append(append((*bp)[:0], 0, 0, 0, 0), msg...)
		b = *bp
	}
	return sk.write(local.Addr(), remote, b)
}

// write sends b from the socket; src, when the socket is a wildcard and src is a
// specific address, is set as the source with IP_PKTINFO / IPV6_PKTINFO.
func (sk *socket) write(src netip.Addr, remote netip.AddrPort, b []byte) error {
	s := sk.set
	conn := sk.conn.Load()
	if conn == nil {
		s.n.sendErrors.Add(1)
		return fmt.Errorf("sockets: send from %v: socket is being reopened", sk.local)
	}
	var oob []byte
	if sk.wildcard && src.IsValid() && !src.IsUnspecified() {
		oob = pktinfo(src.Unmap())
	}
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	if _, _, err := conn.WriteMsgUDPAddrPort(b, oob, remote); err != nil {
		s.n.sendErrors.Add(1)
		return fmt.Errorf("sockets: send %d octets %v→%v: %w", len(b), sk.local, remote, err)
	}
	s.n.sent.Add(1)
	return nil
}

func pktinfo(src netip.Addr) []byte {
	if src.Is4() {
		return unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: src.As4()})
	}
	return unix.PktInfo6(&unix.Inet6Pktinfo{Addr: src.As16()})
}

// open binds the socket's address and port and sets its options.
func (sk *socket) open() (*net.UDPConn, error) {
	network := "udp4"
	if sk.local.Addr().Is6() {
		network = "udp6" // Go sets IPV6_V6ONLY for udp6: IPv4 has its own socket
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if sk.wildcard {
				if network == "udp4" {
					serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
				} else {
					serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
				}
				if serr != nil {
					return
				}
			}
			if sk.natt && sk.set.cfg.KernelESPInUDP {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_ENCAP, unix.UDP_ENCAP_ESPINUDP)
				if serr != nil {
					return
				}
			}
			// Best effort: SO_RCVBUFFORCE needs CAP_NET_ADMIN; SO_RCVBUF is capped by
			// net.core.rmem_max.
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, sk.set.cfg.ReadBuffer) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, sk.set.cfg.ReadBuffer)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), network, sk.local.String())
	if err != nil {
		return nil, fmt.Errorf("sockets: bind %s %v: %w", network, sk.local, err)
	}
	return pc.(*net.UDPConn), nil
}

// read is the socket's reader goroutine.
func (sk *socket) read() {
	s := sk.set
	defer s.wg.Done()
	buf := make([]byte, readBufferLen)
	oob := make([]byte, 128)
	for {
		conn := sk.conn.Load()
		n, oobn, flags, from, err := conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if s.closing.Load() {
				return
			}
			s.n.readErrors.Add(1)
			s.log.Error("socket read failed; reopening", zap.Stringer("local", sk.local), zap.Error(err))
			if !sk.reopen(conn) {
				return
			}
			continue
		}
		sk.receive(buf[:n], oob[:oobn], flags, from)
	}
}

// receive classifies one datagram and hands IKE messages to the handler.
func (sk *socket) receive(b, oob []byte, flags int, from netip.AddrPort) {
	s := sk.set
	if flags&unix.MSG_TRUNC != 0 {
		s.n.malformed.Add(1)
		s.metrics.PacketDropped(telemetry.DropMalformed)
		return
	}
	if sk.natt {
		if len(b) == 1 && b[0] == keepaliveOctet {
			s.n.keepalivesIn.Add(1)
			return
		}
		if len(b) < nonESPMarkerLen {
			s.n.malformed.Add(1)
			s.metrics.PacketDropped(telemetry.DropMalformed)
			return
		}
		if b[0]|b[1]|b[2]|b[3] != 0 {
			// ESP in UDP (RFC 3948 §2.1): the kernel's, not ours.
			s.n.notOurs.Add(1)
			return
		}
		b = b[nonESPMarkerLen:]
	}
	if len(b) < ikeHeaderLen {
		s.n.malformed.Add(1)
		s.metrics.PacketDropped(telemetry.DropMalformed)
		return
	}
	local := sk.local
	if sk.wildcard {
		if dst, ok := pktinfoDst(oob); ok {
			local = netip.AddrPortFrom(dst, local.Port())
		}
	}
	d := newDatagram(b)
	d.Local = local
	d.Remote = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	d.NATT = sk.natt
	// Counted before the handler sees it, so that whoever the handler hands it to finds
	// it counted; taken back if the handler refuses it.
	s.n.received.Add(1)
	if !s.handler(d) {
		s.n.received.Add(^uint64(0))
		d.Release()
		s.n.refused.Add(1)
		s.metrics.PacketDropped(telemetry.DropQueueFull)
		return
	}
}

// pktinfoDst extracts the destination address of a received datagram from its
// IP_PKTINFO / IPV6_PKTINFO control message.
func pktinfoDst(oob []byte) (netip.Addr, bool) {
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return netip.Addr{}, false
		}
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }: addr is
			// the header's destination address.
			return netip.AddrFrom4([4]byte(data[8:12])), true
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			return netip.AddrFrom16([16]byte(data[0:16])).Unmap(), true
		}
		oob = rest
	}
	return netip.Addr{}, false
}

// reopen replaces a failed connection with a new one on the same address and port,
// retrying with a back-off. It returns false when the Set is closing.
func (sk *socket) reopen(failed *net.UDPConn) bool {
	s := sk.set
	sk.conn.Store(nil)
	_ = failed.Close()
	delay := s.cfg.ReopenBackoff
	for {
		conn, err := sk.open()
		if err == nil {
			if s.closing.Load() {
				_ = conn.Close()
				return false
			}
			sk.conn.Store(conn)
			s.n.reopens.Add(1)
			s.log.Info("socket reopened", zap.Stringer("local", sk.local))
			// Close may have run between the check and the Store: make sure it is seen.
			if s.closing.Load() {
				_ = conn.Close()
				return false
			}
			return true
		}
		s.log.Warn("socket reopen failed", zap.Stringer("local", sk.local), zap.Error(err), zap.Duration("retry_in", delay))
		t := time.NewTimer(delay)
		select {
		case <-s.stop:
			t.Stop()
			return false
		case <-t.C:
		}
		delay = min(delay*2, s.cfg.MaxReopenBackoff)
	}
}
