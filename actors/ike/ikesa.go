package ike

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/ikecrypto"
)

// ikeSA is one IKE SA of the family: its SPIs, keys and the two message-ID windows
// (RFC 7296 §2.3). "Initiator" is always the original initiator of THIS IKE SA: after a
// rekey the peer that sent the rekey request is the initiator of the new SA (§2.18).
type ikeSA struct {
	spiI, spiR SPI
	initiator  bool
	state      IKEState
	announced  bool // Established was emitted
	closed     bool // IKEClosed was emitted (or it never was established)
	routed     bool // RouteSPI was emitted for localSPI
	// fakeNATDSrc is the deliberately wrong NAT_DETECTION_SOURCE_IP hash of Encap,
	// drawn once so that a COOKIE or INVALID_KE retry keeps every other payload
	// unchanged (RFC 7296 §2.6).
	fakeNATDSrc []byte

	suite  ikecrypto.IKESuite
	prf    *ikecrypto.PRF
	keys   *ikecrypto.IKEKeys // all of them until IKE_AUTH is done (forgetAuthSecrets)
	skD    []byte             // SK_d, kept
	sealer wire.SKCipher      // our outbound SK protection
	opener wire.SKCipher      // inbound
	ni, nr []byte

	local, remote     netip.AddrPort
	natLocal, natPeer bool
	peerFrag          bool // the peer sent IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383 §2.3)
	peerChildless     bool // the peer sent CHILDLESS_IKEV2_SUPPORTED (RFC 6023)
	peerNATD          bool // the peer sent NAT_DETECTION_* notifies (§2.23)
	peerID            Identity

	// Our requests: nextReqID is the ID of the next one, active the one outstanding.
	nextReqID uint32
	active    *request
	// The peer's requests: nextPeerID is the one expected next; lastResp the cached
	// response to nextPeerID-1, re-sent byte for byte on a retransmission (§2.1); busy
	// means request nextPeerID is being processed (waiting for work or the kernel).
	nextPeerID  uint32
	lastResp    [][]byte
	lastRespTo  [2]netip.AddrPort // local, remote of the cached response
	lastRespSum string
	busy        bool

	reqFrags, respFrags *reassembly

	lastHeard     time.Time
	establishedAt time.Time
	rekeyAt       time.Time // soft: start a rekey (jittered)
	expireAt      time.Time // hard: over time ends, the IKE SA is closed
	rekeyRetryAt  time.Time // retry a failed rekey
	// peerRekeyHold: we answered the peer's rekey of this IKE SA TEMPORARY_FAILURE
	// because of a Child SA exchange (§2.25.2); until then we start no new Child SA
	// exchange, so that the peer's retry finds us idle (runQueue).
	peerRekeyHold time.Time
	deleteBy      time.Time // an old IKE SA: delete it ourselves if the peer did not
	halfOpenUntil time.Time // a responder waiting for IKE_AUTH

	init *initState // IKE_SA_INIT / IKE_AUTH bookkeeping until established

	// passive is the IKE SA we created by answering the peer's rekey of this one; kept
	// to resolve a simultaneous rekey (§2.8.2) when our own rekey response arrives.
	passive *rekeyedIKE
	// rekeying: our rekey request of this IKE SA is in flight.
	rekeying bool
	// answering: our answer to the peer's rekey of this IKE SA is being computed.
	// concluded is the IKE SA our own rekey of it made meanwhile, held back until the
	// answer is ready (lateIKERekeyCollision).
	answering bool
	concluded *rekeyedIKE
	// concluding: the peer answered our rekey of this IKE SA and the new keys are being
	// computed. expiryHeld: the over time ended while answering or concluding was
	// set; the IKE SA expires when that work ends without a new IKE SA (expireHeld).
	concluding bool
	expiryHeld bool
	// retryFirst: our rekey of this IKE SA met TEMPORARY_FAILURE; until the retry
	// starts, we start no new Child SA exchange (nextTask).
	retryFirst bool
	// redundant: the losing new IKE SA of a simultaneous rekey (§2.8.2), ours or the
	// one we made by answering the peer. The DELETE of one we made by answering is sent
	// once, not retransmitted: the peer may never have had it (the winner's DELETE of
	// the old IKE SA overtook our answer), and nothing depends on it. One we initiated
	// the peer has (it answered): its DELETE is retransmitted.
	redundant bool
}

