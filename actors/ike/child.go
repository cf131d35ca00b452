package ike

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/ikecrypto"
)

// childSA is one Child SA of the family (RFC 7296 §1.3): a pair of ESP SAs. Child SAs
// belong to the family, not to one IKE SA, so an IKE SA rekey moves them all at once.
type childSA struct {
	ref   ChildRef
	cfg   *ChildConfig
	state ChildState

	spiIn, spiOut     uint32
	suite             ikecrypto.ESPSuite
	mode              Mode
	localTS, remoteTS []TrafficSelector
	encap             bool
	// sa is what is given to the kernel, keys included; kept only from the
	// negotiation until the Child SA is up (childUp drops it).
	sa *ChildSA

	replaces    ChildRef
	installedAt time.Time
	rekeyAt     time.Time
	expireAt    time.Time
	retryAt     time.Time

	// exchLow is the lower nonce of the exchange that created this Child SA, for the
	// lowest-nonce rule of simultaneous rekeys (§2.8.1).
	exchLow []byte
	// passive is the successor the peer created by rekeying this Child SA while our own
	// rekey of it was in flight (a collision to resolve when our response arrives).
	passive *childSA
	// successor replaced this Child SA (state ChildStateRekeyed); ownSuccessor: it
	// came from our own rekey, concluded with no collision known (lateRekeyCollision).
	successor    *childSA
	ownSuccessor bool
	// rekeyActive: our rekey request for this Child SA is outstanding.
	rekeyActive bool
	// peerDeleted: the peer deleted this Child SA while our rekey of it was outstanding.
	peerDeleted bool

	onInstalled func(err error) // continuation while ChildStateInstalling
	released    bool            // RemoveChild was emitted (its kernel state and SPI are released)
	announced   bool            // ChildUp was emitted (so ChildDown is owed)
}

func (c *childSA) info() ChildInfo {
	return ChildInfo{Ref: c.ref, Name: c.cfg.Name, SPIIn: c.spiIn, SPIOut: c.spiOut, Mode: c.mode,
		LocalTS: c.localTS, RemoteTS: c.remoteTS, State: c.state, InstalledAt: c.installedAt,
		RekeyAt: c.rekeyAt, ExpireAt: c.expireAt, Suite: c.suite, Encap: c.encap}
}

// lowNonce is the lower of the two nonces of the exchange that created c.
func (c *childSA) lowNonce() []byte { return c.exchLow }

// lowerNonce compares octet by octet; a nonce that is a prefix of the other is lower
// (RFC 7296 §2.8.1).
func lowerNonce(a, b []byte) []byte {
	if bytes.Compare(a, b) <= 0 {
		return a
	}
	return b
}

func (f *Family) child(ref ChildRef) *childSA {
	for _, c := range f.children {
		if c.ref == ref {
			return c
		}
	}
	return nil
}

// childByOutboundSPI finds a Child SA by the peer's (outbound) SPI, as in a DELETE or
// REKEY_SA from the peer (§3.11: the SPI the sender of the DELETE uses inbound).
func (f *Family) childByOutboundSPI(spi uint32) *childSA {
	for _, c := range f.children {
		if c.spiOut == spi && c.state != ChildStateCreating {
			return c
		}
	}
	return nil
}

// newChild adds a Child SA of definition cfg and allocates its inbound SPI. An
// allocation failure fails that Child SA alone (nil is returned, ChildFailed emitted).
func (f *Family) newChild(cfg *ChildConfig) *childSA {
	f.nextRef++
	c := &childSA{ref: f.nextRef, cfg: cfg, state: ChildStateCreating, mode: cfg.Mode}
	spi, err := f.env.AllocSPI(c.ref)
	if err != nil {
		f.emit(ChildFailed{Name: cfg.Name, Reason: telemetry.ReasonKernel})
		f.log(LevelWarn, "SPI allocation failed", "child", cfg.Name, "error", err.Error())
		return nil
	}
	c.spiIn = spi
	f.children = append(f.children, c)
	return c
}

// removeChildState emits the kernel removal and ChildDown owed for c.
func (f *Family) removeChildState(c *childSA, reason string) {
	if !c.released && c.spiIn != 0 {
		f.emit(RemoveChild{Ref: c.ref, Reason: reason})
		c.released = true
	}
	if c.announced {
		f.emit(ChildDown{Ref: c.ref, Name: c.cfg.Name, Reason: reason})
		c.announced = false
	}
	c.state = ChildStateGone
	c.onInstalled = nil
}

