package loadgen

import (
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Stats are a run's counters. Every field is safe for concurrent use; the event loops
// update them and the progress reporter reads them.
type Stats struct {
	Launched      atomic.Uint64 // IKE SAs started (Initiate fed to a new family)
	Established   atomic.Uint64 // IKE_AUTH completed (not counting rekeys)
	Failed        atomic.Uint64 // families that ended before IKE_AUTH completed
	Lost          atomic.Uint64 // families that ended after establishing, not by our Terminate
	Deleted       atomic.Uint64 // families ended by our Terminate
	IKEUp         atomic.Int64  // IKE SAs up now (Established − IKEClosed)
	ChildUp       atomic.Int64  // Child SAs up now (ChildUp − ChildDown)
	ChildrenMade  atomic.Uint64 // ChildUp effects of new (not rekeyed) Child SAs
	IKERekeys     atomic.Uint64 // IKE SAs replaced by rekeying (RFC 7296 §2.8)
	ChildRekeys   atomic.Uint64 // Child SAs replaced by rekeying
	Retransmits   atomic.Uint64 // requests sent again (RFC 7296 §2.1)
	Dropped       atomic.Uint64 // datagrams dropped (by the core or for an unknown SPI)
	SendErrors    atomic.Uint64 // sendto failures
	CookiesSeen   atomic.Uint64 // N(COOKIE) answers received (RFC 7296 §2.6)
	InvalidKESeen atomic.Uint64 // N(INVALID_KE_PAYLOAD) answers received
	HalfOpen      atomic.Int64  // responder: half-open IKE SAs now
	CookiesSent   atomic.Uint64 // responder: N(COOKIE) challenges sent
	Latency       Histogram     // IKE_SA_INIT + IKE_AUTH, from Initiate to Established

	settled atomic.Uint64 // initiator: families established or failed

	mu              sync.Mutex
	failures        map[string]uint64 // why families failed before establishing
	losses          map[string]uint64 // why established families ended (other than ours)
	childFailures   map[string]uint64
	notifies        map[string]uint64 // error notifies received
	retransmitsByEx map[string]uint64
	drops           map[string]uint64
}

func newStats() *Stats {
	return &Stats{failures: map[string]uint64{}, losses: map[string]uint64{}, childFailures: map[string]uint64{},
		notifies: map[string]uint64{}, retransmitsByEx: map[string]uint64{}, drops: map[string]uint64{}}
}

func (s *Stats) count(m map[string]uint64, key string) {
	s.mu.Lock()
	m[key]++
	s.mu.Unlock()
}

func (s *Stats) snapshot(m map[string]uint64) map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(m)
}

// Second is one second of a run's timeline.
type Second struct {
	T           int    `json:"t"`
	Established uint64 `json:"established"`
	Failed      uint64 `json:"failed"`
	Retransmits uint64 `json:"retransmits"`
	IKEUp       int64  `json:"ike_up"`
	IKERekeys   uint64 `json:"ike_rekeys"`
	ChildRekeys uint64 `json:"child_rekeys"`
}

// sampler turns the cumulative counters into per-second deltas.
type sampler struct {
	s    *Stats
	last Second
}

func (sp *sampler) sample(t int) Second {
	cur := Second{T: t, Established: sp.s.Established.Load(), Failed: sp.s.Failed.Load(),
		Retransmits: sp.s.Retransmits.Load(), IKEUp: sp.s.IKEUp.Load(),
		IKERekeys: sp.s.IKERekeys.Load(), ChildRekeys: sp.s.ChildRekeys.Load()}
	d := Second{T: t, Established: cur.Established - sp.last.Established, Failed: cur.Failed - sp.last.Failed,
		Retransmits: cur.Retransmits - sp.last.Retransmits, IKEUp: cur.IKEUp,
		IKERekeys: cur.IKERekeys - sp.last.IKERekeys, ChildRekeys: cur.ChildRekeys - sp.last.ChildRekeys}
	sp.last = cur
	return d
}

// progressLine is the live line: totals, the last second's rates and latency.
func (s *Stats) progressLine(elapsed time.Duration, d Second) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6.1fs est=%d (+%d/s) fail=%d (+%d/s) up=%d child=%d inflight=%d rtx=%d",
		elapsed.Seconds(), s.Established.Load(), d.Established, s.Failed.Load(), d.Failed,
		s.IKEUp.Load(), s.ChildUp.Load(),
		int64(s.Launched.Load())-int64(s.Established.Load()+s.Failed.Load()), s.Retransmits.Load())
	if r := s.IKERekeys.Load() + s.ChildRekeys.Load(); r > 0 {
		fmt.Fprintf(&b, " rekeys=%d/%d", s.IKERekeys.Load(), s.ChildRekeys.Load())
	}
	if n := s.Lost.Load(); n > 0 {
		fmt.Fprintf(&b, " lost=%d", n)
	}
	if n := s.CookiesSeen.Load(); n > 0 {
		fmt.Fprintf(&b, " cookies=%d", n)
	}
	if s.Latency.Count() > 0 {
		fmt.Fprintf(&b, " p50=%.1fms p99=%.1fms", ms(s.Latency.Quantile(0.5)), ms(s.Latency.Quantile(0.99)))
	}
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