// rekeyedIKE remembers a new IKE SA created by a rekey exchange and that exchange's
// nonces, for the lowest-nonce rule.
type rekeyedIKE struct {
	sa     *ikeSA
	ni, nr []byte
}

func (ike *ikeSA) localSPI() SPI {
	if ike.initiator {
		return ike.spiI
	}
	return ike.spiR
}

func (ike *ikeSA) established() bool {
	return ike.sealer != nil && ike.init == nil
}

// request is our outstanding request on an IKE SA.
type request struct {
	exchange      wire.ExchangeType
	msgID         uint32
	packets       [][]byte
	summary       string
	local, remote netip.AddrPort
	tries         int
	nextAt        time.Time
	// onResponse handles the response (the window is already free again).
	onResponse func(m *message)
	// onTimeout runs when retransmissions are exhausted; nil means the peer is
	// unreachable and the family dies (DESIGN.md failure table).
	onTimeout func()
	// once: never retransmitted; the first timeout runs onTimeout.
	once bool
	// hold: not a request at all but the window held while Work computes what the next
	// request (or the end of this exchange) needs (holdWindow). No response matches it.
	hold bool
}

// holdWindow takes ike's request window (§2.3) while Work runs for an exchange: no
// other request starts meanwhile, and no response matches the hold (a duplicate of
// the response just taken, say, arriving while the key exchange is computed).
func holdWindow(ike *ikeSA, exchange wire.ExchangeType) *request {
	r := &request{exchange: exchange, hold: true}
	ike.active = r
	return r
}

// retransmitDelay is the wait before retransmission n+1 (n = retransmissions done):
// Timeout·Base^n, shortened by up to Jitter percent (strongSwan's retransmit_jitter).
func (f *Family) retransmitDelay(n int) time.Duration {
	rt := f.cfg.Retransmit
	d := time.Duration(float64(rt.Timeout) * math.Pow(rt.Base, float64(n)))
	if rt.Jitter > 0 {
		d -= f.jitter(d * time.Duration(rt.Jitter) / 100)
	}
	return d
}

// sendRequest sends m as our next request on ike (window size 1: the caller checked
// ike.active == nil). Retransmissions reuse the encoded bytes.
func (f *Family) sendRequest(ike *ikeSA, m *message, onResponse func(*message), onTimeout func()) {
	m.spiI, m.spiR = ike.spiI, ike.spiR
	m.initiator = ike.initiator
	m.response = false
	m.msgID = ike.nextReqID
	ike.nextReqID++
	packets, err := f.encode(ike, m)
	if err != nil {
		f.die(telemetry.ReasonInvalidSyn, fmt.Errorf("encode %s: %w", m.describe(), err))
		return
	}
	r := &request{exchange: m.exchange, msgID: m.msgID, packets: packets, summary: m.describe(),
		local: ike.local, remote: ike.remote, onResponse: onResponse, onTimeout: onTimeout}
	ike.active = r
	f.transmit(r)
	r.nextAt = f.now.Add(f.retransmitDelay(0))
}

func (f *Family) transmit(r *request) {
	for i, p := range r.packets {
		sum := r.summary
		if len(r.packets) > 1 {
			sum = fmt.Sprintf("%s frag %d/%d", r.summary, i+1, len(r.packets))
		}
		f.emit(SendDatagram{Local: r.local, Remote: r.remote, Data: p, Summary: sum})
	}
}

// retransmit handles the retransmission deadline of ike's active request.
func (f *Family) retransmit(ike *ikeSA) {
	r := ike.active
	if r.tries < f.cfg.Retransmit.Tries && !r.once {
		r.tries++
		f.emit(Retransmitted{Exchange: exchangeName(r.exchange), Try: r.tries})
		f.transmit(r)
		r.nextAt = f.now.Add(f.retransmitDelay(r.tries))
		return
	}
	ike.active = nil
	f.emit(ExchangeDone{Exchange: exchangeName(r.exchange), Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeTimeout})
	if r.onTimeout != nil {
		r.onTimeout()
		return
	}
	f.die(telemetry.ReasonTimeout, fmt.Errorf("%s: no response after %d retransmissions", r.summary, r.tries))
}

