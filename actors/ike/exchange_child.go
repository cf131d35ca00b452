package ike

import (
	"bytes"
	"slices"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/ikecrypto"
	"github.com/cygnet-ipsec/cygnet/wire/proposal"
)

// CREATE_CHILD_SA for Child SAs (RFC 7296 §1.3.1, §1.3.3):
//
//	new:    HDR, SK {[N(USE_TRANSPORT_MODE)], SA, Ni, [KEi], TSi, TSr}
//	rekey:  HDR, SK {N(REKEY_SA), [N(USE_TRANSPORT_MODE)], SA, Ni, [KEi], TSi, TSr}
//	answer: HDR, SK {[N(USE_TRANSPORT_MODE)], SA, Nr, [KEr], TSi, TSr}
//
// (strongSwan's payload order.) The three outcomes stay apart (DESIGN.md): the exchange
// and the Child SA succeed; the exchange succeeds but the Child SA fails (an error
// notify, a bad answer, a kernel refusal: only that Child SA is affected); the exchange
// fails (no answer after all retransmissions, or a fatal notify: the family ends, see
// onResponsePacket and retransmit).
//
// Rekey collisions (§2.8.1): when both ends rekey the same Child SA, each answers the
// other's request and, once it has both exchanges, the one that produced the lowest of
// the four nonces is redundant; its initiator deletes it, and the other initiator
// deletes the old Child SA. A rekey request for a Child SA we are deleting or have
// already replaced is answered TEMPORARY_FAILURE, for an unknown one CHILD_SA_NOT_FOUND
// (§2.25).

// Retry delays after a TEMPORARY_FAILURE or a rejected rekey (strongSwan's
// RETRY_INTERVAL and RETRY_JITTER).
const (
	retryInterval = 15 * time.Second
	retryJitter   = 10 * time.Second
)

func (f *Family) retryDelay() time.Duration { return retryInterval - f.jitter(retryJitter) }

// startCreateChild creates a new Child SA of definition name with CREATE_CHILD_SA.
func (f *Family) startCreateChild(ike *ikeSA, name string) {
	cc, ok := f.cfg.Child(name)
	if !ok {
		return
	}
	c := f.newChild(cc)
	if c == nil {
		return
	}
	f.sendChildRequest(ike, c, nil)
}

// startRekeyChild rekeys old (§1.3.3): a new Child SA replacing it.
func (f *Family) startRekeyChild(ike *ikeSA, old *childSA) {
	c := f.newChild(old.cfg)
	if c == nil {
		old.retryAt = f.now.Add(f.retryDelay())
		return
	}
	c.replaces = old.ref
	old.state = ChildStateRekeying
	old.rekeyActive = true
	f.sendChildRequest(ike, c, old)
}

// sendChildRequest builds and sends the CREATE_CHILD_SA request for c (replacing old
// when old is not nil), after generating the PFS key exchange value if configured.
func (f *Family) sendChildRequest(ike *ikeSA, c *childSA, old *childSA) {
	cc := c.cfg
	ni := f.randBytes(nonceLen)
	group := pfsGroup(cc)
	if g, ok := f.keGroup[cc.Name]; ok && group != wire.KENone {
		group = g
	}
	var tsi, tsr []TrafficSelector
	if old != nil {
		tsi, tsr = old.localTS, old.remoteTS
	} else {
		tsi = dynamicTS(cc.LocalTS, ike.local.Addr())
		tsr = dynamicTS(cc.RemoteTS, ike.remote.Addr())
	}
	offered := espProposals(cc, c.spiIn, group != wire.KENone)
	if group != wire.KENone {
		offered = withGroupFirst(offered, group)
	}
	send := func(priv ikecrypto.Private) {
		m := &message{exchange: wire.ExchangeCreateChildSA}
		if old != nil {
			m.addChildNotify(wire.NotifyRekeySA, old.spiIn)
		}
		if cc.Mode == ModeTransport {
			m.addNotify(wire.NotifyUseTransportMode, nil)
		}
		m.addSA(offered)
		m.addNonce(ni)
		if priv != nil {
			m.addKE(group, priv.Public())
		}
		m.addTS(tsi, true)
		m.addTS(tsr, false)
		f.sendRequest(ike, m, func(resp *message) {
			f.onChildResponse(ike, c, old, resp, offered, tsi, tsr, ni, priv)
		}, nil)
	}
	if group == wire.KENone {
		send(nil)
		return
	}
	g, err := ikecrypto.Group(group)
	if err != nil {
		f.failChild(c, telemetry.ReasonNoProposal)
		if old != nil {
			f.rekeyFailed(old, telemetry.ReasonNoProposal)
		}
		return
	}
	seed := f.randBytes(32)
	// Hold the window while the key is generated, so nothing else takes it.
	hold := holdWindow(ike, wire.ExchangeCreateChildSA)
	f.runWork(func() any {
		priv, err := g.Generate(keRand(seed))
		return keResult{priv: priv, err: err}
	}, func(res any) {
		if ike.active == hold {
			ike.active = nil
		}
		r, _ := res.(keResult)
		if r.err != nil || c.state == ChildStateGone || ike.state == IKEStateDead {
			f.failChild(c, telemetry.ReasonNoProposal)
			if old != nil {
				f.rekeyFailed(old, telemetry.ReasonNoProposal)
			}
			return
		}
		send(r.priv)
	})
}

