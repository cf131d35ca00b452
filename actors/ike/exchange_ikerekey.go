package ike

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/ikecrypto"
	"github.com/cygnet-ipsec/cygnet/wire/proposal"
)

// IKE SA rekey with CREATE_CHILD_SA (RFC 7296 §1.3.2, §2.18):
//
//	HDR, SK {SA, Ni, KEi}  -->
//	                      <--  HDR, SK {SA, Nr, KEr}
//
// The SA payloads carry the new IKE SA's SPIs (8 octets): the requester's becomes SPIi,
// the responder's SPIr; the requester is the initiator of the new IKE SA. Every Child
// SA moves to the new IKE SA (they belong to the family) and the requester deletes the
// old one with an INFORMATIONAL exchange on it. The new SA has new SPIs, so the family
// emits RouteSPI for it and UnrouteSPI once the old one is gone.
//
// Simultaneous rekeys (§2.8.2): each end answers the other's request; the new IKE SA
// created with the lowest of the four nonces is deleted by its initiator, and the
// initiator of the surviving one deletes the old IKE SA. When the winner's DELETE of
// the old IKE SA reaches the loser before the winner's answer to the loser's request,
// the loser takes the winner's IKE SA, answers, and forgets its own request (§2.25.2):
// it never makes its redundant IKE SA. The winner, which made that SA by answering,
// deletes it itself after oldIKELinger. When that DELETE comes after the winner's
// answer but before the loser's keys for its own new IKE SA are computed, the loser
// takes the winner's IKE SA at the DELETE and, once its keys are done, deletes its own
// new IKE SA at once (the winner made it by answering). A redundant IKE SA we made by
// answering is deleted with one DELETE that is not retransmitted (the other end may
// not have it); one we initiated is deleted like any IKE SA, retransmitted: the peer
// answered it, so it has it, and charon drops a DELETE that arrives while it still
// files the SA (seen in interop: one lost DELETE left charon's copy for good).

// oldIKELinger is how long a rekeyed-away IKE SA waits for the peer's DELETE before we
// delete it ourselves (oldIKEDeleteDue).
const oldIKELinger = 30 * time.Second

// peerRekeyHoldTime is how long we start no new Child SA exchange after answering the
// peer's IKE SA rekey TEMPORARY_FAILURE: its retry comes within retryInterval, plus
// the time its key exchange takes.
const peerRekeyHoldTime = 2 * retryInterval

// ikeRekeyRetryDelay is the wait before retrying a failed rekey of ike: the usual
// retryDelay (§2.25: not at once), but no more than a quarter of the time left before
// ike's over time ends, minus a random eighth (so that the two ends, both short of
// time, do not retry in step), so that a rekey that met TEMPORARY_FAILURE gets
// several more tries before the IKE SA expires.
func (f *Family) ikeRekeyRetryDelay(ike *ikeSA) time.Duration {
	d := f.retryDelay()
	if !ike.expireAt.IsZero() {
		if left := ike.expireAt.Sub(f.now); left/4 < d {
			d = max(left/4-f.jitter(left/8), minIKERekeyRetry)
		}
	}
	return d
}

// minIKERekeyRetry: even close to expiry, a rekey is not retried at once (§2.25).
const minIKERekeyRetry = time.Second

// startRekeyIKE sends our rekey request for ike.
func (f *Family) startRekeyIKE(ike *ikeSA) {
	spi := f.newSPI()
	ni := f.randBytes(nonceLen)
	group := ike.suite.KE
	if g, ok := f.keGroup[""]; ok {
		group = g
	}
	offered := make([]wire.Proposal, len(f.cfg.Proposals))
	for i, p := range f.cfg.Proposals {
		p.SPI = binary.BigEndian.AppendUint64(nil, uint64(spi))
		p.Num = uint8(i + 1)
		offered[i] = p
	}
	// The current group first if configured, so that no INVALID_KE round trip is needed.
	if !slices.Contains(proposal.KEGroups(offered), group) {
		group = proposal.KEGroups(offered)[0]
	}
	g, err := ikecrypto.Group(group)
	if err != nil {
		ike.rekeyRetryAt = f.now.Add(f.ikeRekeyRetryDelay(ike))
		return
	}
	ike.rekeying = true
	ike.retryFirst = false
	ike.state = IKEStateRekeying
	seed := f.randBytes(32)
	hold := holdWindow(ike, wire.ExchangeCreateChildSA)
	f.runWork(func() any {
		priv, err := g.Generate(keRand(seed))
		return keResult{priv: priv, err: err}
	}, func(res any) {
		if ike.active == hold {
			ike.active = nil
		}
		r, _ := res.(keResult)
		if r.err != nil || ike.state == IKEStateDead {
			f.ikeRekeyFailed(ike, "key exchange")
			return
		}
		m := &message{exchange: wire.ExchangeCreateChildSA}
		m.addSA(offered)
		m.addNonce(ni)
		m.addKE(group, r.priv.Public())
		f.sendRequest(ike, m, func(resp *message) {
			f.onRekeyIKEResponse(ike, resp, offered, spi, ni, group, r.priv)
		}, nil)
	})
}

