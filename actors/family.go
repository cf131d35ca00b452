package actors

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/cygnet-ipsec/cygnet/actors/actorkit"
	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/actors/sockets"
	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/actors/telemetry/logfield"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// The family actor is a thin shell around one ike.Family (DESIGN.md, "The pure core"):
//
//   - It feeds events into the core — datagrams routed to it, its timer, results of
//     CPU work, its children's install results and deaths, kernel expiry, commands —
//     and carries out the effects, in order: datagrams through the sockets; Child SAs
//     as child actors (spawned on InstallChild, stopped on RemoveChild); ONE timer at
//     the core's deadline (generation-tagged); Work in the bounded pool, its result
//     posted back as WorkDone; SPI routes in the router; metrics, logs and SA events.
//   - A child that stops without the core having asked (killed, panicked) becomes
//     ike.ChildDied: the core deletes that Child SA with the peer and nothing else
//     changes (failure table, "a child actor panics or is killed").
//   - FamilyDone stops the actor. Stopping, for any reason, refuses new work (the
//     stopping guard), cancels the timers and stops the children, whose kernel state
//     goes with them; the manager then removes the routes and whatever is still tagged
//     with the family in the kernel.
//   - A panic in the family's turn (including one raised by its CPU work) stops the
//     family alone: supervision is stop-only.

// startResponder is a responder family's first message: the IKE_SA_INIT request that
// created it and the connections that may accept the peer.
type startResponder struct {
	entry      *familyEntry
	first      *sockets.Datagram
	candidates []*ike.Connection
}

// startInitiator is an initiator family's first message.
type startInitiator struct {
	entry *familyEntry
	conn  *ike.Connection
	first ike.Event
	// notFirst: another family of the connection exists; no INITIAL_CONTACT (§2.4).
	notFirst bool
}

// shutdownFamily asks for a graceful end: delete the IKE SA with the peer (RFC 7296
// §1.4.1), then stop; stop anyway after the tree's shutdown grace.
type shutdownFamily struct{}

// familyKernelEvent is a kernel event for an SA the family owns.
type familyKernelEvent struct{ ev kernel.Event }

// halfOpenDone tells the manager that a responder family is no longer half-open, and
// which connection IKE_AUTH chose.
type halfOpenDone struct {
	e    *familyEntry
	conn string
}

type deadlineTick struct{ gen uint64 }
type workRetryTick struct{ gen uint64 }
type shutdownTick struct{ gen uint64 }

// workDone is the result of one Work effect, or the panic it raised.
type workDone struct {
	token    uint64
	result   any
	panicked any
}

type reservedSPI struct {
	ref   ike.ChildRef
	reqid kernel.Reqid
	sa    kernel.SAID
}

type childSlot struct {
	ref      ike.ChildRef
	pid      *actor.PID
	ticket   *childTicket // until the child reports its install
	lin      *lineage
	removing bool // the family stopped it (RemoveChild or a failed install)
	panicked bool
}

type family struct {
	actorkit.Guard
	t *tree
	e *familyEntry

	core       core
	conn       string          // connection name, once known
	cfg        *ike.Connection // its definition, once known (close and DPD actions)
	candidates []*ike.Connection
	startedAt  time.Time
	stopReason telemetry.StopReason
	// endReason is the core's reason when the family ended on a failure
	// (ike.FamilyDone with Err: AUTHENTICATION_FAILED, a timeout…), for the done event.
	endReason string

	responder bool
	upOnce    bool // an IKE SA of this family was established at least once
	applying  bool // carrying out a Step's effects

	timer, retry, shutdown *actorkit.Timer
	coreGen                uint64
	pending                []ike.Work
	later                  []ike.Event // events raised meanwhile, for the next Steps

	// children are the child actors, few per family (a slice is smaller than a map).
	children []*childSlot
	// reserved are the inbound SPIs allocated (larval SAs, with the reqid they were
	// reserved under) for Child SAs that have no child actor yet.
	reserved []reservedSPI

	// local and remote are the IKE SA's addresses (from the datagrams until it is
	// established, from the core afterwards), for SPI allocation.
	local, remote netip.AddrPort
	natFlow       *[2]netip.AddrPort // registered NAT keepalive flow, if any (rare: a pointer)
}

