package ike

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/cygnet-ipsec/cygnet/wire"
)

// message is the core's view of one IKE message (RFC 7296 §3): the header and the
// payloads the protocol acts on, in the order they appear. The codec (codec.go) turns
// it into wire payloads and back. Byte slices of a decoded message point into the
// received buffer and must not outlive the Step that decoded it (copy what is kept).
type message struct {
	spiI, spiR SPI
	exchange   wire.ExchangeType
	initiator  bool // I flag: sent by the original initiator of the IKE SA
	response   bool // R flag
	msgID      uint32

	payloads []payload // in wire order

	from, to netip.AddrPort // where a received message came from / arrived on
}

// payload is one payload of a message; exactly one of the pointers is set.
type payload struct {
	typ     wire.PayloadType
	sa      []wire.Proposal
	ke      *kePayload
	nonce   []byte
	notify  *notifyPayload
	id      *Identity // IDi or IDr
	auth    *authPayload
	ts      []TrafficSelector // TSi or TSr
	del     *deletePayload
	unknown bool // a payload the core does not act on (vendor ID, CERTREQ, …)
}

type kePayload struct {
	group wire.TransformID
	data  []byte
}

type notifyPayload struct {
	proto wire.ProtocolID
	spi   []byte
	typ   wire.NotifyType
	data  []byte
}

type authPayload struct {
	method wire.AuthMethod
	data   []byte
}

type deletePayload struct {
	proto wire.ProtocolID
	spis  []uint32 // ESP/AH SPIs; empty for the IKE SA
}

// Builders.

func (m *message) add(p payload) { m.payloads = append(m.payloads, p) }

func (m *message) addNotify(t wire.NotifyType, data []byte) {
	m.add(payload{typ: wire.PayloadNotify, notify: &notifyPayload{typ: t, data: data}})
}

func (m *message) addChildNotify(t wire.NotifyType, spi uint32) {
	m.add(payload{typ: wire.PayloadNotify, notify: &notifyPayload{proto: wire.ProtoESP, spi: spiBytes(spi), typ: t}})
}

func (m *message) addSA(props []wire.Proposal) {
	m.add(payload{typ: wire.PayloadSA, sa: props})
}

func (m *message) addKE(group wire.TransformID, data []byte) {
	m.add(payload{typ: wire.PayloadKE, ke: &kePayload{group: group, data: data}})
}

func (m *message) addNonce(n []byte) { m.add(payload{typ: wire.PayloadNonce, nonce: n}) }

func (m *message) addTS(ts []TrafficSelector, initiator bool) {
	t := wire.PayloadTSr
	if initiator {
		t = wire.PayloadTSi
	}
	m.add(payload{typ: t, ts: ts})
}

func spiBytes(spi uint32) []byte {
	return []byte{byte(spi >> 24), byte(spi >> 16), byte(spi >> 8), byte(spi)}
}

func spiFromBytes(b []byte) (uint32, bool) {
	if len(b) != 4 {
		return 0, false
	}
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), true
}

// Accessors.

func (m *message) first(t wire.PayloadType) *payload {
	for i := range m.payloads {
		if m.payloads[i].typ == t {
			return &m.payloads[i]
		}
	}
	return nil
}

func (m *message) has(t wire.PayloadType) bool { return m.first(t) != nil }

func (m *message) getNotify(t wire.NotifyType) *notifyPayload {
	for i := range m.payloads {
		if n := m.payloads[i].notify; n != nil && n.typ == t {
			return n
		}
	}
	return nil
}

func (m *message) notifies(t wire.NotifyType) []*notifyPayload {
	var out []*notifyPayload
	for i := range m.payloads {
		if n := m.payloads[i].notify; n != nil && n.typ == t {
			out = append(out, n)
		}
	}
	return out
}

// errorNotify returns the first error notify (type < 16384) of the message.
func (m *message) errorNotify() *notifyPayload {
	for i := range m.payloads {
		if n := m.payloads[i].notify; n != nil && n.typ.IsError() {
			return n
		}
	}
	return nil
}