// ikeRekeyFailed: the old IKE SA keeps running; retry later (DESIGN.md failure table).
// If the peer's own rekey of it succeeded meanwhile, that one stands.
func (f *Family) ikeRekeyFailed(ike *ikeSA, reason string) {
	ike.rekeying = false
	if ike.state == IKEStateRekeying {
		ike.state = IKEStateEstablished
	}
	if p := ike.passive; p != nil {
		ike.passive = nil
		f.promote(p.sa, ike, false)
		return
	}
	if ike.state == IKEStateEstablished {
		ike.rekeyRetryAt = f.now.Add(f.ikeRekeyRetryDelay(ike))
	}
	f.log(LevelInfo, "IKE SA rekey failed, keeping the old IKE SA", "reason", reason)
}

func (f *Family) onRekeyIKEResponse(ike *ikeSA, m *message, offered []wire.Proposal, spiI SPI, ni []byte,
	group wire.TransformID, priv ikecrypto.Private) {
	if n := m.errorNotify(); n != nil {
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeCreateChildSA, Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeRejected})
		if n.typ == wire.NotifyInvalidKEPayload && len(n.data) == 2 &&
			f.preferGroup("", wire.TransformID(binary.BigEndian.Uint16(n.data)), offered) && ike.passive == nil {
			// Retry at once with the group the peer asked for.
			ike.rekeying = false
			ike.state = IKEStateEstablished
			f.enqueue(task{kind: taskRekeyIKE})
			return
		}
		// §2.25: the peer is busy with a Child SA exchange; ours wait until the retry
		// (nextTask), so that it finds our window free.
		ike.retryFirst = n.typ == wire.NotifyTemporaryFailure
		f.ikeRekeyFailed(ike, n.typ.String())
		return
	}
	sa, nr, ke := m.sa(), m.nonce(), m.ke()
	if sa == nil || nr == nil || ke == nil || ke.group != group {
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeCreateChildSA, Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeRejected})
		f.ikeRekeyFailed(ike, "malformed answer")
		return
	}
	chosen, err := proposal.CheckChosen(offered, sa, proposal.Options{})
	var suite ikecrypto.IKESuite
	if err == nil {
		suite, err = ikecrypto.IKESuiteFromProposal(chosen)
	}
	if err != nil || len(chosen.SPI) != 8 || suite.KE != group {
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeCreateChildSA, Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeRejected})
		f.ikeRekeyFailed(ike, "unacceptable proposal")
		return
	}
	spiR := SPI(binary.BigEndian.Uint64(chosen.SPI))
	nr, peer := clone(nr), clone(ke.data)
	oldPRF, oldD := ike.suite.PRF, ike.skD
	hold := holdWindow(ike, wire.ExchangeCreateChildSA)
	ike.concluding = true
	f.runWork(func() any {
		shared, err := priv.SharedSecret(peer)
		if err != nil {
			return keResult{err: err}
		}
		keys, err := ikecrypto.DeriveRekeyedIKEKeys(suite, oldPRF, oldD, ni, nr, uint64(spiI), uint64(spiR), shared)
		return keResult{keys: keys, err: err}
	}, func(res any) {
		ike.concluding = false
		if ike.active == hold {
			ike.active = nil
		}
		r, _ := res.(keResult)
		if r.err != nil {
			f.emit(ExchangeDone{Exchange: telemetry.ExchangeCreateChildSA, Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeRejected})
			f.ikeRekeyFailed(ike, r.err.Error())
			return
		}
		n := f.newRekeyedIKE(ike, suite, spiI, spiR, true, ni, nr)
		if err := f.setKeys(n, r.keys); err != nil {
			f.ikeRekeyFailed(ike, err.Error())
			return
		}
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeCreateChildSA, Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeOK})
		ike.rekeying = false
		n.routed = true
		f.emit(RouteSPI{SPI: n.localSPI()})
		if f.ike != ike {
			// While the keys were computed, the peer's DELETE of ike told us that its
			// simultaneous rekey won (§2.8.2, §2.25.2) and we took its IKE SA. The
			// peer made n by answering us and waits for our DELETE of it: n is
			// redundant and we are its initiator.
			f.log(LevelInfo, "IKE SA rekey collision lost while our keys were computed, deleting our redundant IKE SA")
			f.old = append(f.old, n)
			n.state = IKEStateRekeyed
			n.redundant = true
			f.deleteOldIKE(n)
			return
		}
		if p := ike.passive; p != nil {
			ike.passive = nil
			if bytes.Compare(lowerNonce(ni, nr), lowerNonce(p.ni, p.nr)) < 0 {
				// We lost (§2.8.2): the peer's new IKE SA survives and the peer deletes
				// the old one; we delete ours.
				f.log(LevelInfo, "IKE SA rekey collision lost, deleting our redundant IKE SA")
				f.promote(p.sa, ike, false)
				f.old = append(f.old, n)
				n.state = IKEStateRekeyed
				n.redundant = true
				f.deleteOldIKE(n)
				return
			}
			f.log(LevelInfo, "IKE SA rekey collision won")
			// The peer deletes its redundant SA; we delete the old one.
			p.sa.state = IKEStateRekeyed
			p.sa.redundant = true
			p.sa.deleteBy = f.now.Add(oldIKELinger)
		} else if ike.answering {
			// The peer rekeys ike too and our answer is still being computed: decide
			// when it is (§2.8.2), not now. Deleting ike now would tell the peer it
			// lost (§2.25.2) before the nonces say so.
			n.state = IKEStateConnecting
			f.old = append(f.old, n)
			ike.concluded = &rekeyedIKE{sa: n, ni: ni, nr: nr}
			return
		}
		f.promote(n, ike, true)
	})
}