// rekeyFailed: a rekey of old did not produce a successor. Nothing dies: old keeps
// running to its hard lifetime and the rekey is retried later (DESIGN.md).
func (f *Family) rekeyFailed(old *childSA, reason string) {
	old.rekeyActive = false
	if old.state == ChildStateRekeying {
		old.state = ChildStateUp
		old.retryAt = f.now.Add(f.retryDelay())
	}
	f.emit(ChildFailed{Name: old.cfg.Name, Reason: reason})
	f.log(LevelInfo, "Child SA rekey failed, keeping the old one", "child", old.cfg.Name, "reason", reason)
}

// onChildResponse handles the answer to our CREATE_CHILD_SA for c (old: the Child SA
// it rekeys, or nil).
func (f *Family) onChildResponse(ike *ikeSA, c, old *childSA, m *message, offered []wire.Proposal,
	tsi, tsr []TrafficSelector, ni []byte, priv ikecrypto.Private) {
	outcome := telemetry.OutcomeOK
	defer func() {
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeCreateChildSA, Role: telemetry.RoleInitiator, Outcome: outcome})
	}()
	// old.rekeyActive stays set until the rekey concludes (concludeRekey) or fails:
	// while the answer's key exchange is computed and the new Child SA installed, a
	// rekey of old by the peer is still a collision to decide here (old.passive).
	if n := childError(m); n != nil {
		if old != nil {
			old.rekeyActive = false
		}
		outcome = telemetry.OutcomeRejected
		f.dropChild(c, n.typ.String())
		if n.typ == wire.NotifyInvalidKEPayload && len(n.data) == 2 && priv != nil &&
			f.preferGroup(c.cfg.Name, wire.TransformID(uint16(n.data[0])<<8|uint16(n.data[1])), offered) {
			// Retry at once with the group the peer asked for (§1.3).
			if old == nil {
				f.enqueue(task{kind: taskCreateChild, name: c.cfg.Name})
			} else if !old.peerDeleted && old.passive == nil {
				old.state, old.rekeyActive = ChildStateUp, false
				f.enqueue(task{kind: taskRekeyChild, ref: old.ref})
			}
			return
		}
		if old == nil {
			f.emit(ChildFailed{Name: c.cfg.Name, Reason: n.typ.String()})
			f.log(LevelInfo, "Child SA rejected, IKE SA kept", "child", c.cfg.Name, "reason", n.typ.String())
			if n.typ == wire.NotifyTemporaryFailure {
				f.enqueue(task{kind: taskCreateChild, name: c.cfg.Name, notBefore: f.now.Add(f.retryDelay())})
			}
			return
		}
		f.childRekeyRejected(old, n.typ)
		return
	}
	if old != nil && old.peerDeleted && old.passive == nil {
		// The peer deleted the Child SA while our rekey was in flight but created the
		// replacement anyway: keep the replacement, the old one is gone.
		old.state = ChildStateGone
	}
	nr := m.nonce()
	var peerKE []byte
	if priv != nil {
		ke := m.ke()
		if ke == nil || ke.group != offeredGroup(offered) {
			outcome = telemetry.OutcomeRejected
			f.emit(ChildFailed{Name: c.cfg.Name, Reason: telemetry.ReasonInvalidKE})
			f.queueDeleteOfGoneFromAnswer(c, m)
			if old != nil {
				f.rekeyFailed(old, telemetry.ReasonInvalidKE)
			}
			return
		}
		peerKE = clone(ke.data)
	}
	if nr == nil {
		outcome = telemetry.OutcomeRejected
		f.emit(ChildFailed{Name: c.cfg.Name, Reason: telemetry.ReasonInvalidSyn})
		f.queueDeleteOfGoneFromAnswer(c, m)
		if old != nil {
			f.rekeyFailed(old, telemetry.ReasonInvalidSyn)
		}
		return
	}
	nr = clone(nr)
	finish := func(shared []byte) {
		f.finishInitiatorChild(ike, c, m, offered, tsi, tsr, ni, nr, shared, priv != nil)
		if old == nil {
			return
		}
		switch c.state {
		case ChildStateInstalling:
			cont := c.onInstalled
			c.onInstalled = func(err error) {
				cont(err)
				f.concludeRekey(old, c)
			}
		default:
			f.concludeRekey(old, c)
		}
	}
	if priv == nil {
		finish(nil)
		return
	}
	// Our window stays held while the key exchange is computed. ike.busy is not ours
	// to touch: it says the peer's request is being processed, and may be.
	hold := holdWindow(ike, wire.ExchangeCreateChildSA)
	f.runWork(func() any {
		shared, err := priv.SharedSecret(peerKE)
		return keResult{shared: shared, err: err}
	}, func(res any) {
		if ike.active == hold {
			ike.active = nil
		}
		r, _ := res.(keResult)
		if r.err != nil {
			f.emit(ChildFailed{Name: c.cfg.Name, Reason: telemetry.ReasonInvalidKE})
			f.queueDeleteOfGoneFromAnswer(c, m)
			if old != nil {
				f.rekeyFailed(old, telemetry.ReasonInvalidKE)
			}
			return
		}
		finish(r.shared)
	})
}

