package ike

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
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

// IKE_SA_INIT (RFC 7296 §1.2):
//
//	Initiator                         Responder
//	-------------------------------------------------------------------
//	HDR, SAi1, KEi, Ni,
//	  [N(NAT_DETECTION_*)], [N(IKEV2_FRAGMENTATION_SUPPORTED)],
//	  [N(SIGNATURE_HASH_ALGORITHMS)]  -->
//	                                  <--  HDR, SAr1, KEr, Nr, [CERTREQ],
//	                                         [N(NAT_DETECTION_*)], [N(…_SUPPORTED)]
//
// An answer of N(COOKIE) (§2.6) or N(INVALID_KE_PAYLOAD) (§1.2) makes the initiator
// retry at once; any other unprotected error notify starts a grace period (§2.21.1).

// Limits on the initiator's retries (strongSwan allows a handful of each).
const (
	maxCookieRetries    = 3
	maxInvalidKERetries = 2
	nonceLen            = 32
)

// errHalfOpen ends a responder family that never got IKE_AUTH.
var errHalfOpen = errors.New("no IKE_AUTH request after IKE_SA_INIT")

// initState is the bookkeeping of IKE_SA_INIT and IKE_AUTH, dropped once established.
type initState struct {
	request  []byte // RealMessage1: the IKE_SA_INIT request as sent (§2.15)
	response []byte // RealMessage2
	offered  []wire.Proposal
	chosen   wire.Proposal
	group    wire.TransformID
	priv     ikecrypto.Private
	cookie   []byte
	cookies  int // COOKIE retries done
	keRetry  int // INVALID_KE_PAYLOAD retries done

	graceUntil  time.Time
	graceReason wire.NotifyType

	firstChild string   // the child definition negotiated in IKE_AUTH
	child      *childSA // its Child SA
	childTSi   []TrafficSelector
	childTSr   []TrafficSelector
	childProps []wire.Proposal
	authSent   bool
}

// keResult is what a key-exchange Work returns.
type keResult struct {
	priv   ikecrypto.Private
	public []byte
	shared []byte
	keys   *ikecrypto.IKEKeys
	err    error
}

// startInit begins the family as initiator (Initiate, InitiateChild or Acquire).
func (f *Family) startInit() {
	cfg := f.cfg
	if len(cfg.RemoteAddrs) == 0 {
		f.die(telemetry.ReasonTerminated, errors.New("initiate: connection has no remote address"))
		return
	}
	remote := cfg.RemoteAddrs[0]
	local := netip.IPv4Unspecified()
	if remote.Is6() {
		local = netip.IPv6Unspecified()
	}
	if len(cfg.LocalAddrs) > 0 {
		local = cfg.LocalAddrs[0]
	}
	groups := proposal.KEGroups(cfg.Proposals)
	if len(groups) == 0 {
		f.die(telemetry.ReasonNoProposal, errors.New("initiate: IKE proposals without a key exchange method"))
		return
	}
	ike := &ikeSA{
		spiI: f.newSPI(), initiator: true, state: IKEStateConnecting,
		local: netip.AddrPortFrom(local, cfg.LocalPort), remote: netip.AddrPortFrom(remote, cfg.RemotePort),
		init: &initState{offered: cfg.Proposals, group: groups[0]},
		ni:   f.randBytes(nonceLen),
	}
	f.ike = ike
	ike.routed = true
	f.emit(RouteSPI{SPI: ike.spiI})
	f.log(LevelInfo, "initiating IKE SA", "spi_i", ike.spiI.String(), "remote", ike.remote.String())
	f.generateKE(ike)
}

// generateKE makes the initiator's key-exchange value off the family's turn, then
// sends the IKE_SA_INIT request.
func (f *Family) generateKE(ike *ikeSA) {
	group, err := ikecrypto.Group(ike.init.group)
	if err != nil {
		f.die(telemetry.ReasonNoProposal, fmt.Errorf("initiate: %w", err))
		return
	}
	seed := f.randBytes(32)
	ike.busy = true
	f.runWork(func() any {
		priv, err := group.Generate(keRand(seed))
		return keResult{priv: priv, err: err}
	}, func(res any) {
		ike.busy = false
		r, _ := res.(keResult)
		if r.err != nil || r.priv == nil {
			f.die(telemetry.ReasonNoProposal, fmt.Errorf("key exchange %v: %v", ike.init.group, r.err))
			return
		}
		ike.init.priv = r.priv
		f.sendInitRequest(ike)
	})
}

