package actors

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/cygnet-ipsec/cygnet/actors/actorkit"
	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/actors/telemetry/logfield"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// The child actor owns one Child SA's kernel state (DESIGN.md, "The actor tree"):
//
//   - Its first message, installChild, puts the Child SA into the kernel: the inbound
//     SA, the outbound SA, then — for the first Child SA of a lineage — the policies in,
//     out and fwd (RFC 4301 §4.4.1), all tagged with the lineage's reqid and owned by
//     (family, Child SA ref). It reports ike.ChildInstalled or ike.ChildInstallFailed
//     to its family, rolling back what it installed on failure. It never stops itself:
//     the family stops it, so that the family can tell a requested stop from a death.
//   - On Stopping, for whatever reason (RemoveChild, kill, panic, its family stopping),
//     it removes what it installed, idempotently. The lineage's policies go with the
//     last Child SA that holds them (a rekeyed successor keeps them).
//   - Kernel expiry events for its SAs reach it through its family; it relays them as
//     ike.ChildExpired while it is installed.
//
// Kernel calls block only this actor's turn (DESIGN.md: netlink calls happen in child
// actors, never in the manager).

// lineage is what successive Child SAs of one rekey chain share (RFC 7296 §2.8): the
// reqid that ties their SAs to the policies, and the policies themselves, installed by
// the first and removed by the last holder.
type lineage struct {
	reqid kernel.Reqid

	mu      sync.Mutex
	holders int
	// The policies, once installed (policies != nil): their selector pairs and what
	// rebuilds them (policyOwner); the first Child SA of the lineage sets them.
	policies      []policyPair
	mode          kernel.Mode
	local, remote netip.Addr
	owner         kernel.Owner
}

// policyPair is the compact record of the policies of one selector pair: the out
// policy's selector; the in (and, in tunnel mode, fwd) policies use it mirrored. It
// keeps an idle family's memory small (RFC 4301 §4.4.1: one SPD entry per direction).
type policyPair struct {
	out kernel.Selector
	fwd bool
}

func mirror(s kernel.Selector) kernel.Selector {
	return kernel.Selector{Src: s.Dst, Dst: s.Src, Proto: s.Proto, SrcPort: s.DstPort, DstPort: s.SrcPort}
}

func policyPairs(ps []kernel.Policy) []policyPair {
	var out []policyPair
	fwd := map[kernel.Selector]bool{}
	for _, p := range ps {
		if p.Dir == kernel.DirFwd {
			fwd[mirror(p.Selector)] = true
		}
	}
	for _, p := range ps {
		if p.Dir == kernel.DirOut {
			out = append(out, policyPair{out: p.Selector, fwd: fwd[p.Selector]})
		}
	}
	return slices.Clip(out)
}

// policiesFor implements policyOwner: the lineage's policies of one pair, as planChild
// made them.
func (l *lineage) policiesFor(out kernel.Selector) []kernel.Policy {
	i := slices.IndexFunc(l.policies, func(p policyPair) bool { return p.out == out })
	if i < 0 {
		return nil
	}
	prio := policyPriority(out.Src, out.Dst, out.Proto, out.SrcPort, out.DstPort)
	tmplOut := kernel.Template{Mode: l.mode, Reqid: l.reqid}
	tmplIn := tmplOut
	if l.mode == kernel.ModeTunnel {
		tmplOut.Src, tmplOut.Dst = l.local, l.remote
		tmplIn.Src, tmplIn.Dst = l.remote, l.local
	}
	ps := []kernel.Policy{
		{Dir: kernel.DirOut, Selector: out, Priority: prio, Template: tmplOut, Owner: l.owner},
		{Dir: kernel.DirIn, Selector: mirror(out), Priority: prio, Template: tmplIn, Owner: l.owner},
	}
	if l.policies[i].fwd {
		ps = append(ps, kernel.Policy{Dir: kernel.DirFwd, Selector: mirror(out), Priority: prio, Template: tmplIn, Owner: l.owner})
	}
	return ps
}

func (l *lineage) acquire() {
	l.mu.Lock()
	l.holders++
	l.mu.Unlock()
}

// installChild is the child actor's first message.
type installChild struct {
	ticket *childTicket
	family kernel.FamilyID
	sa     ike.ChildSA // keys are the child's own copy, wiped after install
	conn   string
}

