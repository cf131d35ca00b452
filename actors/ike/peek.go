package ike

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// IKE header constants (RFC 7296 §3.1) used by Peek, which must not depend on a full
// decode.
const (
	headerLen         = 28
	exchangeIKESAInit = 34
	flagInitiator     = 0x08
	flagResponse      = 0x20
	majorVersion      = 2
	payloadNotify     = 41
	payloadNonce      = 40
	notifyCookie      = 16390
)

// PeekKind is how the manager must route a datagram.
type PeekKind uint8

const (
	// PeekNewSA: an IKE_SA_INIT request without responder SPI. A retransmission goes to
	// the family already created for (remote address, SPIi); otherwise it starts a new
	// responder family (NewResponder).
	PeekNewSA PeekKind = iota + 1
	// PeekRoute: belongs to the family routed under LocalSPI.
	PeekRoute
)

func (k PeekKind) String() string {
	switch k {
	case PeekNewSA:
		return "new-sa"
	case PeekRoute:
		return "route"
	}
	return fmt.Sprintf("PeekKind(%d)", uint8(k))
}

// Peeked is what Peek learned from an IKE header.
type Peeked struct {
	Kind       PeekKind
	SPIi, SPIr SPI
	// LocalSPI is our SPI of the IKE SA: SPIr when the sender is the original
	// initiator (I flag set), SPIi otherwise.
	LocalSPI SPI
	Exchange uint8
	Response bool
	MsgID    uint32
}

// ErrNotIKE is returned by Peek for a datagram that cannot be an IKEv2 message.
var ErrNotIKE = errors.New("not an IKEv2 message")

// Peek classifies an IKE message (the non-ESP marker already stripped) from its header
// alone, without decrypting anything (RFC 7296 §3.1, §2.2). It never panics; an error
// means "drop and count as malformed".
func Peek(data []byte) (Peeked, error) {
	if len(data) < headerLen {
		return Peeked{}, fmt.Errorf("peek: %d octets, shorter than the IKE header: %w", len(data), ErrNotIKE)
	}
	var p Peeked
	p.SPIi = SPI(binary.BigEndian.Uint64(data[0:8]))
	p.SPIr = SPI(binary.BigEndian.Uint64(data[8:16]))
	if data[17]>>4 != majorVersion {
		return Peeked{}, fmt.Errorf("peek: major version %d: %w", data[17]>>4, ErrNotIKE)
	}
	p.Exchange = data[18]
	flags := data[19]
	p.Response = flags&flagResponse != 0
	p.MsgID = binary.BigEndian.Uint32(data[20:24])
	if l := binary.BigEndian.Uint32(data[24:28]); int(l) != len(data) {
		return Peeked{}, fmt.Errorf("peek: length field %d, datagram %d octets: %w", l, len(data), ErrNotIKE)
	}
	if p.SPIi == 0 {
		return Peeked{}, fmt.Errorf("peek: zero initiator SPI: %w", ErrNotIKE)
	}
	if flags&flagInitiator != 0 {
		p.LocalSPI = p.SPIr
	} else {
		p.LocalSPI = p.SPIi
	}
	switch {
	case p.Exchange == exchangeIKESAInit && !p.Response && p.SPIr == 0:
		if flags&flagInitiator == 0 || p.MsgID != 0 {
			return Peeked{}, fmt.Errorf("peek: IKE_SA_INIT request without I flag or with message ID %d: %w", p.MsgID, ErrNotIKE)
		}
		p.Kind = PeekNewSA
	case p.LocalSPI == 0:
		return Peeked{}, fmt.Errorf("peek: no SPI of ours in the header: %w", ErrNotIKE)
	default:
		p.Kind = PeekRoute
	}
	return p, nil
}
