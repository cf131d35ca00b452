package actors

import (
	"cmp"
	"context"
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
	"github.com/cygnet-ipsec/cygnet/actors/sockets"
	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/actors/workpool"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// Manager is the running actor tree of one daemon: its sockets, its manager actor and
// the families under it. Its methods are safe for concurrent use (the control socket
// calls them).
type Manager struct {
	cfg   Config
	t     *tree
	socks *sockets.Set
	pid   *actor.PID // the manager actor

	ready    atomic.Bool  // set once the tree is built: the sockets open before it
	inflight atomic.Int32 // new IKE_SA_INIT requests posted to the manager
	halfOpen atomic.Int64 // mirror of the manager's count, for Stats
	janitor  *janitor
	traps    *trapTable
	kevents  *kernel.Subscription
	kwg      sync.WaitGroup

	connMu sync.Mutex                 // serialises SetConnections
	conns  map[string]*ike.Connection // the current definitions, by name

	done      chan struct{} // closed when the manager actor has stopped
	doneOnce  sync.Once
	closeOnce sync.Once
	killed    atomic.Bool
}

// SA is one IKE family as listed by ListSAs: its IKE SAs (the current one first, a
// rekeyed one waiting for deletion after it) and its Child SAs.
type SA struct {
	Family   kernel.FamilyID
	Conn     string
	IKE      []ike.IKEInfo
	Children []ike.ChildInfo
}

// New starts the actor tree: it removes kernel state a previous run left
// (CleanupStale), opens the sockets, installs trap policies, spawns the manager actor
// and, if cfg.StartActions, initiates the connections that start by themselves.
func New(cfg Config, k kernel.Kernel, log *zap.Logger, rec telemetry.Recorder) (*Manager, error) {
	return newManager(cfg, k, log, rec, ikeCores{}, nil)
}

// newManager is New with the seams the shell tests use: another core factory, and a
// sender instead of real sockets (then no socket is opened).
func newManager(cfg Config, k kernel.Kernel, log *zap.Logger, rec telemetry.Recorder, cores coreFactory, fake sender) (*Manager, error) {
	if k == nil {
		return nil, errors.New("actors: no kernel")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if rec == nil {
		rec = telemetry.Nop{}
	}
	cfg.setDefaults()
	for _, c := range cfg.Connections {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("actors: connection %q: %w", c.Name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.KernelTimeout)
	defer cancel()
	if n, err := k.CleanupStale(ctx); err != nil {
		return nil, fmt.Errorf("actors: cleaning up a previous run's kernel state: %w", err)
	} else if n.SAs+n.Policies > 0 {
		log.Info("removed kernel state left by a previous run", zap.Int("sas", n.SAs), zap.Int("policies", n.Policies))
	}

	m := &Manager{cfg: cfg, done: make(chan struct{}), traps: newTrapTable()}
	t := &tree{
		kernel: k, log: log, rec: rec, now: cfg.Now, cores: cores, ikeOpts: cfg.IKE,
		routes: newRouter(), reg: newRegistry(), events: newEventHub(), traps: m.traps, policies: newPolicyTable(),
		hooks: recorderHooks{rec}, kernelTimeout: cfg.KernelTimeout, familyQueue: int32(cfg.FamilyQueue),
		shutdownGrace: cfg.ShutdownGrace, workRetry: cfg.WorkRetry,
	}
	m.t = t
	m.traps.bind(t)
	t.pool = workpool.New(workpool.Config{Workers: cfg.Workers, HighWater: cfg.WorkHighWater, MaxQueue: cfg.WorkMaxQueue, OnPanic: func(r any) {
		log.Error("work panicked outside a family", zap.Any("panic", r))
	}})
	if fake != nil {
		t.socks = fake
	} else {
		sc := cfg.Sockets
		sc.Log, sc.Metrics = log, rec
		socks, err := sockets.Open(sc, m.deliver)
		if err != nil {
			t.pool.Close()
			return nil, fmt.Errorf("actors: %w", err)
		}
		m.socks, t.socks = socks, socks
		_, natt := socks.Ports()
		t.ikeOpts.NATTPort = natt
	}

	t.sys = actorkit.NewSystem(log)
	if cfg.Dispatcher == nil && cfg.PooledTurns {
		t.dispatcher = actorkit.NewDispatcher(actorkit.DispatcherConfig{})
		cfg.Dispatcher = t.dispatcher
	}
	t.familyPolicy = &actorkit.Policy{Kind: string(telemetry.ActorFamily), Log: log, Hooks: t.hooks}
	t.childPolicy = &actorkit.Policy{Kind: string(telemetry.ActorChild), Log: log, Hooks: t.hooks}
	t.managerPolicy = &actorkit.Policy{Kind: string(telemetry.ActorManager), Log: log, Hooks: t.hooks}
	t.familyProps = actorkit.Props(newFamilyProducer(t), log, actorkit.Options{Kind: string(telemetry.ActorFamily), Dispatcher: cfg.Dispatcher, Hooks: t.hooks, Inline: true})
	t.childProps = actorkit.Props(newChildProducer(t), log, actorkit.Options{Kind: string(telemetry.ActorChild), Dispatcher: cfg.Dispatcher, Hooks: t.hooks, Inline: true})
	m.janitor = newJanitor(t)

	if err := m.traps.install(cfg.Connections); err != nil {
		log.Warn("some trap policies could not be installed", zap.Error(err))
	}

	mgr := &manager{t: t, m: m, cfg: &m.cfg, perPeer: map[netip.Addr]int{}}
	mgr.setConnections(cfg.Connections)
	props := actorkit.Props(func() actor.Actor { return mgr }, log,
		actorkit.Options{Kind: string(telemetry.ActorManager), Root: true, Dispatcher: cfg.Dispatcher, Hooks: t.hooks, Inline: true})
	m.kevents = k.Subscribe(4096)
	pid, err := t.sys.Root.SpawnNamed(props, "cygnet")
	if err != nil {
		m.closeResources()
		return nil, fmt.Errorf("actors: spawning the manager: %w", err)
	}
	m.pid = pid
	m.kwg.Add(1)
	go m.dispatchKernelEvents()
	m.ready.Store(true)

	m.conns = make(map[string]*ike.Connection, len(cfg.Connections))
	for _, c := range cfg.Connections {
		m.conns[c.Name] = c
	}
	if cfg.StartActions {
		m.startActions(cfg.Connections)
	}
	return m, nil
}

// deliver is the sockets' Handler: it routes a datagram by IKE SPI without decrypting
// anything (ike.Peek). It never blocks.
func (m *Manager) deliver(d *sockets.Datagram) bool {
	if !m.ready.Load() {
		d.Release() // not started yet: as if it had arrived a moment earlier
		return true
	}
	p, err := ike.Peek(d.Data)
	if err != nil {
		m.t.rec.PacketDropped(telemetry.DropMalformed)
		d.Release()
		return true
	}
	switch p.Kind {
	case ike.PeekRoute:
		e := m.t.routes.bySPI(p.LocalSPI)
		if e == nil {
			m.t.rec.PacketDropped(telemetry.DropUnknownSPI)
			d.Release()
			return true
		}
		return m.toFamily(e, d)
	case ike.PeekNewSA:
		if e := m.t.routes.byInit(initKey{remote: d.Remote, spiI: p.SPIi}); e != nil {
			return m.toFamily(e, d) // a retransmission
		}
		if m.inflight.Add(1) > int32(m.cfg.ManagerQueue) {
			m.inflight.Add(-1)
			return false
		}
		m.t.sys.Root.Send(m.pid, newSA{d: d, spiI: p.SPIi})
		return true
	}
	d.Release()
	return true
}

// toFamily posts d to the family unless its queue is full (false: refused).
func (m *Manager) toFamily(e *familyEntry, d *sockets.Datagram) bool {
	pid := e.pid.Load()
	if pid == nil {
		m.t.rec.PacketDropped(telemetry.DropUnknownSPI)
		d.Release()
		return true
	}
	if e.inflight.Add(1) > m.t.familyQueue {
		e.inflight.Add(-1)
		return false
	}
	m.t.sys.Root.Send(pid, d)
	return true
}

// dispatchKernelEvents routes kernel events: expiry to the owning family (which hands
// it to the child actor), acquires to the manager.
func (m *Manager) dispatchKernelEvents() {
	defer m.kwg.Done()
	for ev := range m.kevents.C {
		switch ev.Kind {
		case kernel.EventSoftExpire, kernel.EventHardExpire:
			if e := m.t.reg.get(ev.Owner.Family); e != nil {
				if pid := e.pid.Load(); pid != nil {
					m.t.sys.Root.Send(pid, familyKernelEvent{ev})
				}
			}
		case kernel.EventAcquire:
			m.t.sys.Root.Send(m.pid, acquireMsg{ev})
		}
	}
}

func (m *Manager) request(ctx context.Context, msg any) error {
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return context.DeadlineExceeded
	}
	req := &request{cmd: msg, reply: make(chan reply, 1)}
	m.t.sys.Root.Send(m.pid, req)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-req.reply:
		return r.err
	case <-t.C:
		return fmt.Errorf("actors: the manager did not answer: %w", context.DeadlineExceeded)
	case <-ctx.Done():
		return fmt.Errorf("actors: the manager did not answer: %w", ctx.Err())
	}
}

// Initiate brings up connection conn as initiator (child "" = the IKE SA with its
// start children, ike.Initiate), or one child of it: through CREATE_CHILD_SA in an
// established family of conn, or in a new family.
func (m *Manager) Initiate(ctx context.Context, conn, child string) error {
	return m.request(ctx, cmdInitiate{conn: conn, child: child})
}

// Target selects SAs for Terminate and Rekey. Exactly one of Conn, Family, IKESPI and
// ChildSPI should be set; Child narrows Conn or Family to the Child SAs of that name,
// ChildRef narrows Family to one Child SA. Family (with or without ChildRef) is found
// directly; the other selectors scan the listing.
type Target struct {
	Conn     string
	Family   kernel.FamilyID
	IKESPI   ike.SPI // either SPI of an IKE SA
	Child    string
	ChildSPI uint32       // either ESP SPI of a Child SA
	ChildRef ike.ChildRef // with Family
}

func (tg Target) childLevel() bool { return tg.Child != "" || tg.ChildSPI != 0 || tg.ChildRef != 0 }

// selectSAs returns the families and, for child-level targets, the Child SA refs chosen.
func (m *Manager) selectSAs(tg Target) map[*familyEntry][]ike.ChildRef {
	out := map[*familyEntry][]ike.ChildRef{}
	if tg.Family != 0 {
		e := m.t.reg.get(tg.Family)
		if e == nil {
			return out
		}
		switch {
		case tg.ChildRef != 0:
			out[e] = []ike.ChildRef{tg.ChildRef}
			return out
		case !tg.childLevel():
			out[e] = nil
			return out
		}
	}
	m.t.reg.each(func(e *familyEntry) {
		s := e.summary.Load()
		match := false
		switch {
		case tg.Family != 0:
			match = e.id == tg.Family
		case tg.IKESPI != 0:
			match = s != nil && slices.ContainsFunc(s.IKE, func(i ike.IKEInfo) bool { return i.SPIi == tg.IKESPI || i.SPIr == tg.IKESPI })
		case tg.ChildSPI != 0:
			match = s != nil && slices.ContainsFunc(s.Children, func(c ike.ChildInfo) bool { return c.SPIIn == tg.ChildSPI || c.SPIOut == tg.ChildSPI })
		case tg.Conn != "":
			match = e.conn == tg.Conn || (s != nil && s.Conn == tg.Conn)
		}
		if !match {
			return
		}
		if !tg.childLevel() {
			out[e] = nil
			return
		}
		if s == nil {
			return
		}
		for _, c := range s.Children {
			if c.State != ike.ChildStateUp && c.State != ike.ChildStateRekeying {
				continue // replaced, being deleted or not there yet
			}
			if (tg.ChildSPI != 0 && (c.SPIIn == tg.ChildSPI || c.SPIOut == tg.ChildSPI)) || (tg.ChildSPI == 0 && c.Name == tg.Child) {
				out[e] = append(out[e], c.Ref)
			}
		}
	})
	return out
}

func (m *Manager) command(tg Target, ikeCmd ike.Event, childCmd func(ike.ChildRef) ike.Event) (int, error) {
	sel := m.selectSAs(tg)
	n := 0
	for e, refs := range sel {
		pid := e.pid.Load()
		if pid == nil {
			continue
		}
		if !tg.childLevel() {
			m.t.sys.Root.Send(pid, ikeCmd)
			n++
			continue
		}
		for _, r := range refs {
			m.t.sys.Root.Send(pid, childCmd(r))
			n++
		}
	}
	if n == 0 {
		return 0, errors.New("no matching SA")
	}
	return n, nil
}

// Terminate deletes the selected IKE SAs (with their Child SAs) or Child SAs with the
// peer (RFC 7296 §1.4.1). It returns how many it asked to go; they go asynchronously
// (watch Subscribe for the down events).
func (m *Manager) Terminate(tg Target) (int, error) {
	return m.command(tg, ike.Terminate{}, func(r ike.ChildRef) ike.Event { return ike.DeleteChild{Ref: r} })
}

// Rekey rekeys the selected IKE SAs or Child SAs now (RFC 7296 §2.8).
func (m *Manager) Rekey(tg Target) (int, error) {
	return m.command(tg, ike.RekeyIKE{}, func(r ike.ChildRef) ike.Event { return ike.RekeyChild{Ref: r} })
}

// ListSAs returns every family's latest state, by family ID. It reads the summaries the
// families publish and asks no actor, so it stays fast with 100,000 families.
func (m *Manager) ListSAs() []SA {
	out := make([]SA, 0, m.t.reg.len())
	m.t.reg.each(func(e *familyEntry) {
		if s := e.summary.Load(); s != nil {
			out = append(out, *s)
		}
	})
	slices.SortFunc(out, func(a, b SA) int { return cmp.Compare(a.Family, b.Family) })
	return out
}

// Subscribe returns a stream of SA up/down events with room for capacity events; a
// subscriber that falls behind loses events (Subscription.Lost).
func (m *Manager) Subscribe(capacity int) *Subscription { return m.t.events.subscribe(capacity) }

// SetConnections replaces the connection definitions (reload). Connections that
// disappeared or changed have their families terminated (DELETE sent) and their trap
// policies removed; new and changed ones get their trap policies and, with
// Config.StartActions, are initiated if a child starts by itself. Families of unchanged
// connections are not touched.
func (m *Manager) SetConnections(ctx context.Context, conns []*ike.Connection) error {
	for _, c := range conns {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("actors: connection %q: %w", c.Name, err)
		}
	}
	m.connMu.Lock()
	defer m.connMu.Unlock()
	if err := m.request(ctx, cmdConnections{conns: conns}); err != nil {
		return err
	}
	next := make(map[string]*ike.Connection, len(conns))
	var added []*ike.Connection
	for _, c := range conns {
		next[c.Name] = c
		if old, ok := m.conns[c.Name]; !ok || !old.Equal(c) {
			added = append(added, c)
		}
	}
	gone := map[string]bool{}
	for name, old := range m.conns {
		if c, ok := next[name]; !ok || !old.Equal(c) {
			gone[name] = true
		}
	}
	m.conns = next
	if len(gone) > 0 {
		var names []string
		m.t.reg.each(func(e *familyEntry) {
			name := e.conn
			if s := e.summary.Load(); s != nil && s.Conn != "" {
				name = s.Conn
			}
			if gone[name] {
				names = append(names, name)
			}
		})
		for _, name := range names {
			_, _ = m.Terminate(Target{Conn: name})
		}
		for name := range gone {
			m.traps.removeConn(name)
		}
	}
	if err := m.traps.install(added); err != nil {
		m.t.log.Warn("some trap policies could not be installed", zap.Error(err))
	}
	if m.cfg.StartActions {
		m.startActions(added)
	}
	return nil
}