// newRekeyedIKE makes the IKE SA created by a rekey of old.
func (f *Family) newRekeyedIKE(old *ikeSA, suite ikecrypto.IKESuite, spiI, spiR SPI, initiator bool, ni, nr []byte) *ikeSA {
	prf, _ := ikecrypto.LookupPRF(suite.PRF)
	return &ikeSA{
		spiI: spiI, spiR: spiR, initiator: initiator, state: IKEStateEstablished,
		suite: suite, prf: prf, ni: ni, nr: nr,
		local: old.local, remote: old.remote, natLocal: old.natLocal, natPeer: old.natPeer,
		peerFrag: old.peerFrag, peerChildless: old.peerChildless, peerID: old.peerID,
		lastHeard: f.now,
	}
}

// promote makes n the family's current IKE SA in place of old. With deleteOld we delete
// old (we started the winning rekey); otherwise we wait for the peer to (oldIKELinger).
func (f *Family) promote(n, old *ikeSA, deleteOld bool) {
	f.old = slices.DeleteFunc(f.old, func(o *ikeSA) bool { return o == n })
	if f.ike == old {
		f.ike = n
		if !slices.Contains(f.old, old) {
			f.old = append(f.old, old)
		}
	}
	n.state = IKEStateEstablished
	n.establishedAt = f.now
	n.lastHeard = f.now
	f.scheduleIKELifetime(n)
	old.state = IKEStateRekeyed
	old.rekeying = false
	old.rekeyAt, old.rekeyRetryAt, old.expireAt = time.Time{}, time.Time{}, time.Time{}
	old.expiryHeld = false
	// A rekey of old still queued would rekey n, which has just begun its lifetime.
	f.queue = slices.DeleteFunc(f.queue, func(t task) bool { return t.kind == taskRekeyIKE })
	f.closeIKE(old, telemetry.ReasonRekeyed)
	old.state = IKEStateRekeyed
	n.announced = true
	f.emit(Established{IKE: f.ikeInfo(n), Rekeyed: true, Old: [2]SPI{old.spiI, old.spiR}})
	f.log(LevelInfo, "IKE SA rekeyed", "spi_i", n.spiI.String(), "spi_r", n.spiR.String())
	if deleteOld {
		f.deleteOldIKE(old)
	} else {
		old.deleteBy = f.now.Add(oldIKELinger)
	}
}

