package actors

import (
	"runtime"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/actors/sockets"
)

// Defaults (see DefaultConfig).
const (
	// DefaultCookieThreshold is the number of half-open IKE SAs from which COOKIEs are
	// demanded (RFC 7296 §2.6; strongSwan's charon.cookie_threshold).
	DefaultCookieThreshold = 30
	// DefaultHalfOpenPerPeer is the per-peer-address half-open limit from which new
	// IKE_SA_INIT requests are dropped (strongSwan's charon.block_threshold).
	DefaultHalfOpenPerPeer = 5
	// DefaultCookieRotation is how often the COOKIE secret changes.
	DefaultCookieRotation = 2 * time.Minute
	// DefaultShutdownGrace bounds a family's graceful end: after it, the family stops
	// without waiting for the peer's answer to its DELETE.
	DefaultShutdownGrace = 5 * time.Second
	// DefaultManagerQueue bounds the new IKE_SA_INIT requests in flight to the manager.
	DefaultManagerQueue = 4096
	// DefaultFamilyQueue bounds the datagrams in flight to one family.
	DefaultFamilyQueue = 64
	// DefaultKernelTimeout bounds one kernel call.
	DefaultKernelTimeout = 10 * time.Second
	// DefaultWorkRetry is how long a family waits before resubmitting work the full
	// pool refused.
	DefaultWorkRetry = 10 * time.Millisecond
)

// Config is the actor tree's configuration. Start from DefaultConfig: a zero
// CookieThreshold means "always demand a COOKIE".
type Config struct {
	// Sockets says where to listen (addresses, ports 500/4500, keepalive interval).
	// Log and Metrics are filled in by New.
	Sockets sockets.Config
	// Connections are the configured connections; initiator families use them by name,
	// responder families choose among those whose addresses match the peer.
	Connections []*ike.Connection
	// IKE are the core's daemon-wide options; NATTPort is set to the bound NAT-T port.
	IKE ike.Options

	// CookieThreshold: from this many half-open IKE SAs on, new IKE_SA_INIT requests
	// must carry a valid COOKIE (RFC 7296 §2.6). 0 means always.
	CookieThreshold int
	// HalfOpenPerPeer: a peer address with this many half-open IKE SAs gets its new
	// IKE_SA_INIT requests dropped (counted). 0 means no limit.
	HalfOpenPerPeer int
	CookieRotation  time.Duration

	// Workers, WorkHighWater and WorkMaxQueue size the key-exchange pool (defaults:
	// GOMAXPROCS-1 workers but at least one, high-water mark 1024 per worker, 1<<20
	// queued jobs at most). One processor is left to the actors and the network: with a
	// pool as wide as GOMAXPROCS, a saturated pool keeps every P busy, the runtime then
	// notices ready sockets only from sysmon, and a family's packet handling under load
	// went from p50 62 µs / p99 9.7 ms to p50 23 ms / p99 208 ms (2 cores,
	// BenchmarkPacketLatencyUnderLoad).
	// While the pool is past its high-water mark, new IKE_SA_INIT requests are dropped
	// (counted as queue_full; the initiator retransmits).
	Workers, WorkHighWater, WorkMaxQueue int

	ManagerQueue, FamilyQueue int
	ShutdownGrace             time.Duration
	KernelTimeout             time.Duration
	WorkRetry                 time.Duration

	// StartActions makes New initiate every connection that has a child with start
	// action "start" (swanctl start_action = start).
	StartActions bool
	// Chaos enables KillActor (debug kill of a named actor, for chaos tests).
	Chaos bool

	// PooledTurns runs the actors' mailbox turns on an actorkit.Dispatcher (long-lived
	// workers, closed with the tree) instead of protoactor's goroutine per turn: ~12%
	// less CPU per handshake (BenchmarkHandshakeCPU). Off by default for now: its
	// different timing exposed a core bug in simultaneous IKE SA rekeys (fixed in
	// 578ee58: 80 of 80 TestChaos -race runs pass with it since, 1 in 30 failed before);
	// it becomes the default after a longer soak. CYGNET_TEST_POOLED=1 runs the pair and
	// chaos tests with it.
	PooledTurns bool
	// Dispatcher replaces the dispatcher altogether (unit tests use
	// actor.NewSynchronizedDispatcher). Now replaces time.Now.
	Dispatcher actor.Dispatcher
	Now        func() time.Time
}

// DefaultConfig returns the production defaults: ports 500 and 4500 on every address.
func DefaultConfig() Config {
	return Config{
		Sockets:         sockets.Config{IKEPort: ike.DefaultIKEPort, NATTPort: ike.DefaultNATTPort, KernelESPInUDP: true},
		CookieThreshold: DefaultCookieThreshold,
		HalfOpenPerPeer: DefaultHalfOpenPerPeer,
		StartActions:    true,
	}
}

func (c *Config) setDefaults() {
	if c.CookieRotation <= 0 {
		c.CookieRotation = DefaultCookieRotation
	}
	if c.ManagerQueue <= 0 {
		c.ManagerQueue = DefaultManagerQueue
	}
	if c.FamilyQueue <= 0 {
		c.FamilyQueue = DefaultFamilyQueue
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.KernelTimeout <= 0 {
		c.KernelTimeout = DefaultKernelTimeout
	}
	if c.WorkRetry <= 0 {
		c.WorkRetry = DefaultWorkRetry
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Workers <= 0 {
		c.Workers = max(1, runtime.GOMAXPROCS(0)-1)
	}
}
