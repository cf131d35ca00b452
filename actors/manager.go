package actors

import (
	"crypto/rand"
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/cygnet-ipsec/cygnet/actors/actorkit"
	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/actors/sockets"
	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/actors/telemetry/logfield"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// The manager actor is the root of the tree (DESIGN.md, "The actor tree"):
//
//   - It admits new IKE SAs. An IKE_SA_INIT request that no family knows reaches it
//     (the socket readers route everything else straight to families, see router): it
//     is dropped while the key-exchange pool is busy or the peer has too many half-open
//     SAs; above the COOKIE threshold it is answered statelessly with a COOKIE unless it
//     carries a valid one (RFC 7296 §2.6); otherwise a responder family is spawned with
//     the connections that may accept the peer.
//   - It spawns initiator families for commands and kernel acquires.
//   - It supervises families, stop-only. When one terminates, for whatever reason, its
//     routes and half-open counts go, its cached PID is dropped, and the janitor
//     removes whatever kernel state is still tagged with it (DeleteOwned).
//   - It makes no kernel call itself and does no CPU-heavy work.

type newSA struct {
	d    *sockets.Datagram
	spiI ike.SPI
}

type cmdInitiate struct{ conn, child string }
type cmdShutdown struct{}
type cmdKill struct {
	name  string
	panic bool
}
type cmdConnections struct{ conns []*ike.Connection }
type acquireMsg struct{ ev kernel.Event }

// restartConn asks for a connection to be initiated again (its family ended and its
// dpd_action or close_action says start).
type restartConn struct {
	conn     string
	children []string
}
type cookieTick struct{ gen uint64 }

// reply answers a command sent with RequestFuture.
type reply struct{ err error }

// request carries a command of the API and where to answer it. A channel rather than a
// protoactor future: each future is a process in the registry, whose maps never shrink
// (a burst of 2,000 concurrent Initiate calls left ~136 B per call behind).
type request struct {
	cmd   any
	reply chan reply // buffered: the manager never waits on it
}

type manager struct {
	actorkit.Guard
	t   *tree
	m   *Manager
	cfg *Config

	conns  []*ike.Connection
	byName map[string]*ike.Connection

	nextID   kernel.FamilyID
	byConn   map[string]*familySet // families by connection, once known
	byID     map[uint64]*familySet // established families by identities (contact.go)
	idSeed   maphash.Seed
	halfOpen int
	perPeer  map[netip.Addr]int

	cookies     *ike.Cookies
	cookieTimer *actorkit.Timer

	shutting bool
}

func (m *manager) Receive(ctx actor.Context) { m.t.managerPolicy.Receive(ctx, &m.Guard, m.receive) }

func (m *manager) receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		m.cookies = ike.NewCookies(secret())
		m.cookieTimer = m.NewTimer()
		m.armCookieRotation(ctx)
	case newSA:
		m.m.inflight.Add(-1)
		m.admit(ctx, msg)
	case cookieTick:
		if m.cookieTimer.Fire(msg.gen) {
			m.cookies.Rotate(secret())
			m.armCookieRotation(ctx)
		}
	case identified:
		m.fileIdentity(ctx, msg)
	case initialContact:
		m.contact(ctx, msg)
	case halfOpenDone:
		m.index(msg.e, msg.conn)
		m.releaseHalfOpen(msg.e)
	case *actor.Terminated:
		m.familyTerminated(ctx, msg.Who)
	case *request:
		switch cmd := msg.cmd.(type) {
		case cmdInitiate:
			msg.reply <- reply{m.initiate(ctx, cmd.conn, cmd.child, nil)}
		case cmdConnections:
			m.setConnections(cmd.conns)
			msg.reply <- reply{}
		case cmdKill:
			msg.reply <- reply{m.kill(ctx, cmd)}
		default:
			msg.reply <- reply{fmt.Errorf("actors: unknown command %T", cmd)}
		}
	case acquireMsg:
		m.acquire(ctx, msg.ev)
	case restartConn:
		m.restart(ctx, msg)
	case cmdShutdown:
		m.beginShutdown(ctx)
	case *actor.Stopping:
		m.shutting = true
	case *actor.Stopped:
		m.m.managerStopped()
	}
}

