package wire

import (
	"fmt"
	"net/netip"
)

// Payload is one IKEv2 payload (RFC 7296 §3.2). The generic payload header (Next Payload,
// Critical, Payload Length) is not part of the value: AppendPayloads writes it, chaining
// each payload to the next. Every payload type of RFC 7296 and RFC 7383 has a concrete
// type in this package; any other type decodes to *UnknownPayload.
type Payload interface {
	// Type is the payload type that goes into the previous Next Payload field.
	Type() PayloadType
	// AppendBody appends the payload body (everything after the generic header) to dst.
	// It fails when a count or length field would overflow.
	AppendBody(dst []byte) ([]byte, error)
}

// Verifier is implemented by every payload type of this package: Verify checks what the
// syntax alone does not (RFC 7296 §3: sizes, ranges, values that must be non-zero). A
// failure is a *DecodeError with AnswerInvalidSyntax.
type Verifier interface {
	Verify() error
}

var (
	_ Payload = (*SAPayload)(nil)
	_ Payload = (*KEPayload)(nil)
	_ Payload = (*IDPayload)(nil)
	_ Payload = (*CertPayload)(nil)
	_ Payload = (*CertReqPayload)(nil)
	_ Payload = (*AuthPayload)(nil)
	_ Payload = (*NoncePayload)(nil)
	_ Payload = (*NotifyPayload)(nil)
	_ Payload = (*DeletePayload)(nil)
	_ Payload = (*VendorIDPayload)(nil)
	_ Payload = (*TSPayload)(nil)
	_ Payload = (*EncryptedPayload)(nil)
	_ Payload = (*FragmentPayload)(nil)
	_ Payload = (*CPPayload)(nil)
	_ Payload = (*EAPPayload)(nil)
	_ Payload = (*UnknownPayload)(nil)
)

