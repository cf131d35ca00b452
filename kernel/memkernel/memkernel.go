// Package memkernel is an in-memory kernel.Kernel: a SAD and SPD held in maps, with the
// semantics of Linux XFRM that cygnet relies on, and the controls a test or a simulation
// needs.
//
//   - The tables print as text in the style of `ip xfrm state` / `ip xfrm policy`
//     (Format, String) for whole-table comparisons; GetSA returns keys.
//   - SPIs come in a predictable sequence: Options.FirstSPI, then the next free one.
//   - Faults can be injected: fail the next N installs (FailInstalls), fail SPI
//     allocation (FailAllocSPI), drop the next N events (DropEvents), fail every install
//     of one SPI (FailSPI).
//   - Time is the caller's: Advance(now) fires soft and hard time limits and drops
//     larval SAs; AddTraffic counts bytes and packets on an SA and fires byte and packet
//     limits; Send routes an outbound packet through the SPD and raises an acquire when it
//     hits a trap policy.
//   - Restart simulates a crash of the daemon: a new Kernel over the same tables with an
//     empty owner index, so CleanupStale finds the old instance's objects stale. Foreign
//     objects (not cygnet's) are installed with AddForeignSA and AddForeignPolicy.
//
// Like Linux, a hard limit deletes the SA and reports it, a soft limit is reported once
// (again after UpdateSA), and a policy is identified by direction and selector alone.
// Unlike Linux, time limits take effect exactly when Advance passes them, and a byte or
// packet limit fires as soon as AddTraffic reaches it.
package memkernel

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/cygnet-ipsec/cygnet/kernel/internal/owners"
)

var _ kernel.Kernel = (*Kernel)(nil)

// Options configure a new in-memory kernel.
type Options struct {
	// Now is the clock's starting time; zero means 2025-01-01T00:00:00Z.
	Now time.Time
	// FirstSPI is the first SPI AllocSPI hands out (if the request's range allows);
	// zero means 0xc0000001.
	FirstSPI kernel.SPI
	// AcqExpires is how long a larval SA (an SPI reserved by AllocSPI) and a pending
	// acquire live; zero means 30 s, Linux's default net.xfrm.acq_expires.
	AcqExpires time.Duration
}

// tables are the kernel's state; they outlive Kernel instances across Restart.
type tables struct {
	mu         sync.Mutex
	now        time.Time
	acqExpires time.Duration
	sas        map[kernel.SAID]*saEntry
	spis       map[kernel.SPI]int // SAs using each SPI, any destination
	policies   map[kernel.PolicyID]*policyEntry
	nextSPI    kernel.SPI
	indexGen   uint32
	acquires   map[uint32]pendingAcquire // by policy index
	timers     timerHeap                 // SA deadlines, for Advance
	gen        uint64                    // last saEntry.gen handed out
	faults     faults
	current    *Kernel // the instance that receives events
}

type saEntry struct {
	sa       kernel.SA // Owner is not kept here
	counters kernel.Counters
	larval   bool
	added    time.Time
	dying    bool   // soft expiry reported
	gen      uint64 // changes whenever the entry's deadlines do (see timer)
}

// pendingAcquire is an acquire raised for a policy, which suppresses further ones
// until it expires or an SA with its reqid is added (Linux's larval acquire state).
type pendingAcquire struct {
	until time.Time
	reqid kernel.Reqid
}

type policyEntry struct {
	p kernel.Policy // Owner is not kept here
}

type faults struct {
	installs   int
	allocSPI   int
	dropEvents int
	spis       map[kernel.SPI]bool
}

// Kernel is one daemon's view of the in-memory tables. Create it with New.
type Kernel struct {
	t      *tables
	index  *owners.Index
	hub    *kernel.Hub
	closed bool // guarded by t.mu
}

