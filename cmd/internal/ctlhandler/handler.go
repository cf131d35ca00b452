// Package ctlhandler is the daemon's side of the control socket: a control.Handler over
// the running actor tree (actors.Manager), and configuration reload.
//
// Contract:
//   - New takes the loaded configuration, the actor tree (through the Tree interface,
//     which *actors.Manager satisfies via FromManager) and the daemon's logs and metrics.
//   - Names are checked against the running configuration first, so an unknown
//     connection or child is a control.CodeUnknownConnection / CodeUnknownChild error
//     naming it, before the tree is asked anything.
//   - Reload is the one reload path (cygnetctl reload and SIGHUP both call it): it loads
//     and checks the file, and only when that succeeds applies it — new definitions to
//     the tree, SAs of changed connections replaced, removed ones terminated, unchanged
//     ones not touched, log levels and metrics label sets updated. A bad file leaves
//     everything as it was and returns control.CodeReloadFailed with the file's errors.
//   - list-sas reads the families' published summaries (actors.Manager.ListSAs), never
//     asking an actor, and streams them.
package ctlhandler

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cygnet-ipsec/cygnet/actors"
	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/config"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/ikeconf"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/logging"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/metrics"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// Tree is what the handler needs of the actor tree. *actors.Manager provides it through
// FromManager; tests use a fake.
type Tree interface {
	Initiate(ctx context.Context, conn, child string) error
	Terminate(actors.Target) (int, error)
	Rekey(actors.Target) (int, error)
	ListSAs() []actors.SA
	// Subscribe returns a channel of SA events and a function that ends the
	// subscription (and closes the channel).
	Subscribe(capacity int) (<-chan actors.Event, func())
	SetConnections(ctx context.Context, conns []*ike.Connection) error
	KillActor(ctx context.Context, name string, panic bool) error
	Stats() actors.Stats
}

// FromManager adapts the running actor tree.
func FromManager(m *actors.Manager) Tree { return managerTree{m} }

type managerTree struct{ *actors.Manager }

func (t managerTree) Subscribe(capacity int) (<-chan actors.Event, func()) {
	s := t.Manager.Subscribe(capacity)
	return s.C, s.Close
}