// respond sends m as the response to request req on ike and caches it (§2.1).
func (f *Family) respond(ike *ikeSA, req *message, m *message) {
	m.spiI, m.spiR = ike.spiI, ike.spiR
	m.exchange = req.exchange
	m.initiator = ike.initiator
	m.response = true
	m.msgID = req.msgID
	for _, p := range m.payloads {
		if p.notify != nil && p.notify.typ.IsError() {
			f.emit(NotifySeen{Type: p.notify.typ.String(), Sent: true})
		}
	}
	packets, err := f.encode(ike, m)
	if err != nil {
		f.die(telemetry.ReasonInvalidSyn, fmt.Errorf("encode %s: %w", m.describe(), err))
		return
	}
	ike.lastResp = packets
	ike.lastRespTo = [2]netip.AddrPort{req.to, req.from}
	ike.lastRespSum = m.describe()
	ike.nextPeerID = req.msgID + 1
	ike.busy = false
	f.resendResponse(ike)
}

func (f *Family) resendResponse(ike *ikeSA) {
	for i, p := range ike.lastResp {
		sum := ike.lastRespSum
		if len(ike.lastResp) > 1 {
			sum = fmt.Sprintf("%s frag %d/%d", ike.lastRespSum, i+1, len(ike.lastResp))
		}
		f.emit(SendDatagram{Local: ike.lastRespTo[0], Remote: ike.lastRespTo[1], Data: p, Summary: sum})
	}
}

// findIKE returns the family's IKE SA that p belongs to.
func (f *Family) findIKE(p Peeked) *ikeSA {
	for _, ike := range f.allIKE() {
		if ike.localSPI() != p.LocalSPI {
			continue
		}
		if ike.spiI != p.SPIi {
			continue
		}
		// The responder SPI is learned from the IKE_SA_INIT response.
		if ike.spiR != p.SPIr && !(ike.initiator && ike.spiR == 0 && p.Exchange == uint8(wire.ExchangeIKESAInit)) {
			continue
		}
		return ike
	}
	return nil
}

// onPacket is the entry of every received datagram: window and integrity checks first
// (RFC 7296 §2.3, §2.21), then the exchange handlers.
func (f *Family) onPacket(p PacketReceived) {
	h, err := Peek(p.Data)
	if err != nil {
		f.drop(telemetry.DropMalformed, err.Error())
		return
	}
	if h.Kind == PeekNewSA {
		// A retransmitted IKE_SA_INIT request to a responder family.
		for _, ike := range f.allIKE() {
			if !ike.initiator && ike.spiI == h.SPIi && ike.init != nil && ike.init.request != nil && ike.lastResp != nil {
				if string(ike.init.request) == string(p.Data) {
					f.resendResponse(ike)
					return
				}
				if ike.nextPeerID == 1 && sameInitRequest(ike.init.request, p.Data) {
					// The initiator restarted with a COOKIE (perhaps a forged one) after
					// we had answered: it will sign this variant in IKE_AUTH (§2.15
					// RealMessage1), so take it and answer as before.
					ike.init.request = clone(p.Data)
					f.resendResponse(ike)
					return
				}
			}
		}
		f.drop(telemetry.DropUnexpected, "IKE_SA_INIT request for an existing family")
		return
	}
	ike := f.findIKE(h)
	if ike == nil {
		f.drop(telemetry.DropUnknownSPI, fmt.Sprintf("spi %v", h.LocalSPI))
		return
	}
	if wire.ExchangeType(h.Exchange) == wire.ExchangeIKESAInit {
		if ike.initiator && h.Response && ike.init != nil && ike.active != nil && ike.active.exchange == wire.ExchangeIKESAInit {
			f.onInitResponse(ike, p)
			return
		}
		f.drop(telemetry.DropUnexpected, "IKE_SA_INIT message out of place")
		return
	}
	if ike.opener == nil {
		f.drop(telemetry.DropUnexpected, "protected message before keys")
		return
	}
	if !h.Response {
		f.onRequestPacket(ike, h, p)
	} else {
		f.onResponsePacket(ike, h, p)
	}
}

