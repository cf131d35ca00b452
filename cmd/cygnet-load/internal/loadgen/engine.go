package loadgen

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/wire"
)

// engine is what the initiator and the responder share: UDP sockets, event loops
// (shards) that own the families, a worker pool for ike.Work (key-exchange math), and
// the table that routes a datagram to its family by our IKE SPI (RFC 7296 §2.2).
//
// Concurrency: a family belongs to one shard and is stepped only by that shard's
// goroutine. Socket readers and pool workers hand their results to the owning shard
// through its channel; nothing else touches a family.
type engine struct {
	shards   []*shard
	sockets  map[netip.AddrPort]*socket // read-only once the loops run
	routes   spiTable
	work     chan job
	stats    *Stats
	resp     *Responder // set when the engine answers (responder role)
	ini      *initiator // set when the engine initiates
	hashSeed maphash.Seed

	// listenUDP opens a socket (net.ListenUDP unless a caller, e.g. a test that
	// opens sockets inside a network namespace, replaces it).
	listenUDP func(network string, laddr *net.UDPAddr) (*net.UDPConn, error)

	done     chan struct{} // closed to stop every goroutine
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// socket is one bound UDP socket. natt sockets carry the 4-octet non-ESP marker in
// front of every IKE message (RFC 3948 §2.2).
type socket struct {
	conn  *net.UDPConn
	local netip.AddrPort
	natt  bool
	owner *shard // the shard that receives what arrives on it (initiator); nil = by SPI
}

// job is one ike.Work effect to run off the family's turn.
type job struct {
	fm *fam
	w  ike.Work
}

// fam is a family and what the engine keeps beside it.
type fam struct {
	f        *ike.Family
	sh       *shard
	id       uint64
	dead     bool
	timerAt  time.Time
	timerGen uint64
	heapIdx  int
	spis     []ike.SPI // routed local IKE SPIs
	trace    func(ike.Event, []ike.Effect)

	// initiator
	n           int
	started     time.Time
	settled     bool // established or failed (the in-flight token went back)
	established bool
	terminating bool // we sent Terminate

	// responder
	half   halfKey
	isHalf bool // counted in the half-open total
}

type halfKey struct {
	remote netip.AddrPort
	spiI   ike.SPI
}

type msgKind uint8

const (
	msgPacket msgKind = iota + 1 // a datagram for fm
	msgNewSA                     // responder: an IKE_SA_INIT request without SPIr
	msgWork                      // a Work result for fm
	msgFunc                      // run fn on the shard
)

type msg struct {
	kind msgKind
	fm   *fam
	pkt  ike.PacketReceived
	spiI ike.SPI
	done ike.WorkDone
	fn   func(*shard)
}

// shard is one event loop: its families, their timers, its randomness.
type shard struct {
	e      *engine
	id     int
	in     chan msg
	timers timerHeap
	fams   map[*fam]struct{}
	rng    *rand.ChaCha8
	nextID uint64
	buf    []byte // scratch for the non-ESP marker

	// responder
	halfOpen map[halfKey]*fam
	cookies  *ike.Cookies
}

// shardQueue is the capacity of a shard's input channel.
const shardQueue = 8192

func newEngine(shards, workers int, stats *Stats) (*engine, error) {
	if shards <= 0 {
		shards = runtime.GOMAXPROCS(0)
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	e := &engine{sockets: map[netip.AddrPort]*socket{}, work: make(chan job, 65536), stats: stats,
		done: make(chan struct{}), hashSeed: maphash.MakeSeed(), listenUDP: net.ListenUDP}
	e.routes.init()
	for i := range shards {
		var seed [32]byte
		if _, err := crand.Read(seed[:]); err != nil {
			return nil, fmt.Errorf("seed shard %d: %w", i, err)
		}
		e.shards = append(e.shards, &shard{e: e, id: i, in: make(chan msg, shardQueue), fams: map[*fam]struct{}{},
			rng: rand.NewChaCha8(seed), halfOpen: map[halfKey]*fam{}})
	}
	for range workers {
		e.wg.Add(1)
		go e.worker()
	}
	return e, nil
}

// listen binds a UDP socket on local (port 0: an ephemeral port) and returns its
// actual address.
func (e *engine) listen(local netip.AddrPort, natt bool, owner *shard) (*socket, error) {
	network := "udp4"
	if local.Addr().Is6() {
		network = "udp6"
	}
	conn, err := e.listenUDP(network, net.UDPAddrFromAddrPort(local))
	if err != nil {
		return nil, fmt.Errorf("listen %v: %w", local, err)
	}
	setBuffers(conn)
	la := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	la = netip.AddrPortFrom(la.Addr().Unmap(), la.Port())
	s := &socket{conn: conn, local: la, natt: natt, owner: owner}
	e.sockets[la] = s
	return s, nil
}

// setBuffers asks for large socket buffers: a burst of thousands of handshakes must
// not be lost in the socket. SO_RCVBUFFORCE works for root beyond rmem_max; otherwise
// the ordinary (capped) request stands.
func setBuffers(conn *net.UDPConn) {
	const size = 8 << 20
	_ = conn.SetReadBuffer(size)
	_ = conn.SetWriteBuffer(size)
	if raw, err := conn.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, size)
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, size)
		})
	}
}