// New returns an in-memory kernel with empty tables.
func New(opts Options) *Kernel {
	t := &tables{
		now:        opts.Now,
		acqExpires: opts.AcqExpires,
		sas:        make(map[kernel.SAID]*saEntry),
		spis:       make(map[kernel.SPI]int),
		policies:   make(map[kernel.PolicyID]*policyEntry),
		nextSPI:    opts.FirstSPI,
		acquires:   make(map[uint32]pendingAcquire),
		faults:     faults{spis: make(map[kernel.SPI]bool)},
	}
	if t.now.IsZero() {
		t.now = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if t.acqExpires == 0 {
		t.acqExpires = 30 * time.Second
	}
	if t.nextSPI == 0 {
		t.nextSPI = 0xc0000001
	}
	k := &Kernel{t: t, index: owners.New(), hub: kernel.NewHub()}
	t.current = k
	return k
}

// Restart simulates the daemon dying and starting again: k is closed (its
// subscriptions end, its methods return kernel.ErrClosed) and a new Kernel with an empty
// owner index is returned over the same tables. Faults and the clock carry over.
func (k *Kernel) Restart() *Kernel {
	k.t.mu.Lock()
	defer k.t.mu.Unlock()
	k.closed = true
	k.hub.Close()
	n := &Kernel{t: k.t, index: owners.New(), hub: kernel.NewHub()}
	k.t.current = n
	return n
}

func (k *Kernel) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.t.mu.Lock()
	if k.closed {
		k.t.mu.Unlock()
		return kernel.ErrClosed
	}
	return nil
}

func (k *Kernel) unlock() { k.t.mu.Unlock() }

// publish delivers ev to the current instance's subscribers unless a fault drops it.
// Like kernel/xfrm, it reports only events of tagged objects. Called with t.mu held.
func (t *tables) publish(ev kernel.Event) {
	if !ev.Reqid.Tagged() {
		return
	}
	if t.faults.dropEvents > 0 {
		t.faults.dropEvents--
		return
	}
	cur := t.current
	switch ev.Kind {
	case kernel.EventAcquire:
		if info, ok := cur.index.Policy(ev.Policy); ok {
			ev.Owner = info.Owner
		}
	default:
		if info, ok := cur.index.SA(ev.SA); ok {
			ev.Owner = info.Owner
		}
	}
	cur.hub.Publish(ev)
}

// AllocReqid implements kernel.Kernel.
func (k *Kernel) AllocReqid() (kernel.Reqid, error) {
	if err := k.lock(context.Background()); err != nil {
		return 0, err
	}
	defer k.unlock()
	return k.index.AllocReqid()
}

// AllocSPI implements kernel.Kernel. SPIs follow one sequence for all destinations,
// starting at Options.FirstSPI, skipping SPIs that any SA uses (as Linux does since
// 6.x; older kernels only kept SPIs unique per destination).
func (k *Kernel) AllocSPI(ctx context.Context, req kernel.SPIRequest) (kernel.SPI, error) {
	if err := req.Validate(); err != nil {
		return 0, fmt.Errorf("allocate SPI %s: %w", req.Describe(), err)
	}
	if err := k.lock(ctx); err != nil {
		return 0, err
	}
	defer k.unlock()
	t := k.t
	if t.faults.allocSPI > 0 {
		t.faults.allocSPI--
		return 0, fmt.Errorf("allocate SPI %s: %w", req.Describe(), kernel.ErrInjected)
	}
	lo, hi := req.Range.Bounds()
	spi := t.nextSPI
	if spi < lo || spi > hi {
		spi = lo
	}
	for tries := uint64(hi-lo) + 1; ; tries-- {
		if tries == 0 {
			return 0, fmt.Errorf("allocate SPI %s: %w", req.Describe(), kernel.ErrSPIExhausted)
		}
		if t.spis[spi] == 0 {
			break
		}
		if spi == hi {
			spi = lo
		} else {
			spi++
		}
	}
	t.nextSPI = spi + 1
	id := kernel.SAID{Dst: req.Dst, SPI: spi}
	t.putSA(&saEntry{
		sa:     kernel.SA{Src: req.Src, Dst: req.Dst, SPI: spi, Mode: req.Mode, Reqid: req.Reqid},
		larval: true,
		added:  t.now,
	})
	k.index.PutSA(id, owners.SAInfo{Owner: req.Owner, Reqid: req.Reqid, Larval: true})
	return spi, nil
}