// withGroupFirst reorders the KE transforms of each proposal so that group, when
// present, comes first (the one our KE payload uses).
func withGroupFirst(props []wire.Proposal, group wire.TransformID) []wire.Proposal {
	for i := range props {
		ts := props[i].Transforms
		j := slices.IndexFunc(ts, func(t wire.Transform) bool { return t.Type == wire.TransformKE && t.ID == group })
		k := slices.IndexFunc(ts, func(t wire.Transform) bool { return t.Type == wire.TransformKE })
		if j > k && k >= 0 {
			ts[j], ts[k] = ts[k], ts[j]
		}
	}
	return props
}

func offeredGroup(props []wire.Proposal) wire.TransformID {
	for _, p := range props {
		for _, t := range p.Transforms {
			if t.Type == wire.TransformKE && t.ID != wire.KENone {
				return t.ID
			}
		}
	}
	return wire.KENone
}

// queueDeleteOfGoneFromAnswer deletes the Child SA the peer answered (it may have
// installed it) while we hold nothing of it.
func (f *Family) queueDeleteOfGoneFromAnswer(c *childSA, m *message) {
	if sa := m.sa(); len(sa) == 1 {
		if spi, ok := spiFromBytes(sa[0].SPI); ok {
			c.spiOut = spi
		}
	}
	f.removeChildState(c, telemetry.ReasonNoProposal)
	f.queueDeleteOfGone(c, telemetry.ReasonNoProposal)
}

// childRekeyRejected applies the failure table's rekey row to an error answer.
func (f *Family) childRekeyRejected(old *childSA, t wire.NotifyType) {
	switch {
	case old.peerDeleted || old.state == ChildStateGone:
		// The peer deleted it before our request arrived (§2.25): it is gone.
		f.dropGoneOld(old, telemetry.ReasonDeleted)
	case old.passive != nil:
		// The peer rekeyed it before our request arrived and will delete it: its
		// replacement stands (§2.8.1, strongSwan's collision handling).
		old.state = ChildStateRekeyed
		old.successor = old.passive
		old.passive = nil
	case t == wire.NotifyChildSANotFound:
		// The peer has no such Child SA: remove ours (DESIGN.md failure table).
		f.log(LevelWarn, "peer does not know the Child SA we rekey, removing it", "child", old.cfg.Name)
		f.emit(ChildFailed{Name: old.cfg.Name, Reason: t.String()})
		f.dropChild(old, t.String())
	default:
		// TEMPORARY_FAILURE and every other rejection: keep the old Child SA, retry.
		f.rekeyFailed(old, t.String())
	}
}

