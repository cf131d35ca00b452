package kernel

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
)

// EventKind says what the kernel reported.
type EventKind uint8

const (
	// EventSoftExpire: an SA reached a soft limit; time to rekey it (RFC 7296 §2.8).
	EventSoftExpire EventKind = 1
	// EventHardExpire: an SA reached a hard limit and the kernel deleted it.
	EventHardExpire EventKind = 2
	// EventAcquire: outbound traffic hit a policy whose template has no SA (a trap
	// policy, start_action=trap): the daemon should negotiate a Child SA for it.
	EventAcquire EventKind = 3
)

func (k EventKind) String() string {
	switch k {
	case EventSoftExpire:
		return "soft-expire"
	case EventHardExpire:
		return "hard-expire"
	case EventAcquire:
		return "acquire"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is one kernel notification.
type Event struct {
	Kind EventKind
	// Reqid is the expiring SA's reqid, or the reqid of the template that was hit.
	Reqid Reqid
	// Owner is the object's owner from the Kernel's in-process index (the SA for expiry,
	// the policy for acquire); zero if this Kernel did not install it.
	Owner Owner

	// SA is the expiring SA (expiry events); Src is its source address.
	SA  SAID
	Src netip.Addr

	// Policy and PolicyIndex name the policy that was hit (acquire events); Flow is the
	// packet that hit it (addresses as /32 or /128 prefixes, protocol and ports), and
	// TmplSrc, TmplDst the end points the template asks for.
	Policy           PolicyID
	PolicyIndex      uint32
	Flow             Selector
	TmplSrc, TmplDst netip.Addr
}

func (e Event) String() string {
	switch e.Kind {
	case EventSoftExpire, EventHardExpire:
		return fmt.Sprintf("%s %s src %s reqid %s", e.Kind, e.SA, e.Src, e.Reqid)
	case EventAcquire:
		return fmt.Sprintf("acquire %s index %d flow %s reqid %s", e.Policy, e.PolicyIndex, e.Flow, e.Reqid)
	}
	return e.Kind.String()
}

// Subscription delivers events on C. It is created by Kernel.Subscribe.
type Subscription struct {
	// C receives events in the order the kernel sent them. It is closed when the
	// subscription or the Kernel is closed.
	C <-chan Event

	c      chan Event
	hub    *Hub
	lost   atomic.Uint64
	closed bool // guarded by hub.mu
}

// Lost returns how many events this subscriber did not get: its channel was full, or
// the kernel's notification socket overflowed.
func (s *Subscription) Lost() uint64 { return s.lost.Load() }

// Close ends the subscription and closes C. It is safe to call more than once.
func (s *Subscription) Close() { s.hub.remove(s) }

// Hub fans events out to subscriptions without ever blocking the publisher. It is a
// building block for Kernel implementations.
type Hub struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

// NewHub returns an empty Hub.
func NewHub() *Hub { return &Hub{subs: make(map[*Subscription]struct{})} }

// Subscribe adds a subscription whose channel holds capacity events (at least 1). On a
// closed Hub the subscription's channel is closed at once.
func (h *Hub) Subscribe(capacity int) *Subscription {
	if capacity < 1 {
		capacity = 1
	}
	c := make(chan Event, capacity)
	s := &Subscription{C: c, c: c, hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.closed = true
		close(c)
		return s
	}
	h.subs[s] = struct{}{}
	return s
}

// Publish offers ev to every subscription; a full channel loses it (counted).
func (h *Hub) Publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.c <- ev:
		default:
			s.lost.Add(1)
		}
	}
}

// Lose counts n events that no subscriber will get (the source overflowed).
func (h *Hub) Lose(n uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.lost.Add(n)
	}
}

// Close closes every subscription; later Subscribe calls get closed channels.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		s.closed = true
		close(s.c)
		delete(h.subs, s)
	}
}

func (h *Hub) remove(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	close(s.c)
	delete(h.subs, s)
}
