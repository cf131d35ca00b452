package ike

import (
	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/wire"
)

// INFORMATIONAL (RFC 7296 §1.4): deletes and liveness checks.
//
//	HDR, SK {[N,] [D,] [CP,] ...}  -->
//	                          <--  HDR, SK {[N,] [D,] [CP], ...}
//
// Deleting a Child SA sends the SPIs of our inbound SAs; the answer carries the peer's
// for the same Child SAs (§1.4.1). When both ends delete the same Child SA at once
// (crossing deletes), each removes it on the other's request and answers without a
// Delete payload for it. Deleting the IKE SA deletes all its Child SAs (§1.4.1). An
// empty INFORMATIONAL request is a liveness check (§2.4).

// startDeleteChild deletes c with the peer. A Child SA already gone from the kernel
// (died, expired, failed install) only needs the message.
func (f *Family) startDeleteChild(ike *ikeSA, c *childSA, reason string) {
	if c.state != ChildStateGone {
		c.state = ChildStateDeleting
	}
	m := &message{exchange: wire.ExchangeInformational}
	m.add(payload{typ: wire.PayloadDelete, del: &deletePayload{proto: wire.ProtoESP, spis: []uint32{c.spiIn}}})
	f.sendRequest(ike, m, func(*message) {
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeInformational, Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeOK})
		if f.child(c.ref) != nil {
			f.dropChild(c, reason)
		}
	}, nil)
}

// startDeleteIKE deletes the IKE SA (Terminate) and ends the family when answered (or
// when the peer does not answer: it cannot hear us anyway).
func (f *Family) startDeleteIKE(ike *ikeSA) {
	ike.state = IKEStateDeleting
	m := &message{exchange: wire.ExchangeInformational}
	m.add(payload{typ: wire.PayloadDelete, del: &deletePayload{proto: wire.ProtoIKE}})
	f.sendRequest(ike, m, func(*message) {
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeInformational, Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeOK})
		f.die(telemetry.ReasonTerminated, nil)
	}, func() { f.die(telemetry.ReasonTerminated, nil) })
}

// startLiveness sends an empty INFORMATIONAL (§2.4). No answer after all
// retransmissions means the peer is unreachable and the family dies.
func (f *Family) startLiveness(ike *ikeSA) {
	if ike.lastHeard.Add(f.cfg.DPDDelay).After(f.now) {
		return // heard from the peer meanwhile
	}
	f.sendRequest(ike, &message{exchange: wire.ExchangeInformational}, func(*message) {
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeInformational, Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeOK})
	}, nil)
}

// onInformationalRequest answers an INFORMATIONAL request.
func (f *Family) onInformationalRequest(ike *ikeSA, m *message) {
	resp := &message{}
	deleteIKE := false
	var ours []uint32
	for _, d := range m.deletes() {
		switch d.proto {
		case wire.ProtoIKE:
			deleteIKE = true
		case wire.ProtoESP, wire.ProtoAH:
			for _, spi := range d.spis {
				c := f.childByOutboundSPI(spi)
				if c == nil {
					if f.creatingChild() {
						f.peerDeletedSPIs = append(f.peerDeletedSPIs, spi)
						if len(f.peerDeletedSPIs) > 16 {
							f.peerDeletedSPIs = f.peerDeletedSPIs[1:]
						}
					}
					continue
				}
				switch {
				case c.state == ChildStateDeleting:
					// Crossing deletes: remove it now, no Delete payload for it.
					f.dropChild(c, telemetry.ReasonDeleted)
				case c.rekeyActive:
					// Our rekey of it is in flight: remove it but keep the record until
					// the rekey's answer.
					ours = append(ours, c.spiIn)
					c.peerDeleted = true
					f.removeChildState(c, telemetry.ReasonDeleted)
				case c.state == ChildStateGone:
					ours = append(ours, c.spiIn)
					f.dropChild(c, telemetry.ReasonDeleted)
				default:
					ours = append(ours, c.spiIn)
					f.dropChild(c, telemetry.ReasonDeleted)
				}
			}
		}
	}
	if len(ours) > 0 {
		resp.add(payload{typ: wire.PayloadDelete, del: &deletePayload{proto: wire.ProtoESP, spis: ours}})
	}
	f.respond(ike, m, resp)
	f.emit(ExchangeDone{Exchange: telemetry.ExchangeInformational, Role: telemetry.RoleResponder, Outcome: telemetry.OutcomeOK})
	if !deleteIKE {
		return
	}
	if p := ike.passive; ike == f.ike && p != nil {
		// The peer rekeyed this IKE SA (we answered while our own rekey of it was in
		// flight) and now deletes it: its rekey won (§2.8.2); ours is moot.
		ike.passive = nil
		ike.active = nil
		f.promote(p.sa, ike, false)
	}
	if ike != f.ike {
		// An IKE SA replaced by a rekey (or a redundant one from a collision).
		f.forgetIKE(ike, telemetry.ReasonDeleted)
		return
	}
	f.die(telemetry.ReasonDeleted, nil)
}

// creatingChild reports whether one of our CREATE_CHILD_SA requests is outstanding.
func (f *Family) creatingChild() bool {
	for _, c := range f.children {
		if c.state == ChildStateCreating {
			return true
		}
	}
	return false
}
