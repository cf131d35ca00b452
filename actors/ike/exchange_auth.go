package ike

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/ikecrypto"
	"github.com/cygnet-ipsec/cygnet/wire/proposal"
)

// IKE_AUTH (RFC 7296 §1.2) with pre-shared keys (§2.15) and the first Child SA:
//
//	Initiator                         Responder
//	-------------------------------------------------------------------
//	HDR, SK {IDi, [N(INITIAL_CONTACT),] [IDr,] AUTH,
//	    [N(USE_TRANSPORT_MODE)], SAi2, TSi, TSr}  -->
//	                                  <--  HDR, SK {IDr, AUTH,
//	                                           [N(USE_TRANSPORT_MODE)], SAr2, TSi, TSr}
//
// The Child SA rides along but its failure is its own (§1.2, RFC 6023): a response
// with IDr and AUTH but an error notify instead of SAr2 establishes the IKE SA without
// it. Without SAi2 (childless, RFC 6023) no Child SA is created at all.
//
// INITIAL_CONTACT (§2.4): the initiator sends it unless Options.NoInitialContact; a
// family that receives it in the peer's authenticated IKE_AUTH message emits
// InitialContact once the IKE SA is established, for the manager to act on.

// childErrorNotifies are the notifies that reject a Child SA and nothing else
// (DESIGN.md failure table, first two rows).
var childErrorNotifies = []wire.NotifyType{
	wire.NotifyTSUnacceptable, wire.NotifyNoProposalChosen, wire.NotifySinglePairRequired,
	wire.NotifyInternalAddressFailure, wire.NotifyFailedCPRequired, wire.NotifyNoAdditionalSAs,
	wire.NotifyInvalidSelectors, wire.NotifyTemporaryFailure, wire.NotifyChildSANotFound,
	wire.NotifyInvalidKEPayload,
}

func childError(m *message) *notifyPayload {
	for i := range m.payloads {
		if n := m.payloads[i].notify; n != nil && slices.Contains(childErrorNotifies, n.typ) {
			return n
		}
	}
	return nil
}

// floatToNATT moves IKE to the NAT-T ports after IKE_SA_INIT when a NAT was detected
// (§2.23): the initiator switches, the responder follows the packets.
func (f *Family) floatToNATT(ike *ikeSA) {
	if !ike.natLocal && !ike.natPeer {
		return
	}
	if ike.local.Port() == DefaultIKEPort || ike.local.Port() == f.cfg.LocalPort {
		ike.local = netip.AddrPortFrom(ike.local.Addr(), f.opts.NATTPort)
	}
	if ike.remote.Port() == DefaultIKEPort {
		ike.remote = netip.AddrPortFrom(ike.remote.Addr(), f.opts.RemoteNATTPort)
	}
}