// newFamilyProducer makes family actors; one props serves every family (the entry
// comes with the start message), so that no per-family props stays alive.
func newFamilyProducer(t *tree) actor.Producer {
	return func() actor.Actor {
		f := &family{t: t}
		f.timer = f.NewTimer()
		return f
	}
}

// HandleFailure makes the family the stop-only supervisor of its children: a child that
// panicked is stopped and becomes ChildDied (actor-level strategy, see protoactor's
// actorContext.handleFailure).
func (f *family) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, who *actor.PID, _ *actor.RestartStatistics, reason, _ any) {
	if ref, ok := childRefOf(who); ok {
		if s := f.child(ref); s != nil {
			s.panicked = true
		}
	}
	f.logger().Error("child actor panicked; stopping it", zap.String("child_actor", who.Id), zap.Any("panic", reason))
	sup.StopChildren(who)
}

func (f *family) Receive(ctx actor.Context) { f.t.familyPolicy.Receive(ctx, &f.Guard, f.receive) }

func (f *family) receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *sockets.Datagram:
		f.e.inflight.Add(-1)
		f.packet(ctx, m)
	case deadlineTick:
		if f.timer.Fire(m.gen) && f.core != nil {
			f.step(ctx, ike.TimerFired{Gen: f.coreGen})
		}
	case workDone:
		if m.panicked != nil {
			panic(fmt.Sprintf("family %d: work %d panicked: %v", f.e.id, m.token, m.panicked))
		}
		f.step(ctx, ike.WorkDone{Token: m.token, Result: m.result})
	case workRetryTick:
		if f.retry.Fire(m.gen) {
			f.resubmit(ctx)
		}
	case ike.ChildInstalled:
		if s := f.child(m.Ref); s != nil && !s.removing {
			s.ticket = nil // taken: the child owns what it installed
			f.step(ctx, m)
		}
	case ike.ChildInstallFailed:
		if s := f.child(m.Ref); s != nil && !s.removing {
			s.ticket = nil
			s.removing = true
			ctx.Stop(s.pid)
			f.step(ctx, m)
		}
	case ike.ChildExpired:
		if s := f.child(m.Ref); s != nil && !s.removing {
			f.step(ctx, m)
		}
	case familyKernelEvent:
		f.kernelEvent(ctx, m.ev)
	case *actor.Terminated:
		f.childTerminated(ctx, m.Who)
	case *startResponder:
		f.startResponder(ctx, m)
	case *startInitiator:
		f.startInitiator(ctx, m)
	case shutdownFamily:
		f.beginShutdown(ctx)
	case contactEnd:
		f.endByContact(ctx)
	case shutdownTick:
		if f.shutdown.Fire(m.gen) {
			f.stop(ctx, telemetry.StopShutdown)
		}
	case chaosPanic:
		panic(fmt.Sprintf("chaos: family %d panics on request", f.e.id))
	case ike.Event:
		// A command (Initiate, InitiateChild, RekeyChild, RekeyIKE, DeleteChild,
		// Terminate, Acquire).
		if f.core != nil {
			f.step(ctx, m)
		}
	case *actor.Stopping:
		f.stopping()
	case *actor.Stopped:
		if f.e == nil {
			return // stopped before its start message
		}
		reason := f.stopReason
		if reason == "" {
			reason = telemetry.StopKilled
			if f.e.panicked.Load() {
				reason = "" // counted by the manager as a panic
			}
		}
		if reason != "" {
			f.t.rec.ActorStopped(telemetry.ActorFamily, reason)
		}
		done := Event{Kind: EventFamilyDone, Family: f.e.id, Conn: f.conn, Reason: string(reason)}
		if reason == telemetry.StopFailure && f.endReason != "" {
			done.Reason = f.endReason // what the peer or the exchange said, not just "failure"
		}
		f.t.events.publish(done)
	}
}

func (f *family) startResponder(ctx actor.Context, m *startResponder) {
	d := m.first
	f.e = m.entry
	f.responder = true
	f.candidates = m.candidates
	f.startedAt = f.t.now()
	f.local, f.remote = d.Local, d.Remote
	c, effs, err := f.t.cores.NewResponder(f.startedAt, m.candidates, f, f.t.ikeOpts,
		ike.PacketReceived{Local: d.Local, Remote: d.Remote, Data: d.Data})
	if err != nil {
		d.Release()
		f.t.rec.PacketDropped(telemetry.DropUnexpected)
		if ce := f.t.log.Check(zap.DebugLevel, "IKE_SA_INIT not accepted"); ce != nil {
			ce.Write(logfield.Peer(d.Remote), zap.Error(err))
		}
		f.stop(ctx, telemetry.StopNormal)
		return
	}
	f.core = c
	f.apply(ctx, effs)
	d.Release()
}

