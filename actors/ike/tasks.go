package ike

import (
	"slices"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
)

// A task is a local request waiting for the current IKE SA's window (RFC 7296 §2.3:
// we use window size 1, so one of our requests is outstanding at a time). Tasks run in
// order; a task whose object is gone when its turn comes does nothing.
type task struct {
	kind      taskKind
	name      string   // taskCreateChild: the child definition
	ref       ChildRef // taskRekeyChild, taskDeleteChild
	reason    string   // taskDeleteChild: why (for ChildDown)
	notBefore time.Time
}

type taskKind uint8

const (
	taskCreateChild taskKind = iota + 1
	taskRekeyChild
	taskDeleteChild
	taskRekeyIKE
	taskDeleteIKE
	taskLiveness
)

func (f *Family) enqueue(t task) {
	for _, q := range f.queue {
		if q.kind == t.kind && q.ref == t.ref && q.name == t.name {
			return
		}
	}
	f.queue = append(f.queue, t)
}

func (f *Family) queued(kind taskKind, ref ChildRef) bool {
	for _, q := range f.queue {
		if q.kind == kind && q.ref == ref {
			return true
		}
	}
	return false
}

// runQueue starts queued tasks while the current IKE SA's window is free.
func (f *Family) runQueue() {
	for !f.done {
		ike := f.ike
		if ike == nil || !ike.established() || ike.active != nil || ike.state != IKEStateEstablished {
			return
		}
		i := f.nextTask(ike)
		if i < 0 {
			return
		}
		t := f.queue[i]
		f.queue = slices.Delete(f.queue, i, i+1)
		if len(f.queue) == 0 {
			f.queue = nil // an idle family keeps no array
		}
		f.startTask(ike, t)
	}
}

// nextTask is the index of the queued task to start next on ike, or -1. An IKE SA
// rekey goes first, and no Child SA is created or rekeyed while an IKE SA rekey is
// under way or expected back: while we answer the peer's (answering: ike is about to
// be replaced, §2.25.2), for a while after we answered it TEMPORARY_FAILURE
// (peerRekeyHold), and while ours waits to retry after TEMPORARY_FAILURE (retryFirst:
// the peer's Child SA exchange should be done by then, ours must not be under way).
// With slow key exchanges, an IKE SA whose rekeys keep meeting Child SA exchanges on
// either end, each answered TEMPORARY_FAILURE, would otherwise outlive its over time.
// Held tasks wait in the queue; deletes and liveness checks are never held.
func (f *Family) nextTask(ike *ikeSA) int {
	ready := func(t task) bool { return !t.notBefore.After(f.now) }
	if i := slices.IndexFunc(f.queue, func(t task) bool { return t.kind == taskRekeyIKE && ready(t) }); i >= 0 && !ike.answering {
		return i
	}
	hold := ike.peerRekeyHold.After(f.now) || ike.answering || ike.retryFirst
	return slices.IndexFunc(f.queue, func(t task) bool {
		switch t.kind {
		case taskRekeyIKE:
			// Not while we answer the peer's rekey of ike: that one is about to
			// succeed (promote drops this task), ours would only collide with it.
			return false
		case taskCreateChild, taskRekeyChild:
			return ready(t) && !hold
		}
		return ready(t)
	})
}

func (f *Family) startTask(ike *ikeSA, t task) {
	switch t.kind {
	case taskCreateChild:
		f.startCreateChild(ike, t.name)
	case taskRekeyChild:
		if c := f.child(t.ref); c != nil && c.state == ChildStateUp {
			f.startRekeyChild(ike, c)
		}
	case taskDeleteChild:
		if c := f.child(t.ref); c != nil && c.state != ChildStateDeleting {
			f.startDeleteChild(ike, c, t.reason)
		}
	case taskRekeyIKE:
		f.startRekeyIKE(ike)
	case taskDeleteIKE:
		f.startDeleteIKE(ike)
	case taskLiveness:
		f.startLiveness(ike)
	}
}

// Commands.

func (f *Family) onInitiate(childName string) {
	if f.candidates != nil {
		// A responder family initiates nothing before it is established; afterwards
		// InitiateChild works in both roles.
		if f.ike == nil || !f.ike.established() || childName == "" {
			return
		}
	}
	if childName != "" {
		if _, ok := f.cfg.Child(childName); !ok {
			f.log(LevelWarn, "initiate: no such child", "child", childName)
			return
		}
		f.enqueue(task{kind: taskCreateChild, name: childName})
	} else {
		for _, ch := range f.cfg.Children {
			if ch.StartAction == ActionStart && !f.hasChild(ch.Name) {
				f.enqueue(task{kind: taskCreateChild, name: ch.Name})
			}
		}
	}
	if f.ike == nil && !f.initiated {
		f.initiated = true
		f.startInit()
	}
}

// onAcquire handles a kernel acquire of a trap policy: create the Child SA unless one
// of that definition exists or is on its way.
func (f *Family) onAcquire(name string) {
	if !f.hasChild(name) {
		f.onInitiate(name)
	}
}

// hasChild reports whether a Child SA of definition name exists or is on its way.
func (f *Family) hasChild(name string) bool {
	for _, c := range f.children {
		if c.cfg.Name == name && c.state != ChildStateDeleting && c.state != ChildStateGone {
			return true
		}
	}
	for _, t := range f.queue {
		if t.kind == taskCreateChild && t.name == name {
			return true
		}
	}
	return f.ike != nil && f.ike.init != nil && f.ike.init.firstChild == name
}

func (f *Family) queueRekeyChild(c *childSA) {
	if c.state != ChildStateUp || f.queued(taskRekeyChild, c.ref) {
		return
	}
	f.enqueue(task{kind: taskRekeyChild, ref: c.ref})
}

func (f *Family) queueRekeyIKE() {
	if f.ike == nil || !f.ike.established() || f.ike.rekeying || f.queued(taskRekeyIKE, 0) {
		return
	}
	f.enqueue(task{kind: taskRekeyIKE})
}

func (f *Family) queueDeleteChild(c *childSA, reason string) {
	if c.state == ChildStateDeleting || f.queued(taskDeleteChild, c.ref) {
		return
	}
	f.enqueue(task{kind: taskDeleteChild, ref: c.ref, reason: reason})
}

// onTerminate deletes the IKE SA (and so every Child SA) with the peer, then ends.
func (f *Family) onTerminate() {
	ike := f.ike
	if ike == nil || !ike.established() {
		f.die(telemetry.ReasonTerminated, nil)
		return
	}
	f.queue = []task{{kind: taskDeleteIKE}}
}
