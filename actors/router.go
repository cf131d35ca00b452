package actors

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// familyEntry is the manager's record of one family, shared (read-mostly) with the
// socket readers that route datagrams to it and with the control API that lists it.
type familyEntry struct {
	id kernel.FamilyID
	// pid is the family's actor; nil once it terminated (a dead PID keeps the dead
	// actor's memory alive, shared/notes/protoactor.md).
	pid atomic.Pointer[actor.PID]
	// inflight counts datagrams posted to the family and not yet handled: the bound on
	// its otherwise unbounded mailbox.
	inflight atomic.Int32
	// summary is the family's latest state for listings, replaced (never mutated) by
	// the family after each Step that changed it.
	summary atomic.Pointer[SA]
	// panicked is set by the manager's supervision before it stops a family that
	// panicked, so that the stop is counted once, as a panic.
	panicked atomic.Bool

	// Manager-owned (touched only in the manager's turn).
	conn      string  // connection name if known at spawn (initiator); never changes
	indexedAs string  // the manager's byConn key
	initKey   initKey // responder: the IKE_SA_INIT that created it
	halfOpen  bool    // counted in the half-open totals
	// idKey files the family under its IKE SA's identities once established;
	// contactAt is the manager's family counter then (INITIAL_CONTACT, contact.go).
	idKey     uint64
	contactAt kernel.FamilyID

	mu   sync.Mutex
	spis []ike.SPI // routes held, for removal on termination
}

// initKey identifies the IKE_SA_INIT request that created a responder family, so that
// its retransmissions reach the same family (RFC 7296 §2.1, §2.6).
type initKey struct {
	remote netip.AddrPort
	spiI   ike.SPI
}

const shards = 64

// router maps our IKE SPIs (and, for half-open responder families, the initiator's
// IKE_SA_INIT) to families. It is written by families (RouteSPI/UnrouteSPI, in their
// turn, before the datagram that makes the peer use the SPI is sent) and by the
// manager, and read concurrently by the socket readers.
type router struct {
	spi  [shards]spiShard
	init [shards]initShard
	seed maphash.Seed
}

type spiShard struct {
	mu sync.RWMutex
	m  map[ike.SPI]*familyEntry
}

type initShard struct {
	mu sync.RWMutex
	m  map[initKey]*familyEntry
}

func newRouter() *router {
	r := &router{seed: maphash.MakeSeed()}
	for i := range r.spi {
		r.spi[i].m = map[ike.SPI]*familyEntry{}
		r.init[i].m = map[initKey]*familyEntry{}
	}
	return r
}

func (r *router) spiShard(s ike.SPI) *spiShard { return &r.spi[uint64(s)%shards] }

func (r *router) initShard(k initKey) *initShard {
	return &r.init[maphash.Comparable(r.seed, k)%shards]
}

// bySPI returns the family routed under our SPI s.
func (r *router) bySPI(s ike.SPI) *familyEntry {
	sh := r.spiShard(s)
	sh.mu.RLock()
	e := sh.m[s]
	sh.mu.RUnlock()
	return e
}

// addSPI routes s to e. It refuses (false) an SPI that routes to another family: the
// core draws 64-bit SPIs at random, so this is a collision to count, not to obey.
func (r *router) addSPI(s ike.SPI, e *familyEntry) bool {
	sh := r.spiShard(s)
	sh.mu.Lock()
	if old, ok := sh.m[s]; ok && old != e {
		sh.mu.Unlock()
		return false
	}
	sh.m[s] = e
	sh.mu.Unlock()
	e.mu.Lock()
	e.spis = append(e.spis, s)
	e.mu.Unlock()
	return true
}

// removeSPI drops the route s if it belongs to e.
func (r *router) removeSPI(s ike.SPI, e *familyEntry) {
	sh := r.spiShard(s)
	sh.mu.Lock()
	if sh.m[s] == e {
		delete(sh.m, s)
	}
	sh.mu.Unlock()
	e.mu.Lock()
	for i, x := range e.spis {
		if x == s {
			e.spis = append(e.spis[:i], e.spis[i+1:]...)
			break
		}
	}
	e.mu.Unlock()
}

// dropFamily removes every route of e.
func (r *router) dropFamily(e *familyEntry) {
	e.mu.Lock()
	spis := e.spis
	e.spis = nil
	e.mu.Unlock()
	for _, s := range spis {
		sh := r.spiShard(s)
		sh.mu.Lock()
		if sh.m[s] == e {
			delete(sh.m, s)
		}
		sh.mu.Unlock()
	}
	if e.initKey != (initKey{}) {
		r.removeInit(e.initKey, e)
	}
}

func (r *router) byInit(k initKey) *familyEntry {
	sh := r.initShard(k)
	sh.mu.RLock()
	e := sh.m[k]
	sh.mu.RUnlock()
	return e
}

func (r *router) addInit(k initKey, e *familyEntry) {
	sh := r.initShard(k)
	sh.mu.Lock()
	sh.m[k] = e
	sh.mu.Unlock()
}

func (r *router) removeInit(k initKey, e *familyEntry) {
	sh := r.initShard(k)
	sh.mu.Lock()
	if sh.m[k] == e {
		delete(sh.m, k)
	}
	sh.mu.Unlock()
}

// counts returns the number of SPI and IKE_SA_INIT routes (tests, stats).
func (r *router) counts() (spis, inits int) {
	for i := range r.spi {
		r.spi[i].mu.RLock()
		spis += len(r.spi[i].m)
		r.spi[i].mu.RUnlock()
		r.init[i].mu.RLock()
		inits += len(r.init[i].m)
		r.init[i].mu.RUnlock()
	}
	return spis, inits
}

// registry holds every live family by ID: written by the manager, read by the control
// API (listings, commands) and the kernel event dispatcher without asking the manager.
type registry struct {
	sh [shards]struct {
		mu sync.RWMutex
		m  map[kernel.FamilyID]*familyEntry
	}
	n atomic.Int64
}

func newRegistry() *registry {
	r := &registry{}
	for i := range r.sh {
		r.sh[i].m = map[kernel.FamilyID]*familyEntry{}
	}
	return r
}

func (r *registry) add(e *familyEntry) {
	s := &r.sh[uint64(e.id)%shards]
	s.mu.Lock()
	s.m[e.id] = e
	s.mu.Unlock()
	r.n.Add(1)
}

func (r *registry) remove(id kernel.FamilyID) {
	s := &r.sh[uint64(id)%shards]
	s.mu.Lock()
	if _, ok := s.m[id]; ok {
		delete(s.m, id)
		r.n.Add(-1)
	}
	s.mu.Unlock()
}

func (r *registry) get(id kernel.FamilyID) *familyEntry {
	s := &r.sh[uint64(id)%shards]
	s.mu.RLock()
	e := s.m[id]
	s.mu.RUnlock()
	return e
}

func (r *registry) len() int { return int(r.n.Load()) }

// each calls f for every family; f must not call back into the registry.
func (r *registry) each(f func(*familyEntry)) {
	for i := range r.sh {
		s := &r.sh[i]
		s.mu.RLock()
		for _, e := range s.m {
			f(e)
		}
		s.mu.RUnlock()
	}
}