// start runs the shards and the socket readers.
func (e *engine) start() {
	for _, sh := range e.shards {
		e.wg.Add(1)
		go sh.loop()
	}
	for _, s := range e.sockets {
		e.wg.Add(1)
		go e.readLoop(s)
	}
}

// stop ends every goroutine and closes the sockets. It returns when they are gone.
func (e *engine) stop() {
	e.stopOnce.Do(func() {
		close(e.done)
		for _, s := range e.sockets {
			_ = s.conn.Close()
		}
	})
	e.wg.Wait()
}

// post hands m to sh unless the engine is stopping.
func (e *engine) post(sh *shard, m msg) bool {
	select {
	case sh.in <- m:
		return true
	case <-e.done:
		return false
	}
}

func (e *engine) worker() {
	defer e.wg.Done()
	for {
		select {
		case j := <-e.work:
			res := j.w.Run()
			e.post(j.fm.sh, msg{kind: msgWork, fm: j.fm, done: ike.WorkDone{Token: j.w.Token, Result: res}})
		case <-e.done:
			return
		}
	}
}

// readLoop receives datagrams on s and routes them: by our IKE SPI to the owning
// family's shard, or (responder) a new IKE_SA_INIT request to the shard its
// (address, SPIi) hashes to.
func (e *engine) readLoop(s *socket) {
	defer e.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-e.done:
				return
			default:
				continue
			}
		}
		data := buf[:n]
		if s.natt {
			// RFC 3948 §2.2: IKE behind a non-ESP marker; a keepalive is one 0xFF
			// octet, anything else is ESP, which a load generator does not carry.
			if n < 4 || binary.BigEndian.Uint32(data) != 0 {
				continue
			}
			data = data[4:]
		}
		p, err := ike.Peek(data)
		if err != nil {
			e.stats.Dropped.Add(1)
			e.stats.count(e.stats.drops, string(telemetry.DropMalformed))
			continue
		}
		pkt := ike.PacketReceived{Local: s.local, Remote: netip.AddrPortFrom(from.Addr().Unmap(), from.Port()),
			Data: append([]byte(nil), data...)}
		if p.Exchange == exchangeIKESAInit && p.Response && p.SPIr == 0 && isCookieChallenge(data) {
			e.stats.CookiesSeen.Add(1)
		}
		switch p.Kind {
		case ike.PeekRoute:
			fm := e.routes.get(p.LocalSPI)
			if fm == nil {
				e.stats.Dropped.Add(1)
				e.stats.count(e.stats.drops, string(telemetry.DropUnknownSPI))
				continue
			}
			if !e.post(fm.sh, msg{kind: msgPacket, fm: fm, pkt: pkt}) {
				return
			}
		case ike.PeekNewSA:
			if e.resp == nil {
				e.stats.Dropped.Add(1)
				e.stats.count(e.stats.drops, string(telemetry.DropUnexpected))
				continue
			}
			sh := e.shards[e.hashHalf(halfKey{pkt.Remote, p.SPIi})%uint64(len(e.shards))]
			if !e.post(sh, msg{kind: msgNewSA, pkt: pkt, spiI: p.SPIi}) {
				return
			}
		}
	}
}

// exchangeIKESAInit is the IKE_SA_INIT exchange type (RFC 7296 §3.1).
const exchangeIKESAInit = 34

// isCookieChallenge reports whether an IKE_SA_INIT response starts with N(COOKIE)
// (RFC 7296 §2.6: the first payload; its Notify Message Type sits after the IKE header,
// the generic payload header and the Protocol ID and SPI Size octets). The core acts on
// the cookie without reporting it, so the socket layer counts it.
func isCookieChallenge(msg []byte) bool {
	const hdr = 28
	return len(msg) >= hdr+8 && msg[16] == byte(wire.PayloadNotify) &&
		binary.BigEndian.Uint16(msg[hdr+6:hdr+8]) == uint16(wire.NotifyCookie)
}

func (e *engine) hashHalf(k halfKey) uint64 {
	var h maphash.Hash
	h.SetSeed(e.hashSeed)
	b, _ := k.remote.MarshalBinary()
	h.Write(b)
	var spi [8]byte
	binary.BigEndian.PutUint64(spi[:], uint64(k.spiI))
	h.Write(spi[:])
	return h.Sum64()
}

