package ike

import (
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
)

// All of a family's timers live here. Timers are data: each is a deadline field set by
// the event named below; after every Step the family arms ONE timer (ArmTimer) for the
// earliest of them, and TimerFired runs every deadline that has passed.
//
//	retransmitRequest  ike.active.nextAt      armed by sending a request (§2.1): resend the
//	                                          cached bytes, or give up after Tries
//	initGraceExpired   ike.init.graceUntil    armed by an unprotected error notify in answer
//	                                          to IKE_SA_INIT (§2.21.1): give up with it
//	halfOpenExpired    ike.halfOpenUntil      armed by answering IKE_SA_INIT as responder:
//	                                          no IKE_AUTH came, forget the half-open SA
//	livenessDue        ike.lastHeard+DPDDelay armed by every authenticated message: send an
//	                                          empty INFORMATIONAL (§2.4)
//	ikeRekeyDue        ike.rekeyAt            armed by establishing the IKE SA (jittered)
//	ikeRekeyRetry      ike.rekeyRetryAt       armed by a failed or lost IKE rekey (at most
//	                                          a quarter of the time left to expiry)
//	ikeExpired         ike.expireAt           armed by establishing: over time ran out;
//	                                          held (ikeExpiryHeld) while its successor
//	                                          is all but made (successorPending)
//	oldIKEDeleteDue    old.deleteBy           armed by a rekey that replaced an IKE SA: the
//	                                          peer did not delete it, do it ourselves
//	childRekeyDue      child.rekeyAt          armed by installing a Child SA (jittered)
//	childRekeyRetry    child.retryAt          armed by a failed Child SA rekey
//	childExpired       child.expireAt         armed by installing: hard lifetime
//	fragmentsExpired   reassembly.deadline    armed by the first fragment of a message
//	queuedTaskDue      task.notBefore         armed by queueing a delayed retry

// nextDeadline returns the earliest pending deadline (zero if none).
func (f *Family) nextDeadline() time.Time {
	var at time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	for _, ike := range f.allIKE() {
		if ike.active != nil {
			consider(ike.active.nextAt)
		}
		if ike.init != nil {
			consider(ike.init.graceUntil)
		}
		consider(ike.halfOpenUntil)
		consider(ike.deleteBy)
		if ike.reqFrags != nil {
			consider(ike.reqFrags.deadline)
		}
		if ike.respFrags != nil {
			consider(ike.respFrags.deadline)
		}
	}
	if ike := f.ike; ike != nil && ike.established() {
		consider(f.livenessAt(ike))
		if ike.state == IKEStateEstablished && !ike.rekeying {
			consider(ike.rekeyAt)
			consider(ike.rekeyRetryAt)
		}
		consider(ike.expireAt)
	}
	for _, c := range f.children {
		if c.state == ChildStateUp {
			consider(c.rekeyAt)
			consider(c.retryAt)
		}
		consider(c.expireAt)
	}
	for _, t := range f.queue {
		if t.notBefore.After(f.now) {
			consider(t.notBefore)
		}
	}
	return at
}

// livenessAt is when a liveness check of ike is due (zero when disabled or pending).
func (f *Family) livenessAt(ike *ikeSA) time.Time {
	if f.cfg.DPDDelay <= 0 || ike.state != IKEStateEstablished || f.queued(taskLiveness, 0) {
		return time.Time{}
	}
	return ike.lastHeard.Add(f.cfg.DPDDelay)
}

func (f *Family) due(t time.Time) bool { return !t.IsZero() && !t.After(f.now) }

// onTimer runs every deadline that has passed.
func (f *Family) onTimer() {
	for _, ike := range f.allIKE() {
		if f.done {
			return
		}
		if ike.active != nil && f.due(ike.active.nextAt) {
			f.retransmit(ike) // retransmitRequest
		}
		if f.done {
			return
		}
		if ike.init != nil && f.due(ike.init.graceUntil) {
			f.initGraceExpired(ike)
			continue
		}
		if f.due(ike.halfOpenUntil) {
			ike.halfOpenUntil = time.Time{}
			f.die(telemetry.ReasonTimeout, errHalfOpen) // halfOpenExpired
			return
		}
		if f.due(ike.deleteBy) && ike != f.ike {
			ike.deleteBy = time.Time{}
			f.oldIKEDeleteDue(ike)
		}
		if ike.reqFrags != nil && f.due(ike.reqFrags.deadline) {
			ike.reqFrags = nil // fragmentsExpired
			f.drop(telemetry.DropUnexpected, "incomplete fragmented request expired")
		}
		if ike.respFrags != nil && f.due(ike.respFrags.deadline) {
			ike.respFrags = nil
			f.drop(telemetry.DropUnexpected, "incomplete fragmented response expired")
		}
	}
	if ike := f.ike; ike != nil && ike.established() && !f.done {
		if f.due(f.livenessAt(ike)) {
			f.enqueue(task{kind: taskLiveness}) // livenessDue
		}
		if ike.state == IKEStateEstablished && !ike.rekeying {
			if f.due(ike.rekeyAt) {
				ike.rekeyAt = time.Time{}
				f.queueRekeyIKE() // ikeRekeyDue
			}
			if f.due(ike.rekeyRetryAt) {
				ike.rekeyRetryAt = time.Time{}
				f.queueRekeyIKE() // ikeRekeyRetry
			}
		}
		if f.due(ike.expireAt) {
			ike.expireAt = time.Time{}
			if f.successorPending(ike) {
				// ikeExpiryHeld: its successor is all but made.
				ike.expiryHeld = true
			} else if f.ikeExpired(ike); f.done {
				return
			}
		}
	}
	for _, c := range append([]*childSA(nil), f.children...) {
		if f.done {
			return
		}
		if c.state == ChildStateUp {
			if f.due(c.rekeyAt) {
				c.rekeyAt = time.Time{}
				f.queueRekeyChild(c) // childRekeyDue
			}
			if f.due(c.retryAt) {
				c.retryAt = time.Time{}
				f.queueRekeyChild(c) // childRekeyRetry
			}
		}
		if f.due(c.expireAt) {
			c.expireAt = time.Time{}
			f.childHardExpired(c) // childExpired
		}
	}
	// queuedTaskDue: runQueue (after every Step) starts tasks whose time has come.
}