// dropChild removes c from the family.
func (f *Family) dropChild(c *childSA, reason string) {
	f.removeChildState(c, reason)
	f.children = slices.DeleteFunc(f.children, func(o *childSA) bool { return o == c })
	for _, o := range f.children {
		if o.passive == c {
			o.passive = nil
		}
		if o.successor == c {
			o.successor = nil
			if o.state == ChildStateRekeyed {
				// Its replacement is gone before it was: the rekey did not happen
				// after all and the old Child SA is the live one again (the peer
				// rekeys it anew, or we do at the retry).
				o.state = ChildStateUp
				if o.rekeyAt.IsZero() {
					o.retryAt = f.now.Add(f.retryDelay())
				}
			}
		}
	}
}

// failChild records that a Child SA could not be created: only it is affected.
func (f *Family) failChild(c *childSA, reason string) {
	f.emit(ChildFailed{Name: c.cfg.Name, Reason: reason})
	f.log(LevelInfo, "Child SA failed, IKE SA kept", "child", c.cfg.Name, "reason", reason)
	f.dropChild(c, reason)
}

// negotiated fills in what the exchange agreed for c and derives its keys. ours and
// peer are the exchange's nonces in initiator/responder order; weInitiated tells
// whether we sent the request.
func (f *Family) negotiated(ike *ikeSA, c *childSA, prop wire.Proposal, spiOut uint32, localTS, remoteTS []TrafficSelector,
	ni, nr []byte, weInitiated bool, shared []byte) error {
	suite, err := ikecrypto.ESPSuiteFromProposal(prop)
	if err != nil {
		return fmt.Errorf("child %s: %w", c.cfg.Name, err)
	}
	var secrets [][]byte
	if shared != nil {
		secrets = append(secrets, shared)
	}
	keys, err := ikecrypto.DeriveChildKeys(suite, ike.suite.PRF, ike.skD, ni, nr, secrets...)
	if err != nil {
		return fmt.Errorf("child %s: %w", c.cfg.Name, err)
	}
	c.suite, c.spiOut = suite, spiOut
	c.localTS, c.remoteTS = shareTS(localTS, c.cfg.LocalTS), shareTS(remoteTS, c.cfg.RemoteTS)
	c.exchLow = clone(lowerNonce(ni, nr))
	// Keys are labelled by the exchange's initiator (§2.17): "I" protects traffic from
	// the initiator to the responder, i.e. the responder's inbound SA.
	in, out := keys.EncrR, keys.EncrI
	inInteg, outInteg := keys.IntegR, keys.IntegI
	if !weInitiated {
		in, out = keys.EncrI, keys.EncrR
		inInteg, outInteg = keys.IntegI, keys.IntegR
	}
	encap := ike.natLocal || ike.natPeer
	c.encap = encap
	c.sa = &ChildSA{
		Ref: c.ref, Name: c.cfg.Name, Replaces: c.replaces, Mode: c.mode,
		Local: ike.local.Addr(), Remote: ike.remote.Addr(), Encap: encap,
		Inbound:  espKeys(c.spiIn, suite, in, inInteg),
		Outbound: espKeys(spiOut, suite, out, outInteg),
		ESN:      suite.ESN, LocalTS: localTS, RemoteTS: remoteTS,
		ReplayWindow: c.cfg.ReplayWindow,
	}
	if encap {
		c.sa.LocalPort, c.sa.RemotePort = ike.local.Port(), ike.remote.Port()
	}
	c.sa.Lifetime = f.childLifetime(c.cfg)
	return nil
}

func espKeys(spi uint32, s ikecrypto.ESPSuite, encr, integ []byte) ESPKeys {
	k := ESPKeys{SPI: spi, Encr: s.Encr, EncrKey: encr, Integ: s.Integ, IntegKey: integ}
	salt := 0
	switch s.Encr {
	case wire.EncrAESGCM8, wire.EncrAESGCM12, wire.EncrAESGCM16, wire.EncrChaCha20Poly1305:
		salt = 4
	}
	k.EncrKeyLen = (len(encr) - salt) * 8
	return k
}

// childLifetime is the kernel lifetime of a new Child SA: the soft limits jittered so
// that SAs set up together do not rekey together.
func (f *Family) childLifetime(cfg *ChildConfig) Lifetime {
	lt := Lifetime{HardTime: cfg.LifeTime, HardBytes: cfg.LifeBytes, HardPackets: cfg.LifePackets}
	if cfg.RekeyTime > 0 {
		lt.SoftTime = cfg.RekeyTime - f.jitter(cfg.RandTime)
	}
	if cfg.RekeyBytes > 0 {
		lt.SoftBytes = cfg.RekeyBytes - uint64(f.jitter(time.Duration(cfg.RandBytes)))
	}
	if cfg.RekeyPackets > 0 {
		lt.SoftPackets = cfg.RekeyPackets - uint64(f.jitter(time.Duration(cfg.RandPackets)))
	}
	return lt
}