// putSA adds or replaces an SA and schedules its deadlines. Called with t.mu held.
func (t *tables) putSA(e *saEntry) {
	id := e.sa.ID()
	if _, ok := t.sas[id]; !ok {
		t.spis[id.SPI]++
	}
	t.sas[id] = e
	t.schedule(e)
}

// schedule (re)arms an SA's deadlines: timers of earlier generations are ignored when
// they come due. Called with t.mu held.
func (t *tables) schedule(e *saEntry) {
	t.gen++
	e.gen = t.gen
	id := e.sa.ID()
	if len(t.timers) >= 64 && len(t.timers) > 4*len(t.sas) {
		t.timers.dropStale(t.sas) // superseded deadlines of replaced and deleted SAs
	}
	push := func(d time.Duration) { t.timers.push(timer{at: e.added.Add(d), id: id, gen: e.gen}) }
	if e.larval {
		push(t.acqExpires)
		return
	}
	if d := e.sa.Limits.Soft.Time; d != 0 {
		push(d)
	}
	if d := e.sa.Limits.Hard.Time; d != 0 {
		push(d)
	}
}

// delSA removes an SA. Called with t.mu held.
func (t *tables) delSA(id kernel.SAID) {
	if _, ok := t.sas[id]; !ok {
		return
	}
	delete(t.sas, id)
	if t.spis[id.SPI]--; t.spis[id.SPI] <= 0 {
		delete(t.spis, id.SPI)
	}
}

// installFault reports an injected fault for an install of spi (0 for policies).
// Called with t.mu held.
func (t *tables) installFault(spi kernel.SPI) error {
	if spi != 0 && t.faults.spis[spi] {
		return kernel.ErrInjected
	}
	if t.faults.installs > 0 {
		t.faults.installs--
		return kernel.ErrInjected
	}
	return nil
}

// AddSA implements kernel.Kernel.
func (k *Kernel) AddSA(ctx context.Context, sa kernel.SA) error {
	if err := sa.Validate(); err != nil {
		return fmt.Errorf("add SA %s: %w", sa.Describe(), err)
	}
	if err := k.lock(ctx); err != nil {
		return err
	}
	defer k.unlock()
	if err := k.t.installFault(sa.SPI); err != nil {
		return fmt.Errorf("add SA %s: %w", sa.Describe(), err)
	}
	if err := k.t.addSA(sa); err != nil {
		return fmt.Errorf("add SA %s: %w", sa.Describe(), err)
	}
	k.index.PutSA(sa.ID(), owners.SAInfo{Owner: sa.Owner, Reqid: sa.Reqid})
	return nil
}

func (t *tables) addSA(sa kernel.SA) error {
	id := sa.ID()
	if e, ok := t.sas[id]; ok && !e.larval {
		return kernel.ErrExists
	}
	sa = sa.Clone()
	sa.Owner = kernel.Owner{}
	t.putSA(&saEntry{sa: sa, added: t.now})
	// An SA for a trap policy's reqid ends the pending acquires: the next packet uses it.
	for idx, pa := range t.acquires {
		if pa.reqid == sa.Reqid {
			delete(t.acquires, idx)
		}
	}
	return nil
}

// UpdateSA implements kernel.Kernel.
func (k *Kernel) UpdateSA(ctx context.Context, sa kernel.SA) error {
	if err := sa.Validate(); err != nil {
		return fmt.Errorf("update SA %s: %w", sa.Describe(), err)
	}
	if err := k.lock(ctx); err != nil {
		return err
	}
	defer k.unlock()
	if err := k.t.installFault(sa.SPI); err != nil {
		return fmt.Errorf("update SA %s: %w", sa.Describe(), err)
	}
	e, ok := k.t.sas[sa.ID()]
	if !ok || e.larval {
		return fmt.Errorf("update SA %s: %w", sa.Describe(), kernel.ErrNotFound)
	}
	if err := kernel.CheckUpdate(&e.sa, &sa); err != nil {
		return fmt.Errorf("update SA %s: %w", sa.Describe(), err)
	}
	if sa.Encap != nil {
		enc := *sa.Encap
		e.sa.Encap = &enc
	}
	e.sa.Limits = sa.Limits
	e.dying = false
	k.t.schedule(e)
	return nil
}