func (f *family) startInitiator(ctx actor.Context, m *startInitiator) {
	f.e = m.entry
	f.conn, f.cfg = m.conn.Name, m.conn
	f.startedAt = f.t.now()
	cd := m.conn // defaulted by the manager (setConnections): ports are set
	if len(cd.LocalAddrs) > 0 {
		f.local = netip.AddrPortFrom(cd.LocalAddrs[0], cd.LocalPort)
	}
	if len(cd.RemoteAddrs) > 0 {
		f.remote = netip.AddrPortFrom(cd.RemoteAddrs[0], cd.RemotePort)
	}
	c, err := f.t.cores.NewInitiator(m.conn, f, f.t.ikeOpts)
	if err != nil {
		f.logger().Warn("cannot initiate", zap.Error(err))
		f.stop(ctx, telemetry.StopFailure)
		return
	}
	f.core = c
	if m.notFirst {
		f.step(ctx, ike.NotFirstContact{})
	}
	f.step(ctx, m.first)
}

func (f *family) packet(ctx actor.Context, d *sockets.Datagram) {
	if f.core == nil {
		d.Release()
		return
	}
	if !f.upOnce {
		f.local, f.remote = d.Local, d.Remote
	}
	effs := f.core.Step(f.t.now(), ike.PacketReceived{Local: d.Local, Remote: d.Remote, Data: d.Data})
	d.Release() // the core keeps nothing of Data after Step
	f.apply(ctx, effs)
}

// step feeds ev to the core and carries out the effects. An event raised while effects
// are being carried out (an install that fails at once) waits until they all are: the
// next Step reuses the effect slice being walked.
func (f *family) step(ctx actor.Context, ev ike.Event) {
	if f.applying {
		f.later = append(f.later, ev)
		return
	}
	f.apply(ctx, f.core.Step(f.t.now(), ev))
}

// apply carries out the effects of one Step in order (ike.Step's contract), then the
// events they raised, and clears the effects: the core reuses the slice, and what it
// held (keys of installed Child SAs, datagrams, infos) must not stay reachable while
// the family idles.
func (f *family) apply(ctx actor.Context, effs []ike.Effect) {
	f.applying = true
	done := f.applyEffects(ctx, effs)
	clear(effs)
	f.applying = false
	for !done && len(f.later) > 0 && f.core != nil {
		ev := f.later[0]
		f.later[0] = nil
		f.later = f.later[1:]
		f.applying = true
		effs = f.core.Step(f.t.now(), ev)
		done = f.applyEffects(ctx, effs)
		clear(effs)
		f.applying = false
	}
	f.later = nil
}