// loop is the shard's event loop: messages in, timers fired, effects carried out.
func (sh *shard) loop() {
	defer sh.e.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	armed := time.Time{}
	for {
		if next := sh.timers.next(); !next.Equal(armed) {
			armed = next
			if next.IsZero() {
				timer.Stop()
			} else {
				timer.Reset(time.Until(next))
			}
		}
		select {
		case m := <-sh.in:
			sh.handle(m)
			// Drain what is queued before looking at the clock again.
			for i := 0; i < 256; i++ {
				select {
				case m := <-sh.in:
					sh.handle(m)
					continue
				default:
				}
				break
			}
			sh.fireTimers()
		case <-timer.C:
			armed = time.Time{}
			sh.fireTimers()
		case <-sh.e.done:
			return
		}
	}
}

func (sh *shard) fireTimers() {
	now := time.Now()
	for {
		fm := sh.timers.popDue(now)
		if fm == nil {
			return
		}
		sh.step(fm, ike.TimerFired{Gen: fm.timerGen})
	}
}

func (sh *shard) handle(m msg) {
	switch m.kind {
	case msgPacket:
		sh.step(m.fm, m.pkt)
	case msgWork:
		sh.step(m.fm, m.done)
	case msgNewSA:
		sh.e.resp.newSA(sh, m.pkt, m.spiI)
	case msgFunc:
		m.fn(sh)
	}
}

// env is a family's ike.Env: the shard's randomness (a ChaCha8 stream seeded from the
// operating system; only the shard's goroutine reads it, inside Step) and ESP SPIs
// drawn from it, since nothing is installed in a kernel here.
type env struct{ sh *shard }

func (v env) Rand() io.Reader { return v.sh.rng }

func (v env) AllocSPI(ike.ChildRef) (uint32, error) {
	for {
		if spi := uint32(v.sh.rng.Uint64()); spi >= 0x100 { // RFC 4303 §2.1: 1–255 are reserved
			return spi, nil
		}
	}
}

// add registers a new family with the shard.
func (sh *shard) add(f *ike.Family) *fam {
	sh.nextID++
	fm := &fam{f: f, sh: sh, id: sh.nextID, heapIdx: -1}
	sh.fams[fm] = struct{}{}
	return fm
}

// step feeds ev to fm and carries out the effects.
func (sh *shard) step(fm *fam, ev ike.Event) {
	if fm.dead {
		return
	}
	defer func() {
		// A panic in the core is a bug to report, not a reason to stop the load: the
		// family ends with the panic as its reason and everything else goes on.
		if p := recover(); p != nil && !fm.dead {
			sh.end(fm, ike.FamilyDone{Reason: fmt.Sprintf("core panic: %v", p)})
		}
	}()
	effects := fm.f.Step(time.Now(), ev)
	if fm.trace != nil {
		fm.trace(ev, effects)
	}
	sh.apply(fm, effects)
}

// apply carries out one Step's effects in order; events they produce (an installed
// Child SA, inline work) are fed back after the whole list, as the slice is only
// valid until the next Step.
func (sh *shard) apply(fm *fam, effects []ike.Effect) {
	var fbArr [4]ike.Event
	feedback := fbArr[:0]
	st := sh.e.stats
	for _, ef := range effects {
		switch e := ef.(type) {
		case ike.SendDatagram:
			sh.send(e.Local, e.Remote, e.Data)
		case ike.ArmTimer:
			sh.timers.arm(fm, e.At, e.Gen)
		case ike.Work:
			select {
			case sh.e.work <- job{fm, e}:
			default: // pool saturated: run it here rather than block the loop
				feedback = append(feedback, ike.WorkDone{Token: e.Token, Result: e.Run()})
			}
		case ike.RouteSPI:
			sh.e.routes.put(e.SPI, fm)
			fm.spis = append(fm.spis, e.SPI)
		case ike.UnrouteSPI:
			sh.e.routes.del(e.SPI, fm)
			for i, s := range fm.spis {
				if s == e.SPI {
					fm.spis = append(fm.spis[:i], fm.spis[i+1:]...)
					break
				}
			}
		case ike.InstallChild:
			if e.SA.Replaces != 0 {
				st.ChildRekeys.Add(1)
			}
			// Nothing is installed on this side: a load generator carries no ESP.
			feedback = append(feedback, ike.ChildInstalled{Ref: e.SA.Ref})
		case ike.RemoveChild:
		case ike.Established:
			st.IKEUp.Add(1)
			if e.Rekeyed {
				st.IKERekeys.Add(1)
			} else {
				sh.established(fm)
			}
		case ike.IKEClosed:
			st.IKEUp.Add(-1)
		case ike.ChildUp:
			st.ChildUp.Add(1)
		case ike.ChildDown:
			st.ChildUp.Add(-1)
		case ike.ChildFailed:
			st.count(st.childFailures, e.Reason)
		case ike.Retransmitted:
			st.Retransmits.Add(1)
			st.count(st.retransmitsByEx, string(e.Exchange))
		case ike.NotifySeen:
			if !e.Sent {
				switch e.Type {
				case "COOKIE":
					st.CookiesSeen.Add(1)
				case "INVALID_KE_PAYLOAD":
					st.InvalidKESeen.Add(1)
				}
				if isErrorNotify(e.Type) {
					st.count(st.notifies, e.Type)
				}
			}
		case ike.Dropped:
			st.Dropped.Add(1)
			st.count(st.drops, string(e.Reason))
		case ike.FamilyDone:
			sh.end(fm, e)
			return
		}
	}
	for _, ev := range feedback {
		sh.step(fm, ev)
	}
}