// DeleteSA implements kernel.Kernel.
func (k *Kernel) DeleteSA(ctx context.Context, id kernel.SAID) error {
	if err := k.lock(ctx); err != nil {
		return err
	}
	defer k.unlock()
	if _, ok := k.t.sas[id]; !ok {
		return fmt.Errorf("delete SA %s: %w", id, kernel.ErrNotFound)
	}
	k.t.delSA(id)
	k.index.RemoveSA(id)
	return nil
}

// GetSA implements kernel.Kernel. A larval SA is reported as not found.
func (k *Kernel) GetSA(ctx context.Context, id kernel.SAID) (kernel.SA, kernel.Counters, error) {
	if err := k.lock(ctx); err != nil {
		return kernel.SA{}, kernel.Counters{}, err
	}
	defer k.unlock()
	e, ok := k.t.sas[id]
	if !ok || e.larval {
		return kernel.SA{}, kernel.Counters{}, fmt.Errorf("get SA %s: %w", id, kernel.ErrNotFound)
	}
	sa := e.sa.Clone()
	if info, ok := k.index.SA(id); ok {
		sa.Owner = info.Owner
	}
	return sa, e.counters, nil
}

// AddPolicy implements kernel.Kernel.
func (k *Kernel) AddPolicy(ctx context.Context, p kernel.Policy) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("add %s: %w", p.Describe(), err)
	}
	if err := k.lock(ctx); err != nil {
		return err
	}
	defer k.unlock()
	if err := k.t.installFault(0); err != nil {
		return fmt.Errorf("add %s: %w", p.Describe(), err)
	}
	if _, ok := k.t.policies[p.ID()]; ok {
		return fmt.Errorf("add %s: %w", p.Describe(), kernel.ErrExists)
	}
	k.t.putPolicy(p)
	k.index.PutPolicy(p.ID(), owners.PolicyInfo{Owner: p.Owner, Reqid: p.Template.Reqid})
	return nil
}

// putPolicy installs or replaces p, keeping the index of a replaced policy as Linux
// does. Called with t.mu held.
func (t *tables) putPolicy(p kernel.Policy) {
	p.Owner = kernel.Owner{}
	if old, ok := t.policies[p.ID()]; ok {
		p.Index = old.p.Index
	} else {
		// Linux: index = generator | direction, the generator stepping by 8.
		t.indexGen += 8
		p.Index = t.indexGen | uint32(p.Dir-1)
	}
	t.policies[p.ID()] = &policyEntry{p: p}
}

// UpdatePolicy implements kernel.Kernel.
func (k *Kernel) UpdatePolicy(ctx context.Context, p kernel.Policy) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("update %s: %w", p.Describe(), err)
	}
	if err := k.lock(ctx); err != nil {
		return err
	}
	defer k.unlock()
	if err := k.t.installFault(0); err != nil {
		return fmt.Errorf("update %s: %w", p.Describe(), err)
	}
	k.t.putPolicy(p)
	k.index.PutPolicy(p.ID(), owners.PolicyInfo{Owner: p.Owner, Reqid: p.Template.Reqid})
	return nil
}

// DeletePolicy implements kernel.Kernel.
func (k *Kernel) DeletePolicy(ctx context.Context, id kernel.PolicyID) error {
	if err := k.lock(ctx); err != nil {
		return err
	}
	defer k.unlock()
	e, ok := k.t.policies[id]
	if !ok {
		return fmt.Errorf("delete %s: %w", id, kernel.ErrNotFound)
	}
	delete(k.t.policies, id)
	delete(k.t.acquires, e.p.Index)
	k.index.RemovePolicy(id)
	return nil
}

