package ike

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/cygnet-ipsec/cygnet/wire"
)

// This file is the only place that turns the core's message into wire payloads and
// back (package wire does the octets, SK protection and fragmentation).

// Reassembly limits for fragmented messages (RFC 7383 §2.6): enough for any IKE
// message cygnet exchanges, small enough that a forged first fragment holds little.
const (
	maxFragments      = 64
	maxFragmentBytes  = 64 << 10
	fragmentsLifetime = 30 * time.Second
)

// reassembly is the state of one direction's fragmented message on an IKE SA.
type reassembly struct {
	r        *wire.Reassembler
	msgID    uint32
	deadline time.Time
}

// toWire builds the wire payloads of m.
func toWire(m *message) []wire.Payload {
	out := make([]wire.Payload, 0, len(m.payloads))
	for i := range m.payloads {
		p := &m.payloads[i]
		switch {
		case p.sa != nil:
			out = append(out, &wire.SAPayload{Proposals: p.sa})
		case p.ke != nil:
			out = append(out, &wire.KEPayload{Group: p.ke.group, Data: p.ke.data})
		case p.typ == wire.PayloadNonce:
			out = append(out, &wire.NoncePayload{Data: p.nonce})
		case p.notify != nil:
			out = append(out, &wire.NotifyPayload{Protocol: p.notify.proto, SPI: p.notify.spi, NotifyType: p.notify.typ, Data: p.notify.data})
		case p.id != nil:
			out = append(out, idPayload(p.typ == wire.PayloadIDr, *p.id))
		case p.auth != nil:
			out = append(out, &wire.AuthPayload{Method: p.auth.method, Data: p.auth.data})
		case p.typ == wire.PayloadTSi || p.typ == wire.PayloadTSr:
			sel := make([]wire.TrafficSelector, 0, len(p.ts))
			for _, ts := range p.ts {
				sel = append(sel, tsToWire(ts))
			}
			out = append(out, &wire.TSPayload{Responder: p.typ == wire.PayloadTSr, Selectors: sel})
		case p.del != nil:
			if p.del.proto == wire.ProtoIKE {
				out = append(out, wire.NewDeleteIKE())
			} else {
				out = append(out, wire.NewDeleteChild(p.del.proto, p.del.spis...))
			}
		}
	}
	return out
}

func idPayload(responder bool, id Identity) *wire.IDPayload {
	return &wire.IDPayload{Responder: responder, ID: wire.Identity{Type: wire.IDType(id.Type), Data: id.Data}}
}

// idBody is RestOfIDPayload (RFC 7296 §2.15): ID Type, three reserved octets, data.
func idBody(id Identity) []byte {
	b, _ := idPayload(false, id).AppendBody(nil)
	return b
}

func tsToWire(ts TrafficSelector) wire.TrafficSelector {
	w := wire.TSFromRange(ts.Start, ts.End)
	w.IPProtocol, w.StartPort, w.EndPort = ts.Protocol, ts.StartPort, ts.EndPort
	return w
}

