package actors

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventIKEUp: an IKE SA was established (IKE_AUTH done, or a rekey replaced it).
	EventIKEUp EventKind = iota + 1
	// EventIKEDown: an established IKE SA went away.
	EventIKEDown
	// EventChildUp: a Child SA is installed and up.
	EventChildUp
	// EventChildDown: a Child SA that was up is gone.
	EventChildDown
	// EventChildFailed: a Child SA could not be created or died.
	EventChildFailed
	// EventFamilyDone: an IKE family ended (the family's actor stopped).
	EventFamilyDone
)

func (k EventKind) String() string {
	switch k {
	case EventIKEUp:
		return "ike-up"
	case EventIKEDown:
		return "ike-down"
	case EventChildUp:
		return "child-up"
	case EventChildDown:
		return "child-down"
	case EventChildFailed:
		return "child-failed"
	case EventFamilyDone:
		return "family-done"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is one SA up/down notification (cygnetctl watch).
type Event struct {
	Kind   EventKind
	Family kernel.FamilyID
	Conn   string
	// IKE is set for IKE events; Child for child events (Child.Name for ChildFailed).
	IKE   ike.IKEInfo
	Child ike.ChildInfo
	// Reason: why it went. For EventFamilyDone the actor's stop reason (normal, killed,
	// shutdown…), or the core's reason when the family ended on a failure
	// (AUTHENTICATION_FAILED, NO_PROPOSAL_CHOSEN, a timeout…).
	Reason string
}

func (e Event) String() string {
	switch e.Kind {
	case EventIKEUp, EventIKEDown:
		return fmt.Sprintf("%s family %d %v %s", e.Kind, e.Family, e.IKE, e.Reason)
	case EventChildUp, EventChildDown, EventChildFailed:
		return fmt.Sprintf("%s family %d %s %v %s", e.Kind, e.Family, e.Conn, e.Child, e.Reason)
	}
	return fmt.Sprintf("%s family %d %s", e.Kind, e.Family, e.Reason)
}

// Subscription delivers Events on C until Close. A subscriber that does not keep up
// loses events (Lost counts them): publishers never block.
type Subscription struct {
	C    <-chan Event
	c    chan Event
	hub  *eventHub
	lost atomic.Uint64
}

// Lost returns how many events this subscriber missed.
func (s *Subscription) Lost() uint64 { return s.lost.Load() }

// Close ends the subscription and closes C.
func (s *Subscription) Close() { s.hub.remove(s) }

type eventHub struct {
	mu     sync.RWMutex
	subs   map[*Subscription]struct{}
	closed bool
	any    atomic.Bool // fast path: no subscriber, no work
}

func newEventHub() *eventHub { return &eventHub{subs: map[*Subscription]struct{}{}} }

func (h *eventHub) subscribe(capacity int) *Subscription {
	c := make(chan Event, max(capacity, 1))
	s := &Subscription{C: c, c: c, hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(c)
		return s
	}
	h.subs[s] = struct{}{}
	h.any.Store(true)
	return s
}

func (h *eventHub) publish(ev Event) {
	if !h.any.Load() {
		return
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		select {
		case s.c <- ev:
		default:
			s.lost.Add(1)
		}
	}
}

func (h *eventHub) remove(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.c)
	}
	h.any.Store(len(h.subs) > 0)
}

func (h *eventHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		close(s.c)
	}
	h.any.Store(false)
}