// startAuth sends the initiator's IKE_AUTH request.
func (f *Family) startAuth(ike *ikeSA) {
	cfg := f.cfg
	in := ike.init
	f.floatToNATT(ike)

	// Which child rides in IKE_AUTH: the first queued, unless childless is forced.
	childless := cfg.Childless == ChildlessForce
	if childless && !ike.peerChildless {
		f.die(telemetry.ReasonNoProposal, errors.New("childless IKE SA forced but the peer does not support RFC 6023"))
		return
	}
	var cc *ChildConfig
	if !childless {
		if i := slices.IndexFunc(f.queue, func(t task) bool { return t.kind == taskCreateChild }); i >= 0 {
			cc, _ = cfg.Child(f.queue[i].name)
			f.queue = slices.Delete(f.queue, i, i+1)
		} else if !ike.peerChildless && len(cfg.Children) > 0 {
			cc = &cfg.Children[0]
		}
	}
	m := &message{exchange: wire.ExchangeIKEAuth}
	local := cfg.Local.ID
	m.add(payload{typ: wire.PayloadIDi, id: &local})
	if !f.opts.NoInitialContact {
		// §2.4: the only IKE SA between these identities (Options.NoInitialContact).
		m.addNotify(wire.NotifyInitialContact, nil)
	}
	if cfg.Remote.ID.Type != IDAny {
		remote := cfg.Remote.ID
		m.add(payload{typ: wire.PayloadIDr, id: &remote})
	}
	psk, ok := cfg.SecretFor(local, cfg.Remote.ID)
	if !ok {
		f.die(telemetry.ReasonAuthFailed, fmt.Errorf("no pre-shared key for %v - %v", local, cfg.Remote.ID))
		return
	}
	octets := ikecrypto.SignedOctets(ike.prf, in.request, ike.nr, ike.keys.Pi, idBody(local))
	m.add(payload{typ: wire.PayloadAUTH, auth: &authPayload{method: wire.AuthPSK, data: ikecrypto.SharedKeyAuth(ike.prf, psk, octets)}})
	if cc != nil {
		if c := f.newChild(cc); c != nil {
			in.firstChild, in.child = cc.Name, c
			in.childTSi = dynamicTS(cc.LocalTS, ike.local.Addr())
			in.childTSr = dynamicTS(cc.RemoteTS, ike.remote.Addr())
			in.childProps = espProposals(cc, c.spiIn, false)
			if cc.Mode == ModeTransport {
				m.addNotify(wire.NotifyUseTransportMode, nil)
			}
			m.addSA(in.childProps)
			m.addTS(in.childTSi, true)
			m.addTS(in.childTSr, false)
		}
	}
	in.authSent = true
	f.sendRequest(ike, m, func(resp *message) { f.onAuthResponse(ike, resp) }, nil)
}

// onAuthResponse completes IKE_AUTH as initiator.
func (f *Family) onAuthResponse(ike *ikeSA, m *message) {
	in := ike.init
	if n := m.getNotify(wire.NotifyAuthenticationFailed); n != nil {
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeIKEAuth, Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeRejected})
		f.die(telemetry.ReasonAuthFailed, errors.New("peer answered IKE_AUTH with AUTHENTICATION_FAILED"))
		return
	}
	idr, auth := m.first(wire.PayloadIDr), m.first(wire.PayloadAUTH)
	if idr == nil || auth == nil {
		// No IKE SA without authentication: the exchange failed, and with it the family.
		reason := telemetry.ReasonInvalidSyn
		if n := m.errorNotify(); n != nil {
			reason = n.typ.String()
		}
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeIKEAuth, Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeRejected})
		f.fatal(ike, reason, fmt.Errorf("IKE_AUTH response without IDr/AUTH (%s)", reason))
		return
	}
	if !f.cfg.Remote.ID.Matches(*idr.id) {
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeIKEAuth, Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeRejected})
		f.fatal(ike, telemetry.ReasonAuthFailed, fmt.Errorf("peer identity %v does not match %v", idr.id, f.cfg.Remote.ID))
		return
	}
	octets := ikecrypto.SignedOctets(ike.prf, in.response, ike.ni, ike.keys.Pr, idBody(*idr.id))
	psk, ok := f.cfg.SecretFor(f.cfg.Local.ID, *idr.id)
	if !ok || auth.auth.method != wire.AuthPSK || !ikecrypto.VerifySharedKeyAuth(ike.prf, psk, octets, auth.auth.data) {
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeIKEAuth, Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeRejected})
		f.fatal(ike, telemetry.ReasonAuthFailed, errors.New("peer's AUTH payload does not verify"))
		return
	}
	ike.peerID = *idr.id
	c := in.child
	f.established(ike)
	f.emit(ExchangeDone{Exchange: telemetry.ExchangeIKEAuth, Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeOK})
	f.noteInitialContact(ike, m)
	if c != nil && c.state != ChildStateGone {
		f.finishInitiatorChild(ike, c, m, in.childProps, in.childTSi, in.childTSr, ike.ni, ike.nr, nil, false)
	}
	ike.forgetAuthSecrets()
}