// fromWire converts a decoded payload chain. Values are copied where the core keeps
// them beyond the Step (nonces, identities, selectors, SPIs).
func fromWire(m *message, ps []wire.Payload) {
	for _, wp := range ps {
		switch p := wp.(type) {
		case *wire.SAPayload:
			m.add(payload{typ: wire.PayloadSA, sa: cloneProposals(p.Proposals)})
		case *wire.KEPayload:
			m.add(payload{typ: wire.PayloadKE, ke: &kePayload{group: p.Group, data: clone(p.Data)}})
		case *wire.NoncePayload:
			m.add(payload{typ: wire.PayloadNonce, nonce: clone(p.Data)})
		case *wire.NotifyPayload:
			m.add(payload{typ: wire.PayloadNotify, notify: &notifyPayload{proto: p.Protocol, spi: clone(p.SPI), typ: p.NotifyType, data: clone(p.Data)}})
		case *wire.IDPayload:
			id := Identity{Type: IDType(p.ID.Type), Data: clone(p.ID.Data)}
			m.add(payload{typ: p.Type(), id: &id})
		case *wire.AuthPayload:
			m.add(payload{typ: wire.PayloadAUTH, auth: &authPayload{method: p.Method, data: clone(p.Data)}})
		case *wire.TSPayload:
			ts := make([]TrafficSelector, 0, len(p.Selectors))
			for _, s := range p.Selectors {
				if s.Type != wire.TSIPv4AddrRange && s.Type != wire.TSIPv6AddrRange {
					continue // not an IP range: unusable, answered with TS_UNACCEPTABLE
				}
				ts = append(ts, TrafficSelector{Protocol: s.IPProtocol, Start: s.Start, End: s.End, StartPort: s.StartPort, EndPort: s.EndPort})
			}
			m.add(payload{typ: p.Type(), ts: ts})
		case *wire.DeletePayload:
			m.add(payload{typ: wire.PayloadDelete, del: &deletePayload{proto: p.Protocol, spis: p.ChildSPIs(nil)}})
		default:
			m.add(payload{typ: wp.Type(), unknown: true})
		}
	}
}

func cloneProposals(ps []wire.Proposal) []wire.Proposal {
	out := make([]wire.Proposal, len(ps))
	for i, p := range ps {
		out[i] = wire.Proposal{Num: p.Num, Protocol: p.Protocol, SPI: clone(p.SPI), Transforms: append([]wire.Transform(nil), p.Transforms...)}
	}
	return out
}

func (m *message) header() wire.Header {
	var fl wire.Flags
	if m.initiator {
		fl |= wire.FlagInitiator
	}
	if m.response {
		fl |= wire.FlagResponse
	}
	return wire.Header{SPIi: uint64(m.spiI), SPIr: uint64(m.spiR), Exchange: m.exchange, Flags: fl, MsgID: m.msgID}
}

// encode produces the datagrams of m: plain for IKE_SA_INIT, SK-protected otherwise,
// as SKF fragments when both ends support RFC 7383 and the message is too large.
func (f *Family) encode(ike *ikeSA, m *message) ([][]byte, error) {
	h := m.header()
	inner := toWire(m)
	if m.exchange == wire.ExchangeIKESAInit {
		b, err := (&wire.Message{Header: h, Payloads: inner}).AppendTo(nil)
		if err != nil {
			return nil, err
		}
		return [][]byte{b}, nil
	}
	if ike.sealer == nil {
		return nil, fmt.Errorf("no keys to protect %s", m.exchange)
	}
	b, err := wire.AppendProtected(nil, h, inner, ike.sealer, f.randBytes(ike.sealer.IVSize()))
	if err != nil {
		return nil, err
	}
	limit := f.maxIKEMessage(ike)
	if len(b) <= limit || f.cfg.Fragmentation == FragmentationNo || !ike.peerFrag {
		return [][]byte{b}, nil
	}
	return wire.AppendFragments(h, inner, ike.sealer, limit, f.rand)
}

// maxIKEMessage is the largest IKE message sent unfragmented: FragmentSize minus the IP
// and UDP headers and, on the NAT-T port, the non-ESP marker.
func (f *Family) maxIKEMessage(ike *ikeSA) int {
	n := f.cfg.FragmentSize - 8
	if ike.remote.Addr().Is4() {
		n -= 20
	} else {
		n -= 40
	}
	if ike.local.Port() == f.opts.NATTPort {
		n -= 4
	}
	return n
}

// decodePlain decodes and verifies an unprotected message (IKE_SA_INIT).
func decodePlain(data []byte) (*message, error) {
	wm, err := wire.DecodeMessage(data)
	if err != nil {
		return nil, err
	}
	if err := wm.Verify(); err != nil {
		return nil, err
	}
	m := headerMessage(wm.Header)
	fromWire(m, wm.Payloads)
	return m, nil
}

