// Package metrics is cygnetd's Prometheus instrumentation: the implementation of
// actors/telemetry.Recorder that the actor tree calls, plus the daemon's own metrics
// (configuration reloads, build info), the process and Go runtime collectors, and the
// /metrics HTTP endpoint.
//
// Contract:
//   - Everything is registered in the Metrics' own prometheus.Registry; the default
//     registry is never touched, and http.DefaultServeMux is never served (net/http/pprof,
//     imported for ListenDebug, registers itself there).
//   - ListenDebug is the opt-in Go profiler endpoint (net/http/pprof on its own mux and
//     listener, never on /metrics' server).
//   - Names follow Prometheus conventions (cygnet_ prefix, _total for counters, _seconds
//     for durations). Label sets are bounded: at most the connection name (from the
//     configuration) and values from fixed enumerations; free-form values such as
//     notify names and failure reasons are capped (see maxLabelValues) and overflow to
//     "other". Never an SPI, an SA or a peer address.
//   - Every Recorder method is safe for concurrent use and never blocks on I/O.
//   - Series of fixed enumerations (exchange × role × outcome, drop reasons, …) exist
//     from the start at zero, so rate() and alerts work before the first event;
//     SetConnections does the same for the configured connections and removes the
//     series of connections that are gone.
package metrics

import (
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
)

// maxLabelValues caps the distinct values of a free-form label (notify type, failure
// reason); further values are counted as "other".
const maxLabelValues = 64

// Metrics holds cygnetd's collectors. Create it with New.
type Metrics struct {
	reg *prometheus.Registry

	ikeSAs          *prometheus.GaugeVec
	halfOpen        prometheus.Gauge
	childSAs        *prometheus.GaugeVec
	exchanges       *prometheus.CounterVec
	notifiesSent    *prometheus.CounterVec
	notifiesRecv    *prometheus.CounterVec
	childFailures   *prometheus.CounterVec
	familyTeardowns *prometheus.CounterVec
	retransmissions *prometheus.CounterVec
	dropped         *prometheus.CounterVec
	cookies         prometheus.Counter
	actorStops      *prometheus.CounterVec
	kernelOps       *prometheus.CounterVec
	kernelLatency   *prometheus.HistogramVec
	handshake       *prometheus.HistogramVec
	reloads         *prometheus.CounterVec
	lastReload      prometheus.Gauge
	connections     prometheus.Gauge

	notifySentNames, notifyRecvNames, childReasons, teardownReasons, connNames labelGuard

	mu        sync.Mutex
	connGauge map[string]bool // connections whose series exist

	// Running totals for Totals (cygnetctl stats) without gathering the registry.
	totIKE, totHalfOpen, totChild                atomic.Int64
	totRetransmits, totDropped, totChildFailures atomic.Uint64
}

// Totals are daemon-wide sums of some metrics (for cygnetctl stats).
type Totals struct {
	IKESAs, HalfOpen, ChildSAs            int64
	Retransmits, Dropped, ChildSAFailures uint64
}

// Totals returns the current sums.
func (m *Metrics) Totals() Totals {
	return Totals{
		IKESAs: m.totIKE.Load(), HalfOpen: m.totHalfOpen.Load(), ChildSAs: m.totChild.Load(),
		Retransmits: m.totRetransmits.Load(), Dropped: m.totDropped.Load(), ChildSAFailures: m.totChildFailures.Load(),
	}
}

var _ telemetry.Recorder = (*Metrics)(nil)

// Enumerations whose series are created at zero.
var (
	exchanges   = []telemetry.Exchange{telemetry.ExchangeIKESAInit, telemetry.ExchangeIKEAuth, telemetry.ExchangeCreateChildSA, telemetry.ExchangeInformational}
	roles       = []telemetry.Role{telemetry.RoleInitiator, telemetry.RoleResponder}
	outcomes    = []telemetry.Outcome{telemetry.OutcomeOK, telemetry.OutcomeRejected, telemetry.OutcomeTimeout, telemetry.OutcomeAborted}
	dropReasons = []telemetry.DropReason{telemetry.DropMalformed, telemetry.DropIntegrity, telemetry.DropUnknownSPI,
		telemetry.DropMsgIDWindow, telemetry.DropUnauthNotify, telemetry.DropHalfOpenLimit, telemetry.DropInvalidCookie,
		telemetry.DropUnexpected, telemetry.DropQueueFull, telemetry.DropFamilyStopping}
	kernelOps = []telemetry.KernelOp{telemetry.KernelAllocSPI, telemetry.KernelAddSA, telemetry.KernelUpdateSA,
		telemetry.KernelDeleteSA, telemetry.KernelAddPolicy, telemetry.KernelDeletePolicy, telemetry.KernelQuerySA, telemetry.KernelFlush}
	results = []telemetry.Result{telemetry.ResultOK, telemetry.ResultError}
)

// Options configures New.
type Options struct {
	// Version is reported by cygnet_build_info.
	Version string
}