// finishInitiatorChild processes the Child SA part of a response (IKE_AUTH or
// CREATE_CHILD_SA) as the exchange's initiator. A rejection or a bad answer fails the
// Child SA alone; one the peer may have installed is deleted.
func (f *Family) finishInitiatorChild(ike *ikeSA, c *childSA, m *message, offered []wire.Proposal,
	tsi, tsr []TrafficSelector, ni, nr, shared []byte, withKE bool) {
	if n := childError(m); n != nil {
		f.failChild(c, n.typ.String())
		return
	}
	sa := m.sa()
	gotTSi, okI := m.ts(true)
	gotTSr, okR := m.ts(false)
	if sa == nil || !okI || !okR {
		f.failChild(c, telemetry.ReasonNoProposal)
		return
	}
	chosen, err := proposal.CheckChosen(offered, sa, proposal.Options{IgnoreKE: !withKE})
	spiOut, okSPI := spiFromBytes(chosen.SPI)
	reason := ""
	switch {
	case err != nil || !okSPI:
		reason = telemetry.ReasonNoProposal
	case !coveredTS(gotTSi, tsi) || !coveredTS(gotTSr, tsr):
		reason = telemetry.ReasonTSUnaccept
	case c.cfg.Mode == ModeTransport && m.getNotify(wire.NotifyUseTransportMode) == nil:
		reason = "USE_TRANSPORT_MODE"
	case slices.Contains(f.peerDeletedSPIs, spiOut):
		// The peer deleted this Child SA before its answer reached us: it is gone.
		f.peerDeletedSPIs = slices.DeleteFunc(f.peerDeletedSPIs, func(s uint32) bool { return s == spiOut })
		c.peerDeleted = true
		f.log(LevelInfo, "peer deleted the Child SA before its answer arrived", "child", c.cfg.Name)
		f.dropChild(c, telemetry.ReasonDeleted)
		return
	}
	if reason == "" {
		if c.cfg.Mode == ModeTransport {
			c.mode = ModeTransport
		} else {
			c.mode = ModeTunnel
		}
		if err := f.negotiated(ike, c, chosen, spiOut, gotTSi, gotTSr, ni, nr, true, shared); err != nil {
			reason = telemetry.ReasonNoProposal
		}
	}
	if reason != "" {
		// The peer installed what it answered: delete it (we hold nothing).
		f.log(LevelWarn, "unacceptable Child SA in response", "child", c.cfg.Name, "reason", reason)
		f.emit(ChildFailed{Name: c.cfg.Name, Reason: reason})
		if okSPI {
			c.spiOut = spiOut
		}
		f.queueDeleteOfGone(c, reason)
		return
	}
	f.install(c, func(err error) {
		if err != nil {
			// The local kernel refused: that Child SA fails, the initiator sends a
			// DELETE for it (DESIGN.md failure table).
			f.emit(ChildFailed{Name: c.cfg.Name, Reason: telemetry.ReasonKernel})
			f.log(LevelWarn, "kernel refused Child SA", "child", c.cfg.Name, "error", err.Error())
			f.queueDeleteOfGone(c, telemetry.ReasonKernel)
			return
		}
		f.childUp(c)
	})
}

// established marks ike up: lifetimes (jittered, ikeRekeyDue/ikeExpired) and the
// Established notification.
func (f *Family) established(ike *ikeSA) {
	ike.init = nil
	ike.state = IKEStateEstablished
	ike.halfOpenUntil = time.Time{}
	ike.establishedAt = f.now
	ike.lastHeard = f.now
	f.scheduleIKELifetime(ike)
	ike.announced = true
	f.emit(Established{IKE: f.ikeInfo(ike)})
	f.log(LevelInfo, "IKE SA established", "spi_i", ike.spiI.String(), "spi_r", ike.spiR.String(), "peer", ike.remote.String())
}

func (f *Family) scheduleIKELifetime(ike *ikeSA) {
	if f.cfg.RekeyTime > 0 {
		ike.rekeyAt = f.now.Add(f.cfg.RekeyTime - f.jitter(f.cfg.RandTime))
		ike.expireAt = f.now.Add(f.cfg.RekeyTime + f.cfg.OverTime)
	}
}

