package wire

import (
	"errors"
	"fmt"
)

// HeaderLen is the size of the IKE header (RFC 7296 §3.1).
const HeaderLen = 28

// Version is the version octet cygnet sends: major 2, minor 0 (RFC 7296 §3.1).
const Version uint8 = 0x20

// Header is the IKE header (RFC 7296 §3.1):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Initiator's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Responder's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Message ID                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            Length                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// SPIs are the 8 octets read as big-endian numbers. When encoding a message, NextPayload
// and Length are computed; Version 0 is sent as 2.0.
type Header struct {
	SPIi        uint64
	SPIr        uint64
	NextPayload PayloadType
	Version     uint8 // major version in the high nibble, minor in the low
	Exchange    ExchangeType
	Flags       Flags
	MsgID       uint32
	Length      uint32
}

// DecodeHeader decodes the IKE header at the start of b and checks it against the
// datagram: fewer than 28 octets, a major version below 2 (IKEv1) or a Length other than
// len(b) is AnswerDrop; a major version above 2 is AnswerInvalidMajorVersion (RFC 7296
// §2.5). On that last error the returned header is filled in, so that the caller can
// answer with the SPIs and message ID.
func DecodeHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, errAt(AnswerDrop, PayloadNone, len(b), fmt.Errorf("IKE header: %w", ErrShort))
	}
	h.SPIi, _, _ = readU64(b, 0)
	h.SPIr, _, _ = readU64(b, 8)
	h.NextPayload, h.Version, h.Exchange, h.Flags = PayloadType(b[16]), b[17], ExchangeType(b[18]), Flags(b[19])
	h.MsgID, _, _ = readU32(b, 20)
	h.Length, _, _ = readU32(b, 24)
	switch major := h.Version >> 4; {
	case major > 2:
		return h, errAt(AnswerInvalidMajorVersion, PayloadNone, 17, fmt.Errorf("%w %d", ErrMajorVersion, major))
	case major < 2:
		return h, errAt(AnswerDrop, PayloadNone, 17, fmt.Errorf("%w %d", ErrMajorVersion, major))
	}
	if int64(h.Length) != int64(len(b)) {
		return h, errAt(AnswerDrop, PayloadNone, 24, fmt.Errorf("header length %d, datagram %d: %w", h.Length, len(b), ErrLength))
	}
	return h, nil
}

// AppendTo appends the 28-octet header exactly as given (Version 0 becomes 2.0).
func (h *Header) AppendTo(dst []byte) []byte {
	v := h.Version
	if v == 0 {
		v = Version
	}
	dst = appendU64(dst, h.SPIi)
	dst = appendU64(dst, h.SPIr)
	dst = append(dst, byte(h.NextPayload), v, byte(h.Exchange), byte(h.Flags))
	dst = appendU32(dst, h.MsgID)
	return appendU32(dst, h.Length)
}

// String prints the header as "IKE_AUTH request 1 [I] d77925670b93638a_i fbe5e2dfbce63b03_r".
func (h Header) String() string {
	kind := "request"
	if h.Flags.Response() {
		kind = "response"
	}
	return fmt.Sprintf("%v %s %d [%v] %016x_i %016x_r", h.Exchange, kind, h.MsgID, h.Flags, h.SPIi, h.SPIr)
}

// Message is an IKE message: the header and the payload chain in order (RFC 7296 §3).
//
// Payloads is the outer chain as it is on the wire; for a protected message it ends with
// an *EncryptedPayload (SK) or *FragmentPayload (SKF). Inner is the chain found inside
// the SK payload, set by Open (or by Reassembler.Add when a fragmented message is
// complete). Decoded payloads point into the decoded datagram (outer) or the plaintext
// buffer (inner); see the package documentation for ownership.
type Message struct {
	Header   Header
	Payloads []Payload
	Inner    []Payload

	raw []byte // the datagram Decode saw, for Open and reassembly
}

