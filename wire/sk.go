package wire

import (
	"fmt"
	"sync"
)

// SKCipher protects the contents of an SK or SKF payload (RFC 7296 §3.14; RFC 5282 for AEAD).
// Package wire/ikecrypto implements it for the negotiated suites.
type SKCipher interface {
	IVSize() int    // octets of IV at the start of the payload body
	ICVSize() int   // octets of integrity checksum at the end of the payload body
	BlockSize() int // plaintext (payloads ‖ padding ‖ pad length octet) must be a multiple of this; 1 for AEAD
	// Seal appends IV ‖ ciphertext ‖ ICV to msg and returns the extended slice. msg holds the
	// message from the IKE header up to and including the SK/SKF payload's generic header (and
	// for SKF its fragment number/total fields), with all length fields already final. That prefix is the AAD of
	// an AEAD and the start of the region the ICV of ENCR+INTEG covers. iv has IVSize octets.
	Seal(msg, iv, plaintext []byte) []byte
	// Open checks the ICV in constant time and decrypts. msg is the whole message, body the
	// offset of the IV. It returns the plaintext including padding and the pad length octet,
	// appended to dst.
	Open(dst, msg []byte, body int) ([]byte, error)
}

// EncryptedPayload is the Encrypted and Authenticated payload SK (RFC 7296 §3.14):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Initialization Vector                     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Encrypted IKE Payloads                     ~
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               |             Padding (0-255 octets)            |
//	+-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
//	|                                               |  Pad Length   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Integrity Checksum Data                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// NextPayload is the type of the first inner payload; Body is IV ‖ ciphertext ‖ ICV,
// pointing into the input. It is always the last payload of a message, so its Body runs
// to the end of the datagram.
type EncryptedPayload struct {
	NextPayload PayloadType
	Body        []byte
}

// Type is PayloadSK.
func (p *EncryptedPayload) Type() PayloadType { return PayloadSK }

// AppendBody appends Body as it is (already sealed).
func (p *EncryptedPayload) AppendBody(dst []byte) ([]byte, error) {
	return append(dst, p.Body...), nil
}

func (p *EncryptedPayload) decode(b []byte, _ int) error {
	p.Body = nilIfEmpty(b)
	return nil
}

// FragmentPayload is the Encrypted and Authenticated Fragment payload SKF (RFC 7383 §2.5):
// an SK payload with a 2-octet Fragment Number (from 1) and Total Fragments before the
// IV. NextPayload is the inner first payload type in fragment 1 and 0 in the others.
// Body is IV ‖ ciphertext ‖ ICV, pointing into the input.
type FragmentPayload struct {
	NextPayload PayloadType
	Number      uint16
	Total       uint16
	Body        []byte
}

// Type is PayloadSKF.
func (p *FragmentPayload) Type() PayloadType { return PayloadSKF }

// AppendBody appends the fragment number, the total and Body as it is (already sealed).
func (p *FragmentPayload) AppendBody(dst []byte) ([]byte, error) {
	return append(appendU16(appendU16(dst, p.Number), p.Total), p.Body...), nil
}

func (p *FragmentPayload) decode(b []byte, base int) error {
	if len(b) < 4 {
		return errAt(AnswerInvalidSyntax, PayloadSKF, base, fmt.Errorf("fragment number and total: %w", ErrShort))
	}
	p.Number = uint16(b[0])<<8 | uint16(b[1])
	p.Total = uint16(b[2])<<8 | uint16(b[3])
	p.Body = nilIfEmpty(b[4:])
	return nil
}

// Verify checks 1 <= Number <= Total (RFC 7383 §2.5); the Reassembler checks the rest.
func (p *FragmentPayload) Verify() error {
	if p.Number == 0 || p.Number > p.Total {
		return invalid(PayloadSKF, "fragment %d of %d", p.Number, p.Total)
	}
	return nil
}

// scratch buffers for the plaintext of messages being sealed.
var plainPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// appendPadding turns an encoded inner chain into the plaintext of an SK payload by
// appending the shortest zero padding that makes the whole a multiple of blockSize and
// the pad length octet (RFC 7296 §3.14).
func appendPadding(chain []byte, blockSize int) []byte {
	if blockSize < 1 {
		blockSize = 1
	}
	pad := (blockSize - (len(chain)+1)%blockSize) % blockSize
	for range pad {
		chain = append(chain, 0)
	}
	return append(chain, byte(pad))
}

// AppendProtected appends a protected message to dst (RFC 7296 §3.14): the header h
// (NextPayload SK, Length computed), then an SK payload whose Next Payload is the type of
// inner[0] and whose plaintext is the encoded inner chain, zero padding to c.BlockSize()
// and the pad length octet, sealed by c with the given IV (c.IVSize() octets, the
// caller's: a counter or random octets). inner may be empty (an empty INFORMATIONAL).
// On error dst is returned unchanged.
func AppendProtected(dst []byte, h Header, inner []Payload, c SKCipher, iv []byte) ([]byte, error) {
	if len(iv) != c.IVSize() {
		return dst, fmt.Errorf("IV of %d octets for a cipher of %d: %w", len(iv), c.IVSize(), ErrIVSize)
	}
	bp := plainPool.Get().(*[]byte)
	defer plainPool.Put(bp)
	chain, err := AppendPayloads((*bp)[:0], inner)
	if err != nil {
		return dst, err
	}
	plain := appendPadding(chain, c.BlockSize())
	*bp = plain[:0] // keep the grown buffer for the next call
	next := PayloadNone
	if len(inner) > 0 {
		next = inner[0].Type()
	}
	return seal(dst, h, PayloadSK, next, nil, plain, c, iv)
}

