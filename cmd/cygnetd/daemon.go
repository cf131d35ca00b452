package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/cygnet-ipsec/cygnet/actors"
	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/config"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/logging"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/metrics"
)

// shutdownExtra is added to the actor tree's ShutdownGrace to bound a graceful stop:
// the families' DELETE exchanges get ShutdownGrace, the kernel removals the rest.
const shutdownExtra = 5 * time.Second

// reloadTimeout bounds one reload (the manager answers in microseconds; this only
// matters if the tree is wedged).
const reloadTimeout = 10 * time.Second

// daemon is one running cygnetd: its configuration, loggers, metrics, kernel backend,
// actor tree and control socket.
type daemon struct {
	path    string // configuration file, re-read at reload
	flags   overrides
	logs    *logging.Logs
	log     *zap.Logger // the daemon's own life-cycle lines
	metrics *metrics.Metrics
	rec     *counting
	backend *backend
	m       *actors.Manager
	ctl     *control.Server
	msrv    *metrics.Server
	dsrv    *metrics.Server // Go's profiler, when daemon.debug_address is set
	goBase  goRuntime       // the GC settings Go started with (GOGC, GOMEMLIMIT)
	chaos   bool
	started time.Time
	ids     *childIDs
	keys    *keyring                   // every connection's PSKFor
	running map[string]*ike.Connection // the definitions the actor tree holds (under reloadMu)

	cfg      atomic.Pointer[config.Config] // the running configuration
	reloadMu sync.Mutex                    // one reload at a time (SIGHUP and cygnetctl)
	stopping atomic.Bool

	cancel context.CancelFunc // ends the background goroutines (servers, memory clock)
	bg     sync.WaitGroup
}

// overrides are the command-line flags that take precedence over the daemon: section,
// at start and at every reload.
type overrides struct {
	kernel    string // "", auto, xfrm, memory
	chaos     bool
	logLevel  string
	logFormat string
}

// apply sets the flags' values in cfg's daemon section.
func (o overrides) apply(cfg *config.Config) error {
	switch o.kernel {
	case "":
	case "auto":
		cfg.Daemon.Kernel = config.KernelAuto
	case "xfrm":
		cfg.Daemon.Kernel = config.KernelXFRM
	case "memory":
		cfg.Daemon.Kernel = config.KernelMemory
	default:
		return fmt.Errorf("--kernel: expected auto, xfrm or memory, got %q", o.kernel)
	}
	if o.chaos {
		cfg.Daemon.Chaos = true
	}
	if o.logLevel != "" {
		l, err := logging.ParseLevel(o.logLevel)
		if err != nil {
			return fmt.Errorf("--log-level: %w", err)
		}
		cfg.Daemon.Log.Level = l
		cfg.Daemon.Log.Subsystems = nil
	}
	if o.logFormat != "" {
		f, err := logging.ParseFormat(o.logFormat)
		if err != nil {
			return fmt.Errorf("--log-format: %w", err)
		}
		cfg.Daemon.Log.Format = f
	}
	return nil
}

// loadConfig reads the file and applies the flags. The connections look their keys up
// in keys, which the caller points at the new configuration once it runs.
func loadConfig(path string, o overrides, keys *keyring) (*config.Config, []*ike.Connection, error) {
	cfg, err := config.Load(path, config.Options{})
	if err != nil {
		return nil, nil, err
	}
	if err := o.apply(cfg); err != nil {
		return nil, nil, err
	}
	conns, warns, err := connections(cfg, keys)
	if err != nil {
		return nil, nil, err
	}
	cfg.Warnings = append(cfg.Warnings, warns...)
	return cfg, conns, nil
}