func invalid(pt PayloadType, format string, args ...any) error {
	return errAt(AnswerInvalidSyntax, pt, 0, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
}

// ---------------------------------------------------------------------------------------
// SA (§3.3)

// Type is PayloadSA.
func (p *SAPayload) Type() PayloadType { return PayloadSA }

// AppendBody encodes the proposals (§3.3.1) and their transforms (§3.3.2) with the Last
// Substruc values, lengths and counts computed. A non-zero KeyLength is written as a TV
// Key Length attribute (§3.3.5), followed by OtherAttrs verbatim.
func (p *SAPayload) AppendBody(dst []byte) ([]byte, error) {
	for i, pr := range p.Proposals {
		if len(pr.SPI) > 255 || len(pr.Transforms) > 255 {
			return dst, fmt.Errorf("SA proposal %d: %w", pr.Num, ErrTooLong)
		}
		last := byte(2)
		if i == len(p.Proposals)-1 {
			last = 0
		}
		start := len(dst)
		dst = append(dst, last, 0, 0, 0, pr.Num, byte(pr.Protocol), byte(len(pr.SPI)), byte(len(pr.Transforms)))
		dst = append(dst, pr.SPI...)
		for j, t := range pr.Transforms {
			tlast := byte(3)
			if j == len(pr.Transforms)-1 {
				tlast = 0
			}
			tstart := len(dst)
			dst = append(dst, tlast, 0, 0, 0, byte(t.Type), 0)
			dst = appendU16(dst, uint16(t.ID))
			if t.KeyLength != 0 {
				dst = appendU16(dst, 0x8000|AttrKeyLength)
				dst = appendU16(dst, t.KeyLength)
			}
			dst = append(dst, t.OtherAttrs...)
			if len(dst)-tstart > 0xffff {
				return dst, fmt.Errorf("SA transform %v: %w", t, ErrTooLong)
			}
			putU16(dst[tstart+2:], uint16(len(dst)-tstart))
		}
		if len(dst)-start > 0xffff {
			return dst, fmt.Errorf("SA proposal %d: %w", pr.Num, ErrTooLong)
		}
		putU16(dst[start+2:], uint16(len(dst)-start))
	}
	return dst, nil
}

func (p *SAPayload) decode(b []byte, base int) error {
	const pt = PayloadSA
	// First pass: walk the proposal and transform headers to size the slices, so that a
	// whole SA payload costs two allocations.
	nProps, nTrans := 0, 0
	for off := 0; off < len(b); {
		plen, _, err := readU16(b, off+2)
		if err != nil {
			return errAt(AnswerInvalidSyntax, pt, base+off, fmt.Errorf("proposal header: %w", err))
		}
		if plen < 8 || off+int(plen) > len(b) {
			return errAt(AnswerInvalidSyntax, pt, base+off, fmt.Errorf("proposal length %d: %w", plen, ErrSubstructure))
		}
		nProps++
		nTrans += int(b[off+7])
		off += int(plen)
	}
	// The counts are the peer's word: bound the capacity by what the octets can hold (8
	// per transform) so that a small datagram cannot make us allocate megabytes.
	props := make([]Proposal, 0, nProps)
	trans := make([]Transform, 0, min(nTrans, len(b)/8))
	for off := 0; off < len(b); {
		pstart := off
		last, plen, num, proto := b[off], int(b[off+2])<<8|int(b[off+3]), b[off+4], b[off+5]
		spiSize, numT := int(b[off+6]), int(b[off+7])
		pend := off + plen
		if (last == 0) != (pend == len(b)) || (last != 0 && last != 2) {
			return errAt(AnswerInvalidSyntax, pt, base+off, fmt.Errorf("proposal last substruc %d: %w", last, ErrSubstructure))
		}
		pb := b[:pend]
		spi, off2, err := readBytes(pb, off+8, spiSize)
		if err != nil {
			return errAt(AnswerInvalidSyntax, pt, base+off, fmt.Errorf("proposal SPI: %w", err))
		}
		off = off2
		first := len(trans)
		for i := 0; i < numT; i++ {
			tstart := off
			var tlast uint8
			var tlen uint16
			if tlast, _, err = readU8(pb, off); err == nil {
				tlen, _, err = readU16(pb, off+2)
			}
			if err != nil {
				return errAt(AnswerInvalidSyntax, pt, base+off, fmt.Errorf("transform header: %w", err))
			}
			tend := off + int(tlen)
			if tlen < 8 || tend > pend {
				return errAt(AnswerInvalidSyntax, pt, base+off, fmt.Errorf("transform length %d: %w", tlen, ErrSubstructure))
			}
			if (tlast == 0) != (i == numT-1) || (tlast != 0 && tlast != 3) {
				return errAt(AnswerInvalidSyntax, pt, base+off, fmt.Errorf("transform last substruc %d: %w", tlast, ErrSubstructure))
			}
			t := Transform{Type: TransformType(pb[off+4]), ID: TransformID(uint16(pb[off+6])<<8 | uint16(pb[off+7]))}
			if err := t.decodeAttrs(pb[off+8:tend], base+off+8); err != nil {
				return err
			}
			trans = append(trans, t)
			off = tend
			_ = tstart
		}
		if off != pend {
			return errAt(AnswerInvalidSyntax, pt, base+off, fmt.Errorf("proposal %d: %d transforms do not fill it: %w", num, numT, ErrCount))
		}
		props = append(props, Proposal{
			Num: num, Protocol: ProtocolID(proto), SPI: nilIfEmpty(spi),
			Transforms: trans[first:len(trans):len(trans)],
		})
		if len(props[len(props)-1].Transforms) == 0 {
			props[len(props)-1].Transforms = nil
		}
		_ = pstart
	}
	if len(props) == 0 {
		props = nil
	}
	p.Proposals = props
	return nil
}

// decodeAttrs reads the transform attributes (§3.3.5): TV when the AF bit is set, TLV
// otherwise. The first non-zero TV Key Length becomes KeyLength; everything else is kept
// verbatim in OtherAttrs.
func (t *Transform) decodeAttrs(b []byte, base int) error {
	var other []byte
	for off := 0; off < len(b); {
		start := off
		at, o, err := readU16(b, off)
		if err != nil {
			return errAt(AnswerInvalidSyntax, PayloadSA, base+off, fmt.Errorf("attribute: %w", err))
		}
		off = o
		if at&0x8000 != 0 {
			v, o, err := readU16(b, off)
			if err != nil {
				return errAt(AnswerInvalidSyntax, PayloadSA, base+off, fmt.Errorf("attribute %d: %w", at&0x7fff, err))
			}
			off = o
			if at&0x7fff == AttrKeyLength && v != 0 && t.KeyLength == 0 {
				t.KeyLength = v
				continue
			}
		} else {
			n, o, err := readU16(b, off)
			if err == nil {
				_, o, err = readBytes(b, o, int(n))
			}
			if err != nil {
				return errAt(AnswerInvalidSyntax, PayloadSA, base+off, fmt.Errorf("attribute %d: %w", at, err))
			}
			off = o
		}
		other = append(other, b[start:off]...)
	}
	t.OtherAttrs = string(other)
	return nil
}

// Verify checks the proposals (§3.3.1): at least one; numbered 1, 2, … when there are
// several (a response carries one, with the number it accepted); protocol IKE, AH or ESP;
// SPI size 0 or 8 for IKE (8 when rekeying an IKE SA) and 4 for AH/ESP; at least one
// transform each. Whether the transforms make sense is proposal selection's business.
func (p *SAPayload) Verify() error {
	const pt = PayloadSA
	if len(p.Proposals) == 0 {
		return invalid(pt, "no proposals")
	}
	for i, pr := range p.Proposals {
		if pr.Num == 0 || (len(p.Proposals) > 1 && int(pr.Num) != i+1) {
			return invalid(pt, "proposal %d numbered %d", i+1, pr.Num)
		}
		switch pr.Protocol {
		case ProtoIKE:
			if len(pr.SPI) != 0 && len(pr.SPI) != 8 {
				return invalid(pt, "proposal %d: IKE SPI of %d octets", pr.Num, len(pr.SPI))
			}
		case ProtoAH, ProtoESP:
			if len(pr.SPI) != 4 {
				return invalid(pt, "proposal %d: %v SPI of %d octets", pr.Num, pr.Protocol, len(pr.SPI))
			}
		default:
			return invalid(pt, "proposal %d: protocol %v", pr.Num, pr.Protocol)
		}
		if len(pr.Transforms) == 0 {
			return invalid(pt, "proposal %d: no transforms", pr.Num)
		}
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// KE (§3.4)

// KEPayload is the Key Exchange payload (RFC 7296 §3.4): the key exchange method (a
// Transform Type 4 ID) and the public value. On decode, Data points into the input.
type KEPayload struct {
	Group TransformID
	Data  []byte
}

// Type is PayloadKE.
func (p *KEPayload) Type() PayloadType { return PayloadKE }

// AppendBody appends Group, two reserved octets and Data.
func (p *KEPayload) AppendBody(dst []byte) ([]byte, error) {
	dst = appendU16(dst, uint16(p.Group))
	return append(append(dst, 0, 0), p.Data...), nil
}

func (p *KEPayload) decode(b []byte, base int) error {
	g, off, err := readU16(b, 0)
	if err == nil && len(b) < 4 {
		err = ErrShort
	}
	if err != nil {
		return errAt(AnswerInvalidSyntax, PayloadKE, base, err)
	}
	_ = off
	p.Group, p.Data = TransformID(g), nilIfEmpty(b[4:])
	return nil
}

// Verify checks that a method is named and the public value is not empty (§3.4). That
// the length fits the method is the key exchange's check (it answers INVALID_SYNTAX too).
func (p *KEPayload) Verify() error {
	if p.Group == KENone {
		return invalid(PayloadKE, "key exchange method NONE")
	}
	if len(p.Data) == 0 {
		return invalid(PayloadKE, "empty key exchange data")
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// IDi, IDr (§3.5)

// Identity is an IKE identity: ID Type and Identification Data (RFC 7296 §3.5). On
// decode, Data points into the input.
type Identity struct {
	Type IDType
	Data []byte
}

// IdentityFromAddr is the ID_IPV4_ADDR or ID_IPV6_ADDR identity of a (an IPv4-mapped
// IPv6 address is taken as IPv4).
func IdentityFromAddr(a netip.Addr) Identity {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return Identity{Type: IDIPv4Addr, Data: b[:]}
	}
	b := a.As16()
	return Identity{Type: IDIPv6Addr, Data: b[:]}
}

// IdentityFQDN is the ID_FQDN identity of a host name ("vpn.example.com").
func IdentityFQDN(fqdn string) Identity { return Identity{Type: IDFQDN, Data: []byte(fqdn)} }

// IdentityRFC822 is the ID_RFC822_ADDR identity of an email address ("user@example.com").
func IdentityRFC822(addr string) Identity {
	return Identity{Type: IDRFC822Addr, Data: []byte(addr)}
}

// IdentityKeyID is the ID_KEY_ID identity with the given opaque octets.
func IdentityKeyID(id []byte) Identity { return Identity{Type: IDKeyID, Data: id} }

// Addr returns the address of an ID_IPV4_ADDR or ID_IPV6_ADDR identity.
func (id Identity) Addr() (netip.Addr, bool) {
	switch {
	case id.Type == IDIPv4Addr && len(id.Data) == 4:
		return netip.AddrFrom4([4]byte(id.Data)), true
	case id.Type == IDIPv6Addr && len(id.Data) == 16:
		return netip.AddrFrom16([16]byte(id.Data)), true
	}
	return netip.Addr{}, false
}

// Equal reports whether both identities have the same type and data.
func (id Identity) Equal(o Identity) bool {
	return id.Type == o.Type && string(id.Data) == string(o.Data)
}

// String prints the identity as strongSwan does: the address, the FQDN or email address
// as text, "@#hex" for a key ID, "%null" for ID_NULL, otherwise "TYPE:hex".
func (id Identity) String() string {
	switch id.Type {
	case IDIPv4Addr, IDIPv6Addr:
		if a, ok := id.Addr(); ok {
			return a.String()
		}
	case IDFQDN, IDRFC822Addr:
		if printable(id.Data) {
			return string(id.Data)
		}
	case IDKeyID:
		return fmt.Sprintf("@#%x", id.Data)
	case IDNull:
		if len(id.Data) == 0 {
			return "%null"
		}
	}
	return fmt.Sprintf("%v:%x", id.Type, id.Data)
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return len(b) > 0
}

// IDPayload is an Identification payload (RFC 7296 §3.5): IDi when Responder is false,
// IDr when it is true. Its body after the generic header — ID Type, three reserved
// octets, data — is the RestOfIDPayload that AUTH signs (§2.15); AppendBody builds it.
type IDPayload struct {
	Responder bool
	ID        Identity
}

// Type is PayloadIDi or PayloadIDr.
func (p *IDPayload) Type() PayloadType {
	if p.Responder {
		return PayloadIDr
	}
	return PayloadIDi
}

// AppendBody appends ID Type, three reserved octets and the data.
func (p *IDPayload) AppendBody(dst []byte) ([]byte, error) {
	return append(append(dst, byte(p.ID.Type), 0, 0, 0), p.ID.Data...), nil
}

func (p *IDPayload) decode(b []byte, base int) error {
	if len(b) < 4 {
		return errAt(AnswerInvalidSyntax, p.Type(), base, ErrShort)
	}
	p.ID = Identity{Type: IDType(b[0]), Data: nilIfEmpty(b[4:])}
	return nil
}

// Verify checks the data against the type: 4 octets for ID_IPV4_ADDR, 16 for
// ID_IPV6_ADDR, none for ID_NULL (RFC 7619), some for every other type (§3.5).
func (p *IDPayload) Verify() error {
	n := len(p.ID.Data)
	switch p.ID.Type {
	case IDIPv4Addr:
		if n != 4 {
			return invalid(p.Type(), "ID_IPV4_ADDR of %d octets", n)
		}
	case IDIPv6Addr:
		if n != 16 {
			return invalid(p.Type(), "ID_IPV6_ADDR of %d octets", n)
		}
	case IDNull:
		if n != 0 {
			return invalid(p.Type(), "ID_NULL with %d octets of data", n)
		}
	default:
		if n == 0 {
			return invalid(p.Type(), "empty %v", p.ID.Type)
		}
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// CERT, CERTREQ (§3.6, §3.7)

// CertPayload is a Certificate payload (RFC 7296 §3.6). Data points into the input.
type CertPayload struct {
	Encoding CertEncoding
	Data     []byte
}

// Type is PayloadCERT.
func (p *CertPayload) Type() PayloadType { return PayloadCERT }

// AppendBody appends the encoding octet and the data.
func (p *CertPayload) AppendBody(dst []byte) ([]byte, error) {
	return append(append(dst, byte(p.Encoding)), p.Data...), nil
}

func (p *CertPayload) decode(b []byte, base int) error {
	if len(b) < 1 {
		return errAt(AnswerInvalidSyntax, PayloadCERT, base, ErrShort)
	}
	p.Encoding, p.Data = CertEncoding(b[0]), nilIfEmpty(b[1:])
	return nil
}

// Verify checks that the certificate data is not empty.
func (p *CertPayload) Verify() error {
	if len(p.Data) == 0 {
		return invalid(PayloadCERT, "empty certificate data")
	}
	return nil
}

// CertReqPayload is a Certificate Request payload (RFC 7296 §3.7). For X.509, Authority
// is a concatenation of 20-octet SHA-1 hashes of trusted CAs' public keys (possibly
// empty). Authority points into the input.
type CertReqPayload struct {
	Encoding  CertEncoding
	Authority []byte
}

// Type is PayloadCERTREQ.
func (p *CertReqPayload) Type() PayloadType { return PayloadCERTREQ }

// AppendBody appends the encoding octet and the authority data.
func (p *CertReqPayload) AppendBody(dst []byte) ([]byte, error) {
	return append(append(dst, byte(p.Encoding)), p.Authority...), nil
}

func (p *CertReqPayload) decode(b []byte, base int) error {
	if len(b) < 1 {
		return errAt(AnswerInvalidSyntax, PayloadCERTREQ, base, ErrShort)
	}
	p.Encoding, p.Authority = CertEncoding(b[0]), nilIfEmpty(b[1:])
	return nil
}

// Verify checks that X.509 authority data is a whole number of SHA-1 hashes (§3.7).
func (p *CertReqPayload) Verify() error {
	if p.Encoding == CertX509Sig && len(p.Authority)%20 != 0 {
		return invalid(PayloadCERTREQ, "X.509 authority of %d octets is not a list of SHA-1 hashes", len(p.Authority))
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// AUTH (§3.8)

// AuthPayload is the Authentication payload (RFC 7296 §3.8). Data points into the input.
type AuthPayload struct {
	Method AuthMethod
	Data   []byte
}

// Type is PayloadAUTH.
func (p *AuthPayload) Type() PayloadType { return PayloadAUTH }

// AppendBody appends the method, three reserved octets and the data.
func (p *AuthPayload) AppendBody(dst []byte) ([]byte, error) {
	return append(append(dst, byte(p.Method), 0, 0, 0), p.Data...), nil
}

func (p *AuthPayload) decode(b []byte, base int) error {
	if len(b) < 4 {
		return errAt(AnswerInvalidSyntax, PayloadAUTH, base, ErrShort)
	}
	p.Method, p.Data = AuthMethod(b[0]), nilIfEmpty(b[4:])
	return nil
}

// Verify checks that the authentication data is not empty (NULL authentication, RFC
// 7619, still carries a MAC).
func (p *AuthPayload) Verify() error {
	if len(p.Data) == 0 {
		return invalid(PayloadAUTH, "empty authentication data")
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// Nonce (§3.9)

// Nonce length bounds (RFC 7296 §3.9, §2.10).
const (
	MinNonceLen = 16
	MaxNonceLen = 256
)

// NoncePayload is the Nonce payload Ni or Nr (RFC 7296 §3.9). Data points into the input.
type NoncePayload struct {
	Data []byte
}

// Type is PayloadNonce.
func (p *NoncePayload) Type() PayloadType { return PayloadNonce }

// AppendBody appends the nonce.
func (p *NoncePayload) AppendBody(dst []byte) ([]byte, error) { return append(dst, p.Data...), nil }

func (p *NoncePayload) decode(b []byte, _ int) error {
	p.Data = nilIfEmpty(b)
	return nil
}

// Verify checks the nonce length: 16 to 256 octets (§3.9).
func (p *NoncePayload) Verify() error {
	if n := len(p.Data); n < MinNonceLen || n > MaxNonceLen {
		return invalid(PayloadNonce, "nonce of %d octets (want %d..%d)", n, MinNonceLen, MaxNonceLen)
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// Notify (§3.10)

// NotifyPayload is the Notify payload (RFC 7296 §3.10). SPI is empty for notifies about
// the IKE SA (the Protocol ID is then 0 and ignored on receipt), 4 octets for a Child SA
// (REKEY_SA, CHILD_SA_NOT_FOUND, …). SPI and Data point into the input.
type NotifyPayload struct {
	Protocol   ProtocolID
	SPI        []byte
	NotifyType NotifyType
	Data       []byte
}

// Type is PayloadNotify.
func (p *NotifyPayload) Type() PayloadType { return PayloadNotify }

// AppendBody appends protocol, SPI size, notify type, SPI and data.
func (p *NotifyPayload) AppendBody(dst []byte) ([]byte, error) {
	if len(p.SPI) > 255 {
		return dst, fmt.Errorf("notify SPI: %w", ErrTooLong)
	}
	dst = append(dst, byte(p.Protocol), byte(len(p.SPI)))
	dst = appendU16(dst, uint16(p.NotifyType))
	return append(append(dst, p.SPI...), p.Data...), nil
}

func (p *NotifyPayload) decode(b []byte, base int) error {
	if len(b) < 4 {
		return errAt(AnswerInvalidSyntax, PayloadNotify, base, ErrShort)
	}
	spi, off, err := readBytes(b, 4, int(b[1]))
	if err != nil {
		return errAt(AnswerInvalidSyntax, PayloadNotify, base+4, fmt.Errorf("SPI of %d octets: %w", b[1], err))
	}
	p.Protocol, p.NotifyType = ProtocolID(b[0]), NotifyType(uint16(b[2])<<8|uint16(b[3]))
	p.SPI, p.Data = nilIfEmpty(spi), nilIfEmpty(b[off:])
	return nil
}

// NewNotify is a notify about the IKE SA (no SPI) with the given data (may be nil).
func NewNotify(t NotifyType, data []byte) *NotifyPayload {
	return &NotifyPayload{NotifyType: t, Data: data}
}

// NewChildNotify is a notify about the Child SA with the given 4-octet SPI, e.g. REKEY_SA
// (§1.3.3) or CHILD_SA_NOT_FOUND.
func NewChildNotify(t NotifyType, proto ProtocolID, spi uint32, data []byte) *NotifyPayload {
	return &NotifyPayload{Protocol: proto, SPI: appendU32(nil, spi), NotifyType: t, Data: data}
}

// ChildSPI returns the SPI of a notify about a Child SA (4-octet SPI).
func (p *NotifyPayload) ChildSPI() (uint32, bool) {
	if len(p.SPI) != 4 {
		return 0, false
	}
	v, _, _ := readU32(p.SPI, 0)
	return v, true
}

// Verify checks the SPI size (0, 4 for AH/ESP, 8 for IKE) and the data of the notifies
// whose data RFC 7296 fixes: INVALID_KE_PAYLOAD (a 2-octet group, §3.10.1), COOKIE (1 to
// 64 octets, §2.6), NAT_DETECTION_* (a 20-octet SHA-1 hash, §2.23), REKEY_SA (an AH/ESP
// SPI, §3.10.1), UNSUPPORTED_CRITICAL_PAYLOAD (one octet).
func (p *NotifyPayload) Verify() error {
	const pt = PayloadNotify
	n := len(p.SPI)
	switch {
	case n == 0:
	case n == 4 && (p.Protocol == ProtoAH || p.Protocol == ProtoESP):
	case n == 8 && p.Protocol == ProtoIKE:
	default:
		return invalid(pt, "%v: SPI of %d octets for protocol %v", p.NotifyType, n, p.Protocol)
	}
	d := len(p.Data)
	switch p.NotifyType {
	case NotifyInvalidKEPayload:
		if d != 2 {
			return invalid(pt, "INVALID_KE_PAYLOAD with %d octets of data", d)
		}
	case NotifyCookie:
		if d < 1 || d > 64 {
			return invalid(pt, "COOKIE of %d octets", d)
		}
	case NotifyNATDetectionSourceIP, NotifyNATDetectionDestinationIP:
		if d != 20 {
			return invalid(pt, "%v of %d octets", p.NotifyType, d)
		}
	case NotifyRekeySA:
		if n != 4 {
			return invalid(pt, "REKEY_SA without a Child SA SPI")
		}
	case NotifyUnsupportedCriticalPayload:
		if d != 1 {
			return invalid(pt, "UNSUPPORTED_CRITICAL_PAYLOAD with %d octets of data", d)
		}
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// Delete (§3.11)

// DeletePayload is the Delete payload (RFC 7296 §3.11). SPIs is the concatenation of the
// SPIs, each SPISize octets (none for the IKE SA, whose SPIs are in the header; 4 octets
// each for AH/ESP: the SPIs of the sender's inbound SAs). SPIs points into the input.
type DeletePayload struct {
	Protocol ProtocolID
	SPISize  uint8
	SPIs     []byte
}

// NewDeleteIKE is the Delete payload for the IKE SA the message travels on.
func NewDeleteIKE() *DeletePayload { return &DeletePayload{Protocol: ProtoIKE} }

// NewDeleteChild is the Delete payload for Child SAs of protocol proto (AH or ESP)
// identified by the sender's inbound SPIs.
func NewDeleteChild(proto ProtocolID, spis ...uint32) *DeletePayload {
	d := &DeletePayload{Protocol: proto, SPISize: 4, SPIs: make([]byte, 0, 4*len(spis))}
	for _, s := range spis {
		d.SPIs = appendU32(d.SPIs, s)
	}
	return d
}

// Count is the number of SPIs.
func (p *DeletePayload) Count() int {
	if p.SPISize == 0 {
		return 0
	}
	return len(p.SPIs) / int(p.SPISize)
}

// SPI returns the i-th SPI (0 <= i < Count()), pointing into SPIs.
func (p *DeletePayload) SPI(i int) []byte {
	n := int(p.SPISize)
	return p.SPIs[i*n : (i+1)*n : (i+1)*n]
}

// ChildSPIs appends the 4-octet SPIs as numbers to dst.
func (p *DeletePayload) ChildSPIs(dst []uint32) []uint32 {
	if p.SPISize != 4 {
		return dst
	}
	for off := 0; off+4 <= len(p.SPIs); off += 4 {
		v, _, _ := readU32(p.SPIs, off)
		dst = append(dst, v)
	}
	return dst
}

// Type is PayloadDelete.
func (p *DeletePayload) Type() PayloadType { return PayloadDelete }

// AppendBody appends protocol, SPI size, the number of SPIs and the SPIs.
func (p *DeletePayload) AppendBody(dst []byte) ([]byte, error) {
	if (p.SPISize == 0 && len(p.SPIs) != 0) || (p.SPISize != 0 && len(p.SPIs)%int(p.SPISize) != 0) {
		return dst, fmt.Errorf("delete: %d octets of SPIs of size %d: %w", len(p.SPIs), p.SPISize, ErrCount)
	}
	if p.Count() > 0xffff {
		return dst, fmt.Errorf("delete: %d SPIs: %w", p.Count(), ErrTooLong)
	}
	dst = append(dst, byte(p.Protocol), p.SPISize)
	dst = appendU16(dst, uint16(p.Count()))
	return append(dst, p.SPIs...), nil
}

func (p *DeletePayload) decode(b []byte, base int) error {
	if len(b) < 4 {
		return errAt(AnswerInvalidSyntax, PayloadDelete, base, ErrShort)
	}
	size, num := int(b[1]), int(b[2])<<8|int(b[3])
	if size*num != len(b)-4 || (size == 0 && num != 0) {
		return errAt(AnswerInvalidSyntax, PayloadDelete, base+2, fmt.Errorf("%d SPIs of %d octets in %d octets: %w", num, size, len(b)-4, ErrCount))
	}
	p.Protocol, p.SPISize, p.SPIs = ProtocolID(b[0]), uint8(size), nilIfEmpty(b[4:])
	return nil
}

// Verify checks the SPI size for the protocol: 0 for IKE (and no SPIs), 4 for AH/ESP
// with at least one SPI (§3.11).
func (p *DeletePayload) Verify() error {
	switch p.Protocol {
	case ProtoIKE:
		if p.SPISize != 0 || len(p.SPIs) != 0 {
			return invalid(PayloadDelete, "IKE delete with SPI size %d", p.SPISize)
		}
	case ProtoAH, ProtoESP:
		if p.SPISize != 4 || len(p.SPIs) == 0 {
			return invalid(PayloadDelete, "%v delete with SPI size %d and %d octets of SPIs", p.Protocol, p.SPISize, len(p.SPIs))
		}
	default:
		return invalid(PayloadDelete, "delete for protocol %v", p.Protocol)
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// Vendor ID (§3.12)

// VendorIDPayload is a Vendor ID payload (RFC 7296 §3.12). Data points into the input.
type VendorIDPayload struct {
	Data []byte
}

// Type is PayloadVendor.
func (p *VendorIDPayload) Type() PayloadType { return PayloadVendor }

// AppendBody appends the vendor ID.
func (p *VendorIDPayload) AppendBody(dst []byte) ([]byte, error) { return append(dst, p.Data...), nil }

func (p *VendorIDPayload) decode(b []byte, _ int) error {
	p.Data = nilIfEmpty(b)
	return nil
}

// Verify checks that the vendor ID is not empty.
func (p *VendorIDPayload) Verify() error {
	if len(p.Data) == 0 {
		return invalid(PayloadVendor, "empty vendor ID")
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// EAP (§3.16)

// EAPPayload carries one EAP message (RFC 7296 §3.16, RFC 3748), opaque to this package.
// Data points into the input.
type EAPPayload struct {
	Data []byte
}

// Type is PayloadEAP.
func (p *EAPPayload) Type() PayloadType { return PayloadEAP }

// AppendBody appends the EAP message.
func (p *EAPPayload) AppendBody(dst []byte) ([]byte, error) { return append(dst, p.Data...), nil }

func (p *EAPPayload) decode(b []byte, _ int) error {
	p.Data = nilIfEmpty(b)
	return nil
}

// Verify checks the EAP header: at least Code, Identifier and Length, and a Length equal
// to the message size (RFC 3748 §4).
func (p *EAPPayload) Verify() error {
	if len(p.Data) < 4 {
		return invalid(PayloadEAP, "EAP message of %d octets", len(p.Data))
	}
	if n := int(p.Data[2])<<8 | int(p.Data[3]); n != len(p.Data) {
		return invalid(PayloadEAP, "EAP length %d in a message of %d octets", n, len(p.Data))
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// Unknown payload types (§3.2)

// UnknownPayload is a payload whose type this package does not know, with the critical
// bit clear (a critical one fails decoding). The receiver skips it (RFC 7296 §3.2); it is
// kept so that logs can show it and re-encoding is faithful. Body points into the input.
type UnknownPayload struct {
	PayloadType PayloadType
	Critical    bool
	Body        []byte
}

// Type is the unknown payload type.
func (p *UnknownPayload) Type() PayloadType { return p.PayloadType }

// AppendBody appends the body as received.
func (p *UnknownPayload) AppendBody(dst []byte) ([]byte, error) { return append(dst, p.Body...), nil }

// Verify accepts anything: an unknown non-critical payload is ignored.
func (p *UnknownPayload) Verify() error { return nil }