func (m *message) sa() []wire.Proposal {
	if p := m.first(wire.PayloadSA); p != nil {
		return p.sa
	}
	return nil
}

func (m *message) ke() *kePayload {
	if p := m.first(wire.PayloadKE); p != nil {
		return p.ke
	}
	return nil
}

func (m *message) nonce() []byte {
	if p := m.first(wire.PayloadNonce); p != nil {
		return p.nonce
	}
	return nil
}

func (m *message) ts(initiator bool) ([]TrafficSelector, bool) {
	t := wire.PayloadTSr
	if initiator {
		t = wire.PayloadTSi
	}
	if p := m.first(t); p != nil {
		return p.ts, true
	}
	return nil, false
}

func (m *message) deletes() []*deletePayload {
	var out []*deletePayload
	for i := range m.payloads {
		if d := m.payloads[i].del; d != nil {
			out = append(out, d)
		}
	}
	return out
}

// describe prints the message the way strongSwan logs it, e.g.
// "CREATE_CHILD_SA request 3 [ N(REKEY_SA) SA No TSi TSr ]".
func (m *message) describe() string {
	var b strings.Builder
	b.WriteString(m.exchange.String())
	if m.response {
		b.WriteString(" response ")
	} else {
		b.WriteString(" request ")
	}
	fmt.Fprintf(&b, "%d [", m.msgID)
	for _, p := range m.payloads {
		b.WriteByte(' ')
		b.WriteString(p.short())
	}
	b.WriteString(" ]")
	return b.String()
}

// short is strongSwan's abbreviation of a payload.
func (p *payload) short() string {
	switch p.typ {
	case wire.PayloadSA:
		return "SA"
	case wire.PayloadKE:
		return "KE"
	case wire.PayloadNonce:
		return "No"
	case wire.PayloadIDi:
		return "IDi"
	case wire.PayloadIDr:
		return "IDr"
	case wire.PayloadAUTH:
		return "AUTH"
	case wire.PayloadTSi:
		return "TSi"
	case wire.PayloadTSr:
		return "TSr"
	case wire.PayloadDelete:
		return "D"
	case wire.PayloadVendor:
		return "V"
	case wire.PayloadNotify:
		return "N(" + notifyShort(p.notify.typ) + ")"
	}
	return p.typ.String()
}

// notifyShort abbreviates notify names like strongSwan's logs.
func notifyShort(t wire.NotifyType) string {
	switch t {
	case wire.NotifyNATDetectionSourceIP:
		return "NATD_S_IP"
	case wire.NotifyNATDetectionDestinationIP:
		return "NATD_D_IP"
	case wire.NotifyIKEv2FragmentationSupported:
		return "FRAG_SUP"
	case wire.NotifySignatureHashAlgorithms:
		return "HASH_ALG"
	case wire.NotifyChildlessIKEv2Supported:
		return "CHDLESS_SUP"
	case wire.NotifyInitialContact:
		return "INIT_CONTACT"
	case wire.NotifyUseTransportMode:
		return "USE_TRANSP"
	case wire.NotifyRekeySA:
		return "REKEY_SA"
	case wire.NotifyCookie:
		return "COOKIE"
	case wire.NotifyInvalidKEPayload:
		return "INVALID_KE"
	case wire.NotifyNoProposalChosen:
		return "NO_PROP"
	case wire.NotifyTSUnacceptable:
		return "TS_UNACCEPT"
	case wire.NotifyAuthenticationFailed:
		return "AUTH_FAILED"
	case wire.NotifyTemporaryFailure:
		return "TEMP_FAIL"
	case wire.NotifyChildSANotFound:
		return "CHILD_SA_NOT_FOUND"
	case wire.NotifyInvalidSyntax:
		return "INVALID_SYNTAX"
	}
	return t.String()
}