// install hands c to the kernel and continues with cont once it reports back.
func (f *Family) install(c *childSA, cont func(err error)) {
	c.state = ChildStateInstalling
	c.onInstalled = cont
	f.emit(InstallChild{SA: *c.sa})
}

func (f *Family) onChildInstalled(ref ChildRef, err error) {
	c := f.child(ref)
	if c == nil || c.state != ChildStateInstalling || c.onInstalled == nil {
		return
	}
	cont := c.onInstalled
	c.onInstalled = nil
	cont(err)
}

// childUp marks c installed on both ends and schedules its rekey (childRekeyDue) and
// hard expiry (childExpired) from the jittered lifetime.
func (f *Family) childUp(c *childSA) {
	c.state = ChildStateUp
	c.installedAt = f.now
	if c.sa != nil {
		if c.sa.Lifetime.SoftTime > 0 {
			c.rekeyAt = f.now.Add(c.sa.Lifetime.SoftTime)
		}
		if c.sa.Lifetime.HardTime > 0 {
			c.expireAt = f.now.Add(c.sa.Lifetime.HardTime)
		}
	}
	// The kernel has the keys; the family needs neither them nor the rest of sa.
	c.sa = nil
	c.announced = true
	f.emit(ChildUp{Child: c.info()})
}

// Child events from the shell.

func (f *Family) onChildExpired(ref ChildRef, hard bool) {
	c := f.child(ref)
	if c == nil {
		return
	}
	if hard {
		f.childHardExpired(c)
		return
	}
	f.queueRekeyChild(c)
}

// childHardExpired: the hard lifetime ran out without a rekey. The Child SA is gone
// locally; tell the peer.
func (f *Family) childHardExpired(c *childSA) {
	if c.state == ChildStateRekeyed && f.queued(taskDeleteChild, c.ref) {
		// Replaced, and we still owe the peer its DELETE (queued behind another
		// exchange): the kernel state goes now, the DELETE when its turn comes, or
		// the peer keeps its half forever (found by randomized runs, seed 794).
		f.removeChildState(c, telemetry.ReasonExpired)
		return
	}
	if c.state == ChildStateRekeyed || c.state == ChildStateDeleting {
		// Replaced (the peer deletes it) or being deleted: just drop it.
		f.dropChild(c, telemetry.ReasonExpired)
		return
	}
	f.removeChildState(c, telemetry.ReasonExpired)
	c.state = ChildStateGone
	f.queueDeleteOfGone(c, telemetry.ReasonExpired)
}

// onChildDied: the child actor died; its kernel state is gone or going. Remove it and
// send a DELETE for its SPIs; nothing else changes (DESIGN.md failure table).
func (f *Family) onChildDied(ref ChildRef) {
	c := f.child(ref)
	if c == nil {
		return
	}
	f.emit(ChildFailed{Name: c.cfg.Name, Reason: telemetry.ReasonKilled})
	if c.state == ChildStateCreating || c.state == ChildStateInstalling {
		// Still negotiating: let the exchange finish; it will find the child gone.
		if c.onInstalled != nil {
			cont := c.onInstalled
			c.onInstalled = nil
			cont(fmt.Errorf("child actor died"))
		}
		return
	}
	f.removeChildState(c, telemetry.ReasonKilled)
	f.queueDeleteOfGone(c, telemetry.ReasonKilled)
}

// queueDeleteOfGone keeps c (state ChildStateGone, nothing in the kernel) only until a
// DELETE for its SPI has been sent.
func (f *Family) queueDeleteOfGone(c *childSA, reason string) {
	c.state = ChildStateGone
	if c.spiOut == 0 || f.ike == nil || !f.ike.established() {
		f.dropChild(c, reason)
		return
	}
	f.enqueue(task{kind: taskDeleteChild, ref: c.ref, reason: reason})
}

// Traffic selectors (RFC 7296 §2.9).

// dynamicTS resolves "dynamic" (an empty list) to the single address addr.
func dynamicTS(ts []TrafficSelector, addr netip.Addr) []TrafficSelector {
	if len(ts) > 0 {
		return ts
	}
	addr = addr.Unmap()
	return []TrafficSelector{TSFromPrefix(netip.PrefixFrom(addr, addr.BitLen()))}
}