func (f *Family) onRequestPacket(ike *ikeSA, h Peeked, p PacketReceived) {
	switch {
	case h.MsgID+1 == ike.nextPeerID && ike.lastResp != nil:
		// A retransmission: verify it is genuine, then re-send the cached response
		// (only once per fragmented request: on its first fragment).
		first, err := f.verifyRetransmit(ike, p.Data)
		if err != nil {
			f.drop(telemetry.DropIntegrity, err.Error())
			return
		}
		if first {
			f.resendResponse(ike)
		}
		return
	case h.MsgID == ike.nextPeerID:
		if ike.busy {
			f.drop(telemetry.DropUnexpected, "request is being processed")
			return
		}
	default:
		f.drop(telemetry.DropMsgIDWindow, fmt.Sprintf("request %d, expected %d", h.MsgID, ike.nextPeerID))
		return
	}
	m, complete, err := f.open(ike, p.Data, false)
	if err != nil {
		if a := wire.AnswerOf(err); a == wire.AnswerInvalidSyntax || a == wire.AnswerUnsupportedCriticalPayload {
			// Authenticated and in the window, but malformed: answer with the error
			// notify (RFC 7296 §2.21.2). Never for a policy decision.
			var de *wire.DecodeError
			resp := &message{}
			if errors.As(err, &de) && de.Notify() != nil {
				n := de.Notify()
				resp.addNotify(n.NotifyType, n.Data)
			} else {
				resp.addNotify(wire.NotifyInvalidSyntax, nil)
			}
			req := &message{exchange: wire.ExchangeType(h.Exchange), msgID: h.MsgID, from: p.Remote, to: p.Local}
			f.noteHeard(ike, p)
			f.respond(ike, req, resp)
			return
		}
		f.drop(telemetry.DropIntegrity, err.Error())
		return
	}
	if !complete {
		return
	}
	m.from, m.to = p.Remote, p.Local
	f.noteHeard(ike, p)
	f.noteNotifies(m)
	f.handleRequest(ike, m)
}

func (f *Family) onResponsePacket(ike *ikeSA, h Peeked, p PacketReceived) {
	r := ike.active
	if r == nil || r.hold || h.MsgID != r.msgID {
		f.drop(telemetry.DropMsgIDWindow, fmt.Sprintf("response %d, no such request outstanding", h.MsgID))
		return
	}
	m, complete, err := f.open(ike, p.Data, true)
	if err != nil {
		if a := wire.AnswerOf(err); a == wire.AnswerInvalidSyntax || a == wire.AnswerUnsupportedCriticalPayload {
			// An authenticated response we cannot parse: the exchange failed, and an
			// exchange failure ends the family (DESIGN.md failure table).
			ike.active = nil
			f.noteHeard(ike, p)
			f.fatal(ike, a.String(), fmt.Errorf("malformed %s response: %w", r.exchange, err))
			return
		}
		f.drop(telemetry.DropIntegrity, err.Error())
		return
	}
	if !complete {
		return
	}
	m.from, m.to = p.Remote, p.Local
	ike.active = nil
	f.noteHeard(ike, p)
	f.noteNotifies(m)
	// Fatal notifies in an authenticated response end the family whatever the
	// exchange (DESIGN.md failure table).
	for _, t := range []wire.NotifyType{wire.NotifyInvalidSyntax, wire.NotifyAuthenticationFailed, wire.NotifyUnsupportedCriticalPayload} {
		if m.getNotify(t) != nil && r.exchange != wire.ExchangeIKEAuth {
			f.emit(ExchangeDone{Exchange: exchangeName(r.exchange), Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeRejected})
			f.fatal(ike, t.String(), fmt.Errorf("peer answered %s with %s", r.summary, t))
			return
		}
	}
	r.onResponse(m)
}