// sendInitRequest (re)sends IKE_SA_INIT with message ID 0.
func (f *Family) sendInitRequest(ike *ikeSA) {
	in := ike.init
	m := &message{exchange: wire.ExchangeIKESAInit}
	if in.cookie != nil {
		m.addNotify(wire.NotifyCookie, in.cookie) // first, as §2.6 requires
	}
	m.addSA(in.offered)
	m.addKE(in.group, in.priv.Public())
	m.addNonce(ike.ni)
	f.addNATD(m, ike, true)
	if f.cfg.Fragmentation == FragmentationYes {
		m.addNotify(wire.NotifyIKEv2FragmentationSupported, nil)
	}
	m.addNotify(wire.NotifySignatureHashAlgorithms, hashAlgorithms)
	ike.nextReqID = 0
	ike.active = nil
	f.sendRequest(ike, m, func(*message) {}, nil)
	if f.done {
		return
	}
	in.request = ike.active.packets[0]
}

// hashAlgorithms are the RFC 7427 hashes we announce: SHA2-256, SHA2-384, SHA2-512,
// Identity (the list strongSwan sends).
var hashAlgorithms = []byte{0, 2, 0, 3, 0, 4, 0, 5}

// natdHash is SHA-1(SPIi | SPIr | IP | Port) (RFC 7296 §2.23).
func natdHash(spiI, spiR SPI, ap netip.AddrPort) []byte {
	h := sha1.New()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(spiI))
	binary.BigEndian.PutUint64(b[8:], uint64(spiR))
	h.Write(b[:])
	h.Write(addrBytes(ap.Addr()))
	binary.BigEndian.PutUint16(b[:2], ap.Port())
	h.Write(b[:2])
	return h.Sum(nil)
}

// addNATD adds NAT_DETECTION_SOURCE_IP and _DESTINATION_IP. With Encap the source hash
// is deliberately wrong so that the peer sees a NAT and both use UDP encapsulation (as
// strongSwan's encap=yes does). An initiator that does not know its own address (no
// local_addrs configured) sends none: a hash of the unspecified address would make the
// peer see a NAT that is not there. The responder answers with them only if the
// request had them (§2.23).
func (f *Family) addNATD(m *message, ike *ikeSA, request bool) {
	if request && !ike.local.Addr().IsValid() || ike.local.Addr().IsUnspecified() {
		return
	}
	if !request && !ike.peerNATD {
		return
	}
	spiR := ike.spiR
	if request {
		spiR = 0
	}
	src := natdHash(ike.spiI, spiR, ike.local)
	if f.cfg.Encap {
		if ike.fakeNATDSrc == nil {
			ike.fakeNATDSrc = f.randBytes(sha1.Size)
		}
		src = ike.fakeNATDSrc
	}
	m.addNotify(wire.NotifyNATDetectionSourceIP, src)
	m.addNotify(wire.NotifyNATDetectionDestinationIP, natdHash(ike.spiI, spiR, ike.remote))
}

// detectNAT evaluates the peer's NAT_DETECTION notifies in m, received from p.Remote on
// p.Local (§2.23). Without them, no NAT is assumed.
func (f *Family) detectNAT(ike *ikeSA, m *message, local, remote netip.AddrPort, spiR SPI) {
	srcs := m.notifies(wire.NotifyNATDetectionSourceIP)
	dsts := m.notifies(wire.NotifyNATDetectionDestinationIP)
	if len(srcs) == 0 || len(dsts) == 0 {
		ike.natLocal, ike.natPeer = f.cfg.Encap, false
		return
	}
	ike.peerNATD = true
	match := func(ns []*notifyPayload, want []byte) bool {
		return slices.ContainsFunc(ns, func(n *notifyPayload) bool { return string(n.data) == string(want) })
	}
	ike.natPeer = !match(srcs, natdHash(ike.spiI, spiR, remote))
	ike.natLocal = !match(dsts, natdHash(ike.spiI, spiR, local)) || f.cfg.Encap
}

