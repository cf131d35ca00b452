// Package sim is a deterministic simulator for cygnet's protocol core (actors/ike): many
// IKE families, both ends of each, over a virtual network on a virtual clock, with an
// in-memory kernel (kernel/memkernel) per node.
//
// Contract: a World is single-threaded and fully deterministic for a given seed and
// sequence of calls. It plays the roles the daemon's actors play around the core: the
// manager (routing datagrams by IKE SPI, spawning responder families, COOKIE policy),
// the family shell (carrying effects out, one timer per family, running Work) and the
// child actors (installing Child SAs in the node's kernel and reporting back). Time only
// moves when the caller advances it; datagrams only move when delivered (by a script
// command, or by the network's own schedule when AutoDeliver is on).
//
// Two ways to drive it: scripts (World.Exec, testdata/*.txt: commands with the expected
// output beside them, regenerated with -rewrite; script.go lists the commands), and
// direct calls for randomized runs. For the latter the World exposes everything an
// invariant needs: Nodes (each with its memkernel.Kernel, KernelTables and Families),
// Family.F.Snapshot() (both ends' IKE and Child SAs, message IDs, outstanding
// requests), Net (datagrams in flight, per-link loss/duplication/reordering/delay/MTU),
// History (message IDs per IKE SA), Quiet, and Check/CheckQuiet (kernel vs Child SAs,
// keys equal on both ends, message IDs never backwards, agreement once quiet), and
// OnEffect to watch every effect as it happens.
//
// Randomized runs: campaign_test.go (TestRandom) is the campaign of issue 3 — a seed
// picks a hub-and-spokes topology, suites, modes, identities, link conditions, commands
// and faults, and the invariants are checked after every command and at the end
// (2,000 seeds by default; -sim.seeds=N for more, in parallel over GOMAXPROCS; a
// failing seed prints the one-line command that replays it with its event trace,
// -sim.seed=N -v). Key-exchange work runs inline, after random virtual delays
// (World.WorkDelay) or held back and released in random order, as the seed picks
// (-sim.work=now|delay|hold|auto). interleave_test.go explores random orders of
// deliveries and work results of simultaneous rekeys. random_test.go is an older smoke
// test over a single pair that prints the script replaying a failing seed.
//
// The simulated manager also plays INITIAL_CONTACT (RFC 7296 §2.4) as the daemon's
// should: a family created while another of its connection lives gets
// Options.NoInitialContact, one still being set up gets NotFirstContact when another
// comes up, and ike.InitialContact ends the families with the same identities that
// were up before the reporting family was created.
package sim

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/cygnet-ipsec/cygnet/kernel/memkernel"
	"github.com/cygnet-ipsec/cygnet/wire"
)

// Epoch is the virtual clock's start.
var Epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// World is the simulation: nodes, their families, the network and the clock.
type World struct {
	Now   time.Time
	Seed  uint64
	Nodes []*Node
	Net   Network
	// AutoDeliver: Advance also delivers datagrams whose delivery time has come
	// (per-link Delay, loss, duplication and reordering apply). Scripts usually
	// deliver by hand.
	AutoDeliver bool
	// DeferWork keeps Work effects pending until RunWork (to test what happens while
	// key exchanges are computed); otherwise Work runs at once.
	DeferWork bool
	// WorkDelay, when set (and DeferWork is off), schedules each Work effect to finish
	// that long after it was emitted, in virtual time, as a worker pool under load
	// would: results come back after other events, and out of order when a later Work
	// draws a shorter delay. Advance delivers them in time order (ties in emission
	// order); a family that ends first never sees its results.
	WorkDelay func() time.Duration

	rng     *rand.Rand
	out     strings.Builder
	pending []pendingWork
	// History records, per IKE SA (node, SPIs), every message ID seen in snapshots, so
	// that invariant checks can verify they never go backwards.
	History map[string][2]uint32
	// Mute discards what the world prints (Output stays empty): randomized runs that
	// keep no trace save the formatting.
	Mute bool
	// OnEffect, when set, sees every effect of every family before it is carried out
	// (the randomized runs track which event ended which SA with it).
	OnEffect func(fh *Family, e ike.Effect)
	// OnReplaced, when set, sees each family the manager ends because another (by)
	// received INITIAL_CONTACT for the same identities, before it ends.
	OnReplaced func(old, by *Family)
}

