package main

import (
	"sync"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// childKey names a Child SA inside the actor tree: its family and the family's own
// reference for it (ike.ChildRef, never reused within a family).
type childKey struct {
	family kernel.FamilyID
	ref    ike.ChildRef
}

// childIDs hands out the Child SA unique IDs the control API shows (list-sas "#n",
// cygnetctl --child-id): small numbers counting up from 1 across the daemon, as
// strongSwan's unique IDs do, that fit in 32 bits. An ID is given the first time a Child
// SA is listed or reported, and forgotten by prune once the Child SA has been absent
// from two listings in a row, so the table holds about the live Child SAs.
type childIDs struct {
	mu    sync.Mutex
	next  uint64
	epoch uint64
	byKey map[childKey]*childEntry
	byID  map[uint64]childKey
}

type childEntry struct {
	id   uint64
	seen uint64 // the epoch it was last seen in
}

func newChildIDs() *childIDs {
	return &childIDs{byKey: map[childKey]*childEntry{}, byID: map[uint64]childKey{}}
}

// id returns the unique ID of Child SA ref of family f, giving it one if it has none.
func (t *childIDs) id(f kernel.FamilyID, ref ike.ChildRef) uint64 {
	if ref == 0 {
		return 0
	}
	k := childKey{f, ref}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.byKey[k]
	if e == nil {
		t.next++
		if t.next > 0xffffffff { // after 4 billion Child SAs: start again (old IDs are long gone)
			t.next = 1
		}
		for t.byID[t.next] != (childKey{}) {
			t.next++
		}
		e = &childEntry{id: t.next}
		t.byKey[k] = e
		t.byID[e.id] = k
	}
	e.seen = t.epoch
	return e.id
}

// lookup returns the Child SA that has unique ID id.
func (t *childIDs) lookup(id uint64) (childKey, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k, ok := t.byID[id]
	return k, ok
}

// prune ends an epoch; call it after passing every live Child SA to id (a full
// listing). It forgets the Child SAs seen neither in this epoch nor in the previous one.
func (t *childIDs) prune() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, e := range t.byKey {
		if e.seen+1 < t.epoch {
			delete(t.byKey, k)
			delete(t.byID, e.id)
		}
	}
	t.epoch++
}

// len returns how many IDs are held.
func (t *childIDs) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byKey)
}