// GetPolicy implements kernel.Kernel.
func (k *Kernel) GetPolicy(ctx context.Context, id kernel.PolicyID) (kernel.Policy, error) {
	if err := k.lock(ctx); err != nil {
		return kernel.Policy{}, err
	}
	defer k.unlock()
	e, ok := k.t.policies[id]
	if !ok {
		return kernel.Policy{}, fmt.Errorf("get %s: %w", id, kernel.ErrNotFound)
	}
	p := e.p
	if info, ok := k.index.Policy(id); ok {
		p.Owner = info.Owner
	}
	return p, nil
}

// Snapshot implements kernel.Kernel.
func (k *Kernel) Snapshot(ctx context.Context) (kernel.Tables, error) {
	if err := k.lock(ctx); err != nil {
		return kernel.Tables{}, err
	}
	defer k.unlock()
	return k.snapshot(), nil
}

func (k *Kernel) snapshot() kernel.Tables {
	var tb kernel.Tables
	for id, e := range k.t.sas {
		sa := e.sa.Clone()
		if info, ok := k.index.SA(id); ok {
			sa.Owner = info.Owner
		}
		tb.SAs = append(tb.SAs, kernel.SAEntry{SA: sa, Counters: e.counters, Larval: e.larval})
	}
	for id, e := range k.t.policies {
		p := e.p
		if info, ok := k.index.Policy(id); ok {
			p.Owner = info.Owner
		}
		tb.Policies = append(tb.Policies, p)
	}
	return tb
}

// Format prints the tables (see kernel.Tables.Format).
func (k *Kernel) Format(opts kernel.FormatOptions) string {
	k.t.mu.Lock()
	defer k.t.mu.Unlock()
	return k.snapshot().Format(opts)
}

// String prints the tables with keys masked, as kernel.Tables.String does.
func (k *Kernel) String() string { return k.Format(kernel.FormatOptions{}) }

// Subscribe implements kernel.Kernel.
func (k *Kernel) Subscribe(capacity int) *kernel.Subscription { return k.hub.Subscribe(capacity) }

// DeleteOwned implements kernel.Kernel.
func (k *Kernel) DeleteOwned(ctx context.Context, family kernel.FamilyID) error {
	if err := k.lock(ctx); err != nil {
		return err
	}
	defer k.unlock()
	sas, pols := k.index.Family(family)
	for _, id := range sas {
		k.t.delSA(id)
		k.index.RemoveSA(id)
	}
	for _, id := range pols {
		if e, ok := k.t.policies[id]; ok {
			delete(k.t.acquires, e.p.Index)
			delete(k.t.policies, id)
		}
		k.index.RemovePolicy(id)
	}
	return nil
}

// CleanupStale implements kernel.Kernel.
func (k *Kernel) CleanupStale(ctx context.Context) (kernel.Cleanup, error) {
	if err := k.lock(ctx); err != nil {
		return kernel.Cleanup{}, err
	}
	defer k.unlock()
	var c kernel.Cleanup
	for id, e := range k.t.sas {
		if _, ours := k.index.SA(id); e.sa.Reqid.Tagged() && !ours {
			k.t.delSA(id)
			c.SAs++
		}
	}
	for id, e := range k.t.policies {
		if _, ours := k.index.Policy(id); e.p.Template.Reqid.Tagged() && !ours {
			delete(k.t.acquires, e.p.Index)
			delete(k.t.policies, id)
			c.Policies++
		}
	}
	return c, nil
}

// Close implements kernel.Kernel.
func (k *Kernel) Close() error {
	k.t.mu.Lock()
	defer k.t.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	k.hub.Close()
	return nil
}