// New creates the collectors and registers them, with the process and Go collectors, in
// a new registry.
func New(opts Options) *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{reg: reg, connGauge: map[string]bool{}}

	m.ikeSAs = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cygnet_ike_sas_established",
		Help: "Established IKE SAs (RFC 7296 §1.2), by connection."}, []string{"connection"})
	m.halfOpen = prometheus.NewGauge(prometheus.GaugeOpts{Name: "cygnet_ike_sas_half_open",
		Help: "Responder IKE SAs that answered IKE_SA_INIT and have not completed IKE_AUTH (RFC 7296 §2.6)."})
	m.childSAs = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cygnet_child_sas_installed",
		Help: "Child SAs installed in the kernel, by connection."}, []string{"connection"})
	m.exchanges = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cygnet_exchanges_total",
		Help: "Finished IKEv2 exchanges, by exchange type, our role and outcome."}, []string{"exchange", "role", "outcome"})
	m.notifiesSent = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cygnet_notifies_sent_total",
		Help: "Notify payloads sent, by notify type (RFC 7296 §3.10.1)."}, []string{"type"})
	m.notifiesRecv = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cygnet_notifies_received_total",
		Help: "Notify payloads received, by notify type (RFC 7296 §3.10.1)."}, []string{"type"})
	m.childFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cygnet_child_sa_failures_total",
		Help: "Child SAs that could not be created or died, by connection and reason."}, []string{"connection", "reason"})
	m.familyTeardowns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cygnet_ike_family_teardowns_total",
		Help: "IKE families (an IKE SA and its Child SAs) that ended, by reason."}, []string{"reason"})
	m.retransmissions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cygnet_retransmissions_total",
		Help: "Requests retransmitted (RFC 7296 §2.1), by exchange type."}, []string{"exchange"})
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cygnet_packets_dropped_total",
		Help: "IKE messages dropped without changing any state, by reason."}, []string{"reason"})
	m.cookies = prometheus.NewCounter(prometheus.CounterOpts{Name: "cygnet_cookies_sent_total",
		Help: "COOKIE notifies sent in answer to IKE_SA_INIT (RFC 7296 §2.6)."})
	m.actorStops = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cygnet_actor_stops_total",
		Help: "Actors that stopped, by kind and reason."}, []string{"kind", "reason"})
	m.kernelOps = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cygnet_kernel_operations_total",
		Help: "Operations on the kernel's IPsec tables, by operation and result."}, []string{"op", "result"})
	m.kernelLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cygnet_kernel_operation_duration_seconds",
		Help:    "Time taken by operations on the kernel's IPsec tables.",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2.5, 10)}, []string{"op"})
	m.handshake = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cygnet_ike_handshake_duration_seconds",
		Help:    "Time from the first IKE_SA_INIT to the end of IKE_AUTH, by our role.",
		Buckets: prometheus.ExponentialBuckets(1e-3, 2.5, 12)}, []string{"role"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cygnet_config_reloads_total",
		Help: "Configuration reloads, by result (a failed reload keeps the running configuration)."}, []string{"result"})
	m.lastReload = prometheus.NewGauge(prometheus.GaugeOpts{Name: "cygnet_config_last_reload_success_timestamp_seconds",
		Help: "When the configuration was last loaded successfully (Unix time)."})
	m.connections = prometheus.NewGauge(prometheus.GaugeOpts{Name: "cygnet_connections_configured",
		Help: "Connections in the running configuration."})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cygnet_build_info",
		Help: "Always 1; the labels say which cygnetd is running."}, []string{"version", "goversion"})

	for _, c := range []prometheus.Collector{m.ikeSAs, m.halfOpen, m.childSAs, m.exchanges, m.notifiesSent, m.notifiesRecv,
		m.childFailures, m.familyTeardowns, m.retransmissions, m.dropped, m.cookies, m.actorStops, m.kernelOps,
		m.kernelLatency, m.handshake, m.reloads, m.lastReload, m.connections, build,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector()} {
		f(c)
	}

	version := opts.Version
	if version == "" {
		version = "devel"
	}
	build.WithLabelValues(version, runtime.Version()).Set(1)
	for _, e := range exchanges {
		m.retransmissions.WithLabelValues(string(e))
		for _, r := range roles {
			for _, o := range outcomes {
				m.exchanges.WithLabelValues(string(e), string(r), string(o))
			}
		}
	}
	for _, d := range dropReasons {
		m.dropped.WithLabelValues(string(d))
	}
	for _, op := range kernelOps {
		m.kernelLatency.WithLabelValues(string(op))
		for _, r := range results {
			m.kernelOps.WithLabelValues(string(op), string(r))
		}
	}
	for _, r := range roles {
		m.handshake.WithLabelValues(string(r))
	}
	for _, r := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(r)
	}
	m.notifySentNames.max, m.notifyRecvNames.max = maxLabelValues, maxLabelValues
	m.childReasons.max, m.teardownReasons.max = maxLabelValues, maxLabelValues
	m.connNames.max = 4096
	return m
}

// Registry is the registry holding every cygnet metric.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:            m.reg,
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
}