// deleteOldIKE deletes an IKE SA that is no longer the current one.
func (f *Family) deleteOldIKE(old *ikeSA) {
	old.deleteBy = time.Time{}
	if old.active != nil || old.sealer == nil {
		if old.sealer != nil {
			f.sendDeleteIKEOnce(old)
		}
		f.forgetIKE(old, telemetry.ReasonRekeyed)
		return
	}
	old.state = IKEStateDeleting
	m := &message{exchange: wire.ExchangeInformational}
	m.add(payload{typ: wire.PayloadDelete, del: &deletePayload{proto: wire.ProtoIKE}})
	done := func() { f.forgetIKE(old, telemetry.ReasonRekeyed) }
	f.sendRequest(old, m, func(*message) {
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeInformational, Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeOK})
		done()
	}, done)
	if r := old.active; r != nil && old.redundant && !old.initiator {
		// We made it by answering the peer, which may never have had it.
		r.once = true
	}
}

// oldIKEDeleteDue: the peer did not delete an IKE SA it replaced; we do.
func (f *Family) oldIKEDeleteDue(old *ikeSA) { f.deleteOldIKE(old) }

// onRekeyIKERequest answers the peer's rekey of ike.
func (f *Family) onRekeyIKERequest(ike *ikeSA, m *message) {
	reject := func(t wire.NotifyType, data []byte) {
		resp := &message{}
		resp.addNotify(t, data)
		f.respond(ike, m, resp)
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeCreateChildSA, Role: telemetry.RoleResponder, Outcome: telemetry.OutcomeRejected})
	}
	// §2.25.2: not while we create, rekey or delete a Child SA on it, nor when it is
	// no longer the current IKE SA. Our own rekey of it is a collision, handled below.
	if ike != f.ike || ike.state == IKEStateDeleting || ike.state == IKEStateRekeyed || ike.passive != nil {
		reject(wire.NotifyTemporaryFailure, nil)
		return
	}
	busy := ike.active != nil && !ike.rekeying
	for _, c := range f.children {
		busy = busy || c.state == ChildStateCreating || c.state == ChildStateInstalling
	}
	if busy {
		// The peer retries after a while (§2.25): start no new Child SA exchange
		// until then, or a busy family could answer every retry alike (nextTask).
		ike.peerRekeyHold = f.now.Add(peerRekeyHoldTime)
		reject(wire.NotifyTemporaryFailure, nil)
		return
	}
	ike.peerRekeyHold = time.Time{}
	sa, ni, ke := m.sa(), m.nonce(), m.ke()
	if ni == nil || ke == nil {
		reject(wire.NotifyInvalidSyntax, nil)
		return
	}
	chosen, err := proposal.Select(f.cfg.Proposals, sa, proposal.Options{})
	var suite ikecrypto.IKESuite
	if err == nil {
		suite, err = ikecrypto.IKESuiteFromProposal(chosen)
	}
	if err != nil || len(chosen.SPI) != 8 {
		reject(wire.NotifyNoProposalChosen, nil)
		return
	}
	if ke.group != suite.KE {
		reject(wire.NotifyInvalidKEPayload, binary.BigEndian.AppendUint16(nil, uint16(suite.KE)))
		return
	}
	g, err := ikecrypto.Group(suite.KE)
	if err != nil {
		reject(wire.NotifyNoProposalChosen, nil)
		return
	}
	spiI := SPI(binary.BigEndian.Uint64(chosen.SPI))
	spiR := f.newSPI()
	nr := f.randBytes(nonceLen)
	ni = clone(ni)
	seed, peer := f.randBytes(32), clone(ke.data)
	oldPRF, oldD := ike.suite.PRF, ike.skD
	ike.busy = true
	ike.answering = true
	f.runWork(func() any {
		pub, shared, err := g.Respond(keRand(seed), peer)
		if err != nil {
			return keResult{err: err}
		}
		keys, err := ikecrypto.DeriveRekeyedIKEKeys(suite, oldPRF, oldD, ni, nr, uint64(spiI), uint64(spiR), shared)
		return keResult{public: pub, keys: keys, err: err}
	}, func(res any) {
		ike.busy = false
		ike.answering = false
		r, _ := res.(keResult)
		if r.err != nil {
			reject(wire.NotifyInvalidSyntax, nil)
			f.concludeHeldRekey(ike)
			return
		}
		n := f.newRekeyedIKE(ike, suite, spiI, spiR, false, ni, nr)
		if err := f.setKeys(n, r.keys); err != nil {
			reject(wire.NotifyNoProposalChosen, nil)
			f.concludeHeldRekey(ike)
			return
		}
		n.routed = true
		f.emit(RouteSPI{SPI: n.localSPI()})
		chosen.SPI = binary.BigEndian.AppendUint64(nil, uint64(spiR))
		resp := &message{}
		resp.addSA([]wire.Proposal{chosen})
		resp.addNonce(nr)
		resp.addKE(suite.KE, r.public)
		f.respond(ike, m, resp)
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeCreateChildSA, Role: telemetry.RoleResponder, Outcome: telemetry.OutcomeOK})
		if ike.rekeying {
			// Simultaneous rekey: decide when our own answer comes (§2.8.2).
			ike.passive = &rekeyedIKE{sa: n, ni: ni, nr: nr}
			n.state = IKEStateConnecting
			f.old = append(f.old, n)
			return
		}
		if o := ike.concluded; o != nil {
			ike.concluded = nil
			f.lateIKERekeyCollision(ike, o, n, ni, nr)
			return
		}
		f.promote(n, ike, false)
	})
}