func headerMessage(h wire.Header) *message {
	return &message{spiI: SPI(h.SPIi), spiR: SPI(h.SPIr), exchange: h.Exchange,
		initiator: h.Flags.Initiator(), response: h.Flags.Response(), msgID: h.MsgID}
}

// open decodes, authenticates and decrypts a protected message from the peer on ike.
// For a fragment it returns complete=false until the last one arrives. Errors are
// wire.DecodeErrors whose Answer says what to do.
func (f *Family) open(ike *ikeSA, data []byte, response bool) (*message, bool, error) {
	wm, err := wire.DecodeMessage(data)
	if err != nil {
		return nil, false, err
	}
	if wm.Header.Flags.Initiator() == ike.initiator {
		return nil, false, &wire.DecodeError{Answer: wire.AnswerDrop, Err: fmt.Errorf("initiator flag of our own role")}
	}
	switch wm.Protected().(type) {
	case *wire.EncryptedPayload:
		if _, err := wm.Open(nil, ike.opener); err != nil {
			return nil, false, err
		}
	case *wire.FragmentPayload:
		slot := &ike.reqFrags
		if response {
			slot = &ike.respFrags
		}
		// The reassembly (and its deadline, a timer) exists only once a fragment of
		// that message passed integrity: a forged or corrupted fragment changes
		// nothing, not even the timer (seed 37964).
		ra := *slot
		if ra == nil || ra.msgID != wm.Header.MsgID {
			ra = &reassembly{r: wire.NewReassembler(maxFragments, maxFragmentBytes), msgID: wm.Header.MsgID}
		}
		done, err := ra.r.Add(wm, ike.opener)
		if got, _ := ra.r.Received(); ra.r.Complete() {
			*slot = nil
		} else if ra != *slot && got > 0 {
			ra.deadline = f.now.Add(fragmentsLifetime)
			*slot = ra
		}
		if err != nil {
			return nil, false, err
		}
		if !done {
			return nil, false, nil
		}
	default:
		return nil, false, &wire.DecodeError{Answer: wire.AnswerDrop, Err: wire.ErrNotProtected}
	}
	if err := wire.VerifyPayloads(wm.Inner); err != nil {
		return nil, false, err
	}
	m := headerMessage(wm.Header)
	fromWire(m, wm.Inner)
	return m, true, nil
}

// verifyRetransmit checks the integrity of a retransmitted request (so that a forged
// copy cannot make us send our cached response) and reports whether it is the first
// (or only) fragment.
func (f *Family) verifyRetransmit(ike *ikeSA, data []byte) (bool, error) {
	wm, err := wire.DecodeMessage(data)
	if err != nil {
		return false, err
	}
	switch p := wm.Protected().(type) {
	case *wire.EncryptedPayload:
		if _, err := wm.Open(nil, ike.opener); err != nil && wire.AnswerOf(err) == wire.AnswerDrop {
			return false, err
		}
		return true, nil
	case *wire.FragmentPayload:
		if _, err := wire.NewReassembler(maxFragments, maxFragmentBytes).Add(wm, ike.opener); err != nil && wire.AnswerOf(err) == wire.AnswerDrop {
			return false, err
		}
		return p.Number == 1, nil
	}
	return false, &wire.DecodeError{Answer: wire.AnswerDrop, Err: wire.ErrNotProtected}
}

// keRand turns 32 octets drawn from the injected randomness into a deterministic
// stream for the key-exchange work, which runs off the family's turn and so must not
// read the family's source.
func keRand(seed []byte) *rand.ChaCha8 {
	var s [32]byte
	copy(s[:], seed)
	return rand.NewChaCha8(s)
}

// addrBytes is the address as used in NAT detection hashes: 4 octets for IPv4.
func addrBytes(a netip.Addr) []byte {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return b[:]
	}
	b := a.As16()
	return b[:]
}