// DecodeMessage decodes a datagram (without the non-ESP marker) into a new Message.
// See Message.Decode.
func DecodeMessage(b []byte) (*Message, error) {
	m := new(Message)
	return m, m.Decode(b)
}

// Decode decodes the header and the outer payload chain of b (RFC 7296 §3.1, §3.2),
// reusing the backing arrays of m.Payloads and m.Inner (values taken from them before
// are overwritten) and emptying m.Inner. Nothing is copied: m keeps b, and payload fields point into it.
//
// Syntax is checked (lengths, counts, substructure framing, SK/SKF last); meanings are
// not (call Verify). Errors are *DecodeError. Header problems answer as DecodeHeader
// says. Payload problems answer AnswerInvalidSyntax or AnswerUnsupportedCriticalPayload
// only for the unprotected exchanges (IKE_SA_INIT, IKE_SESSION_RESUME); in a protected
// exchange nothing outside SK is authenticated, so they answer AnswerDrop. When an error
// comes from the payloads, m.Header is valid.
func (m *Message) Decode(b []byte) error {
	m.raw, m.Payloads, m.Inner = nil, m.Payloads[:0], m.Inner[:0]
	h, err := DecodeHeader(b)
	m.Header = h
	if err != nil {
		return err
	}
	m.raw = b
	m.Payloads, err = decodeChain(m.Payloads, h.NextPayload, b[HeaderLen:], HeaderLen, true)
	if err != nil {
		var de *DecodeError
		if errors.As(err, &de) && h.Exchange.Protected() {
			de.Answer = AnswerDrop
		}
		return err
	}
	return nil
}

// Raw is the datagram the message was decoded from (nil for a message built by hand).
func (m *Message) Raw() []byte { return m.raw }

// Protected returns the SK or SKF payload ending the outer chain, or nil.
func (m *Message) Protected() Payload {
	if n := len(m.Payloads); n > 0 {
		switch p := m.Payloads[n-1].(type) {
		case *EncryptedPayload, *FragmentPayload:
			return p
		}
	}
	return nil
}

// Verify runs the meaning checks (Verifier) of the payloads the message carries: Inner
// for a protected message (empty until Open or reassembly filled it), Payloads otherwise.
func (m *Message) Verify() error {
	ps := m.Payloads
	if m.Protected() != nil {
		ps = m.Inner
	}
	return VerifyPayloads(ps)
}

// VerifyPayloads runs Verify on each payload that has it and returns the first failure.
func VerifyPayloads(ps []Payload) error {
	for _, p := range ps {
		if v, ok := p.(Verifier); ok {
			if err := v.Verify(); err != nil {
				return err
			}
		}
	}
	return nil
}

// AppendTo appends the encoded message to dst: the header with NextPayload and Length
// computed, then the payload chain (see AppendPayloads). An *EncryptedPayload or
// *FragmentPayload in Payloads is written as it is (its Body already sealed); to build a
// protected message from plaintext payloads use AppendProtected.
func (m *Message) AppendTo(dst []byte) ([]byte, error) {
	start := len(dst)
	h := m.Header
	h.NextPayload = PayloadNone
	if len(m.Payloads) > 0 {
		h.NextPayload = m.Payloads[0].Type()
	}
	dst = h.AppendTo(dst)
	dst, err := AppendPayloads(dst, m.Payloads)
	if err != nil {
		return dst[:start], err
	}
	if n := len(dst) - start; uint64(n) > 0xffffffff {
		return dst[:start], fmt.Errorf("message of %d octets: %w", n, ErrTooLong)
	}
	putU32(dst[start+24:], uint32(len(dst)-start))
	return dst, nil
}