// noteHeard records that an authenticated message arrived on ike from p.Remote and,
// behind a NAT, follows the peer's address (RFC 7296 §2.23).
func (f *Family) noteHeard(ike *ikeSA, p PacketReceived) {
	ike.lastHeard = f.now
	if (ike.natLocal || ike.natPeer) && (ike.remote != p.Remote || ike.local != p.Local) {
		ike.remote, ike.local = p.Remote, p.Local
	}
}

func (f *Family) noteNotifies(m *message) {
	for _, p := range m.payloads {
		if p.notify != nil && p.notify.typ.IsError() {
			f.emit(NotifySeen{Type: p.notify.typ.String()})
		}
	}
}

// handleRequest dispatches an authenticated, in-window request.
func (f *Family) handleRequest(ike *ikeSA, m *message) {
	if t := f.injectAnswer; t != 0 && f.injectCount > 0 {
		f.injectCount--
		resp := &message{}
		var data []byte
		switch t {
		case wire.NotifyUnsupportedCriticalPayload:
			data = []byte{byte(wire.PayloadEAP)}
		case wire.NotifyInvalidKEPayload:
			data = []byte{byte(ike.suite.KE >> 8), byte(ike.suite.KE)}
		}
		resp.addNotify(t, data)
		f.respond(ike, m, resp)
		return
	}
	switch m.exchange {
	case wire.ExchangeIKEAuth:
		f.onAuthRequest(ike, m)
	case wire.ExchangeCreateChildSA:
		f.onCreateChildRequest(ike, m)
	case wire.ExchangeInformational:
		f.onInformationalRequest(ike, m)
	default:
		// An exchange we do not implement: answer empty so the peer's window moves,
		// the way strongSwan answers unknown exchanges it cannot handle.
		f.respond(ike, m, &message{})
	}
}

// fatal ends the family after an IKE-fatal event on ike: a DELETE is sent where the
// peer can still hear it (fire and forget), then everything is removed.
func (f *Family) fatal(ike *ikeSA, reason string, err error) {
	if ike != nil && ike.sealer != nil && !ike.closed {
		f.sendDeleteIKEOnce(ike)
	}
	f.die(reason, err)
}

// sendDeleteIKEOnce sends an INFORMATIONAL DELETE of ike without waiting for an answer.
func (f *Family) sendDeleteIKEOnce(ike *ikeSA) {
	m := &message{exchange: wire.ExchangeInformational, spiI: ike.spiI, spiR: ike.spiR,
		initiator: ike.initiator, msgID: ike.nextReqID}
	if ike.active != nil && !ike.active.hold {
		// The window is taken; the peer would drop a second request. Use the next ID
		// anyway: a peer with a larger window may still act on it.
		m.msgID = ike.active.msgID + 1
	}
	m.add(payload{typ: wire.PayloadDelete, del: &deletePayload{proto: wire.ProtoIKE}})
	packets, err := f.encode(ike, m)
	if err != nil {
		return
	}
	sum := m.describe()
	for _, p := range packets {
		f.emit(SendDatagram{Local: ike.local, Remote: ike.remote, Data: p, Summary: sum})
	}
}

// exchangeName maps an exchange type onto the telemetry vocabulary.
func exchangeName(e wire.ExchangeType) telemetry.Exchange { return telemetry.Exchange(e.String()) }

// sameInitRequest reports whether two IKE_SA_INIT requests are the same but for COOKIE
// notifies (RFC 7296 §2.6: the retry repeats the request with the cookie first).
func sameInitRequest(a, b []byte) bool {
	ma, err1 := decodePlain(a)
	mb, err2 := decodePlain(b)
	if err1 != nil || err2 != nil || ma.spiI != mb.spiI {
		return false
	}
	strip := func(m *message) []byte {
		m.payloads = slices.DeleteFunc(m.payloads, func(p payload) bool {
			return p.notify != nil && p.notify.typ == wire.NotifyCookie
		})
		enc, err := wire.AppendPayloads(nil, toWire(m))
		if err != nil {
			return nil
		}
		return enc
	}
	ea, eb := strip(ma), strip(mb)
	return ea != nil && string(ea) == string(eb)
}