// seal appends header ‖ SK or SKF generic header [‖ fragment fields] ‖ Seal(plain).
func seal(dst []byte, h Header, pt, next PayloadType, fragFields []byte, plain []byte, c SKCipher, iv []byte) ([]byte, error) {
	start := len(dst)
	skLen := 4 + len(fragFields) + c.IVSize() + len(plain) + c.ICVSize()
	if skLen > 0xffff {
		return dst, fmt.Errorf("%v payload of %d octets: %w", pt, skLen, ErrTooLong)
	}
	h.NextPayload = pt
	h.Length = uint32(HeaderLen + skLen)
	dst = h.AppendTo(dst)
	dst = append(dst, byte(next), 0)
	dst = appendU16(dst, uint16(skLen))
	dst = append(dst, fragFields...)
	msg := dst[start:]
	sealed := c.Seal(msg, iv, plain)
	if len(sealed) != int(h.Length) {
		return dst[:start], fmt.Errorf("sealed %d octets, want %d: %w", len(sealed), h.Length, ErrCipher)
	}
	if cap(msg) >= len(sealed) && &msg[:len(sealed)][0] == &sealed[0] {
		return dst[:start+len(sealed)], nil
	}
	return append(dst[:start], sealed...), nil
}

// Open checks and decrypts the SK payload of a decoded message, strips the padding and
// decodes the inner chain into m.Inner (reusing its backing array). The plaintext is
// appended to dst and returned; m.Inner points into it, so the caller keeps it unchanged
// as long as it uses m.Inner.
//
// An integrity failure, or an SK body too short for IV and ICV, is AnswerDrop. Anything
// wrong after integrity passed (pad length beyond the plaintext, a malformed inner chain)
// is AnswerInvalidSyntax or AnswerUnsupportedCriticalPayload, with offsets into the
// plaintext: the caller answers it only if the message ID is inside the window (RFC 7296
// §2.21.2). A message whose last payload is SKF is not opened here: give it to a
// Reassembler.
func (m *Message) Open(dst []byte, c SKCipher) ([]byte, error) {
	inner := m.Inner[:0]
	m.Inner = nil
	sk, ok := m.Protected().(*EncryptedPayload)
	if !ok || m.raw == nil {
		return dst, errAt(AnswerDrop, PayloadSK, 0, ErrNotProtected)
	}
	start := len(dst)
	plain, err := openBody(dst, m.raw, sk.Body, c, PayloadSK)
	if err != nil {
		return dst, err
	}
	inner, err = decodeChain(inner, sk.NextPayload, plain[start:], 0, false)
	if err != nil {
		return plain, err
	}
	m.Inner = inner
	return plain, nil
}

// openBody decrypts body (the tail of msg) and strips the padding, returning dst with the
// bare inner chain appended.
func openBody(dst, msg, body []byte, c SKCipher, pt PayloadType) ([]byte, error) {
	off := len(msg) - len(body)
	if len(body) < c.IVSize()+c.ICVSize() {
		return dst, errAt(AnswerDrop, pt, off, fmt.Errorf("body of %d octets for IV %d and ICV %d: %w", len(body), c.IVSize(), c.ICVSize(), ErrShort))
	}
	start := len(dst)
	out, err := c.Open(dst, msg, off)
	if err != nil {
		return dst, errAt(AnswerDrop, pt, off, fmt.Errorf("%w: %w", ErrIntegrity, err))
	}
	if len(out) < start {
		return dst, errAt(AnswerDrop, pt, off, ErrCipher)
	}
	plain := out[start:]
	if len(plain) == 0 {
		return dst, errAt(AnswerInvalidSyntax, pt, 0, fmt.Errorf("no pad length octet: %w", ErrPadding))
	}
	pad := int(plain[len(plain)-1])
	if pad+1 > len(plain) {
		return dst, errAt(AnswerInvalidSyntax, pt, len(plain)-1, fmt.Errorf("pad length %d in %d octets: %w", pad, len(plain), ErrPadding))
	}
	return out[:len(out)-pad-1], nil
}

// NonESPMarkerLen is the size of the non-ESP marker that precedes IKE messages on UDP
// port 4500 (RFC 3948 §2.2, RFC 7296 §2.23).
const NonESPMarkerLen = 4

// StripNonESPMarker inspects a datagram received on port 4500. It returns the IKE message
// after a non-ESP marker (four zero octets) and true, or nil and false when the datagram
// is not an IKE message (ESP, whose SPI is never zero, or a NAT-keepalive, RFC 3948 §2.3).
func StripNonESPMarker(b []byte) ([]byte, bool) {
	if len(b) < NonESPMarkerLen || b[0]|b[1]|b[2]|b[3] != 0 {
		return nil, false
	}
	return b[NonESPMarkerLen:], true
}

// AppendNonESPMarker appends the four-octet non-ESP marker, before an IKE message is
// appended for port 4500.
func AppendNonESPMarker(dst []byte) []byte { return append(dst, 0, 0, 0, 0) }

// IsNATKeepalive reports whether a datagram on port 4500 is a NAT-keepalive: the single
// octet 0xFF (RFC 3948 §2.3).
func IsNATKeepalive(b []byte) bool { return len(b) == 1 && b[0] == 0xff }