// onInitResponse handles an IKE_SA_INIT response. Nothing in it is authenticated, so
// nothing in it may end the family at once (DESIGN.md: junk changes nothing).
func (f *Family) onInitResponse(ike *ikeSA, p PacketReceived) {
	m, err := decodePlain(p.Data)
	if err != nil {
		f.drop(telemetry.DropMalformed, err.Error())
		return
	}
	in := ike.init
	f.noteNotifies(m)
	if n := m.getNotify(wire.NotifyCookie); n != nil && !m.has(wire.PayloadSA) {
		// A status notify, so noteNotifies did not count it: the daemon counts the
		// COOKIE challenges its initiators receive (§2.6), followed or not.
		f.emit(NotifySeen{Type: wire.NotifyCookie.String()})
		if in.cookie != nil && bytes.Equal(in.cookie, n.data) {
			// The cookie we already send: a duplicate of the challenge we answered.
			// Sending IKE_SA_INIT again would give the responder two different first
			// messages, and the AUTH payloads would not verify (RFC 7296 §2.15; found
			// by randomized runs, seed 12642).
			f.drop(telemetry.DropUnauthNotify, "COOKIE already answered")
			return
		}
		if in.cookies >= maxCookieRetries {
			f.drop(telemetry.DropUnauthNotify, "COOKIE again")
			return
		}
		in.cookies++
		in.cookie = clone(n.data)
		f.log(LevelDebug, "retrying IKE_SA_INIT with COOKIE")
		f.sendInitRequest(ike)
		return
	}
	if n := m.getNotify(wire.NotifyInvalidKEPayload); n != nil && !m.has(wire.PayloadSA) {
		want := wire.TransformID(0)
		if len(n.data) == 2 {
			want = wire.TransformID(binary.BigEndian.Uint16(n.data))
		}
		if want == in.group && in.keRetry > 0 {
			// A stale copy of the answer we already followed (a duplicate, or the
			// answer to a retransmission of the request before the retry): it says
			// nothing about the current request and must not start the grace period
			// (found by randomized runs, seed 526).
			f.drop(telemetry.DropUnauthNotify, "INVALID_KE_PAYLOAD for the group in use")
			return
		}
		if want != in.group && slices.Contains(proposal.KEGroups(in.offered), want) && in.keRetry < maxInvalidKERetries {
			in.keRetry++
			in.group = want
			f.log(LevelInfo, "peer wants another key exchange method, retrying", "group", wire.TransformName(wire.TransformKE, want))
			ike.active = nil
			f.generateKE(ike)
			return
		}
		f.unauthenticatedError(ike, wire.NotifyInvalidKEPayload)
		return
	}
	if n := m.errorNotify(); n != nil {
		f.unauthenticatedError(ike, n.typ)
		return
	}
	sa, ke, nr := m.sa(), m.ke(), m.nonce()
	if m.spiR == 0 || sa == nil || ke == nil || nr == nil {
		f.drop(telemetry.DropMalformed, "IKE_SA_INIT response without SPIr, SA, KE or Nr")
		return
	}
	chosen, err := proposal.CheckChosen(in.offered, sa, proposal.Options{})
	if err != nil {
		f.unauthenticatedError(ike, wire.NotifyNoProposalChosen)
		f.log(LevelWarn, "IKE_SA_INIT response with a proposal we did not offer", "error", err.Error())
		return
	}
	suite, err := ikecrypto.IKESuiteFromProposal(chosen)
	if err != nil || suite.KE != in.group || ke.group != in.group {
		f.unauthenticatedError(ike, wire.NotifyInvalidKEPayload)
		return
	}
	prf, err := ikecrypto.LookupPRF(suite.PRF)
	if err != nil {
		f.unauthenticatedError(ike, wire.NotifyNoProposalChosen)
		return
	}
	// The answer is acceptable: stop retransmitting and derive the keys.
	r := ike.active
	ike.active = nil
	f.emit(ExchangeDone{Exchange: telemetry.ExchangeIKESAInit, Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeOK})
	ike.spiR = m.spiR
	ike.nr = clone(nr)
	in.response = clone(p.Data)
	in.chosen = chosen
	in.graceUntil = time.Time{}
	ike.suite, ike.prf = suite, prf
	ike.peerFrag = m.getNotify(wire.NotifyIKEv2FragmentationSupported) != nil
	ike.peerChildless = m.getNotify(wire.NotifyChildlessIKEv2Supported) != nil
	if p.Local.Addr().IsValid() && !p.Local.Addr().IsUnspecified() {
		ike.local = p.Local
	}
	f.detectNAT(ike, m, ike.local, r.remote, ike.spiR)
	priv, peer := in.priv, clone(ke.data)
	ni, spiI, spiR := ike.ni, ike.spiI, ike.spiR
	ike.busy = true
	f.runWork(func() any {
		shared, err := priv.SharedSecret(peer)
		if err != nil {
			return keResult{err: err}
		}
		keys, err := ikecrypto.DeriveIKEKeys(suite, ni, nr, shared, uint64(spiI), uint64(spiR))
		return keResult{keys: keys, err: err}
	}, func(res any) {
		ike.busy = false
		kr, _ := res.(keResult)
		if kr.err != nil || kr.keys == nil {
			f.die(telemetry.ReasonInvalidSyn, fmt.Errorf("IKE_SA_INIT: key exchange: %v", kr.err))
			return
		}
		if err := f.setKeys(ike, kr.keys); err != nil {
			f.die(telemetry.ReasonNoProposal, err)
			return
		}
		f.startAuth(ike)
	})
}