// onAuthRequest answers IKE_AUTH as responder.
func (f *Family) onAuthRequest(ike *ikeSA, m *message) {
	if ike.initiator || ike.init == nil || m.msgID != 1 {
		// IKE_AUTH on an established IKE SA is out of place: answer empty.
		f.respond(ike, m, &message{})
		return
	}
	in := ike.init
	idi, auth := m.first(wire.PayloadIDi), m.first(wire.PayloadAUTH)
	if idi == nil || auth == nil {
		resp := &message{}
		resp.addNotify(wire.NotifyAuthenticationFailed, nil)
		f.respond(ike, m, resp)
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeIKEAuth, Role: telemetry.RoleResponder, Outcome: telemetry.OutcomeRejected})
		f.die(telemetry.ReasonAuthFailed, errors.New("IKE_AUTH request without IDi or AUTH (EAP is not supported)"))
		return
	}
	idr := m.first(wire.PayloadIDr)
	// Pick the connection by identity among those whose IKE proposals accept what
	// IKE_SA_INIT chose.
	var cfg *Connection
	for _, c := range f.candidates {
		if !c.Remote.ID.Matches(*idi.id) {
			continue
		}
		if idr != nil && !c.Local.ID.Matches(*idr.id) {
			continue
		}
		if _, err := proposal.Select(c.Proposals, []wire.Proposal{in.chosen}, proposal.Options{}); err != nil {
			continue
		}
		cfg = c
		break
	}
	// The key is the one for this peer's IDi (PSKFor), not the connection's first.
	var authOK bool
	var psk Secret
	if cfg != nil && auth.auth.method == wire.AuthPSK {
		var ok bool
		psk, ok = cfg.SecretFor(cfg.Local.ID, *idi.id)
		octets := ikecrypto.SignedOctets(ike.prf, in.request, ike.nr, ike.keys.Pi, idBody(*idi.id))
		authOK = ok && ikecrypto.VerifySharedKeyAuth(ike.prf, psk, octets, auth.auth.data)
	}
	if !authOK || (cfg.Childless == ChildlessNever && !m.has(wire.PayloadSA)) {
		resp := &message{}
		resp.addNotify(wire.NotifyAuthenticationFailed, nil)
		f.respond(ike, m, resp)
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeIKEAuth, Role: telemetry.RoleResponder, Outcome: telemetry.OutcomeRejected})
		f.die(telemetry.ReasonAuthFailed, fmt.Errorf("IKE_AUTH from %v failed", idi.id))
		return
	}
	f.cfg = cfg
	ike.peerID = *idi.id
	local := cfg.Local.ID
	resp := &message{}
	resp.add(payload{typ: wire.PayloadIDr, id: &local})
	octets := ikecrypto.SignedOctets(ike.prf, in.response, ike.ni, ike.keys.Pr, idBody(local))
	resp.add(payload{typ: wire.PayloadAUTH, auth: &authPayload{method: wire.AuthPSK, data: ikecrypto.SharedKeyAuth(ike.prf, psk, octets)}})
	if !m.has(wire.PayloadSA) {
		f.finishAuthResponder(ike, m, resp)
		return
	}
	f.responderChild(ike, m, resp, nil, ike.ni, ike.nr, nil, nil, func(resp *message) {
		f.finishAuthResponder(ike, m, resp)
	})
}

func (f *Family) finishAuthResponder(ike *ikeSA, req, resp *message) {
	f.respond(ike, req, resp)
	f.established(ike)
	ike.forgetAuthSecrets()
	f.emit(ExchangeDone{Exchange: telemetry.ExchangeIKEAuth, Role: telemetry.RoleResponder, Outcome: telemetry.OutcomeOK})
	f.noteInitialContact(ike, req)
}

// noteInitialContact emits InitialContact when the peer's authenticated IKE_AUTH
// message m carried INITIAL_CONTACT (RFC 7296 §2.4), once ike is established.
func (f *Family) noteInitialContact(ike *ikeSA, m *message) {
	if m.getNotify(wire.NotifyInitialContact) == nil || !ike.established() {
		return
	}
	f.log(LevelInfo, "peer sent INITIAL_CONTACT", "spi_i", ike.spiI.String(), "spi_r", ike.spiR.String(), "peer_id", ike.peerID.String())
	f.emit(InitialContact{SPIi: ike.spiI, SPIr: ike.spiR, LocalID: f.cfg.Local.ID, RemoteID: ike.peerID, Remote: ike.remote})
}