// concludeRekey runs once our rekey of old produced c (installed) or failed locally
// (c nil): the lowest-nonce rule if the peer rekeyed old too (§2.8.1), then the
// deletion of whatever is redundant.
func (f *Family) concludeRekey(old, c *childSA) {
	old.rekeyActive = false
	if c != nil && c.peerDeleted {
		// The peer deleted our replacement before its answer arrived: it wants the
		// Child SA gone. Delete the old one too (strongSwan does the same).
		if old.state == ChildStateGone || old.peerDeleted {
			f.dropGoneOld(old, telemetry.ReasonDeleted)
			return
		}
		if old.passive != nil {
			old.state, old.successor, old.passive = ChildStateRekeyed, old.passive, nil
			return
		}
		old.state = ChildStateRekeyed
		f.queueDeleteChild(old, telemetry.ReasonDeleted)
		return
	}
	if c == nil || c.state != ChildStateUp {
		// Installing our replacement failed (finishInitiatorChild deletes it): keep
		// the old Child SA unless the peer deleted it or its replacement exists.
		if old.peerDeleted || old.state == ChildStateGone {
			f.dropGoneOld(old, telemetry.ReasonDeleted)
			return
		}
		if old.passive != nil {
			old.state, old.successor, old.passive = ChildStateRekeyed, old.passive, nil
			return
		}
		f.rekeyFailed(old, telemetry.ReasonKernel)
		return
	}
	if p := old.passive; p != nil && p.state != ChildStateGone {
		old.passive = nil
		if bytes.Compare(c.lowNonce(), p.lowNonce()) < 0 {
			// We lost: ours holds the lowest nonce; we delete it and the peer deletes
			// the old one.
			f.log(LevelInfo, "Child SA rekey collision lost, deleting our redundant Child SA", "child", c.cfg.Name)
			f.queueDeleteChild(c, telemetry.ReasonRekeyed)
			if old.peerDeleted || old.state == ChildStateGone {
				// The winner already deleted the old one.
				f.dropChild(old, telemetry.ReasonRekeyed)
				return
			}
			old.state, old.successor = ChildStateRekeyed, p
			return
		}
		f.log(LevelInfo, "Child SA rekey collision won", "child", c.cfg.Name)
	}
	old.successor, old.ownSuccessor = c, true
	if old.peerDeleted || old.state == ChildStateGone {
		f.dropGoneOld(old, telemetry.ReasonRekeyed)
		return
	}
	old.state = ChildStateRekeyed
	f.queueDeleteChild(old, telemetry.ReasonRekeyed)
}

// lateRekeyCollision applies the lowest-nonce rule (§2.8.1) to a simultaneous rekey of
// old that we noticed only after our own rekey (ours) concluded: theirs is the Child
// SA we just made by answering the peer's rekey of old. The loser's initiator deletes
// its new Child SA; old is deleted already (by us, having concluded).
func (f *Family) lateRekeyCollision(old, ours, theirs *childSA) {
	if bytes.Compare(ours.lowNonce(), theirs.lowNonce()) < 0 {
		f.log(LevelInfo, "Child SA rekey collision lost (decided late), deleting our redundant Child SA", "child", ours.cfg.Name)
		old.successor, old.ownSuccessor = theirs, false
		f.queueDeleteChild(ours, telemetry.ReasonRekeyed)
		return
	}
	f.log(LevelInfo, "Child SA rekey collision won (decided late)", "child", ours.cfg.Name)
}