// SetConnections declares the configured connections: their per-connection gauges exist
// (at 0 until an SA comes up) and the series of connections no longer configured are
// deleted. Called at start and after each successful reload.
func (m *Metrics) SetConnections(names []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keep := make(map[string]bool, len(names))
	for _, n := range names {
		keep[n] = true
		if !m.connGauge[n] {
			m.ikeSAs.WithLabelValues(n)
			m.childSAs.WithLabelValues(n)
			m.connGauge[n] = true
		}
	}
	for n := range m.connGauge {
		if !keep[n] {
			m.ikeSAs.DeleteLabelValues(n)
			m.childSAs.DeleteLabelValues(n)
			m.childFailures.DeletePartialMatch(prometheus.Labels{"connection": n})
			delete(m.connGauge, n)
		}
	}
	m.connNames.reset(names)
	m.connections.Set(float64(len(names)))
}

// ConfigReloaded records a reload attempt (and, when ok, its time).
func (m *Metrics) ConfigReloaded(ok bool, at time.Time) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.lastReload.Set(float64(at.UnixNano()) / 1e9)
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
}

// telemetry.Recorder

func (m *Metrics) IKESAEstablished(conn string) {
	m.totIKE.Add(1)
	m.ikeSAs.WithLabelValues(m.connNames.get(conn)).Inc()
}

func (m *Metrics) IKESAClosed(conn string) {
	m.totIKE.Add(-1)
	m.ikeSAs.WithLabelValues(m.connNames.get(conn)).Dec()
}

func (m *Metrics) HalfOpenChanged(delta int) {
	m.totHalfOpen.Add(int64(delta))
	m.halfOpen.Add(float64(delta))
}

func (m *Metrics) ChildSAInstalled(conn string) {
	m.totChild.Add(1)
	m.childSAs.WithLabelValues(m.connNames.get(conn)).Inc()
}

func (m *Metrics) ChildSARemoved(conn string) {
	m.totChild.Add(-1)
	m.childSAs.WithLabelValues(m.connNames.get(conn)).Dec()
}

func (m *Metrics) ExchangeDone(e telemetry.Exchange, r telemetry.Role, o telemetry.Outcome) {
	m.exchanges.WithLabelValues(string(e), string(r), string(o)).Inc()
}

func (m *Metrics) NotifySent(t string) {
	m.notifiesSent.WithLabelValues(m.notifySentNames.get(t)).Inc()
}
func (m *Metrics) NotifyReceived(t string) {
	m.notifiesRecv.WithLabelValues(m.notifyRecvNames.get(t)).Inc()
}

func (m *Metrics) ChildFailed(conn, reason string) {
	m.totChildFailures.Add(1)
	m.childFailures.WithLabelValues(m.connNames.get(conn), m.childReasons.get(reason)).Inc()
}

func (m *Metrics) FamilyTeardown(reason string) {
	m.familyTeardowns.WithLabelValues(m.teardownReasons.get(reason)).Inc()
}

func (m *Metrics) Retransmitted(e telemetry.Exchange) {
	m.totRetransmits.Add(1)
	m.retransmissions.WithLabelValues(string(e)).Inc()
}

func (m *Metrics) PacketDropped(r telemetry.DropReason) {
	m.totDropped.Add(1)
	m.dropped.WithLabelValues(string(r)).Inc()
}

func (m *Metrics) CookieSent() { m.cookies.Inc() }

func (m *Metrics) ActorStopped(k telemetry.ActorKind, r telemetry.StopReason) {
	m.actorStops.WithLabelValues(string(k), string(r)).Inc()
}

func (m *Metrics) KernelOp(op telemetry.KernelOp, r telemetry.Result, took time.Duration) {
	m.kernelOps.WithLabelValues(string(op), string(r)).Inc()
	m.kernelLatency.WithLabelValues(string(op)).Observe(took.Seconds())
}

func (m *Metrics) HandshakeDone(r telemetry.Role, took time.Duration) {
	m.handshake.WithLabelValues(string(r)).Observe(took.Seconds())
}

// labelGuard bounds the distinct values of one label: the first max values pass, the
// rest become "other". Empty values become "unknown".
type labelGuard struct {
	mu   sync.RWMutex
	max  int
	seen map[string]struct{}
}

func (g *labelGuard) get(v string) string {
	if v == "" {
		return "unknown"
	}
	g.mu.RLock()
	_, ok := g.seen[v]
	n := len(g.seen)
	g.mu.RUnlock()
	if ok {
		return v
	}
	if n >= g.max {
		return "other"
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[string]struct{}{}
	}
	if _, ok := g.seen[v]; !ok && len(g.seen) >= g.max {
		return "other"
	}
	g.seen[v] = struct{}{}
	return v
}

// reset forgets every value, then admits vals.
func (g *labelGuard) reset(vals []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seen = make(map[string]struct{}, len(vals))
	for _, v := range vals {
		if len(g.seen) < g.max {
			g.seen[v] = struct{}{}
		}
	}
}
