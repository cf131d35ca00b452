package charon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/strongswan/govici/vici"
)

// eventNames are the vici events every Charon records.
var eventNames = []string{"ike-updown", "child-updown", "ike-rekey", "child-rekey"}

// EventKind says what happened.
type EventKind int

const (
	EventUnknown EventKind = iota
	IKEUp
	IKEDown
	ChildUp
	ChildDown
	IKERekey
	ChildRekey
)

func (k EventKind) String() string {
	switch k {
	case IKEUp:
		return "ike-up"
	case IKEDown:
		return "ike-down"
	case ChildUp:
		return "child-up"
	case ChildDown:
		return "child-down"
	case IKERekey:
		return "ike-rekey"
	case ChildRekey:
		return "child-rekey"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one recorded vici event.
type Event struct {
	Kind EventKind
	Time time.Time
	// IKE is the IKE SA concerned; for IKERekey it is the new IKE SA and OldIKE the
	// rekeyed one.
	IKE    IKESA
	OldIKE *IKESA
	// Child is the Child SA concerned (ChildUp, ChildDown; the new one for
	// ChildRekey, with OldChild the rekeyed one).
	Child    *ChildSA
	OldChild *ChildSA
	// Err is set if the event could not be parsed.
	Err error
}

func (e Event) String() string {
	s := fmt.Sprintf("%s %s", e.Kind, e.IKE.Conn)
	if e.Child != nil {
		s += " " + e.Child.String()
	}
	if e.Err != nil {
		s += " (parse error: " + e.Err.Error() + ")"
	}
	return s
}

// parseEvent turns a vici event into an Event. The message has one section named
// after the IKE SA's connection (plus "up" for the up/down events).
func parseEvent(ev vici.Event) Event {
	e := Event{Time: ev.Timestamp}
	up := str(ev.Message, "up") == "yes"
	var conn string
	var body *vici.Message
	for _, k := range ev.Message.Keys() {
		if m := sub(ev.Message, k); m != nil {
			conn, body = k, m
			break
		}
	}
	if body == nil {
		e.Err = fmt.Errorf("%s: no IKE SA section", ev.Name)
		return e
	}
	switch ev.Name {
	case "ike-updown":
		e.Kind = IKEDown
		if up {
			e.Kind = IKEUp
		}
		e.IKE, e.Err = parseIKESA(conn, body)
	case "child-updown":
		e.Kind = ChildDown
		if up {
			e.Kind = ChildUp
		}
		e.IKE, e.Err = parseIKESA(conn, body)
		if len(e.IKE.Children) > 0 {
			c := e.IKE.Children[0]
			e.Child = &c
		}
	case "ike-rekey":
		e.Kind = IKERekey
		if old := sub(body, "old"); old != nil {
			o, err := parseIKESA(conn, old)
			e.OldIKE, e.Err = &o, err
		}
		if nw := sub(body, "new"); nw != nil && e.Err == nil {
			e.IKE, e.Err = parseIKESA(conn, nw)
		}
	case "child-rekey":
		e.Kind = ChildRekey
		// The child-sas section holds one entry with old and new sections instead of
		// the child's fields.
		children := sub(body, "child-sas")
		body.Unset("child-sas")
		e.IKE, e.Err = parseIKESA(conn, body)
		if children != nil && e.Err == nil {
			for _, k := range children.Keys() {
				cm := sub(children, k)
				if cm == nil {
					continue
				}
				if old := sub(cm, "old"); old != nil {
					o, err := parseChildSA(old)
					e.OldChild, e.Err = &o, err
				}
				if nw := sub(cm, "new"); nw != nil && e.Err == nil {
					n, err := parseChildSA(nw)
					e.Child, e.Err = &n, err
				}
			}
		}
	default:
		e.Err = fmt.Errorf("unexpected event %s", ev.Name)
	}
	return e
}

// EventLog is the ordered record of a charon's events. It only grows.
type EventLog struct {
	mu      sync.Mutex
	events  []Event
	changed chan struct{} // closed and replaced on every add
}

func newEventLog() *EventLog { return &EventLog{changed: make(chan struct{})} }

func (l *EventLog) add(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// Len is the number of events so far: a mark for WaitFrom.
func (l *EventLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// All returns a copy of every event so far.
func (l *EventLog) All() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// WaitFrom returns the first event at index >= from that matches, waiting for one
// until ctx ends. It also returns that event's index.
func (l *EventLog) WaitFrom(ctx context.Context, from int, match func(Event) bool) (Event, int, error) {
	for {
		l.mu.Lock()
		for i := from; i < len(l.events); i++ {
			if match(l.events[i]) {
				e := l.events[i]
				l.mu.Unlock()
				return e, i, nil
			}
		}
		from = max(from, len(l.events))
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return Event{}, -1, fmt.Errorf("waiting for event: %w", ctx.Err())
		}
	}
}

// Events is this charon's event record.
func (c *Charon) Events() *EventLog { return c.events }

// OfKind matches events of the kind for connection conn (any connection if
// empty).
func OfKind(k EventKind, conn string) func(Event) bool {
	return func(e Event) bool { return e.Kind == k && (conn == "" || e.IKE.Conn == conn) }
}