// startActions initiates the connections that have a child with start action "start".
func (m *Manager) startActions(conns []*ike.Connection) {
	for _, c := range conns {
		if slices.ContainsFunc(c.Children, func(ch ike.ChildConfig) bool { return ch.StartAction == ike.ActionStart }) {
			if err := m.Initiate(context.Background(), c.Name, ""); err != nil {
				m.t.log.Warn("start action failed", zap.String("conn", c.Name), zap.Error(err))
			}
		}
	}
}

// KillActor stops (or, with panic, makes panic) the named actor: "f<id>" is a family,
// "f<id>/c<ref>" one of its Child SA actors. Only with Config.Chaos.
func (m *Manager) KillActor(ctx context.Context, name string, panic bool) error {
	return m.request(ctx, cmdKill{name: name, panic: panic})
}

// Stats is a snapshot of the tree's counters.
type Stats struct {
	Families  int
	HalfOpen  int
	SPIRoutes int
	Pool      workpool.Stats
	Sockets   sockets.Stats
}

// Stats returns the current counters.
func (m *Manager) Stats() Stats {
	spis, _ := m.t.routes.counts()
	s := Stats{Families: m.t.reg.len(), HalfOpen: int(m.halfOpen.Load()), SPIRoutes: spis, Pool: m.t.pool.Stats()}
	if m.socks != nil {
		s.Sockets = m.socks.Stats()
	}
	return s
}