// setKeys installs the IKE SA's keys and SK ciphers.
func (f *Family) setKeys(ike *ikeSA, keys *ikecrypto.IKEKeys) error {
	out, err := keys.Outbound(ike.suite, ike.initiator)
	if err != nil {
		return fmt.Errorf("IKE SA keys: %w", err)
	}
	in, err := keys.Inbound(ike.suite, ike.initiator)
	if err != nil {
		return fmt.Errorf("IKE SA keys: %w", err)
	}
	ike.keys, ike.sealer, ike.opener, ike.skD = keys, out, in, keys.D
	if ike.init == nil {
		ike.forgetAuthSecrets() // a rekeyed IKE SA: no IKE_AUTH on it
	}
	return nil
}

// forgetAuthSecrets drops what only IKE_SA_INIT and IKE_AUTH need once they are done:
// SK_pi, SK_pr and the nonces (§2.15), and the raw SK_e/SK_a keys the SK ciphers were
// made from. SK_d stays (Child SA keys and IKE SA rekeys derive from it, §2.17, §2.18),
// copied so that the buffer all keys were cut from can go.
func (ike *ikeSA) forgetAuthSecrets() {
	if ike.keys != nil {
		ike.skD, ike.keys = clone(ike.skD), nil
	}
	ike.ni, ike.nr = nil, nil
}

// unauthenticatedError handles an unprotected error notify in answer to IKE_SA_INIT:
// it changes nothing now; if no valid answer arrives within the grace period the family
// gives up with that notify as the reason (RFC 7296 §2.21.1, DESIGN.md).
func (f *Family) unauthenticatedError(ike *ikeSA, t wire.NotifyType) {
	f.drop(telemetry.DropUnauthNotify, t.String())
	if ike.init.graceUntil.IsZero() {
		ike.init.graceUntil = f.now.Add(f.cfg.InitGrace)
		ike.init.graceReason = t
	}
}

// initGraceExpired: no valid IKE_SA_INIT answer came during the grace period.
func (f *Family) initGraceExpired(ike *ikeSA) {
	t := ike.init.graceReason
	f.emit(ExchangeDone{Exchange: telemetry.ExchangeIKESAInit, Role: telemetry.RoleInitiator, Outcome: telemetry.OutcomeRejected})
	f.die(t.String(), fmt.Errorf("peer answered IKE_SA_INIT with %v", t))
}