// HandleFailure is the manager's stop-only supervision of families: a family that
// panicked stops with all its children, and its stop is counted as a panic.
func (m *manager) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, who *actor.PID, _ *actor.RestartStatistics, reason, _ any) {
	if id, ok := familyIDOf(who); ok {
		if e := m.t.reg.get(id); e != nil {
			e.panicked.Store(true)
		}
	}
	m.t.rec.ActorStopped(telemetry.ActorFamily, telemetry.StopPanic)
	m.t.log.Error("family actor panicked; stopping it and its children", zap.String("actor", who.Id), zap.Any("panic", reason))
	sup.StopChildren(who)
}

func (m *manager) armCookieRotation(ctx actor.Context) {
	m.cookieTimer.Arm(m.t.sys, ctx.Self(), m.cfg.CookieRotation, func(gen uint64) any { return cookieTick{gen} })
}

func secret() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// admit decides what to do with an IKE_SA_INIT request that no family knows.
func (m *manager) admit(ctx actor.Context, msg newSA) {
	d := msg.d
	key := initKey{remote: d.Remote, spiI: msg.spiI}
	// An earlier copy of the request may have created its family meanwhile.
	if e := m.t.routes.byInit(key); e != nil {
		if !m.m.toFamily(e, d) {
			d.Release()
		}
		return
	}
	drop := func(r telemetry.DropReason) {
		m.t.rec.PacketDropped(r)
		d.Release()
	}
	if m.shutting {
		drop(telemetry.DropUnexpected)
		return
	}
	if m.t.pool.Busy() {
		m.t.log.Debug("IKE_SA_INIT dropped: key-exchange pool busy", logfield.Peer(d.Remote))
		// Back-pressure: established families keep the pool; the initiator retransmits.
		drop(telemetry.DropQueueFull)
		return
	}
	peer := d.Remote.Addr()
	if m.cfg.HalfOpenPerPeer > 0 && m.perPeer[peer] >= m.cfg.HalfOpenPerPeer {
		drop(telemetry.DropHalfOpenLimit)
		return
	}
	if m.halfOpen >= m.cfg.CookieThreshold {
		verdict, resp, err := m.cookies.Check(d.Data, peer)
		if err != nil {
			drop(telemetry.DropMalformed)
			return
		}
		if verdict != ike.CookieValid {
			if verdict == ike.CookieInvalid {
				m.t.rec.PacketDropped(telemetry.DropInvalidCookie)
			}
			if err := m.t.socks.Send(d.Local, d.Remote, resp); err == nil {
				m.t.rec.CookieSent()
				m.t.rec.NotifySent("COOKIE")
			}
			d.Release()
			return
		}
	}
	cands := m.candidates(d.Local.Addr(), peer)
	if len(cands) == 0 {
		if ce := m.t.log.Check(zap.DebugLevel, "IKE_SA_INIT from a peer no connection accepts"); ce != nil {
			ce.Write(logfield.Peer(d.Remote))
		}
		drop(telemetry.DropUnexpected)
		return
	}
	e := m.newEntry("")
	e.initKey = key
	e.halfOpen = true
	m.halfOpen++
	m.perPeer[peer]++
	m.t.rec.HalfOpenChanged(+1)
	m.m.halfOpen.Store(int64(m.halfOpen))
	m.t.routes.addInit(key, e)
	m.spawn(ctx, e, &startResponder{entry: e, first: d, candidates: cands})
}

func (m *manager) newEntry(conn string) *familyEntry {
	m.nextID++
	e := &familyEntry{id: m.nextID, conn: conn}
	m.t.reg.add(e)
	m.index(e, conn)
	return e
}

// index files e under its connection (an initiator's at spawn, a responder's once
// IKE_AUTH named it).
func (m *manager) index(e *familyEntry, conn string) {
	if conn == "" || e.indexedAs != "" {
		return
	}
	e.indexedAs = conn
	if m.byConn == nil {
		m.byConn = map[string]*familySet{}
	}
	set := m.byConn[conn]
	if set == nil {
		set = &familySet{}
		m.byConn[conn] = set
	}
	set.add(e)
}

// familySet is the families of one connection. Most connections of a concentrator's
// initiator side (and of cygnet-load) have one family: it costs no map.
type familySet struct {
	one  *familyEntry
	many map[*familyEntry]struct{} // when there are several
}

func (s *familySet) add(e *familyEntry) {
	switch {
	case s.many != nil:
		s.many[e] = struct{}{}
	case s.one == nil || s.one == e:
		s.one = e
	default:
		s.many = map[*familyEntry]struct{}{s.one: {}, e: {}}
		s.one = nil
	}
}