// Ports returns the bound IKE and NAT-T ports.
func (m *Manager) Ports() (ike, natt uint16) {
	if m.socks == nil {
		return 0, 0
	}
	return m.socks.Ports()
}

// Done is closed when the manager actor has stopped (after Shutdown, or if it died).
func (m *Manager) Done() <-chan struct{} { return m.done }

func (m *Manager) managerStopped() { m.doneOnce.Do(func() { close(m.done) }) }

// Shutdown ends the daemon gracefully: no new IKE SA is admitted, every family deletes
// its IKE SA with the peer (an INFORMATIONAL DELETE, RFC 7296 §1.4.1) and stops within
// Config.ShutdownGrace, its Child SAs leaving the kernel; then the janitor's removals
// finish, the trap policies go and everything is released. If ctx ends first, Shutdown
// falls back to Kill and returns ctx's error.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.t.sys.Root.Send(m.pid, cmdShutdown{})
	select {
	case <-m.done:
	case <-ctx.Done():
		m.Kill()
		return ctx.Err()
	}
	m.janitor.wait()
	m.traps.remove()
	m.closeResources()
	return nil
}

// Kill ends the daemon at once (a second signal): the sockets close, the manager actor
// is stopped without any exchange with peers, and Kill returns without waiting for the
// Child SAs to leave the kernel (the next start's CleanupStale removes what is left).
func (m *Manager) Kill() {
	if !m.killed.CompareAndSwap(false, true) {
		return
	}
	if m.socks != nil {
		_ = m.socks.Close()
	}
	m.t.sys.Root.Stop(m.pid)
	if m.t.dispatcher != nil {
		m.t.dispatcher.Close() // the stopping actors' turns run on goroutines
	}
	m.closeOnce.Do(func() {
		m.kevents.Close()
		m.t.events.close()
	})
}

// closeResources releases everything after the manager actor stopped.
func (m *Manager) closeResources() {
	m.closeOnce.Do(func() {
		if m.socks != nil {
			_ = m.socks.Close()
		}
		if m.kevents != nil {
			m.kevents.Close()
			m.kwg.Wait()
		}
		m.janitor.close()
		m.t.pool.Close()
		m.t.events.close()
		m.t.sys.Shutdown()
		if m.t.dispatcher != nil {
			m.t.dispatcher.Close() // later turns (stray timers) run on goroutines
		}
	})
}