// childTicket is what a family keeps of an install message: whether the child took it,
// and what to undo if it did not (a child stopped before handling its first message —
// a Stop is a system message and overtakes it): the reserved inbound SPI and the
// lineage reference.
type childTicket struct {
	taken atomic.Bool
	in    kernel.SAID
	lin   *lineage
}

// kernelExpired is a kernel expiry event for one of the child's SAs.
type kernelExpired struct{ hard bool }

// chaosPanic makes the receiving actor panic (debug kill with a panic).
type chaosPanic struct{}

type child struct {
	actorkit.Guard
	t      *tree
	family kernel.FamilyID

	ref  ike.ChildRef
	name string
	conn string
	lin  *lineage
	// The SAs: inbound (SPI spiIn at local) and outbound (spiOut at remote); kept as
	// parts rather than two kernel.SAIDs to fit a smaller allocation size class.
	local, remote netip.Addr
	spiIn, spiOut kernel.SPI
	installed     bool // both SAs are in and the family was told
	hasIn         bool // the inbound SA (or its reserved SPI) may be in the kernel
	hasOut        bool
	holds         bool // holds a lineage reference
}

func newChildProducer(t *tree) actor.Producer {
	return func() actor.Actor { return &child{t: t} }
}

func (c *child) Receive(ctx actor.Context) { c.t.childPolicy.Receive(ctx, &c.Guard, c.receive) }

func (c *child) receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *installChild:
		c.install(ctx, m)
	case kernelExpired:
		if c.installed {
			ctx.Send(ctx.Parent(), ike.ChildExpired{Ref: c.ref, Hard: m.hard})
		}
	case chaosPanic:
		panic(fmt.Sprintf("chaos: child %v panics on request", c.ref))
	case *actor.Stopping:
		c.remove()
	}
}

func (c *child) install(ctx actor.Context, m *installChild) {
	m.ticket.taken.Store(true)
	sa := &m.sa
	c.ref, c.name, c.conn, c.lin, c.holds, c.family = sa.Ref, sa.Name, m.conn, m.ticket.lin, true, m.family
	err := c.installSAs(sa)
	wipe(sa)
	if err != nil {
		c.logger().Warn("child SA install failed; the Child SA fails alone", zap.Error(err))
		c.rollback()
		ctx.Send(ctx.Parent(), ike.ChildInstallFailed{Ref: c.ref, Err: err})
		return
	}
	c.installed = true
	c.t.rec.ChildSAInstalled(c.conn)
	ctx.Send(ctx.Parent(), ike.ChildInstalled{Ref: c.ref})
}

func (c *child) installSAs(sa *ike.ChildSA) error {
	c.lin.mu.Lock()
	withPolicies := c.lin.policies == nil
	c.lin.mu.Unlock()
	// The inbound SPI is reserved in the kernel (a larval SA) from AllocSPI on: it is
	// removed with the Child SA even if the install fails before filling it in.
	c.local, c.spiIn = sa.Local.Unmap(), kernel.SPI(sa.Inbound.SPI)
	c.hasIn = c.spiIn != 0
	plan, err := planChild(c.family, sa, c.lin.reqid, withPolicies)
	if err != nil {
		return fmt.Errorf("install child %v: %w", sa, err)
	}
	in, out := plan.in.ID(), plan.out.ID()
	c.local, c.spiIn, c.remote, c.spiOut = in.Dst, in.SPI, out.Dst, out.SPI
	if err := c.addSA(plan.in); err != nil {
		return err
	}
	if err := c.addSA(plan.out); err != nil {
		return err
	}
	c.hasOut = true
	if !withPolicies {
		return nil
	}
	c.lin.mu.Lock()
	defer c.lin.mu.Unlock()
	if c.lin.policies != nil {
		return nil // a sibling of the lineage installed them meanwhile
	}
	l := c.lin
	l.policies = policyPairs(plan.policies)
	l.mode, l.owner = plan.out.Mode, plan.policies[0].Owner
	l.local, l.remote = plan.out.Src, plan.out.Dst
	for i, pp := range l.policies {
		if err := c.t.policies.hold(c.t, l, pp.out); err != nil {
			for _, done := range l.policies[:i] {
				_ = c.t.policies.drop(c.t, l, done.out)
			}
			l.policies = nil
			return fmt.Errorf("install child %v: %w", sa.Ref, err)
		}
	}
	return nil
}