// AddForeignSA installs an SA that is not cygnet's (any reqid, no owner), the way
// another IKE daemon would.
func (k *Kernel) AddForeignSA(sa kernel.SA) error {
	check := sa
	check.Reqid = kernel.ReqidMin
	if err := check.Validate(); err != nil {
		return fmt.Errorf("add foreign SA %s: %w", sa.Describe(), err)
	}
	if err := k.lock(context.Background()); err != nil {
		return err
	}
	defer k.unlock()
	if err := k.t.addSA(sa); err != nil {
		return fmt.Errorf("add foreign SA %s: %w", sa.Describe(), err)
	}
	return nil
}

// AddForeignPolicy installs a policy that is not cygnet's (any template reqid).
func (k *Kernel) AddForeignPolicy(p kernel.Policy) error {
	check := p
	check.Template.Reqid = kernel.ReqidMin
	if err := check.Validate(); err != nil {
		return fmt.Errorf("add foreign %s: %w", p.Describe(), err)
	}
	if err := k.lock(context.Background()); err != nil {
		return err
	}
	defer k.unlock()
	if _, ok := k.t.policies[p.ID()]; ok {
		return fmt.Errorf("add foreign %s: %w", p.Describe(), kernel.ErrExists)
	}
	k.t.putPolicy(p)
	return nil
}

// FailInstalls makes the next n installs (AddSA, UpdateSA, AddPolicy, UpdatePolicy)
// fail with kernel.ErrInjected.
func (k *Kernel) FailInstalls(n int) {
	k.t.mu.Lock()
	defer k.t.mu.Unlock()
	k.t.faults.installs = n
}

// FailAllocSPI makes the next n AllocSPI calls fail with kernel.ErrInjected.
func (k *Kernel) FailAllocSPI(n int) {
	k.t.mu.Lock()
	defer k.t.mu.Unlock()
	k.t.faults.allocSPI = n
}

// DropEvents makes the kernel silently lose its next n events, as if the notification
// never reached the daemon (Subscription.Lost does not count them).
func (k *Kernel) DropEvents(n int) {
	k.t.mu.Lock()
	defer k.t.mu.Unlock()
	k.t.faults.dropEvents = n
}

// FailSPI makes every AddSA and UpdateSA of an SA with this SPI fail with
// kernel.ErrInjected until ClearFaults.
func (k *Kernel) FailSPI(spi kernel.SPI) {
	k.t.mu.Lock()
	defer k.t.mu.Unlock()
	k.t.faults.spis[spi] = true
}

// ClearFaults removes every injected fault.
func (k *Kernel) ClearFaults() {
	k.t.mu.Lock()
	defer k.t.mu.Unlock()
	k.t.faults = faults{spis: make(map[kernel.SPI]bool)}
}

// Now returns the kernel's clock.
func (k *Kernel) Now() time.Time {
	k.t.mu.Lock()
	defer k.t.mu.Unlock()
	return k.t.now
}

// Advance moves the clock to now (never backwards) and applies time limits: larval SAs
// older than AcqExpires disappear silently, SAs past a soft time limit report
// EventSoftExpire once, SAs past a hard time limit are deleted and report
// EventHardExpire (only that, if the soft limit had not been reported yet: Linux
// behaves so when its timer runs late). Events come in deadline order, ties in SA order
// (destination, SPI). Its cost grows with the deadlines passed, not with the tables.
func (k *Kernel) Advance(now time.Time) {
	t := k.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.After(t.now) {
		t.now = now
	}
	for len(t.timers) > 0 && !t.timers[0].at.After(t.now) {
		tm := t.timers.pop()
		e, ok := t.sas[tm.id]
		if !ok || e.gen != tm.gen {
			continue // deleted, replaced or updated since
		}
		age := t.now.Sub(e.added)
		lim := e.sa.Limits
		switch {
		case e.larval:
			t.delSA(tm.id)
			t.current.index.RemoveSA(tm.id)
		case lim.Hard.Time != 0 && age >= lim.Hard.Time:
			t.expireHard(tm.id, e)
		case lim.Soft.Time != 0 && age >= lim.Soft.Time && !e.dying:
			e.dying = true
			t.publish(expireEvent(kernel.EventSoftExpire, e))
		}
	}
	for idx, pa := range t.acquires {
		if !t.now.Before(pa.until) {
			delete(t.acquires, idx)
		}
	}
}