// remove drops e and reports whether the set is empty.
func (s *familySet) remove(e *familyEntry) bool {
	if s.many != nil {
		delete(s.many, e)
		if len(s.many) == 1 {
			for x := range s.many {
				s.one = x
			}
			s.many = nil
		}
	} else if s.one == e {
		s.one = nil
	}
	return s.one == nil && len(s.many) == 0
}

// hasOther reports whether the set holds a family other than e.
func (s *familySet) hasOther(e *familyEntry) bool {
	found := false
	s.each(func(o *familyEntry) bool {
		found = o != e
		return !found
	})
	return found
}

// each calls f for every family until f returns false.
func (s *familySet) each(f func(*familyEntry) bool) {
	if s == nil {
		return
	}
	if s.one != nil {
		f(s.one)
		return
	}
	for e := range s.many {
		if !f(e) {
			return
		}
	}
}

// spawn starts a family and sends it its start message before publishing its PID, so
// that the start message is the first thing it handles.
func (m *manager) spawn(ctx actor.Context, e *familyEntry, start any) {
	pid, err := ctx.SpawnNamed(m.t.familyProps, "f"+strconv.FormatUint(uint64(e.id), 10))
	if err != nil {
		m.t.log.Error("cannot spawn family", zap.Uint64("family", uint64(e.id)), zap.Error(err))
		m.forget(e)
		return
	}
	ctx.Send(pid, start)
	e.pid.Store(pid)
}

func (m *manager) candidates(local, remote netip.Addr) []*ike.Connection {
	var out []*ike.Connection
	for _, c := range m.conns {
		if addrMatches(c.LocalAddrs, local) && addrMatches(c.RemoteAddrs, remote) {
			out = append(out, c)
		}
	}
	return out
}

func addrMatches(allowed []netip.Addr, a netip.Addr) bool {
	if len(allowed) == 0 {
		return true
	}
	a = a.Unmap()
	for _, x := range allowed {
		if x.IsUnspecified() || x.Unmap() == a {
			return true
		}
	}
	return false
}

func (m *manager) releaseHalfOpen(e *familyEntry) {
	if !e.halfOpen {
		return
	}
	e.halfOpen = false
	m.halfOpen--
	m.m.halfOpen.Store(int64(m.halfOpen))
	m.t.rec.HalfOpenChanged(-1)
	peer := e.initKey.remote.Addr()
	if m.perPeer[peer] <= 1 {
		delete(m.perPeer, peer)
	} else {
		m.perPeer[peer]--
	}
	// The IKE_SA_INIT route stays until the family ends: a late retransmission of the
	// request must reach it (and be answered from its cache), not start another family.
}

func (m *manager) familyTerminated(ctx actor.Context, who *actor.PID) {
	id, ok := familyIDOf(who)
	if !ok {
		return
	}
	e := m.t.reg.get(id)
	if e == nil {
		return
	}
	m.forget(e)
	m.m.janitor.deleteOwned(id)
	if m.shutting && m.t.reg.len() == 0 {
		m.finishShutdown(ctx)
	}
}

// forget drops everything the manager holds for a family.
func (m *manager) forget(e *familyEntry) {
	m.releaseHalfOpen(e)
	m.unfileIdentity(e)
	if set := m.byConn[e.indexedAs]; set != nil && set.remove(e) {
		delete(m.byConn, e.indexedAs)
	}
	m.t.routes.dropFamily(e)
	e.pid.Store(nil) // a dead PID pins the dead actor's memory
	m.t.reg.remove(e.id)
}

// initiate starts conn (child "" = the whole connection, ike.Initiate) or one child of
// it. A child of a connection that has an established family is created there
// (CREATE_CHILD_SA); otherwise a new initiator family is spawned.
func (m *manager) initiate(ctx actor.Context, conn, child string, first ike.Event) error {
	if m.shutting {
		return errors.New("shutting down")
	}
	c, ok := m.byName[conn]
	if !ok {
		return fmt.Errorf("initiate: no connection %q", conn)
	}
	if first == nil {
		first = ike.Initiate{}
		if child != "" {
			if _, ok := c.Child(child); !ok {
				return fmt.Errorf("initiate: connection %q has no child %q", conn, child)
			}
			first = ike.InitiateChild{Name: child}
		}
	}
	if child != "" {
		if e := m.establishedFamily(conn); e != nil {
			if pid := e.pid.Load(); pid != nil {
				ctx.Send(pid, first)
				return nil
			}
		}
	}
	e := m.newEntry(conn)
	m.spawn(ctx, e, &startInitiator{entry: e, conn: c, first: first, notFirst: m.byConn[conn].hasOther(e)})
	return nil
}