// applyEffects carries out effs in order; true once the family is done (FamilyDone).
func (f *family) applyEffects(ctx actor.Context, effs []ike.Effect) bool {
	if f.conn == "" {
		// A responder learns its connection in IKE_AUTH; the Child SAs installed in the
		// same Step already need the name (metrics).
		for _, eff := range effs {
			if e, ok := eff.(ike.Established); ok {
				f.conn = e.IKE.Name
			}
		}
	}
	dirty := false
	for _, eff := range effs {
		switch e := eff.(type) {
		case ike.SendDatagram:
			if err := f.t.socks.Send(e.Local, e.Remote, e.Data); err != nil {
				if ce := f.t.log.Check(zap.DebugLevel, "send failed"); ce != nil {
					ce.Write(append(f.fields(), zap.Error(err))...)
				}
			}
		case ike.InstallChild:
			f.installChild(ctx, e.SA)
			dirty = true
		case ike.RemoveChild:
			if s := f.child(e.Ref); s != nil && !s.removing {
				s.removing = true
				ctx.Stop(s.pid)
			}
			f.releaseSPI(e.Ref)
			dirty = true
		case ike.ArmTimer:
			f.armTimer(ctx, e)
		case ike.Work:
			f.submit(ctx, e)
		case ike.RouteSPI:
			if !f.t.routes.addSPI(e.SPI, f.e) {
				f.logger().Warn("IKE SPI already routed to another family", logfield.SPIi(uint64(e.SPI)))
			}
		case ike.UnrouteSPI:
			f.t.routes.removeSPI(e.SPI, f.e)
		case ike.Established:
			f.established(ctx, e)
			dirty = true
		case ike.InitialContact:
			ctx.Send(ctx.Parent(), initialContact{f.e, e})
		case ike.IKEClosed:
			f.t.rec.IKESAClosed(f.conn)
			f.t.events.publish(Event{Kind: EventIKEDown, Family: f.e.id, Conn: f.conn,
				IKE: ike.IKEInfo{Name: f.conn, SPIi: e.SPIi, SPIr: e.SPIr}, Reason: e.Reason})
			dirty = true
		case ike.ChildUp:
			f.t.events.publish(Event{Kind: EventChildUp, Family: f.e.id, Conn: f.conn, Child: e.Child})
			dirty = true
		case ike.ChildDown:
			f.t.events.publish(Event{Kind: EventChildDown, Family: f.e.id, Conn: f.conn,
				Child: ike.ChildInfo{Ref: e.Ref, Name: e.Name}, Reason: e.Reason})
			dirty = true
			if e.Reason == telemetry.ReasonDeleted && f.childAction(e.Name, func(c *ike.ChildConfig) ike.Action { return c.CloseAction }) == ike.ActionStart {
				// swanctl close_action = start: the peer closed it, bring it back.
				ctx.Send(ctx.Self(), ike.InitiateChild{Name: e.Name})
			}
		case ike.ChildFailed:
			f.t.rec.ChildFailed(f.conn, e.Reason)
			f.t.events.publish(Event{Kind: EventChildFailed, Family: f.e.id, Conn: f.conn,
				Child: ike.ChildInfo{Name: e.Name}, Reason: e.Reason})
			dirty = true
		case ike.ExchangeDone:
			f.t.rec.ExchangeDone(e.Exchange, e.Role, e.Outcome)
			dirty = true // states settle at the end of an exchange
		case ike.NotifySeen:
			if e.Sent {
				f.t.rec.NotifySent(e.Type)
			} else {
				f.t.rec.NotifyReceived(e.Type)
			}
		case ike.Retransmitted:
			f.t.rec.Retransmitted(e.Exchange)
		case ike.Dropped:
			f.t.rec.PacketDropped(e.Reason)
			if ce := f.t.log.Check(zap.DebugLevel, "message dropped"); ce != nil {
				ce.Write(append(f.fields(), zap.String("reason", string(e.Reason)), zap.String("detail", e.Detail))...)
			}
		case ike.Log:
			f.logEffect(e)
		case ike.FamilyDone:
			f.t.rec.FamilyTeardown(e.Reason)
			f.afterEnd(ctx, e.Reason)
			reason := telemetry.StopNormal
			if e.Err != nil {
				reason = telemetry.StopFailure
				f.endReason = e.Reason
				f.logger().Info("IKE family ends", zap.String("reason", e.Reason), zap.Error(e.Err))
			}
			if f.stopReason == telemetry.StopShutdown || f.shutdown != nil {
				reason = telemetry.StopShutdown
			}
			f.publishSummary()
			f.stop(ctx, reason)
			return true
		}
	}
	if dirty || f.e.summary.Load() == nil {
		f.publishSummary() // (a new family is listed from its first Step on)
	}
	return false
}

// childAction returns an action of the child definition name (ActionNone if unknown).
func (f *family) childAction(name string, which func(*ike.ChildConfig) ike.Action) ike.Action {
	if f.cfg == nil {
		return ike.ActionNone
	}
	if c, ok := f.cfg.Child(name); ok {
		return which(c)
	}
	return ike.ActionNone
}

// afterEnd asks the manager to bring the connection back when its definition says so:
// the peer was found dead (dpd_action = start) or closed the IKE SA (close_action =
// start on any child). A shutdown or an operator's terminate brings nothing back.
func (f *family) afterEnd(ctx actor.Context, reason string) {
	if f.cfg == nil || f.shutdown != nil || reason == telemetry.ReasonTerminated {
		return
	}
	var children []string
	for i := range f.cfg.Children {
		ch := &f.cfg.Children[i]
		if (reason == telemetry.ReasonTimeout && ch.DPDAction == ike.ActionStart) ||
			(reason == telemetry.ReasonDeleted && ch.CloseAction == ike.ActionStart) {
			children = append(children, ch.Name)
		}
	}
	if len(children) > 0 {
		ctx.Send(ctx.Parent(), restartConn{conn: f.cfg.Name, children: children})
	}
}