// Options configure New.
type Options struct {
	// ConfigPath is the file Reload reads; LoadOptions are passed to config.Load.
	ConfigPath  string
	LoadOptions config.Options
	// Kernel names the kernel backend in use (for stats): "xfrm" or "memory".
	Kernel  string
	Version string
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Handler implements control.Handler and control.Killer.
type Handler struct {
	tree    Tree
	logs    *logging.Logs
	metrics *metrics.Metrics
	log     *zap.Logger
	opts    Options
	started time.Time

	reloadMu sync.Mutex // one reload at a time
	mu       sync.RWMutex
	cfg      *config.Config
}

var (
	_ control.Handler = (*Handler)(nil)
	_ control.Killer  = (*Handler)(nil)
)

// New returns the handler for the running configuration cfg.
func New(cfg *config.Config, tree Tree, logs *logging.Logs, m *metrics.Metrics, opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ConfigPath == "" {
		opts.ConfigPath = cfg.File
	}
	return &Handler{tree: tree, logs: logs, metrics: m, log: logs.Logger(logging.Control), opts: opts, started: opts.Now(), cfg: cfg}
}

// Config returns the running configuration.
func (h *Handler) Config() *config.Config {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.cfg
}

func (h *Handler) ListConns(ctx context.Context, emit func(*control.Conn) error) error {
	for _, c := range h.Config().Connections {
		if err := emit(control.ConnFromConfig(c)); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) ListSAs(ctx context.Context, f control.SAFilter, emit func(*control.IKESA) error) error {
	if f.IKE != "" {
		if _, ok := h.Config().Connection(f.IKE); !ok {
			return unknownConn(f.IKE)
		}
	}
	var rec control.IKESA
	for i, sa := range h.tree.ListSAs() {
		if i%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if (f.IKE != "" && sa.Conn != f.IKE) || (f.IKEID != 0 && uint64(sa.Family) != f.IKEID) {
			continue
		}
		for j := range sa.IKE {
			fillIKESA(&rec, &sa, j)
			if err := emit(&rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// fillIKESA fills rec with the j-th IKE SA of a family; the current one (j == 0)
// carries the family's Child SAs. The family ID is the IKE SA's unique ID, a Child SA's
// ref its ID, so `cygnetctl debug kill f<id>/c<ref>` names their actors.
func fillIKESA(rec *control.IKESA, sa *actors.SA, j int) {
	in := &sa.IKE[j]
	children := rec.Children[:0]
	*rec = control.IKESA{
		Conn: sa.Conn, UniqueID: uint64(sa.Family), State: in.State.String(), Initiator: in.Initiator,
		SPIi: control.SPI64(in.SPIi), SPIr: control.SPI64(in.SPIr),
		LocalHost: in.Local.Addr().String(), LocalPort: in.Local.Port(), LocalID: in.LocalID.String(),
		RemoteHost: in.Remote.Addr().String(), RemotePort: in.Remote.Port(), RemoteID: in.RemoteID.String(),
		NATLocal: in.NATLocal, NATRemote: in.NATPeer,
		Established: unixTime(in.EstablishedAt), RekeyAt: unixTime(in.RekeyAt),
	}
	if rec.Conn == "" {
		rec.Conn = in.Name
	}
	if j == 0 {
		for k := range sa.Children {
			c := &sa.Children[k]
			children = append(children, control.ChildSA{
				Name: c.Name, UniqueID: uint64(c.Ref), State: c.State.String(), Mode: modeName(c.Mode), Protocol: "ESP",
				Encap: in.NATLocal || in.NATPeer, SPIIn: control.SPI32(c.SPIIn), SPIOut: control.SPI32(c.SPIOut),
				Installed: unixTime(c.InstalledAt), RekeyAt: unixTime(c.RekeyAt), ExpireAt: unixTime(c.ExpireAt),
				LocalTS: tsStrings(c.LocalTS), RemoteTS: tsStrings(c.RemoteTS),
			})
		}
	}
	rec.Children = children
}

func unixTime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func modeName(m ike.Mode) string {
	if m == ike.ModeTransport {
		return "TRANSPORT"
	}
	return "TUNNEL"
}

func tsStrings(ts []ike.TrafficSelector) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.String()
	}
	return out
}

func unknownConn(name string) error {
	return control.Errorf(control.CodeUnknownConnection, "no connection named %q", name)
}

func unknownChild(name string) error {
	return control.Errorf(control.CodeUnknownChild, "no child named %q", name)
}

// target resolves a control target against the configuration and the SAs.
func (h *Handler) target(t control.Target) (actors.Target, error) {
	cfg := h.Config()
	var at actors.Target
	switch {
	case t.ChildID != 0:
		// Child SAs are addressed by ref in listings; the tree by SPI.
		for _, sa := range h.tree.ListSAs() {
			if t.IKEID != 0 && uint64(sa.Family) != t.IKEID {
				continue
			}
			for _, c := range sa.Children {
				if uint64(c.Ref) == t.ChildID {
					return actors.Target{Family: sa.Family, ChildSPI: c.SPIIn}, nil
				}
			}
		}
		return at, control.Errorf(control.CodeUnknownSA, "no Child SA #%d", t.ChildID)
	case t.IKEID != 0:
		at.Family = kernel.FamilyID(t.IKEID)
	case t.IKE != "":
		if _, ok := cfg.Connection(t.IKE); !ok {
			return at, unknownConn(t.IKE)
		}
		at.Conn = t.IKE
	}
	if t.Child != "" {
		conn, _, ok := cfg.Child(t.Child)
		if !ok {
			return at, unknownChild(t.Child)
		}
		if at.Conn != "" && at.Conn != conn.Name {
			return at, control.Errorf(control.CodeUnknownChild, "connection %q has no child named %q", at.Conn, t.Child)
		}
		if at.Family == 0 {
			at.Conn = conn.Name
		}
		at.Child = t.Child
	}
	return at, nil
}

func (h *Handler) Initiate(ctx context.Context, t control.Target) (control.Done, error) {
	if t.IKEID != 0 || t.ChildID != 0 {
		return control.Done{}, control.Errorf(control.CodeBadRequest, "initiate takes a connection or child name, not an SA id")
	}
	at, err := h.target(t)
	if err != nil {
		return control.Done{}, err
	}
	if err := h.tree.Initiate(ctx, at.Conn, at.Child); err != nil {
		return control.Done{}, control.Errorf(control.CodeFailed, "initiate %s failed: %v", t, err)
	}
	return control.Done{Count: 1}, nil
}

func (h *Handler) Terminate(ctx context.Context, t control.Target) (control.Done, error) {
	return h.command(t, "terminate", h.tree.Terminate)
}

func (h *Handler) Rekey(ctx context.Context, t control.Target) (control.Done, error) {
	return h.command(t, "rekey", h.tree.Rekey)
}

func (h *Handler) command(t control.Target, what string, do func(actors.Target) (int, error)) (control.Done, error) {
	at, err := h.target(t)
	if err != nil {
		return control.Done{}, err
	}
	n, err := do(at)
	if err != nil {
		if n == 0 {
			return control.Done{}, control.Errorf(control.CodeUnknownSA, "%s: no SA of %s is up", what, t)
		}
		return control.Done{Count: n}, control.Errorf(control.CodeFailed, "%s %s: %v", what, t, err)
	}
	return control.Done{Count: n}, nil
}

func (h *Handler) Stats(ctx context.Context) (*control.Stats, error) {
	cfg := h.Config()
	ts := h.tree.Stats()
	tot := h.metrics.Totals()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &control.Stats{
		Version: h.opts.Version, Started: h.started.Unix(), Kernel: h.opts.Kernel, Chaos: cfg.Daemon.Chaos,
		Connections: len(cfg.Connections), IKESAs: int(tot.IKESAs), HalfOpen: ts.HalfOpen, ChildSAs: int(tot.ChildSAs),
		Goroutines: runtime.NumGoroutine(), HeapBytes: ms.HeapAlloc,
		Retransmits: tot.Retransmits, Dropped: tot.Dropped, ChildFailures: tot.ChildSAFailures,
	}, nil
}

func (h *Handler) Watch(ctx context.Context, emit func(*control.Event) error) error {
	events, stop := h.tree.Subscribe(1024)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return control.Errorf(control.CodeShuttingDown, "cygnetd is shutting down")
			}
			ce, ok := h.event(&ev)
			if !ok {
				continue
			}
			if err := emit(&ce); err != nil {
				return err
			}
		}
	}
}

func (h *Handler) event(ev *actors.Event) (control.Event, bool) {
	out := control.Event{Time: h.opts.Now().UnixNano(), Conn: ev.Conn, IKEID: uint64(ev.Family), Reason: ev.Reason}
	switch ev.Kind {
	case actors.EventIKEUp:
		out.Type = control.EventIKEUp
	case actors.EventIKEDown:
		out.Type = control.EventIKEDown
	case actors.EventChildUp:
		out.Type = control.EventChildUp
	case actors.EventChildDown:
		out.Type = control.EventChildDown
	case actors.EventChildFailed:
		out.Type = control.EventChildFailed
	default:
		return out, false
	}
	switch ev.Kind {
	case actors.EventIKEUp, actors.EventIKEDown:
		out.SPIi, out.SPIr = control.SPI64(ev.IKE.SPIi), control.SPI64(ev.IKE.SPIr)
		if ev.IKE.Remote.IsValid() {
			out.Remote = ev.IKE.Remote.String()
		}
		if out.Conn == "" {
			out.Conn = ev.IKE.Name
		}
	default:
		out.Child, out.ChildID = ev.Child.Name, uint64(ev.Child.Ref)
	}
	return out, true
}

// DebugKill kills an actor by the name list-sas implies: "f<id>" (an IKE family) or
// "f<id>/c<ref>" (one of its Child SA actors).
func (h *Handler) DebugKill(ctx context.Context, actor string) error {
	if err := h.tree.KillActor(ctx, actor, false); err != nil {
		return control.Errorf(control.CodeUnknownActor, "debug kill %s: %v", actor, err)
	}
	h.log.Warn("actor killed on request (chaos)", zap.String("actor", actor))
	return nil
}

// Reload re-reads the configuration file. See the package doc.
func (h *Handler) Reload(ctx context.Context) (*control.ReloadResult, error) {
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	log := h.logs.Logger(logging.Config)
	old := h.Config()
	fail := func(err error) (*control.ReloadResult, error) {
		h.metrics.ConfigReloaded(false, h.opts.Now())
		log.Error("reload failed; the running configuration is unchanged", zap.String("file", h.opts.ConfigPath), zap.Error(err))
		return nil, control.Errorf(control.CodeReloadFailed, "%v", err)
	}
	cur, err := config.Load(h.opts.ConfigPath, h.opts.LoadOptions)
	if err != nil {
		return fail(err)
	}
	conns, warns, err := ikeconf.Connections(cur)
	if err != nil {
		return fail(err)
	}
	ch := config.Diff(old, cur)
	if err := h.tree.SetConnections(ctx, conns); err != nil {
		return fail(fmt.Errorf("the actor tree refused the new connections: %w", err))
	}
	// Changed connections: their SAs run the old definition; replace them.
	for _, name := range ch.Changed {
		if _, err := h.tree.Terminate(actors.Target{Conn: name}); err != nil && !isNoSA(err) {
			log.Warn("terminating a changed connection's SAs", zap.String("conn", name), zap.Error(err))
		}
	}
	for _, name := range append(slices.Clone(ch.Added), ch.Changed...) {
		c, _ := cur.Connection(name)
		if startsItself(c) {
			if err := h.tree.Initiate(ctx, name, ""); err != nil {
				log.Warn("initiating a connection after reload", zap.String("conn", name), zap.Error(err))
			}
		}
	}
	h.logs.SetLevels(cur.Daemon.Log.Level, cur.Daemon.Log.Subsystems)
	names := make([]string, len(cur.Connections))
	for i, c := range cur.Connections {
		names[i] = c.Name
	}
	h.metrics.SetConnections(names)
	h.metrics.ConfigReloaded(true, h.opts.Now())
	h.mu.Lock()
	h.cfg = cur
	h.mu.Unlock()

	res := &control.ReloadResult{Added: ch.Added, Removed: ch.Removed, Changed: ch.Changed, SecretChanged: ch.SecretChanged,
		Unchanged: ch.Unchanged, Restart: ch.Restart, Warnings: append(slices.Clone(cur.Warnings), warns...)}
	log.Info("configuration reloaded", zap.Strings("added", ch.Added), zap.Strings("removed", ch.Removed),
		zap.Strings("changed", ch.Changed), zap.Strings("secret_changed", ch.SecretChanged), zap.Int("unchanged", len(ch.Unchanged)),
		zap.Strings("restart_required", ch.Restart))
	for _, w := range res.Warnings {
		log.Warn(w)
	}
	return res, nil
}

func isNoSA(err error) bool { return err != nil && err.Error() == "no matching SA" }

func startsItself(c *config.Connection) bool {
	for _, ch := range c.Children {
		if ch.StartAction == config.ActionStart {
			return true
		}
	}
	return false
}