func (c *child) addSA(sa kernel.SA) error {
	ctx, cancel := c.t.kctx()
	defer cancel()
	start := time.Now()
	err := c.t.kernel.AddSA(ctx, sa)
	c.t.kernelOp(telemetry.KernelAddSA, start, err)
	if err != nil {
		return fmt.Errorf("install child %v: %w", c.ref, err)
	}
	return nil
}

func (c *child) inID() kernel.SAID  { return kernel.SAID{Dst: c.local, SPI: c.spiIn} }
func (c *child) outID() kernel.SAID { return kernel.SAID{Dst: c.remote, SPI: c.spiOut} }

// rollback removes the SAs a failed install put in and gives up the lineage reference.
func (c *child) rollback() {
	c.removeSAs()
	c.release()
}

// remove is the Stopping handler: everything this Child SA put in the kernel goes.
func (c *child) remove() {
	if c.lin == nil {
		return // stopped before its install message
	}
	c.removeSAs()
	c.release()
	if c.installed {
		c.installed = false
		c.t.rec.ChildSARemoved(c.conn)
	}
}

func (c *child) removeSAs() {
	for _, s := range []struct {
		id  kernel.SAID
		has *bool
	}{{c.outID(), &c.hasOut}, {c.inID(), &c.hasIn}} {
		if !*s.has {
			continue
		}
		ctx, cancel := c.t.kctx()
		start := time.Now()
		err := c.t.kernel.DeleteSA(ctx, s.id)
		cancel()
		c.t.kernelOp(telemetry.KernelDeleteSA, start, err)
		if err != nil && !errors.Is(err, kernel.ErrNotFound) {
			// The family's DeleteOwned is the safety net.
			c.logger().Warn("removing child SA failed", zap.Stringer("sa", s.id), zap.Error(err))
		}
		*s.has = false
	}
}

// release gives up the lineage reference; the last holder removes the policies.
func (c *child) release() {
	if !c.holds {
		return
	}
	c.holds = false
	c.lin.release(c.t, c.logger)
}

// release gives up one reference; the last holder lets go of the lineage's policies
// (policyTable: a trap or an older holder of the same policies comes back).
func (l *lineage) release(t *tree, logger func() *zap.Logger) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.holders--
	if l.holders > 0 || l.policies == nil {
		return
	}
	for _, pp := range l.policies {
		if err := t.policies.drop(t, l, pp.out); err != nil {
			logger().Warn("removing policy failed", zap.Error(err))
		}
	}
	l.policies = nil
}

// abandon undoes what an install message carried when its child actor stopped before
// handling it. The family calls it on the child's Terminated.
func (tk *childTicket) abandon(t *tree) {
	if tk.in.SPI != 0 {
		ctx, cancel := t.kctx()
		start := time.Now()
		err := t.kernel.DeleteSA(ctx, tk.in)
		cancel()
		t.kernelOp(telemetry.KernelDeleteSA, start, err)
	}
	tk.lin.release(t, func() *zap.Logger { return t.log })
}

// logger returns the child's logger; it is built only when a line is written, so that
// an idle child holds no logger.
func (c *child) logger() *zap.Logger {
	fields := append([]zap.Field{logfield.Conn(c.conn), logfield.Child(c.name), zap.Stringer("ref", c.ref),
		zap.Uint64("family", uint64(c.family))}, logfield.ChildSPIs(uint32(c.spiIn), uint32(c.spiOut))...)
	return c.t.log.With(fields...)
}

// wipe clears the key material of a Child SA description.
func wipe(sa *ike.ChildSA) {
	for _, k := range [][]byte{sa.Inbound.EncrKey, sa.Inbound.IntegKey, sa.Outbound.EncrKey, sa.Outbound.IntegKey} {
		clear(k)
	}
}

// cloneKeys gives sa its own copy of the key material (the core's buffers are only
// valid until its next Step).
func cloneKeys(sa *ike.ChildSA) {
	for _, k := range []*[]byte{&sa.Inbound.EncrKey, &sa.Inbound.IntegKey, &sa.Outbound.EncrKey, &sa.Outbound.IntegKey} {
		if len(*k) > 0 {
			*k = append([]byte(nil), *k...)
		}
	}
	sa.LocalTS = append([]ike.TrafficSelector(nil), sa.LocalTS...)
	sa.RemoteTS = append([]ike.TrafficSelector(nil), sa.RemoteTS...)
}