// start brings a daemon up. Order matters: the control socket is bound before the actor
// tree starts, because starting the tree removes kernel state a previous run left
// (CleanupStale) and a second cygnetd must fail on the socket before it does that.
func start(path string, o overrides, logs *logging.Logs, cfg *config.Config, conns []*ike.Connection, keys *keyring, goBase goRuntime) (*daemon, error) {
	d := &daemon{path: path, flags: o, logs: logs, log: logs.Daemon(), chaos: cfg.Daemon.Chaos, started: time.Now(), ids: newChildIDs(),
		keys: keys, running: byName(conns), goBase: goBase}
	goBase.apply(cfg.Daemon, d.log)
	d.cfg.Store(cfg)
	keys.set(cfg)
	for _, w := range cfg.Warnings {
		logs.Logger(logging.Config).Warn(w)
	}

	d.metrics = metrics.New(metrics.Options{Version: version()})
	d.metrics.SetConnections(connNames(cfg))
	d.metrics.ConfigReloaded(true, d.started)
	d.rec = &counting{Recorder: d.metrics, log: logs.Logger(logging.Family)}

	var err error
	if cfg.Daemon.MetricsAddress != "" {
		if d.msrv, err = metrics.Listen(cfg.Daemon.MetricsAddress, d.metrics); err != nil {
			return nil, err
		}
	}
	if cfg.Daemon.DebugAddress != "" {
		if d.dsrv, err = metrics.ListenDebug(cfg.Daemon.DebugAddress); err != nil {
			d.closeServers()
			return nil, err
		}
	}
	d.ctl, err = control.Listen(cfg.Daemon.ControlSocket, handler{d}, control.Options{Chaos: d.chaos, Log: logs.Logger(logging.Control)})
	if err != nil {
		d.closeServers()
		return nil, err
	}

	klog := logs.Logger(logging.Kernel)
	if d.backend, err = openBackend(cfg.Daemon.Kernel, klog); err != nil {
		d.closeServers()
		return nil, err
	}
	klog.Info(fmt.Sprintf("kernel backend: %s (%s)", d.backend.name, d.backend.why),
		zap.String("backend", d.backend.name), zap.String("reason", d.backend.why))

	acfg := actors.DefaultConfig()
	acfg.Sockets.Addrs = cfg.Daemon.ListenAddrs
	acfg.Sockets.IKEPort, acfg.Sockets.NATTPort = cfg.Daemon.Port, cfg.Daemon.PortNATT
	// The kernel decapsulates ESP-in-UDP only if it has ESP; with the in-memory kernel
	// the NAT-T socket sees (and counts) such packets itself.
	acfg.Sockets.KernelESPInUDP = d.backend.mem == nil
	acfg.CookieThreshold = cfg.Daemon.CookieThreshold
	acfg.HalfOpenPerPeer = cfg.Daemon.BlockThreshold
	acfg.Connections = conns
	acfg.Chaos = d.chaos
	// One logger for the whole tree, routed per line to the subsystem it is about
	// (logging.Tree): the manager's own lines, the families', the Child SA actors', the
	// sockets' and protoactor's each follow their own level.
	if d.m, err = actors.New(acfg, d.backend.k, logs.Tree(logging.Manager), d.rec); err != nil {
		d.closeServers()
		_ = d.backend.k.Close()
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.goBackground(func() {
		if err := d.ctl.Serve(ctx); err != nil {
			d.log.Error("control socket stopped", zap.Error(err))
		}
	})
	if d.msrv != nil {
		d.goBackground(func() {
			if err := d.msrv.Serve(ctx); err != nil {
				logs.Logger(logging.Metrics).Error("metrics endpoint stopped", zap.Error(err))
			}
		})
	}
	if d.dsrv != nil {
		d.goBackground(func() {
			if err := d.dsrv.Serve(ctx); err != nil {
				d.log.Error("Go profiler endpoint stopped", zap.Error(err))
			}
		})
		d.log.Warn("Go profiler (pprof) served: anyone who can connect sees stacks, heap profile and command line",
			zap.String("address", d.dsrv.Addr().String()+"/debug/pprof/"))
	}
	d.goBackground(func() { d.backend.run(ctx) })
	d.goBackground(func() { d.pruneIDs(ctx) })
	// Child SA events at the child subsystem's level, IKE SA events at the family's.
	d.goBackground(func() { d.logEvents(ctx, logs.Tree(logging.Family)) })

	ikePort, nattPort := d.m.Ports()
	metricsAddr := ""
	if d.msrv != nil {
		metricsAddr = d.msrv.Addr().String()
	}
	d.log.Info("cygnetd started",
		zap.String("version", version()), zap.String("config", path),
		zap.String("kernel", d.backend.name), zap.String("control_socket", d.ctl.Path()),
		zap.String("metrics", metricsAddr), zap.Uint16("ike_port", ikePort), zap.Uint16("natt_port", nattPort),
		zap.Strings("connections", connNames(cfg)), zap.Bool("chaos", d.chaos))
	if d.chaos {
		d.log.Warn("chaos testing is enabled: the control socket accepts debug-kill")
	}
	return d, nil
}

func (d *daemon) goBackground(f func()) {
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		f()
	}()
}

// idPruneInterval is how often Child SA unique IDs of vanished Child SAs are forgotten.
const idPruneInterval = time.Minute

// pruneIDs keeps the Child SA ID table at about the live Child SAs (childIDs.prune).
func (d *daemon) pruneIDs(ctx context.Context) {
	t := time.NewTicker(idPruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, sa := range d.m.ListSAs() {
				for _, c := range sa.Children {
					d.ids.id(sa.Family, c.Ref)
				}
			}
			d.ids.prune()
		}
	}
}

// closeServers releases the listeners of a start that failed half-way.
func (d *daemon) closeServers() {
	if d.ctl != nil {
		_ = d.ctl.Close()
	}
	for _, srv := range []*metrics.Server{d.msrv, d.dsrv} {
		if srv != nil {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = srv.Serve(ctx) // closes the listener at once
		}
	}
}