// onCreateChildRequest answers a CREATE_CHILD_SA request: a new Child SA, a Child SA
// rekey (N(REKEY_SA)) or an IKE SA rekey (an SA payload of protocol IKE).
func (f *Family) onCreateChildRequest(ike *ikeSA, m *message) {
	sa := m.sa()
	if len(sa) > 0 && sa[0].Protocol == wire.ProtoIKE && m.getNotify(wire.NotifyRekeySA) == nil {
		f.onRekeyIKERequest(ike, m)
		return
	}
	reject := func(t wire.NotifyType, spi []byte, proto wire.ProtocolID, data ...byte) {
		resp := &message{}
		resp.add(payload{typ: wire.PayloadNotify, notify: &notifyPayload{proto: proto, spi: spi, typ: t, data: data}})
		f.respond(ike, m, resp)
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeCreateChildSA, Role: telemetry.RoleResponder, Outcome: telemetry.OutcomeRejected})
	}
	// §2.25.2: no Child SA work on an IKE SA that is being rekeyed or replaced.
	if ike != f.ike || ike.rekeying || ike.state != IKEStateEstablished {
		reject(wire.NotifyTemporaryFailure, nil, 0)
		return
	}
	var old *childSA
	if n := m.getNotify(wire.NotifyRekeySA); n != nil {
		spi, ok := spiFromBytes(n.spi)
		if ok {
			old = f.childByOutboundSPI(spi)
		}
		switch {
		case old == nil && f.creatingChild():
			// It may be the Child SA whose creation answer has not reached us yet.
			reject(wire.NotifyTemporaryFailure, nil, 0)
			return
		case old == nil || old.state == ChildStateGone:
			reject(wire.NotifyChildSANotFound, n.spi, n.proto)
			return
		case old.state == ChildStateDeleting || old.state == ChildStateRekeyed || old.state == ChildStateInstalling:
			reject(wire.NotifyTemporaryFailure, nil, 0)
			return
		}
	}
	ni := m.nonce()
	if ni == nil || len(sa) == 0 {
		reject(wire.NotifyNoProposalChosen, nil, 0)
		return
	}
	nr := f.randBytes(nonceLen)
	ke := m.ke()
	answer := func(shared, public []byte, group wire.TransformID) {
		between := []payload{{typ: wire.PayloadNonce, nonce: nr}}
		if public != nil {
			between = append(between, payload{typ: wire.PayloadKE, ke: &kePayload{group: group, data: public}})
		}
		var c *childSA
		c = f.responderChild(ike, m, &message{}, old, ni, nr, shared, between, func(resp *message) {
			outcome := telemetry.OutcomeOK
			if c == nil || c.state != ChildStateUp {
				outcome = telemetry.OutcomeRejected
			}
			f.respond(ike, m, resp)
			f.emit(ExchangeDone{Exchange: telemetry.ExchangeCreateChildSA, Role: telemetry.RoleResponder, Outcome: outcome})
			if old == nil || c == nil || c.state != ChildStateUp {
				return
			}
			if old.rekeyActive {
				// Our own rekey of it is in flight: decide when its answer comes.
				old.passive = c
				return
			}
			if s := old.successor; old.ownSuccessor && s != nil && s != c && s.state == ChildStateUp {
				// Our own rekey of it completed while this answer was being computed:
				// it concluded with no collision in sight and deleted old. Decide now
				// (§2.8.1): if ours holds the lowest nonce we delete it, else the peer
				// deletes c.
				f.lateRekeyCollision(old, s, c)
				return
			}
			if old.state != ChildStateGone {
				old.state = ChildStateRekeyed
			}
			old.successor = c
		})
	}
	if ke == nil {
		answer(nil, nil, 0)
		return
	}
	// PFS (§1.3.1): the group must be the one of the proposal we select.
	cc := f.childConfigFor(ike, m, old)
	if cc == nil {
		answer(nil, nil, 0) // responderChild answers TS_UNACCEPTABLE
		return
	}
	chosen, err := proposal.Select(espProposals(cc, 0, true), sa, proposal.Options{})
	if err != nil {
		reject(wire.NotifyNoProposalChosen, nil, 0)
		return
	}
	group := offeredGroup([]wire.Proposal{chosen})
	if group != ke.group {
		reject(wire.NotifyInvalidKEPayload, nil, 0, byte(group>>8), byte(group))
		return
	}
	g, err := ikecrypto.Group(group)
	if err != nil {
		reject(wire.NotifyNoProposalChosen, nil, 0)
		return
	}
	seed, peer := f.randBytes(32), clone(ke.data)
	ike.busy = true
	f.runWork(func() any {
		pub, shared, err := g.Respond(keRand(seed), peer)
		return keResult{public: pub, shared: shared, err: err}
	}, func(res any) {
		ike.busy = false
		r, _ := res.(keResult)
		if r.err != nil {
			// A malformed public value after integrity passed: really INVALID_SYNTAX.
			reject(wire.NotifyInvalidSyntax, nil, 0)
			return
		}
		answer(r.shared, r.public, group)
	})
}

// childConfigFor is the child definition a CREATE_CHILD_SA request is about.
func (f *Family) childConfigFor(ike *ikeSA, m *message, old *childSA) *ChildConfig {
	if old != nil {
		return old.cfg
	}
	tsi, _ := m.ts(true)
	tsr, _ := m.ts(false)
	cc, _, _ := f.selectChildConfig(ike, tsi, tsr)
	return cc
}

// dropGoneOld forgets an old Child SA that the peer deleted or that is gone here,
// unless we still owe the peer its DELETE (it hard-expired here while its rekey was in
// flight, and the DELETE is queued): then the DELETE removes it when its turn comes, or
// the peer would keep its half (found by randomized runs, seed 1714).
func (f *Family) dropGoneOld(old *childSA, reason string) {
	if !old.peerDeleted && old.state == ChildStateGone && f.queued(taskDeleteChild, old.ref) {
		return
	}
	f.dropChild(old, reason)
}