// concludeHeldRekey completes our rekey of ike, held back while we answered the peer's
// rekey of it, when that answer made no IKE SA after all.
func (f *Family) concludeHeldRekey(ike *ikeSA) {
	if o := ike.concluded; o != nil {
		ike.concluded = nil
		f.old = slices.DeleteFunc(f.old, func(x *ikeSA) bool { return x == o.sa })
		if ike.state != IKEStateDead {
			f.promote(o.sa, ike, true)
		}
	}
}

// lateIKERekeyCollision resolves a simultaneous IKE SA rekey (§2.8.2) whose two new IKE
// SAs became known in the other order: ours (from our rekey of old, held back in
// ike.concluded) before theirs (n, from nonces ni, nr, made by answering the peer's
// rekey of old). Both ends decide alike: the new IKE SA with the lowest nonce is
// redundant and deleted by its initiator; the winner deletes old.
func (f *Family) lateIKERekeyCollision(old *ikeSA, ours *rekeyedIKE, n *ikeSA, ni, nr []byte) {
	f.old = slices.DeleteFunc(f.old, func(o *ikeSA) bool { return o == ours.sa })
	if bytes.Compare(lowerNonce(ours.ni, ours.nr), lowerNonce(ni, nr)) < 0 {
		f.log(LevelInfo, "IKE SA rekey collision lost, deleting our redundant IKE SA")
		f.promote(n, old, false)
		f.old = append(f.old, ours.sa)
		ours.sa.state = IKEStateRekeyed
		ours.sa.redundant = true
		f.deleteOldIKE(ours.sa)
		return
	}
	f.log(LevelInfo, "IKE SA rekey collision won")
	n.state = IKEStateRekeyed
	n.redundant = true
	n.deleteBy = f.now.Add(oldIKELinger)
	f.old = append(f.old, n)
	f.promote(ours.sa, old, true)
}

// successorPending reports whether a rekey of ike is about to replace it, so that its
// expiry waits (ikeExpiryHeld in onTimer): the keys of the new IKE SA are being
// computed (our answer to the peer's rekey, or the peer's answer to ours), or we made
// the peer's new IKE SA already and only wait for the answer to our simultaneous
// rekey to decide which survives (§2.8.2). Each ends in bounded time: work always
// finishes, and a request unanswered after all retransmissions ends the family.
func (f *Family) successorPending(ike *ikeSA) bool {
	return ike.answering || ike.concluding || (ike.passive != nil && ike.rekeying)
}

// expireHeld (after every Step) expires the current IKE SA whose over time ended while
// its successor was pending, once it is not any more and no new IKE SA replaced it.
func (f *Family) expireHeld() {
	ike := f.ike
	if f.done || ike == nil || !ike.expiryHeld || f.successorPending(ike) {
		return
	}
	ike.expiryHeld = false
	if ike.state == IKEStateEstablished || ike.state == IKEStateRekeying {
		f.ikeExpired(ike)
	}
}

// ikeExpired: the IKE SA outlived RekeyTime+OverTime without a rekey: it is closed.
func (f *Family) ikeExpired(ike *ikeSA) {
	f.fatal(ike, telemetry.ReasonExpired, fmt.Errorf("IKE SA lifetime exceeded"))
}