// reload re-reads the configuration file (SIGHUP, cygnetctl reload). A file that does
// not load leaves everything as it is and says why. Otherwise: removed connections'
// SAs are deleted, changed connections' SAs are deleted and, if they start by
// themselves, initiated again with the new definition; added connections that start by
// themselves are initiated; SAs of unchanged connections are not touched.
func (d *daemon) reload(ctx context.Context) (*control.ReloadResult, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	clog := d.logs.Logger(logging.Config)
	if d.stopping.Load() {
		return nil, control.Errorf(control.CodeShuttingDown, "cygnetd is shutting down")
	}
	ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	fail := func(err error) error {
		d.metrics.ConfigReloaded(false, time.Now())
		clog.Error("reload failed; the running configuration stays in place",
			zap.String("config", d.path), zap.Strings("errors", errorLines(err)))
		return control.Errorf(control.CodeReloadFailed, "%v\n(the running configuration stays in place)", err)
	}
	cur, conns, err := loadConfig(d.path, d.flags, d.keys)
	if err != nil {
		return nil, fail(err)
	}
	keepUnchanged(d.running, conns)
	old := d.cfg.Load()
	ch := config.Diff(old, cur)
	restart := ch.Restart
	if old.Daemon.CookieThreshold != cur.Daemon.CookieThreshold {
		restart = append(restart, "daemon.cookie_threshold")
	}
	if old.Daemon.BlockThreshold != cur.Daemon.BlockThreshold {
		restart = append(restart, "daemon.block_threshold")
	}
	// The new keys first, so that an added connection finds its key at once.
	prevKeys := d.keys.cur.Load()
	d.keys.set(cur)
	if err := d.m.SetConnections(ctx, conns); err != nil {
		d.keys.cur.Store(prevKeys)
		return nil, fail(err)
	}
	d.running = byName(conns)
	d.cfg.Store(cur)
	d.logs.SetLevels(cur.Daemon.Log.Level, cur.Daemon.Log.Subsystems)
	d.goBase.apply(cur.Daemon, clog)
	d.metrics.SetConnections(connNames(cur))

	res := &control.ReloadResult{Added: ch.Added, Removed: ch.Removed, Changed: ch.Changed,
		SecretChanged: ch.SecretChanged, Unchanged: ch.Unchanged, Restart: restart, Warnings: cur.Warnings}
	// The actor tree applies the difference itself (actors.Manager.SetConnections):
	// families of removed and changed connections are terminated, added and changed
	// connections get their trap policies and start actions, unchanged ones are left
	// alone.
	for _, name := range ch.Changed {
		clog.Info("connection changed: its SAs are deleted and replaced", zap.String("conn", name))
	}
	d.metrics.ConfigReloaded(true, time.Now())
	clog.Info("configuration reloaded", zap.String("config", d.path),
		zap.Strings("added", ch.Added), zap.Strings("removed", ch.Removed), zap.Strings("changed", ch.Changed),
		zap.Strings("secret_changed", ch.SecretChanged), zap.Int("unchanged", len(ch.Unchanged)),
		zap.Strings("restart_required", restart))
	for _, w := range res.Warnings {
		clog.Warn(w)
	}
	return res, nil
}

// shutdown stops the daemon gracefully (RFC 7296 §1.4.1 DELETE to every peer, Child
// SAs out of the kernel) within ShutdownGrace + shutdownExtra; a signal on again ends it
// at once (the next start's CleanupStale removes what is left). It returns the exit
// status.
func (d *daemon) shutdown(again <-chan struct{}) int {
	d.stopping.Store(true)
	d.log.Info("shutting down: deleting IKE SAs with their peers")
	grace := actors.DefaultShutdownGrace + shutdownExtra
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.m.Shutdown(ctx) }()
	status := 0
	select {
	case err := <-done:
		if err != nil {
			d.log.Error("graceful shutdown did not finish in time; stopped hard", zap.Duration("bound", grace), zap.Error(err))
			status = 1
		}
	case <-again:
		d.log.Warn("second signal: exiting at once; the next start removes leftover kernel state")
		d.m.Kill()
		return 1
	}
	d.cancel()
	d.bg.Wait()
	if err := d.backend.k.Close(); err != nil {
		d.log.Warn("closing the kernel backend", zap.Error(err))
	}
	d.log.Info("cygnetd stopped")
	return status
}

func connNames(cfg *config.Config) []string {
	out := make([]string, len(cfg.Connections))
	for i, c := range cfg.Connections {
		out[i] = c.Name
	}
	return out
}

// errorLines splits a (joined) error into its lines for a structured log field.
func errorLines(err error) []string {
	var ce config.Errors
	if errors.As(err, &ce) {
		out := make([]string, len(ce))
		for i, e := range ce {
			out[i] = e.Error()
		}
		return out
	}
	return strings.Split(err.Error(), "\n")
}

// addrString prints an address, or "" for the zero value.
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