// establishedFamily returns a family of conn with an established IKE SA.
func (m *manager) establishedFamily(conn string) *familyEntry {
	var found *familyEntry
	m.byConn[conn].each(func(e *familyEntry) bool {
		if s := e.summary.Load(); s != nil && len(s.IKE) > 0 &&
			s.IKE[0].State != ike.IKEStateConnecting && s.IKE[0].State != ike.IKEStateDeleting && s.IKE[0].State != ike.IKEStateDead {
			found = e
			return false
		}
		return true
	})
	return found
}

// restart brings a connection back with the children whose dpd_action or
// close_action says so, in one new initiator family.
func (m *manager) restart(ctx actor.Context, r restartConn) {
	c, ok := m.byName[r.conn]
	if m.shutting || !ok {
		return
	}
	e := m.newEntry(r.conn)
	m.spawn(ctx, e, &startInitiator{entry: e, conn: c, first: ike.InitiateChild{Name: r.children[0]}, notFirst: m.byConn[r.conn].hasOther(e)})
	if pid := e.pid.Load(); pid != nil {
		for _, name := range r.children[1:] {
			ctx.Send(pid, ike.InitiateChild{Name: name})
		}
	}
	m.t.log.Info("connection restarted", zap.String("conn", r.conn), zap.Strings("children", r.children))
}

// acquire handles a kernel acquire: traffic hit the trap policy of a child (start
// action trap).
func (m *manager) acquire(ctx actor.Context, ev kernel.Event) {
	trap, ok := m.m.traps.lookup(ev.Reqid)
	if !ok {
		return
	}
	if err := m.initiate(ctx, trap.conn, trap.child, ike.Acquire{Name: trap.child}); err != nil {
		m.t.log.Debug("acquire not acted on", zap.Error(err))
	}
}

// setConnections keeps a defaulted copy of each definition (ike.Connection.WithDefaults):
// the families of a connection share it instead of each making its own (≈ 650 B per
// family).
func (m *manager) setConnections(conns []*ike.Connection) {
	m.conns = make([]*ike.Connection, len(conns))
	m.byName = make(map[string]*ike.Connection, len(conns))
	for i, c := range conns {
		d := c.WithDefaults()
		m.conns[i] = &d
		m.byName[c.Name] = &d
	}
}

func (m *manager) kill(ctx actor.Context, k cmdKill) error {
	if !m.cfg.Chaos {
		return errors.New("kill: chaos testing is not enabled")
	}
	fam, child, _ := strings.Cut(k.name, "/")
	id, ok := familyIDOf(actor.NewPID("", fam))
	if !ok {
		return fmt.Errorf("kill: %q does not name a family (f<id>) or a child (f<id>/c<ref>)", k.name)
	}
	e := m.t.reg.get(id)
	if e == nil {
		return fmt.Errorf("kill: no family %s", fam)
	}
	pid := e.pid.Load()
	if pid == nil {
		return fmt.Errorf("kill: family %s is gone", fam)
	}
	if child != "" {
		if _, ok := childRefOf(actor.NewPID("", "/"+child)); !ok {
			return fmt.Errorf("kill: %q does not name a child (c<ref>)", child)
		}
		pid = m.t.sys.NewLocalPID(pid.Id + "/" + child)
	}
	if k.panic {
		ctx.Send(pid, chaosPanic{})
	} else {
		ctx.Stop(pid)
	}
	return nil
}

func (m *manager) beginShutdown(ctx actor.Context) {
	if m.shutting {
		return
	}
	m.shutting = true
	if m.t.reg.len() == 0 {
		m.finishShutdown(ctx)
		return
	}
	var pids []*actor.PID
	m.t.reg.each(func(e *familyEntry) {
		if pid := e.pid.Load(); pid != nil {
			pids = append(pids, pid)
		}
	})
	slices.SortFunc(pids, func(a, b *actor.PID) int { return strings.Compare(a.Id, b.Id) })
	for _, pid := range pids {
		ctx.Send(pid, shutdownFamily{})
	}
}

func (m *manager) finishShutdown(ctx actor.Context) {
	ctx.Stop(ctx.Self())
}

// familyIDOf parses the family ID from a family actor's PID (".../f<id>").
func familyIDOf(pid *actor.PID) (kernel.FamilyID, bool) {
	id := pid.Id
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		id = id[i+1:]
	}
	if !strings.HasPrefix(id, "f") {
		return 0, false
	}
	n, err := strconv.ParseUint(id[1:], 10, 64)
	return kernel.FamilyID(n), err == nil && n != 0
}