type pendingWork struct {
	fh   *Family
	work ike.Work
	due  time.Time // WorkDelay: when it finishes; zero: held until RunWork
}

// Node is one host: an address, its connections, its kernel and its families.
type Node struct {
	w      *World
	Name   string
	Addr   netip.Addr
	Conns  []*ike.Connection
	Kernel *memkernel.Kernel
	Opts   ike.Options
	// Cookies, when set, makes the node demand COOKIEs for every new IKE SA (the
	// manager's policy above its half-open threshold).
	Cookies *ike.Cookies

	Families []*Family // live and dead, in creation order
	routes   map[ike.SPI]*Family
	halfOpen map[halfKey]*Family
	nextID   uint64
	failNext int // fail the next N Child SA installs
	sub      *kernel.Subscription
	sas      map[kernel.SAID]childKey // installed SAs → owner
	dropped  int
}

type halfKey struct {
	remote netip.AddrPort
	spiI   ike.SPI
}

type childKey struct {
	fh  *Family
	ref ike.ChildRef
}

// Family is a node's IKE family and what the shell keeps around it.
type Family struct {
	Node    *Node
	ID      uint64
	F       *ike.Family
	Dead    bool
	Reason  string // FamilyDone reason, or "killed"
	timerAt time.Time
	gen     uint64
	rng     *rand.ChaCha8
	remote  netip.Addr // the peer, as the shell learns it from datagrams
	reqids  map[ike.ChildRef]kernel.Reqid
	spis    map[ike.ChildRef][2]kernel.SAID // installed inbound, outbound
	larval  map[ike.ChildRef]kernel.SAID
	created time.Time // when the manager made it
	upAt    time.Time // its first IKE SA's Established (zero before)
}

// Name prints the family as "A1".
func (fh *Family) Name() string { return fmt.Sprintf("%s%d", fh.Node.Name, fh.ID) }

// New returns an empty world with the given seed.
func New(seed uint64) *World {
	return &World{Now: Epoch, Seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eed)), History: map[string][2]uint32{}}
}

// AddNode adds a node with the given name and address. SPIs of its kernel start at a
// value derived from its position (0xa0000001 for the first node, 0xb0000001 …) so
// that scripts read easily.
func (w *World) AddNode(name string, addr netip.Addr) *Node {
	first := kernel.SPI(0xa0000001 + uint32(len(w.Nodes))<<28)
	n := &Node{w: w, Name: name, Addr: addr, Kernel: memkernel.New(memkernel.Options{Now: w.Now, FirstSPI: first}),
		routes: map[ike.SPI]*Family{}, halfOpen: map[halfKey]*Family{}, sas: map[kernel.SAID]childKey{}}
	n.sub = n.Kernel.Subscribe(1024)
	w.Nodes = append(w.Nodes, n)
	return n
}