// errorNotifies are the names of the error notify types (RFC 7296 §3.10.1: below
// 16384), as NotifySeen carries them.
var errorNotifies = func() map[string]bool {
	m := map[string]bool{}
	for t := wire.NotifyType(1); t.IsError(); t++ {
		m[t.String()] = true
	}
	return m
}()

func isErrorNotify(name string) bool { return errorNotifies[name] }

// send writes one IKE message from local (whose socket must exist) to remote.
func (sh *shard) send(local, remote netip.AddrPort, data []byte) {
	s := sh.e.sockets[local]
	if s == nil {
		sh.e.stats.SendErrors.Add(1)
		return
	}
	out := data
	if s.natt {
		sh.buf = append(sh.buf[:0], 0, 0, 0, 0)
		sh.buf = append(sh.buf, data...)
		out = sh.buf
	}
	if _, err := s.conn.WriteToUDPAddrPort(out, remote); err != nil {
		sh.e.stats.SendErrors.Add(1)
	}
}

// end forgets a family that emitted FamilyDone.
func (sh *shard) end(fm *fam, done ike.FamilyDone) {
	fm.dead = true
	sh.timers.remove(fm)
	for _, s := range fm.spis {
		sh.e.routes.del(s, fm)
	}
	fm.spis = nil
	delete(sh.fams, fm)
	sh.ended(fm, done)
}

// established and ended dispatch to the role.
func (sh *shard) established(fm *fam) {
	if sh.e.resp != nil {
		sh.e.resp.established(sh, fm)
		return
	}
	sh.e.stats.Established.Add(1)
	sh.e.stats.Latency.Record(time.Since(fm.started))
	fm.established = true
	if !fm.settled {
		fm.settled = true
		sh.settle()
	}
}

func (sh *shard) ended(fm *fam, done ike.FamilyDone) {
	st := sh.e.stats
	if sh.e.resp != nil {
		sh.e.resp.ended(sh, fm, done)
		return
	}
	reason := done.Reason
	if reason == "" {
		reason = "unknown"
	}
	switch {
	case !fm.established:
		st.Failed.Add(1)
		st.count(st.failures, reason)
	case fm.terminating:
		st.Deleted.Add(1)
	default:
		st.Lost.Add(1)
		st.count(st.losses, reason)
	}
	if !fm.settled {
		fm.settled = true
		sh.settle()
	}
	sh.e.ini.live.Add(-1)
}

// settle gives a family's in-flight token back: it established or failed.
func (sh *shard) settle() {
	sh.e.stats.settled.Add(1)
	select {
	case <-sh.e.ini.inflight:
	default:
	}
}

// spiTable maps our IKE SPIs to families (RFC 7296 §2.2: the SPI names the SA). It is
// written by the shards and read by the socket readers.
type spiTable struct {
	parts [64]struct {
		mu sync.RWMutex
		m  map[ike.SPI]*fam
	}
}

func (t *spiTable) init() {
	for i := range t.parts {
		t.parts[i].m = map[ike.SPI]*fam{}
	}
}

func (t *spiTable) part(s ike.SPI) int { return int(uint64(s) * 0x9e3779b97f4a7c15 >> 58) }

func (t *spiTable) get(s ike.SPI) *fam {
	p := &t.parts[t.part(s)]
	p.mu.RLock()
	fm := p.m[s]
	p.mu.RUnlock()
	return fm
}

func (t *spiTable) put(s ike.SPI, fm *fam) {
	p := &t.parts[t.part(s)]
	p.mu.Lock()
	p.m[s] = fm
	p.mu.Unlock()
}

// del removes s only while it still maps to fm.
func (t *spiTable) del(s ike.SPI, fm *fam) {
	p := &t.parts[t.part(s)]
	p.mu.Lock()
	if p.m[s] == fm {
		delete(p.m, s)
	}
	p.mu.Unlock()
}