func (f *family) stop(ctx actor.Context, reason telemetry.StopReason) {
	if f.stopReason == "" {
		f.stopReason = reason
	}
	ctx.Stop(ctx.Self())
}

func (f *family) established(ctx actor.Context, e ike.Established) {
	info := e.IKE
	if f.conn == "" {
		f.conn = info.Name
	}
	if f.cfg == nil {
		for _, c := range f.candidates {
			if c.Name == info.Name {
				f.cfg = c
			}
		}
		f.candidates = nil
	}
	f.local, f.remote = info.Local, info.Remote
	f.t.rec.IKESAEstablished(f.conn)
	f.t.events.publish(Event{Kind: EventIKEUp, Family: f.e.id, Conn: f.conn, IKE: info})
	if !f.upOnce {
		f.upOnce = true
		id := identified{e: f.e, local: info.LocalID, remote: info.RemoteID}
		if !f.responder {
			id.initiatorConn = f.conn
		}
		ctx.Send(ctx.Parent(), id)
		role := telemetry.RoleInitiator
		if f.responder {
			role = telemetry.RoleResponder
			ctx.Send(ctx.Parent(), halfOpenDone{f.e, f.conn})
		}
		f.t.rec.HandshakeDone(role, f.t.now().Sub(f.startedAt))
	}
	// NAT keepalives from our NAT-T socket while a NAT is in front of us (RFC 3948 §2.3).
	flow := [2]netip.AddrPort{}
	if info.NATLocal {
		flow = [2]netip.AddrPort{info.Local, info.Remote}
	}
	var old [2]netip.AddrPort
	if f.natFlow != nil {
		old = *f.natFlow
	}
	if flow != old {
		if old[0].IsValid() {
			f.t.socks.StopKeepAlive(old[0], old[1])
		}
		f.natFlow = nil
		if flow[0].IsValid() {
			f.t.socks.KeepAlive(flow[0], flow[1])
			f.natFlow = &flow
		}
	}
}

func (f *family) installChild(ctx actor.Context, sa ike.ChildSA) {
	if f.Stopping() {
		return
	}
	var lin *lineage
	if sa.Replaces != 0 {
		if prev := f.child(sa.Replaces); prev != nil {
			lin = prev.lin
		}
	}
	if lin == nil {
		r, ok := f.takeReserved(sa.Ref)
		reqid := r.reqid
		if !ok {
			var err error
			if reqid, err = f.t.kernel.AllocReqid(); err != nil {
				f.step(ctx, ike.ChildInstallFailed{Ref: sa.Ref, Err: fmt.Errorf("install child %v: %w", sa.Ref, err)})
				return
			}
		}
		lin = &lineage{reqid: reqid}
	}
	f.takeReserved(sa.Ref) // the child actor owns the reserved SPI from now on
	lin.acquire()
	cloneKeys(&sa)
	pid, err := ctx.SpawnNamed(f.t.childProps, "c"+strconv.FormatUint(uint64(sa.Ref), 10))
	if err != nil {
		// The name is taken: a ref reused, which the core promises never happens.
		lin.mu.Lock()
		lin.holders--
		lin.mu.Unlock()
		wipe(&sa)
		f.step(ctx, ike.ChildInstallFailed{Ref: sa.Ref, Err: fmt.Errorf("install child %v: %w", sa.Ref, err)})
		return
	}
	ticket := &childTicket{in: kernel.SAID{Dst: sa.Local.Unmap(), SPI: kernel.SPI(sa.Inbound.SPI)}, lin: lin}
	f.children = append(f.children, &childSlot{ref: sa.Ref, pid: pid, lin: lin, ticket: ticket})
	ctx.Send(pid, &installChild{ticket: ticket, family: f.e.id, sa: sa, conn: f.conn})
}