// AppendPayloads appends the payload chain ps: for each payload, the generic payload
// header (Next Payload = the next one's type, or 0 for the last; Critical set only for
// an *UnknownPayload that has it; Payload Length computed) and the body. An SK or SKF
// payload must be last, and its Next Payload field is its inner first payload type (RFC
// 7296 §3.14). On error dst is returned unchanged.
func AppendPayloads(dst []byte, ps []Payload) ([]byte, error) {
	start := len(dst)
	for i, p := range ps {
		next := PayloadNone
		if i+1 < len(ps) {
			next = ps[i+1].Type()
		}
		var crit byte
		switch q := p.(type) {
		case *EncryptedPayload:
			next = q.NextPayload
		case *FragmentPayload:
			next = q.NextPayload
		case *UnknownPayload:
			if q.Critical {
				crit = 0x80
			}
		}
		if p.Type() == PayloadSK || p.Type() == PayloadSKF {
			if i != len(ps)-1 {
				return dst[:start], fmt.Errorf("%v payload %d of %d: %w", p.Type(), i+1, len(ps), ErrSKPlacement)
			}
		}
		pstart := len(dst)
		dst = append(dst, byte(next), crit, 0, 0)
		var err error
		if dst, err = p.AppendBody(dst); err != nil {
			return dst[:start], err
		}
		n := len(dst) - pstart
		if n > 0xffff {
			return dst[:start], fmt.Errorf("%v payload of %d octets: %w", p.Type(), n, ErrTooLong)
		}
		putU16(dst[pstart+2:], uint16(n))
	}
	return dst, nil
}

// DecodePayloads decodes a payload chain whose first payload has type first (0 for an
// empty chain) from b, appending the payloads to dst. It is how an inner chain (the
// plaintext of an SK payload) is decoded: SK and SKF are not allowed in it. Payloads point
// into b. Errors are *DecodeError with AnswerInvalidSyntax or
// AnswerUnsupportedCriticalPayload and offsets relative to b.
func DecodePayloads(dst []Payload, first PayloadType, b []byte) ([]Payload, error) {
	return decodeChain(dst, first, b, 0, false)
}

// decodeChain decodes the chain starting with type next from b, whose first octet is at
// offset base of the buffer errors refer to. outer allows an SK/SKF payload, which must be
// last and whose Next Payload is not followed.
func decodeChain(dst []Payload, next PayloadType, b []byte, base int, outer bool) ([]Payload, error) {
	off := 0
	for next != PayloadNone {
		pt := next
		if len(b)-off < 4 {
			return dst, errAt(AnswerInvalidSyntax, pt, base+off, fmt.Errorf("generic payload header: %w", ErrShort))
		}
		next = PayloadType(b[off])
		critical := b[off+1]&0x80 != 0
		plen := int(b[off+2])<<8 | int(b[off+3])
		if plen < 4 || off+plen > len(b) {
			return dst, errAt(AnswerInvalidSyntax, pt, base+off, fmt.Errorf("payload length %d with %d octets left: %w", plen, len(b)-off, ErrLength))
		}
		body := b[off+4 : off+plen : off+plen]
		bodyOff := base + off + 4
		p, err := decodeBody(pt, critical, body, bodyOff)
		if err != nil {
			return dst, err
		}
		dst = append(dst, p)
		off += plen
		if pt == PayloadSK || pt == PayloadSKF {
			// The Next Payload field of SK/SKF names the first inner payload.
			switch q := p.(type) {
			case *EncryptedPayload:
				q.NextPayload = next
			case *FragmentPayload:
				q.NextPayload = next
			}
			if !outer {
				return dst, errAt(AnswerInvalidSyntax, pt, bodyOff-4, fmt.Errorf("%w: nested in an SK payload", ErrSKPlacement))
			}
			if off != len(b) {
				return dst, errAt(AnswerInvalidSyntax, pt, base+off, fmt.Errorf("%w: octets after it", ErrSKPlacement))
			}
			return dst, nil
		}
	}
	if off != len(b) {
		return dst, errAt(AnswerInvalidSyntax, PayloadNone, base+off, fmt.Errorf("%d octets: %w", len(b)-off, ErrTrailing))
	}
	return dst, nil
}