// intersectTS returns the selector both a and b cover, if any.
func intersectTS(a, b TrafficSelector) (TrafficSelector, bool) {
	if a.Start.BitLen() != b.Start.BitLen() {
		return TrafficSelector{}, false
	}
	var out TrafficSelector
	switch {
	case a.Protocol == b.Protocol || b.Protocol == 0:
		out.Protocol = a.Protocol
	case a.Protocol == 0:
		out.Protocol = b.Protocol
	default:
		return TrafficSelector{}, false
	}
	out.StartPort, out.EndPort = max(a.StartPort, b.StartPort), min(a.EndPort, b.EndPort)
	if out.StartPort > out.EndPort {
		return TrafficSelector{}, false
	}
	out.Start, out.End = a.Start, a.End
	if b.Start.Compare(out.Start) > 0 {
		out.Start = b.Start
	}
	if b.End.Compare(out.End) < 0 {
		out.End = b.End
	}
	if out.Start.Compare(out.End) > 0 {
		return TrafficSelector{}, false
	}
	return out, true
}

// narrowTS is the responder's narrowing: every part of offered that allowed covers
// (§2.9), without duplicates, in offered order.
// shareTS returns the definition's selectors when the negotiated ones are the same, so
// that an idle Child SA holds no copy of its definition's selectors (read-only slices).
func shareTS(got, defined []TrafficSelector) []TrafficSelector {
	if len(defined) > 0 && slices.Equal(got, defined) {
		return defined
	}
	return got
}

func narrowTS(offered, allowed []TrafficSelector) []TrafficSelector {
	var out []TrafficSelector
	for _, o := range offered {
		for _, a := range allowed {
			if x, ok := intersectTS(o, a); ok && !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
	}
	return out
}

// coveredTS reports whether every selector of got lies inside one of offered: the
// initiator's check of the responder's narrowing.
func coveredTS(got, offered []TrafficSelector) bool {
	if len(got) == 0 {
		return false
	}
	for _, g := range got {
		ok := false
		for _, o := range offered {
			if x, in := intersectTS(g, o); in && x == g {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// selectChildConfig is the responder's choice of a child definition for a request
// with tsi (the peer's side) and tsr (ours): the first whose configured selectors are
// exactly the proposed ones (as strongSwan ranks an exact match above a wider
// definition that contains it: a child for one port beside a child for the whole
// host), else the first that accepts the selectors as proposed, else the first whose
// selectors overlap both (narrowing, §2.9).
func (f *Family) selectChildConfig(ike *ikeSA, tsi, tsr []TrafficSelector) (*ChildConfig, []TrafficSelector, []TrafficSelector) {
	for i := range f.cfg.Children {
		cc := &f.cfg.Children[i]
		local, remote := dynamicTS(cc.LocalTS, ike.local.Addr()), dynamicTS(cc.RemoteTS, ike.remote.Addr())
		if slices.Equal(local, tsr) && slices.Equal(remote, tsi) {
			return cc, local, remote
		}
	}
	var best *ChildConfig
	var bestLocal, bestRemote []TrafficSelector
	for i := range f.cfg.Children {
		cc := &f.cfg.Children[i]
		local := narrowTS(tsr, dynamicTS(cc.LocalTS, ike.local.Addr()))
		remote := narrowTS(tsi, dynamicTS(cc.RemoteTS, ike.remote.Addr()))
		if len(local) == 0 || len(remote) == 0 {
			continue
		}
		if slices.Equal(local, tsr) && slices.Equal(remote, tsi) {
			return cc, local, remote
		}
		if best == nil {
			best, bestLocal, bestRemote = cc, local, remote
		}
	}
	return best, bestLocal, bestRemote
}

// espProposals are our ESP proposals for c with our SPI; without PFS (IKE_AUTH) the
// KE transforms are stripped, as strongSwan does.
func espProposals(cfg *ChildConfig, spi uint32, withKE bool) []wire.Proposal {
	out := make([]wire.Proposal, 0, len(cfg.ESPProposals))
	for i, p := range cfg.ESPProposals {
		q := wire.Proposal{Num: uint8(i + 1), Protocol: wire.ProtoESP, SPI: spiBytes(spi)}
		for _, t := range p.Transforms {
			if !withKE && t.Type == wire.TransformKE {
				continue
			}
			q.Transforms = append(q.Transforms, t)
		}
		out = append(out, q)
	}
	return out
}

// pfsGroup is the KE method of our first ESP proposal (0 without PFS).
func pfsGroup(cfg *ChildConfig) wire.TransformID {
	if len(cfg.ESPProposals) == 0 {
		return wire.KENone
	}
	for _, t := range cfg.ESPProposals[0].Transforms {
		if t.Type == wire.TransformKE && t.ID != wire.KENone {
			return t.ID
		}
	}
	return wire.KENone
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