// respondInit answers the first IKE_SA_INIT request of a responder family. Returning
// an error means the request is unusable (nothing is created).
func (f *Family) respondInit(p PacketReceived) error {
	m, err := decodePlain(p.Data)
	if err != nil {
		return err
	}
	if m.exchange != wire.ExchangeIKESAInit || m.response || m.msgID != 0 || m.spiR != 0 {
		return fmt.Errorf("not an IKE_SA_INIT request: %w", ErrNotIKE)
	}
	sa, ke, ni := m.sa(), m.ke(), m.nonce()
	if sa == nil || ke == nil || ni == nil {
		return fmt.Errorf("IKE_SA_INIT request without SA, KE or Ni: %w", ErrNotIKE)
	}
	ike := &ikeSA{spiI: m.spiI, initiator: false, state: IKEStateConnecting, local: p.Local, remote: p.Remote,
		init: &initState{request: clone(p.Data)}, ni: ni}
	f.ike = ike
	req := &message{exchange: wire.ExchangeIKESAInit, from: p.Remote, to: p.Local}
	f.noteNotifies(m)

	// Proposal selection (§2.7) over the candidate connections.
	var chosen wire.Proposal
	found := false
	for _, c := range f.candidates {
		if ch, err := proposal.Select(c.Proposals, sa, proposal.Options{}); err == nil {
			chosen, found, f.cfg = ch, true, c
			break
		}
	}
	if !found {
		resp := &message{}
		resp.addNotify(wire.NotifyNoProposalChosen, nil)
		f.respond(ike, req, resp)
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeIKESAInit, Role: telemetry.RoleResponder, Outcome: telemetry.OutcomeRejected})
		f.die(telemetry.ReasonNoProposal, nil)
		return nil
	}
	suite, err := ikecrypto.IKESuiteFromProposal(chosen)
	if err == nil {
		ike.prf, err = ikecrypto.LookupPRF(suite.PRF)
	}
	var group ikecrypto.KEGroup
	if err == nil {
		group, err = ikecrypto.Group(suite.KE)
	}
	if err != nil {
		resp := &message{}
		resp.addNotify(wire.NotifyNoProposalChosen, nil)
		f.respond(ike, req, resp)
		f.die(telemetry.ReasonNoProposal, err)
		return nil
	}
	if ke.group != suite.KE {
		// §1.2: ask for the group we selected; keep no state (the initiator retries
		// with a new IKE_SA_INIT, which makes a new family).
		resp := &message{}
		resp.addNotify(wire.NotifyInvalidKEPayload, binary.BigEndian.AppendUint16(nil, uint16(suite.KE)))
		f.respond(ike, req, resp)
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeIKESAInit, Role: telemetry.RoleResponder, Outcome: telemetry.OutcomeRejected})
		f.die(telemetry.ReasonInvalidKE, nil)
		return nil
	}
	ike.spiR = f.newSPI()
	ike.suite = suite
	ike.init.chosen = chosen
	ike.nr = f.randBytes(nonceLen)
	ike.peerFrag = m.getNotify(wire.NotifyIKEv2FragmentationSupported) != nil
	f.detectNAT(ike, m, p.Local, p.Remote, 0)
	ike.routed = true
	f.emit(RouteSPI{SPI: ike.spiR})
	ike.halfOpenUntil = f.now.Add(f.cfg.HalfOpenTimeout)

	seed := f.randBytes(32)
	peer := clone(ke.data)
	nr, spiI, spiR := ike.nr, ike.spiI, ike.spiR
	ike.busy = true
	f.runWork(func() any {
		pub, shared, err := group.Respond(keRand(seed), peer)
		if err != nil {
			return keResult{err: err}
		}
		keys, err := ikecrypto.DeriveIKEKeys(suite, ni, nr, shared, uint64(spiI), uint64(spiR))
		return keResult{public: pub, keys: keys, err: err}
	}, func(res any) {
		ike.busy = false
		kr, _ := res.(keResult)
		if kr.err != nil || kr.keys == nil {
			// A bad public value from an unauthenticated peer: answer nothing.
			f.drop(telemetry.DropMalformed, fmt.Sprintf("IKE_SA_INIT key exchange: %v", kr.err))
			f.die(telemetry.ReasonInvalidSyn, fmt.Errorf("IKE_SA_INIT: key exchange: %v", kr.err))
			return
		}
		if err := f.setKeys(ike, kr.keys); err != nil {
			f.die(telemetry.ReasonNoProposal, err)
			return
		}
		resp := &message{}
		resp.addSA([]wire.Proposal{chosen})
		resp.addKE(suite.KE, kr.public)
		resp.addNonce(nr)
		f.addNATD(resp, ike, false)
		if f.cfg.Fragmentation == FragmentationYes {
			resp.addNotify(wire.NotifyIKEv2FragmentationSupported, nil)
		}
		resp.addNotify(wire.NotifySignatureHashAlgorithms, hashAlgorithms)
		if f.cfg.Childless != ChildlessNever {
			resp.addNotify(wire.NotifyChildlessIKEv2Supported, nil)
		}
		f.respond(ike, req, resp)
		ike.init.response = ike.lastResp[0]
		f.emit(ExchangeDone{Exchange: telemetry.ExchangeIKESAInit, Role: telemetry.RoleResponder, Outcome: telemetry.OutcomeOK})
	})
	return nil
}