func expireEvent(kind kernel.EventKind, e *saEntry) kernel.Event {
	return kernel.Event{Kind: kind, SA: e.sa.ID(), Src: e.sa.Src, Reqid: e.sa.Reqid}
}

// expireHard deletes an SA that reached a hard limit and reports it. Called with t.mu held.
func (t *tables) expireHard(id kernel.SAID, e *saEntry) {
	t.delSA(id)
	ev := expireEvent(kernel.EventHardExpire, e)
	t.publish(ev) // before the index forgets the owner
	t.current.index.RemoveSA(id)
}

// AddTraffic counts bytes and packets on an installed SA, as if it had protected or
// accepted them, and applies its byte and packet limits: a hard limit reached deletes
// the SA (EventHardExpire), a soft limit reached reports EventSoftExpire once.
func (k *Kernel) AddTraffic(id kernel.SAID, bytes, packets uint64) error {
	if err := k.lock(context.Background()); err != nil {
		return err
	}
	defer k.unlock()
	e, ok := k.t.sas[id]
	if !ok || e.larval {
		return fmt.Errorf("traffic on SA %s: %w", id, kernel.ErrNotFound)
	}
	k.t.count(id, e, bytes, packets)
	return nil
}

// count applies traffic to an SA. Called with t.mu held.
func (t *tables) count(id kernel.SAID, e *saEntry, bytes, packets uint64) {
	e.counters.Bytes += bytes
	e.counters.Packets += packets
	c, l := e.counters, e.sa.Limits
	if (l.Hard.Bytes != 0 && c.Bytes >= l.Hard.Bytes) || (l.Hard.Packets != 0 && c.Packets >= l.Hard.Packets) {
		t.expireHard(id, e)
		return
	}
	if !e.dying && ((l.Soft.Bytes != 0 && c.Bytes >= l.Soft.Bytes) || (l.Soft.Packets != 0 && c.Packets >= l.Soft.Packets)) {
		e.dying = true
		t.publish(expireEvent(kernel.EventSoftExpire, e))
	}
}

// Packet is an outbound packet for Send.
type Packet struct {
	Src, Dst         netip.Addr
	Proto            uint8
	SrcPort, DstPort uint16
	Len              int // bytes counted on the SA that protects it
}

// Verdict is what Send did with a packet.
type Verdict uint8

const (
	// Bypass: no outbound policy selects the packet; it leaves in clear.
	Bypass Verdict = 1
	// Protected: an outbound policy and its SA protected the packet.
	Protected Verdict = 2
	// Acquired: an outbound policy selects the packet but has no SA; the packet is
	// dropped and an acquire raised (once per policy until AcqExpires passes or an SA
	// with the template's reqid is added).
	Acquired Verdict = 3
)