func (f *family) childTerminated(ctx actor.Context, who *actor.PID) {
	ref, ok := childRefOf(who)
	if !ok {
		return
	}
	s := f.child(ref)
	if s == nil {
		return
	}
	f.children = slices.DeleteFunc(f.children, func(x *childSlot) bool { return x == s })
	if s.ticket != nil && !s.ticket.taken.Load() {
		s.ticket.abandon(f.t) // stopped before its install message
	}
	switch {
	case s.panicked:
		f.t.rec.ActorStopped(telemetry.ActorChild, telemetry.StopPanic)
	case s.removing:
		f.t.rec.ActorStopped(telemetry.ActorChild, telemetry.StopNormal)
	case f.Stopping():
		f.t.rec.ActorStopped(telemetry.ActorChild, telemetry.StopParent)
	default:
		f.t.rec.ActorStopped(telemetry.ActorChild, telemetry.StopKilled)
	}
	if !s.removing && !f.Stopping() && f.core != nil {
		f.step(ctx, ike.ChildDied{Ref: ref})
	}
}

func (f *family) kernelEvent(ctx actor.Context, ev kernel.Event) {
	switch ev.Kind {
	case kernel.EventSoftExpire, kernel.EventHardExpire:
		if s := f.child(ike.ChildRef(ev.Owner.Child)); s != nil && !s.removing {
			ctx.Send(s.pid, kernelExpired{hard: ev.Kind == kernel.EventHardExpire})
		}
	}
}

func (f *family) armTimer(ctx actor.Context, e ike.ArmTimer) {
	if e.At.IsZero() {
		f.timer.Stop()
		return
	}
	f.coreGen = e.Gen
	d := max(e.At.Sub(f.t.now()), 0)
	f.timer.Arm(f.t.sys, ctx.Self(), d, func(gen uint64) any { return deadlineTick{gen} })
}

// submit runs w in the pool; if the pool is full, w waits in pending for a retry.
func (f *family) submit(ctx actor.Context, w ike.Work) {
	if len(f.pending) > 0 || !f.trySubmit(ctx, w) {
		f.pending = append(f.pending, w)
		f.armRetry(ctx)
	}
}

func (f *family) trySubmit(ctx actor.Context, w ike.Work) bool {
	root, self, token, run := f.t.sys.Root, ctx.Self(), w.Token, w.Run
	return f.t.pool.TrySubmit(func() {
		defer func() {
			if r := recover(); r != nil {
				root.Send(self, workDone{token: token, panicked: r})
			}
		}()
		res := run()
		root.Send(self, workDone{token: token, result: res})
	})
}

func (f *family) resubmit(ctx actor.Context) {
	for len(f.pending) > 0 {
		if !f.trySubmit(ctx, f.pending[0]) {
			f.armRetry(ctx)
			return
		}
		f.pending[0] = ike.Work{}
		f.pending = f.pending[1:]
	}
	f.pending = nil
}

func (f *family) armRetry(ctx actor.Context) {
	if f.retry == nil {
		f.retry = f.NewTimer()
	}
	if !f.retry.Armed() {
		f.retry.Arm(f.t.sys, ctx.Self(), f.t.workRetry, func(gen uint64) any { return workRetryTick{gen} })
	}
}

func (f *family) beginShutdown(ctx actor.Context) {
	if f.shutdown != nil {
		return
	}
	f.shutdown = f.NewTimer()
	if f.core == nil {
		f.stop(ctx, telemetry.StopShutdown)
		return
	}
	f.shutdown.Arm(f.t.sys, ctx.Self(), f.t.shutdownGrace, func(gen uint64) any { return shutdownTick{gen} })
	f.step(ctx, ike.Terminate{})
}

// stopping runs on Stopping (the guard already cancelled the timers and refuses new
// messages): no more datagrams are routed here and the NAT keepalives end. The
// children are being stopped by protoactor; each removes its own kernel state.
func (f *family) stopping() {
	if f.e == nil {
		return
	}
	f.t.routes.dropFamily(f.e)
	if f.natFlow != nil {
		f.t.socks.StopKeepAlive(f.natFlow[0], f.natFlow[1])
		f.natFlow = nil
	}
	f.pending = nil
}

// publishSummary replaces the family's listing entry with a fresh snapshot.
func (f *family) publishSummary() {
	if f.core == nil {
		return
	}
	snap := f.core.Snapshot()
	f.e.summary.Store(&SA{Family: f.e.id, Conn: f.conn, IKE: snap.IKE, Children: snap.Children})
}

// Rand implements ike.Env.
func (f *family) Rand() io.Reader { return rand.Reader }