// responderChild negotiates, installs and answers a Child SA request as responder
// (IKE_AUTH or CREATE_CHILD_SA), appending the Child SA payloads (or a Child-level
// error notify) to resp and then calling done(resp). It never fails more than the
// Child SA. ni and nr are the exchange's nonces; shared is the PFS secret (nil
// without); rekeyOf is the Child SA being rekeyed (nil for a new one); between are the
// payloads that go after SA and before the selectors (CREATE_CHILD_SA's No and KE).
func (f *Family) responderChild(ike *ikeSA, m *message, resp *message, rekeyOf *childSA, ni, nr, shared []byte,
	between []payload, done func(*message)) *childSA {
	reject := func(t wire.NotifyType, name string) *childSA {
		f.emit(ChildFailed{Name: name, Reason: t.String()})
		resp.addNotify(t, nil)
		done(resp)
		return nil
	}
	tsi, okI := m.ts(true)
	tsr, okR := m.ts(false)
	sa := m.sa()
	if sa == nil || !okI || !okR {
		return reject(wire.NotifyTSUnacceptable, "?")
	}
	var cc *ChildConfig
	var localTS, remoteTS []TrafficSelector
	if rekeyOf != nil {
		cc = rekeyOf.cfg
		localTS = narrowTS(tsr, rekeyOf.localTS)
		remoteTS = narrowTS(tsi, rekeyOf.remoteTS)
		if len(localTS) == 0 || len(remoteTS) == 0 {
			return reject(wire.NotifyTSUnacceptable, cc.Name)
		}
	} else {
		cc, localTS, remoteTS = f.selectChildConfig(ike, tsi, tsr)
		if cc == nil {
			return reject(wire.NotifyTSUnacceptable, "?")
		}
	}
	withKE := m.exchange == wire.ExchangeCreateChildSA && m.ke() != nil
	chosen, err := proposal.Select(espProposals(cc, 0, withKE), sa, proposal.Options{IgnoreKE: !withKE})
	spiOut, okSPI := spiFromBytes(chosen.SPI)
	if err != nil || !okSPI {
		return reject(wire.NotifyNoProposalChosen, cc.Name)
	}
	c := f.newChild(cc)
	if c == nil {
		return reject(wire.NotifyNoProposalChosen, cc.Name)
	}
	if rekeyOf != nil {
		c.replaces = rekeyOf.ref
	}
	c.mode = ModeTunnel
	if cc.Mode == ModeTransport && m.getNotify(wire.NotifyUseTransportMode) != nil {
		c.mode = ModeTransport
	}
	if err := f.negotiated(ike, c, chosen, spiOut, localTS, remoteTS, ni, nr, false, shared); err != nil {
		f.dropChild(c, telemetry.ReasonNoProposal)
		return reject(wire.NotifyNoProposalChosen, cc.Name)
	}
	ike.busy = true
	f.install(c, func(err error) {
		ike.busy = false
		if err != nil || c.state == ChildStateGone {
			// The local kernel refused: answer with a Child-level error notify
			// (DESIGN.md failure table); the IKE SA is not affected.
			f.log(LevelWarn, "kernel refused Child SA, rejecting it", "child", cc.Name)
			f.dropChild(c, telemetry.ReasonKernel)
			reject(wire.NotifyNoProposalChosen, cc.Name)
			return
		}
		if c.mode == ModeTransport {
			resp.addNotify(wire.NotifyUseTransportMode, nil)
		}
		chosen.SPI = spiBytes(c.spiIn)
		resp.addSA([]wire.Proposal{chosen})
		for _, p := range between {
			resp.add(p)
		}
		resp.addTS(c.remoteTS, true)
		resp.addTS(c.localTS, false)
		f.childUp(c)
		done(resp)
	})
	return c
}