func (v Verdict) String() string {
	switch v {
	case Bypass:
		return "bypass"
	case Protected:
		return "protected"
	case Acquired:
		return "acquired"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// Send routes an outbound packet through the SPD as Linux does: the matching outbound
// policy with the lowest priority value (the oldest among equals) decides. A protected
// packet is counted on the newest SA that fits the template (reqid, and end points in
// tunnel mode), which may fire its limits. It returns what happened and the SA used.
func (k *Kernel) Send(pkt Packet) (Verdict, kernel.SAID, error) {
	if err := k.lock(context.Background()); err != nil {
		return 0, kernel.SAID{}, err
	}
	defer k.unlock()
	t := k.t
	var best *policyEntry
	for _, pe := range t.policies {
		p := &pe.p
		if p.Dir != kernel.DirOut || !p.Selector.Matches(pkt.Src, pkt.Dst, pkt.Proto, pkt.SrcPort, pkt.DstPort) {
			continue
		}
		if best == nil || p.Priority < best.p.Priority || (p.Priority == best.p.Priority && p.Index < best.p.Index) {
			best = pe
		}
	}
	if best == nil {
		return Bypass, kernel.SAID{}, nil
	}
	tmpl := best.p.Template
	src, dst := tmpl.Src, tmpl.Dst
	if tmpl.Mode == kernel.ModeTransport {
		src, dst = pkt.Src, pkt.Dst
	}
	var sa *saEntry
	for _, e := range t.sas {
		if e.larval || e.sa.Reqid != tmpl.Reqid || e.sa.Mode != tmpl.Mode || e.sa.Src != src || e.sa.Dst != dst {
			continue
		}
		if sa == nil || e.added.After(sa.added) || (e.added.Equal(sa.added) && e.sa.SPI > sa.sa.SPI) {
			sa = e
		}
	}
	if sa != nil {
		id := sa.sa.ID()
		t.count(id, sa, uint64(max(pkt.Len, 0)), 1)
		return Protected, id, nil
	}
	if pa, pending := t.acquires[best.p.Index]; pending && t.now.Before(pa.until) {
		return Acquired, kernel.SAID{}, nil
	}
	t.acquires[best.p.Index] = pendingAcquire{until: t.now.Add(t.acqExpires), reqid: tmpl.Reqid}
	bits := 32
	if !pkt.Src.Is4() {
		bits = 128
	}
	t.publish(kernel.Event{
		Kind:        kernel.EventAcquire,
		Reqid:       tmpl.Reqid,
		Policy:      best.p.ID(),
		PolicyIndex: best.p.Index,
		Flow: kernel.Selector{
			Src: netip.PrefixFrom(pkt.Src, bits), Dst: netip.PrefixFrom(pkt.Dst, bits),
			Proto: pkt.Proto, SrcPort: pkt.SrcPort, DstPort: pkt.DstPort,
		},
		TmplSrc: src, TmplDst: dst,
	})
	return Acquired, kernel.SAID{}, nil
}

// timer is one SA deadline (soft, hard, or a larval SA's end).
type timer struct {
	at  time.Time
	id  kernel.SAID
	gen uint64
}

// timerHeap orders deadlines by time, then SA (destination, SPI): a binary min-heap
// on a typed slice (container/heap would box each timer in an interface). An SA that is
// replaced or updated leaves its old deadlines behind; they are skipped when they come
// due, and dropped in bulk when they outnumber the live ones (dropStale), so that the
// heap of a kernel whose clock is never advanced stays bounded.
type timerHeap []timer

func (h timerHeap) less(i, j int) bool {
	if c := h[i].at.Compare(h[j].at); c != 0 {
		return c < 0
	}
	return cmp.Or(h[i].id.Dst.Compare(h[j].id.Dst), cmp.Compare(h[i].id.SPI, h[j].id.SPI)) < 0
}

func (h *timerHeap) push(tm timer) {
	*h = append(*h, tm)
	h.up(len(*h) - 1)
}

// pop removes and returns the earliest deadline; the heap must not be empty.
func (h *timerHeap) pop() timer {
	old := *h
	n := len(old) - 1
	old[0], old[n] = old[n], old[0]
	tm := old[n]
	*h = old[:n]
	h.down(0)
	return tm
}

func (h timerHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			return
		}
		h[i], h[j] = h[j], h[i]
		j = i
	}
}

func (h timerHeap) down(i int) {
	n := len(h)
	for {
		j := 2*i + 1
		if j >= n {
			return
		}
		if r := j + 1; r < n && h.less(r, j) {
			j = r
		}
		if !h.less(j, i) {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

// dropStale removes the deadlines of SAs that are gone or were rescheduled since, and
// restores the heap order.
func (h *timerHeap) dropStale(sas map[kernel.SAID]*saEntry) {
	live := (*h)[:0]
	for _, tm := range *h {
		if e, ok := sas[tm.id]; ok && e.gen == tm.gen {
			live = append(live, tm)
		}
	}
	clear((*h)[len(live):])
	*h = live
	for i := len(live)/2 - 1; i >= 0; i-- {
		live.down(i)
	}
}