// AllocSPI implements ike.Env: an inbound ESP SPI from the kernel (XFRM_MSG_ALLOCSPI),
// reserved under a reqid the Child SA will use unless it continues a lineage.
func (f *family) AllocSPI(ref ike.ChildRef) (uint32, error) {
	f.releaseSPI(ref) // a second allocation for the same Child SA replaces the first
	reqid, err := f.t.kernel.AllocReqid()
	if err != nil {
		return 0, fmt.Errorf("allocate SPI for child %v: %w", ref, err)
	}
	ctx, cancel := f.t.kctx()
	defer cancel()
	start := time.Now()
	dst := f.local.Addr().Unmap()
	spi, err := f.t.kernel.AllocSPI(ctx, kernel.SPIRequest{
		Src: f.remote.Addr().Unmap(), Dst: dst, Mode: kernel.ModeTunnel,
		Reqid: reqid, Owner: kernel.Owner{Family: f.e.id, Child: uint64(ref)},
	})
	f.t.kernelOp(telemetry.KernelAllocSPI, start, err)
	if err != nil {
		return 0, fmt.Errorf("allocate SPI for child %v: %w", ref, err)
	}
	f.reserved = append(f.reserved, reservedSPI{ref: ref, reqid: reqid, sa: kernel.SAID{Dst: dst, SPI: spi}})
	return uint32(spi), nil
}

// child returns the slot of the Child SA ref (nil if none).
func (f *family) child(ref ike.ChildRef) *childSlot {
	for _, s := range f.children {
		if s.ref == ref {
			return s
		}
	}
	return nil
}

// takeReserved removes and returns the SPI reserved for ref.
func (f *family) takeReserved(ref ike.ChildRef) (reservedSPI, bool) {
	for i, r := range f.reserved {
		if r.ref == ref {
			f.reserved = slices.Delete(f.reserved, i, i+1)
			if len(f.reserved) == 0 {
				f.reserved = nil
			}
			return r, true
		}
	}
	return reservedSPI{}, false
}

// releaseSPI gives back an inbound SPI reserved for a Child SA that never got a child
// actor (the core gave up on it: RemoveChild without InstallChild).
func (f *family) releaseSPI(ref ike.ChildRef) {
	r, ok := f.takeReserved(ref)
	if !ok {
		return
	}
	ctx, cancel := f.t.kctx()
	defer cancel()
	start := time.Now()
	err := f.t.kernel.DeleteSA(ctx, r.sa)
	f.t.kernelOp(telemetry.KernelDeleteSA, start, err)
}

func (f *family) logEffect(e ike.Log) {
	level := zap.DebugLevel
	switch e.Level {
	case ike.LevelInfo:
		level = zap.InfoLevel
	case ike.LevelWarn:
		level = zap.WarnLevel
	}
	ce := f.t.log.Check(level, e.Msg)
	if ce == nil {
		return
	}
	fields := make([]zap.Field, 0, len(e.Fields)+4)
	for _, fl := range e.Fields {
		fields = append(fields, zap.String(fl.Key, fl.Value))
	}
	// The shell's fields for what the core did not say itself.
	for _, sf := range f.fields() {
		if !slices.ContainsFunc(e.Fields, func(fl ike.Field) bool { return fl.Key == sf.Key }) {
			fields = append(fields, sf)
		}
	}
	ce.Write(fields...)
}

func (f *family) fields() []zap.Field {
	fs := []zap.Field{zap.Uint64("family", uint64(f.e.id))}
	if f.conn != "" {
		fs = append(fs, logfield.Conn(f.conn))
	}
	if f.remote.IsValid() {
		fs = append(fs, logfield.Peer(f.remote))
	}
	if s := f.e.summary.Load(); s != nil && len(s.IKE) > 0 {
		fs = append(fs, logfield.IKESA(uint64(s.IKE[0].SPIi), uint64(s.IKE[0].SPIr))...)
	}
	return fs
}

// logger returns a logger with the family's fields, built only when a line is written.
func (f *family) logger() *zap.Logger { return f.t.log.With(f.fields()...) }

// childRefOf parses the Child SA ref from a child actor's PID (".../c<ref>").
func childRefOf(pid *actor.PID) (ike.ChildRef, bool) {
	i := strings.LastIndex(pid.Id, "/c")
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(pid.Id[i+2:], 10, 64)
	return ike.ChildRef(n), err == nil
}