// decodeBody decodes one payload body of type pt.
func decodeBody(pt PayloadType, critical bool, body []byte, base int) (Payload, error) {
	var err error
	switch pt {
	case PayloadSA:
		p := new(SAPayload)
		err = p.decode(body, base)
		return p, err
	case PayloadKE:
		p := new(KEPayload)
		err = p.decode(body, base)
		return p, err
	case PayloadIDi, PayloadIDr:
		p := &IDPayload{Responder: pt == PayloadIDr}
		err = p.decode(body, base)
		return p, err
	case PayloadCERT:
		p := new(CertPayload)
		err = p.decode(body, base)
		return p, err
	case PayloadCERTREQ:
		p := new(CertReqPayload)
		err = p.decode(body, base)
		return p, err
	case PayloadAUTH:
		p := new(AuthPayload)
		err = p.decode(body, base)
		return p, err
	case PayloadNonce:
		p := new(NoncePayload)
		err = p.decode(body, base)
		return p, err
	case PayloadNotify:
		p := new(NotifyPayload)
		err = p.decode(body, base)
		return p, err
	case PayloadDelete:
		p := new(DeletePayload)
		err = p.decode(body, base)
		return p, err
	case PayloadVendor:
		p := new(VendorIDPayload)
		err = p.decode(body, base)
		return p, err
	case PayloadTSi, PayloadTSr:
		p := &TSPayload{Responder: pt == PayloadTSr}
		err = p.decode(body, base)
		return p, err
	case PayloadSK:
		p := new(EncryptedPayload)
		err = p.decode(body, base)
		return p, err
	case PayloadSKF:
		p := new(FragmentPayload)
		err = p.decode(body, base)
		return p, err
	case PayloadCP:
		p := new(CPPayload)
		err = p.decode(body, base)
		return p, err
	case PayloadEAP:
		p := new(EAPPayload)
		err = p.decode(body, base)
		return p, err
	}
	if critical {
		return nil, errAt(AnswerUnsupportedCriticalPayload, pt, base-4, ErrCriticalPayload)
	}
	return &UnknownPayload{PayloadType: pt, Body: nilIfEmpty(body)}, nil
}

// First returns the first payload of type T in ps, e.g. First[*NoncePayload](m.Inner).
func First[T Payload](ps []Payload) (T, bool) {
	for _, p := range ps {
		if q, ok := p.(T); ok {
			return q, true
		}
	}
	var zero T
	return zero, false
}

// Notifies appends the notify payloads of ps to dst.
func Notifies(dst []*NotifyPayload, ps []Payload) []*NotifyPayload {
	for _, p := range ps {
		if n, ok := p.(*NotifyPayload); ok {
			dst = append(dst, n)
		}
	}
	return dst
}

// FindNotify returns the first notify of type t in ps.
func FindNotify(ps []Payload, t NotifyType) (*NotifyPayload, bool) {
	for _, p := range ps {
		if n, ok := p.(*NotifyPayload); ok && n.NotifyType == t {
			return n, true
		}
	}
	return nil, false
}

// FormatPayloads prints a payload list as strongSwan logs it, with notify types spelled
// out: "[ IDi N(INITIAL_CONTACT) IDr AUTH SA TSi TSr ]". For logs and test scripts.
func FormatPayloads(ps []Payload) string {
	b := []byte{'['}
	for _, p := range ps {
		b = append(b, ' ')
		switch q := p.(type) {
		case *NotifyPayload:
			b = append(b, "N("...)
			b = append(b, q.NotifyType.String()...)
			b = append(b, ')')
		case *EncryptedPayload:
			b = append(b, "SK{"...)
			b = append(b, q.NextPayload.String()...)
			b = append(b, '}')
		case *FragmentPayload:
			b = fmt.Appendf(b, "SKF(%d/%d)", q.Number, q.Total)
		default:
			b = append(b, p.Type().String()...)
		}
	}
	return string(append(b, " ]"...))
}