// Node returns the node named name (nil if none).
func (w *World) Node(name string) *Node {
	for _, n := range w.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func (w *World) nodeByAddr(a netip.Addr) *Node {
	for _, n := range w.Nodes {
		if n.Addr == a {
			return n
		}
	}
	return nil
}

// Output returns and clears what happened since the last call.
func (w *World) Output() string {
	s := w.out.String()
	w.out.Reset()
	return s
}

func (w *World) printf(format string, args ...any) {
	if !w.Mute {
		fmt.Fprintf(&w.out, format, args...)
	}
}

// Live returns the node's families that have not ended.
func (n *Node) Live() []*Family {
	var out []*Family
	for _, fh := range n.Families {
		if !fh.Dead {
			out = append(out, fh)
		}
	}
	return out
}

// newFamily registers a family created by the core.
func (n *Node) newFamily() *Family {
	n.nextID++
	var seed [32]byte
	copy(seed[:], fmt.Sprintf("%d/%s/%d", n.w.Seed, n.Name, n.nextID))
	fh := &Family{Node: n, ID: n.nextID, rng: rand.NewChaCha8(seed), created: n.w.Now,
		reqids: map[ike.ChildRef]kernel.Reqid{}, spis: map[ike.ChildRef][2]kernel.SAID{}, larval: map[ike.ChildRef]kernel.SAID{}}
	n.Families = append(n.Families, fh)
	return fh
}

// env is the family's ike.Env: deterministic randomness and the node kernel's SPIs.
type env struct{ fh *Family }

func (e env) Rand() io.Reader { return e.fh.rng }

func (e env) AllocSPI(ref ike.ChildRef) (uint32, error) {
	fh := e.fh
	k := fh.Node.Kernel
	reqid, err := k.AllocReqid()
	if err != nil {
		return 0, err
	}
	owner := kernel.Owner{Family: kernel.FamilyID(fh.ID), Child: uint64(ref)}
	spi, err := k.AllocSPI(context.Background(), kernel.SPIRequest{Src: fh.remote, Dst: fh.Node.Addr, Mode: kernel.ModeTunnel, Reqid: reqid, Owner: owner})
	if err != nil {
		return 0, err
	}
	fh.reqids[ref] = reqid
	fh.larval[ref] = kernel.SAID{Dst: fh.Node.Addr, SPI: spi}
	return uint32(spi), nil
}

// Initiate creates an initiator family for the node's connection conn and feeds it ev
// (ike.Initiate{} or ike.InitiateChild{...}).
func (n *Node) Initiate(conn string, ev ike.Event) (*Family, error) {
	var cfg *ike.Connection
	for _, c := range n.Conns {
		if c.Name == conn {
			cfg = c
		}
	}
	if cfg == nil {
		return nil, fmt.Errorf("node %s: no connection %q", n.Name, conn)
	}
	// The manager's INITIAL_CONTACT rule: only the first contact says so (another family
	// of this connection, in either role, must survive).
	opts := n.Opts
	for _, o := range n.Live() {
		if o.F.Connection().Name == conn {
			opts.NoInitialContact = true
		}
	}
	fh := n.newFamily()
	f, err := ike.NewInitiator(cfg, env{fh}, opts)
	if err != nil {
		n.Families = n.Families[:len(n.Families)-1]
		n.nextID--
		return nil, err
	}
	fh.F = f
	fh.step(ev)
	return fh, nil
}

// Feed steps the family with ev and carries out the effects.
func (fh *Family) Feed(ev ike.Event) {
	if fh.Dead {
		return
	}
	fh.step(ev)
}

func (fh *Family) step(ev ike.Event) {
	effects := slices.Clone(fh.F.Step(fh.Node.w.Now, ev))
	fh.apply(effects)
}

// apply carries out the effects of one Step, as the family/child actors would.
func (fh *Family) apply(effects []ike.Effect) {
	n, w := fh.Node, fh.Node.w
	var feedback []ike.Event
	for _, e := range effects {
		if w.OnEffect != nil {
			w.OnEffect(fh, e)
		}
		switch e := e.(type) {
		case ike.SendDatagram:
			fh.remote = e.Remote.Addr()
			from := e.Local
			if !from.Addr().IsValid() || from.Addr().IsUnspecified() {
				// A wildcard socket: the kernel picks the node's address.
				from = netip.AddrPortFrom(n.Addr, from.Port())
			}
			w.Net.send(w, from, e.Remote, slices.Clone(e.Data), e.Summary, n)
		case ike.ArmTimer:
			fh.timerAt, fh.gen = e.At, e.Gen
		case ike.Work:
			switch {
			case w.DeferWork:
				w.pending = append(w.pending, pendingWork{fh: fh, work: e})
			case w.WorkDelay != nil:
				w.pending = append(w.pending, pendingWork{fh: fh, work: e, due: w.Now.Add(w.WorkDelay())})
			default:
				feedback = append(feedback, ike.WorkDone{Token: e.Token, Result: e.Run()})
			}
		case ike.RouteSPI:
			n.routes[e.SPI] = fh
		case ike.UnrouteSPI:
			if n.routes[e.SPI] == fh {
				delete(n.routes, e.SPI)
			}
		case ike.InstallChild:
			feedback = append(feedback, fh.install(&e.SA))
		case ike.RemoveChild:
			fh.remove(e.Ref)
		case ike.Established:
			if fh.upAt.IsZero() {
				fh.upAt = w.Now
				// The manager's INITIAL_CONTACT rule, continued: an initiator of the
				// same connection still being set up is no longer the first contact.
				for _, o := range n.Live() {
					if o != fh && o.upAt.IsZero() && o.F.Connection().Name == fh.F.Connection().Name {
						o.Feed(ike.NotFirstContact{})
					}
				}
			}
			if e.Rekeyed {
				w.printf("  %s: IKE SA rekeyed %v_i %v_r\n", fh.Name(), e.IKE.SPIi, e.IKE.SPIr)
			} else {
				w.printf("  %s: IKE SA established %v_i %v_r\n", fh.Name(), e.IKE.SPIi, e.IKE.SPIr)
			}
		case ike.IKEClosed:
			w.printf("  %s: IKE SA closed %v_i (%s)\n", fh.Name(), e.SPIi, e.Reason)
		case ike.ChildUp:
			w.printf("  %s: child up %s %v in=%08x out=%08x\n", fh.Name(), e.Child.Name, e.Child.Ref, e.Child.SPIIn, e.Child.SPIOut)
		case ike.ChildDown:
			w.printf("  %s: child down %s %v (%s)\n", fh.Name(), e.Name, e.Ref, e.Reason)
		case ike.ChildFailed:
			w.printf("  %s: child failed %s (%s)\n", fh.Name(), e.Name, e.Reason)
		case ike.Dropped:
			w.printf("  %s: dropped %s\n", fh.Name(), e.Reason)
		case ike.ExchangeDone:
			if e.Outcome != "ok" {
				w.printf("  %s: %s as %s: %s\n", fh.Name(), e.Exchange, e.Role, e.Outcome)
			}
		case ike.NotifySeen:
			// Only what scripts check: the COOKIE challenges an initiator counts.
			if !e.Sent && e.Type == wire.NotifyCookie.String() {
				w.printf("  %s: notify %s received\n", fh.Name(), e.Type)
			}
		case ike.Retransmitted:
			w.printf("  %s: retransmit %s try %d\n", fh.Name(), e.Exchange, e.Try)
		case ike.InitialContact:
			w.printf("  %s: initial contact from %v\n", fh.Name(), e.RemoteID)
			n.initialContact(fh, e)
		case ike.FamilyDone:
			fh.end(e.Reason)
		}
	}
	for _, ev := range feedback {
		if fh.Dead {
			return
		}
		fh.step(ev)
	}
}

// install plays the child actor: both SAs into the node's kernel.
func (fh *Family) install(sa *ike.ChildSA) ike.Event {
	n := fh.Node
	if n.failNext > 0 {
		n.failNext--
		return ike.ChildInstallFailed{Ref: sa.Ref, Err: fmt.Errorf("injected install failure")}
	}
	reqid := fh.reqids[sa.Ref]
	owner := kernel.Owner{Family: kernel.FamilyID(fh.ID), Child: uint64(sa.Ref)}
	mk := func(src, dst netip.Addr, k ike.ESPKeys) kernel.SA {
		s := kernel.SA{Src: src, Dst: dst, SPI: kernel.SPI(k.SPI), Mode: kernel.ModeTunnel, Reqid: reqid, Owner: owner,
			EncrKey: k.EncrKey, IntegKey: k.IntegKey, ESN: sa.ESN, ReplayWindow: sa.ReplayWindow,
			Limits: kernel.Limits{
				Soft: kernel.Lifetime{Bytes: sa.Lifetime.SoftBytes, Packets: sa.Lifetime.SoftPackets},
				Hard: kernel.Lifetime{Bytes: sa.Lifetime.HardBytes, Packets: sa.Lifetime.HardPackets},
			}}
		if sa.Mode == ike.ModeTransport {
			s.Mode = kernel.ModeTransport
		}
		switch k.Encr {
		case wire.EncrAESGCM16:
			s.Encr = kernel.EncrAESGCM16
		case wire.EncrChaCha20Poly1305:
			s.Encr = kernel.EncrChaCha20Poly1305
		default:
			s.Encr = kernel.EncrAESCBC
		}
		switch k.Integ {
		case wire.IntegHMACSHA2_256_128:
			s.Integ = kernel.IntegHMACSHA256128
		case wire.IntegHMACSHA2_384_192:
			s.Integ = kernel.IntegHMACSHA384192
		case wire.IntegHMACSHA2_512_256:
			s.Integ = kernel.IntegHMACSHA512256
		}
		if sa.Encap {
			s.Encap = &kernel.Encap{SrcPort: sa.LocalPort, DstPort: sa.RemotePort}
			if dst == sa.Local {
				s.Encap = &kernel.Encap{SrcPort: sa.RemotePort, DstPort: sa.LocalPort}
			}
		}
		return s
	}
	in := mk(sa.Remote, sa.Local, sa.Inbound)
	out := mk(sa.Local, sa.Remote, sa.Outbound)
	ctx := context.Background()
	if err := n.Kernel.AddSA(ctx, in); err != nil {
		return ike.ChildInstallFailed{Ref: sa.Ref, Err: err}
	}
	if err := n.Kernel.AddSA(ctx, out); err != nil {
		_ = n.Kernel.DeleteSA(ctx, in.ID())
		return ike.ChildInstallFailed{Ref: sa.Ref, Err: err}
	}
	delete(fh.larval, sa.Ref)
	fh.spis[sa.Ref] = [2]kernel.SAID{in.ID(), out.ID()}
	n.sas[in.ID()] = childKey{fh, sa.Ref}
	n.sas[out.ID()] = childKey{fh, sa.Ref}
	return ike.ChildInstalled{Ref: sa.Ref}
}

// remove plays the child actor stopping: its SAs (or its reserved SPI) leave the kernel.
func (fh *Family) remove(ref ike.ChildRef) {
	n := fh.Node
	ctx := context.Background()
	if ids, ok := fh.spis[ref]; ok {
		for _, id := range ids {
			_ = n.Kernel.DeleteSA(ctx, id)
			delete(n.sas, id)
		}
		delete(fh.spis, ref)
	}
	if id, ok := fh.larval[ref]; ok {
		_ = n.Kernel.DeleteSA(ctx, id)
		delete(fh.larval, ref)
	}
	delete(fh.reqids, ref)
}

// end plays the manager after a family stopped: routes dropped, kernel state removed.
func (fh *Family) end(reason string) {
	n, w := fh.Node, fh.Node.w
	fh.Dead, fh.Reason = true, reason
	fh.timerAt = time.Time{}
	for spi, o := range n.routes {
		if o == fh {
			delete(n.routes, spi)
		}
	}
	for k, o := range n.halfOpen {
		if o == fh {
			delete(n.halfOpen, k)
		}
	}
	for ref := range fh.spis {
		fh.remove(ref)
	}
	for ref := range fh.larval {
		fh.remove(ref)
	}
	_ = n.Kernel.DeleteOwned(context.Background(), kernel.FamilyID(fh.ID))
	w.pending = slices.DeleteFunc(w.pending, func(p pendingWork) bool { return p.fh == fh })
	w.printf("  %s: family done (%s)\n", fh.Name(), reason)
}

// initialContact plays the manager on ike.InitialContact from fh: every other live
// family of the node whose current IKE SA joins the same two identities ends at once,
// without a DELETE (the peer restarted; it no longer knows them), like a killed
// family. Only families up before fh was created: one that came up while fh was being
// set up may be the other half of a simultaneous initiation by both ends, where each
// end's INITIAL_CONTACT would otherwise end the other's survivor.
func (n *Node) initialContact(fh *Family, e ike.InitialContact) {
	for _, o := range n.Live() {
		if o == fh || o.upAt.IsZero() || !o.upAt.Before(fh.created) {
			continue
		}
		s := o.F.Snapshot()
		if len(s.IKE) == 0 || !s.IKE[0].LocalID.Equal(e.LocalID) || !s.IKE[0].RemoteID.Equal(e.RemoteID) {
			continue
		}
		if n.w.OnReplaced != nil {
			n.w.OnReplaced(o, fh)
		}
		o.end("replaced by initial contact")
	}
}

// Kill ends the family as if its actor had been killed: the manager removes its state;
// the peer is not told.
func (fh *Family) Kill() {
	if !fh.Dead {
		fh.end("killed")
	}
}

// receive plays the manager: route a datagram to its family or spawn a responder.
func (n *Node) receive(d *Datagram) {
	w := n.w
	pkt := ike.PacketReceived{Local: d.To, Remote: d.From, Data: d.Data}
	p, err := ike.Peek(d.Data)
	if err != nil {
		n.dropped++
		w.printf("  %s: dropped malformed\n", n.Name)
		return
	}
	switch p.Kind {
	case ike.PeekNewSA:
		if fh := n.halfOpen[halfKey{d.From, p.SPIi}]; fh != nil && !fh.Dead {
			fh.Feed(pkt)
			return
		}
		if n.Cookies != nil {
			verdict, resp, err := n.Cookies.Check(d.Data, d.From.Addr())
			if err != nil {
				n.dropped++
				return
			}
			if verdict != ike.CookieValid {
				w.printf("  %s: cookie %s, challenge sent\n", n.Name, verdict)
				w.Net.send(w, d.To, d.From, resp, "IKE_SA_INIT response 0 [ N(COOKIE) ]", n)
				return
			}
		}
		var cands []*ike.Connection
		for _, c := range n.Conns {
			if len(c.RemoteAddrs) == 0 || slices.Contains(c.RemoteAddrs, d.From.Addr()) {
				cands = append(cands, c)
			}
		}
		if len(cands) == 0 {
			n.dropped++
			w.printf("  %s: dropped IKE_SA_INIT: no connection for %v\n", n.Name, d.From.Addr())
			return
		}
		fh := n.newFamily()
		fh.remote = d.From.Addr()
		f, effects, err := ike.NewResponder(w.Now, cands, env{fh}, n.Opts, pkt)
		if err != nil {
			n.Families = n.Families[:len(n.Families)-1]
			n.nextID--
			n.dropped++
			w.printf("  %s: dropped IKE_SA_INIT: %v\n", n.Name, err)
			return
		}
		fh.F = f
		n.halfOpen[halfKey{d.From, p.SPIi}] = fh
		fh.apply(slices.Clone(effects))
	case ike.PeekRoute:
		fh := n.routes[p.LocalSPI]
		if fh == nil || fh.Dead {
			n.dropped++
			w.printf("  %s: dropped unknown SPI %v\n", n.Name, p.LocalSPI)
			return
		}
		fh.Feed(pkt)
	}
}

// RunWork runs every deferred Work effect (in order) and feeds the results back.
func (w *World) RunWork() int {
	n := 0
	for len(w.pending) > 0 {
		if w.RunWorkAt(0) {
			n++
		}
	}
	return n
}

// PendingWork lists the Work effects not yet run, in emission order, as "A1#3"
// (family and token).
func (w *World) PendingWork() []string {
	out := make([]string, 0, len(w.pending))
	for _, p := range w.pending {
		out = append(out, fmt.Sprintf("%s#%d", p.fh.Name(), p.work.Token))
	}
	return out
}

// HasPendingWork reports whether a Work effect of fh is still to run.
func (w *World) HasPendingWork(fh *Family) bool {
	return slices.ContainsFunc(w.pending, func(p pendingWork) bool { return p.fh == fh })
}

// RunWorkAt runs the i-th pending Work effect (PendingWork order) and feeds its result
// back; the others stay pending. It reports whether a live family got a result.
func (w *World) RunWorkAt(i int) bool {
	if i < 0 || i >= len(w.pending) {
		return false
	}
	p := w.pending[i]
	w.pending = slices.Delete(w.pending, i, i+1)
	if p.fh.Dead {
		return false
	}
	p.fh.Feed(ike.WorkDone{Token: p.work.Token, Result: p.work.Run()})
	return true
}

// Advance moves the clock forward by d, firing family timers, kernel lifetimes and (with
// AutoDeliver) network deliveries in time order.
func (w *World) Advance(d time.Duration) {
	target := w.Now.Add(d)
	for {
		next, fire := w.nextEvent(target)
		if fire == nil {
			break
		}
		if next.After(w.Now) {
			w.Now = next
		}
		fire()
	}
	w.Now = target
	w.kernelTick()
}

// nextEvent finds the earliest thing due at or before target.
func (w *World) nextEvent(target time.Time) (time.Time, func()) {
	var at time.Time
	var fire func()
	consider := func(t time.Time, f func()) {
		if t.IsZero() || t.After(target) {
			return
		}
		if fire == nil || t.Before(at) {
			at, fire = t, f
		}
	}
	for _, n := range w.Nodes {
		for _, fh := range n.Families {
			if fh.Dead || fh.timerAt.IsZero() {
				continue
			}
			fh := fh
			consider(fh.timerAt, func() {
				w.kernelTick()
				gen := fh.gen
				fh.timerAt = time.Time{}
				fh.Feed(ike.TimerFired{Gen: gen})
			})
		}
	}
	for _, p := range w.pending {
		if !p.due.IsZero() {
			consider(p.due, func() {
				if j := slices.IndexFunc(w.pending, func(q pendingWork) bool { return q.fh == p.fh && q.work.Token == p.work.Token }); j >= 0 {
					w.RunWorkAt(j)
				}
			})
		}
	}
	if w.AutoDeliver {
		if d := w.Net.earliest(); d != nil {
			consider(d.DeliverAt, func() { w.deliver(d) })
		}
	}
	return at, fire
}

// kernelTick advances each node's kernel clock and relays its expiry events.
func (w *World) kernelTick() {
	for _, n := range w.Nodes {
		n.Kernel.Advance(w.Now)
		for {
			select {
			case ev := <-n.sub.C:
				ck, ok := n.sas[ev.SA]
				if !ok || ck.fh.Dead {
					continue
				}
				hard := ev.Kind == kernel.EventHardExpire
				if hard {
					delete(n.sas, ev.SA)
				}
				w.printf("  %s: kernel %s expire %v\n", ck.fh.Name(), map[bool]string{true: "hard", false: "soft"}[hard], ck.ref)
				ck.fh.Feed(ike.ChildExpired{Ref: ck.ref, Hard: hard})
				continue
			default:
			}
			break
		}
	}
}

// Families lists every family of every node, in node then creation order.
func (w *World) Families() []*Family {
	var out []*Family
	for _, n := range w.Nodes {
		out = append(out, n.Families...)
	}
	return out
}

// ShowTimers prints each live family's armed timer, relative to now ("none" when it
// has none): scripts see that junk does not move a timer.
func (w *World) ShowTimers() string {
	var b strings.Builder
	for _, fh := range w.Families() {
		switch {
		case fh.Dead:
		case fh.timerAt.IsZero():
			fmt.Fprintf(&b, "%s: timer none\n", fh.Name())
		default:
			fmt.Fprintf(&b, "%s: timer in %v\n", fh.Name(), fh.timerAt.Sub(w.Now))
		}
	}
	return b.String()
}

// ShowSAs prints both ends' IKE and Child SAs.
func (w *World) ShowSAs() string {
	var b strings.Builder
	for _, n := range w.Nodes {
		for _, fh := range n.Families {
			if fh.Dead {
				continue
			}
			s := fh.F.Snapshot()
			for i, ike := range s.IKE {
				role := "R"
				if ike.Initiator {
					role = "I"
				}
				cur := ""
				if i > 0 {
					cur = " (old)"
				}
				fmt.Fprintf(&b, "%s: %s %s %v_i %v_r %s msgid out=%d in=%d %v<>%v%s\n", fh.Name(), ike.Name, ike.State, ike.SPIi, ike.SPIr, role, ike.NextMsgIDOut, ike.NextMsgIDIn, ike.LocalID, ike.RemoteID, cur)
			}
			for _, c := range s.Children {
				fmt.Fprintf(&b, "%s:   %v %s %v in=%08x out=%08x %v=>%v\n", fh.Name(), c.Ref, c.Name, c.State, c.SPIIn, c.SPIOut, c.LocalTS, c.RemoteTS)
			}
		}
	}
	if b.Len() == 0 {
		return "no SAs\n"
	}
	return b.String()
}

// ShowKernel prints every node's SAD (keys masked), with owners.
func (w *World) ShowKernel() string {
	var b strings.Builder
	for _, n := range w.Nodes {
		t, _ := n.Kernel.Snapshot(context.Background())
		fmt.Fprintf(&b, "%s:\n", n.Name)
		lines := strings.Split(strings.TrimRight(t.Format(kernel.FormatOptions{}), "\n"), "\n")
		if len(lines) == 1 && lines[0] == "" {
			b.WriteString("  (empty)\n")
			continue
		}
		for _, l := range lines {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	return b.String()
}
