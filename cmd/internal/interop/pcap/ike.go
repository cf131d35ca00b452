package pcap

import (
	"encoding/binary"
	"fmt"
)

// Ports of IKE (RFC 7296 §2) and of IKE/ESP over UDP encapsulation (RFC 3948).
const (
	PortIKE   = 500
	PortNATT  = 4500
	ikeHdrLen = 28
)

// Kind says what a datagram carries.
type Kind int

const (
	KindOther     Kind = iota // neither port 500 nor 4500, or unrecognisable
	KindIKE                   // an IKE message (Message set)
	KindESP                   // UDP-encapsulated ESP (RFC 3948 §2.1)
	KindKeepalive             // NAT-T keepalive, one 0xff byte (RFC 3948 §2.3)
)

func (k Kind) String() string {
	switch k {
	case KindOther:
		return "other"
	case KindIKE:
		return "ike"
	case KindESP:
		return "esp"
	case KindKeepalive:
		return "keepalive"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Exchange types (RFC 7296 §3.1, IANA "IKEv2 Exchange Types").
type Exchange uint8

const (
	IKESAInit       Exchange = 34
	IKEAuth         Exchange = 35
	CreateChildSA   Exchange = 36
	Informational   Exchange = 37
	IKEIntermediate Exchange = 43
	flagInitiator   uint8    = 0x08
	flagResponse    uint8    = 0x20
	payloadSKF      uint8    = 53
)

func (e Exchange) String() string {
	switch e {
	case IKESAInit:
		return "IKE_SA_INIT"
	case IKEAuth:
		return "IKE_AUTH"
	case CreateChildSA:
		return "CREATE_CHILD_SA"
	case Informational:
		return "INFORMATIONAL"
	case IKEIntermediate:
		return "IKE_INTERMEDIATE"
	}
	return fmt.Sprintf("EXCHANGE(%d)", uint8(e))
}

// IKEHeader is the fixed IKE header (RFC 7296 §3.1), just enough to label a
// captured message. It is not a validating decoder: that is the wire package's.
type IKEHeader struct {
	SPIi, SPIr  uint64
	NextPayload uint8
	Version     uint8
	Exchange    Exchange
	Flags       uint8
	MsgID       uint32
	Length      uint32
}

// Initiator reports the I flag: the sender is the original initiator of the IKE SA.
func (h IKEHeader) Initiator() bool { return h.Flags&flagInitiator != 0 }

// Response reports the R flag.
func (h IKEHeader) Response() bool { return h.Flags&flagResponse != 0 }

// Fragment reports whether the message carries an Encrypted Fragment payload
// (RFC 7383 §2.5) as its first payload.
func (h IKEHeader) Fragment() bool { return h.NextPayload == payloadSKF }

func (h IKEHeader) String() string {
	kind := "request"
	if h.Response() {
		kind = "response"
	}
	i := ""
	if h.Initiator() {
		i = " I"
	}
	return fmt.Sprintf("%s %s %d%s %016x_i %016x_r np=%d len=%d", h.Exchange, kind, h.MsgID, i, h.SPIi, h.SPIr, h.NextPayload, h.Length)
}

// Packet is a classified datagram.
type Packet struct {
	Datagram
	Kind Kind
	// IKE is the IKE message with any non-ESP marker stripped, and Header its
	// header (KindIKE only).
	IKE    []byte
	Header IKEHeader
	// ESPSPI is the ESP SPI (KindESP only).
	ESPSPI uint32
}

// Classify sorts datagrams into IKE messages, ESP and keepalives. On port 4500 a
// payload that starts with four zero bytes (the non-ESP marker, RFC 3948 §2.2) is
// IKE, a single 0xff byte is a keepalive, anything else is ESP.
func Classify(ds []Datagram) []Packet {
	out := make([]Packet, 0, len(ds))
	for _, d := range ds {
		p := Packet{Datagram: d}
		natt := d.Src.Port() == PortNATT || d.Dst.Port() == PortNATT
		ike := d.Src.Port() == PortIKE || d.Dst.Port() == PortIKE
		switch {
		case natt && len(d.Payload) == 1 && d.Payload[0] == 0xff:
			p.Kind = KindKeepalive
		case natt && len(d.Payload) >= 4 && binary.BigEndian.Uint32(d.Payload) == 0:
			p.setIKE(d.Payload[4:])
		case natt && len(d.Payload) >= 8:
			p.Kind = KindESP
			p.ESPSPI = binary.BigEndian.Uint32(d.Payload)
		case ike:
			p.setIKE(d.Payload)
		}
		out = append(out, p)
	}
	return out
}

func (p *Packet) setIKE(b []byte) {
	h, ok := ParseIKEHeader(b)
	if !ok {
		return
	}
	p.Kind, p.IKE, p.Header = KindIKE, b[:h.Length], h
}

// ParseIKEHeader reads the fixed header. It reports false if b is shorter than a
// header, or shorter than the header's own Length.
func ParseIKEHeader(b []byte) (IKEHeader, bool) {
	if len(b) < ikeHdrLen {
		return IKEHeader{}, false
	}
	h := IKEHeader{
		SPIi:        binary.BigEndian.Uint64(b[0:8]),
		SPIr:        binary.BigEndian.Uint64(b[8:16]),
		NextPayload: b[16],
		Version:     b[17],
		Exchange:    Exchange(b[18]),
		Flags:       b[19],
		MsgID:       binary.BigEndian.Uint32(b[20:24]),
		Length:      binary.BigEndian.Uint32(b[24:28]),
	}
	if h.Length < ikeHdrLen || uint64(h.Length) > uint64(len(b)) {
		return IKEHeader{}, false
	}
	return h, true
}

// IKEMessages returns only the IKE messages.
func IKEMessages(ps []Packet) []Packet {
	var out []Packet
	for _, p := range ps {
		if p.Kind == KindIKE {
			out = append(out, p)
		}
	}
	return out
}

// Payload types walked by Notifies (RFC 7296 §3.2).
const (
	payloadNotify    uint8 = 41
	payloadEncrypted uint8 = 46
)

// Notify types the harness looks for in unencrypted messages (RFC 7296 §3.10.1).
const (
	NotifyNoProposalChosen uint16 = 14
	NotifyInvalidKEPayload uint16 = 17
	NotifyCookie           uint16 = 16390
)

// Notifies returns the Notify Message Types of the unencrypted Notify payloads
// in an IKE message, in order, stopping at an Encrypted (SK/SKF) payload or at the
// first malformed payload header. It is for labelling IKE_SA_INIT exchanges
// (COOKIE, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN), not a validating decoder.
func Notifies(msg []byte) []uint16 {
	h, ok := ParseIKEHeader(msg)
	if !ok {
		return nil
	}
	msg = msg[:h.Length]
	var out []uint16
	np, off := h.NextPayload, ikeHdrLen
	for np != 0 && np != payloadEncrypted && np != payloadSKF && off+4 <= len(msg) {
		plen := int(binary.BigEndian.Uint16(msg[off+2 : off+4]))
		if plen < 4 || off+plen > len(msg) {
			break
		}
		if np == payloadNotify && plen >= 8 {
			out = append(out, binary.BigEndian.Uint16(msg[off+6:off+8]))
		}
		np, off = msg[off], off+plen
	}
	return out
}
