package wire

import (
	"fmt"
	"net/netip"
	"strconv"
)

// TrafficSelector is one traffic selector (RFC 7296 §3.13.1): an inclusive address range
// Start..End, an IP protocol (0 = any) and an inclusive port range StartPort..EndPort
// (0..65535 = any; 65535..0 = OPAQUE, §3.13.1). Type is TSIPv4AddrRange or
// TSIPv6AddrRange for address ranges; an address range of the wrong family does not
// encode. Addresses are never unmapped: an IPv6 selector stays 16 octets.
//
// For any other TS type (TS_FC_ADDR_RANGE, TS_SECLABEL, …) Start and End are invalid,
// IPProtocol holds the second octet and Opaque the octets after the 4-octet selector
// header, copied (a string keeps TrafficSelector comparable with ==). The core answers
// such a selector with TS_UNACCEPTABLE; Verify does not reject it.
type TrafficSelector struct {
	Type       TSType
	IPProtocol uint8
	StartPort  uint16
	EndPort    uint16
	Start      netip.Addr
	End        netip.Addr
	Opaque     string
}

// Selector lengths on the wire (§3.13.1).
const (
	tsIPv4Len = 16
	tsIPv6Len = 40
)

// TSFromPrefix is the selector covering prefix p, any protocol, any port.
func TSFromPrefix(p netip.Prefix) TrafficSelector {
	p = p.Masked()
	return TSFromRange(p.Addr(), lastAddr(p))
}

// TSFromRange is the selector covering start..end (same family), any protocol, any port.
func TSFromRange(start, end netip.Addr) TrafficSelector {
	t := TSIPv6AddrRange
	if start.Is4() {
		t = TSIPv4AddrRange
	}
	return TrafficSelector{Type: t, Start: start, End: end, EndPort: 0xffff}
}

// lastAddr is the highest address in p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		for i := p.Bits(); i < 32; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	for i := max(p.Bits(), 0); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}

// Prefix returns the prefix whose range is exactly Start..End, if there is one.
func (ts TrafficSelector) Prefix() (netip.Prefix, bool) {
	if !ts.Start.IsValid() || ts.Start.BitLen() != ts.End.BitLen() {
		return netip.Prefix{}, false
	}
	// The prefix length is the length of the common leading bits, provided Start has
	// only zeros and End only ones after it.
	bits := commonBits(ts.Start, ts.End)
	p := netip.PrefixFrom(ts.Start, bits)
	if p.Masked().Addr() != ts.Start || lastAddr(p) != ts.End {
		return netip.Prefix{}, false
	}
	return p, true
}

func commonBits(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	n := 0
	for i := range x {
		d := x[i] ^ y[i]
		if d == 0 {
			n += 8
			continue
		}
		for d&0x80 == 0 {
			n++
			d <<= 1
		}
		break
	}
	if a.Is4() {
		n -= 96
	}
	return n
}

// AnyPort reports whether the port range is 0..65535.
func (ts TrafficSelector) AnyPort() bool { return ts.StartPort == 0 && ts.EndPort == 0xffff }

// String prints the selector as strongSwan does: "10.0.0.0/24", "10.0.0.1..10.0.0.9",
// with "[proto/port]" or "[proto/start-end]" when not any protocol and any port.
func (ts TrafficSelector) String() string {
	if ts.Type != TSIPv4AddrRange && ts.Type != TSIPv6AddrRange {
		return fmt.Sprintf("%v(%x)", ts.Type, ts.Opaque)
	}
	var s string
	if p, ok := ts.Prefix(); ok {
		s = p.String()
	} else {
		s = ts.Start.String() + ".." + ts.End.String()
	}
	if ts.IPProtocol == 0 && ts.AnyPort() {
		return s
	}
	port := ""
	switch {
	case ts.AnyPort():
	case ts.StartPort == 0xffff && ts.EndPort == 0:
		port = "OPAQUE"
	case ts.StartPort == ts.EndPort:
		port = strconv.Itoa(int(ts.StartPort))
	default:
		port = strconv.Itoa(int(ts.StartPort)) + "-" + strconv.Itoa(int(ts.EndPort))
	}
	return s + "[" + strconv.Itoa(int(ts.IPProtocol)) + "/" + port + "]"
}

func (ts TrafficSelector) appendTo(dst []byte) ([]byte, error) {
	switch ts.Type {
	case TSIPv4AddrRange:
		if !ts.Start.Is4() || !ts.End.Is4() {
			return dst, fmt.Errorf("%v with %v..%v: %w", ts.Type, ts.Start, ts.End, ErrInvalid)
		}
		dst = append(dst, byte(ts.Type), ts.IPProtocol, 0, tsIPv4Len)
		dst = appendU16(appendU16(dst, ts.StartPort), ts.EndPort)
		s, e := ts.Start.As4(), ts.End.As4()
		return append(append(dst, s[:]...), e[:]...), nil
	case TSIPv6AddrRange:
		if !ts.Start.Is6() || !ts.End.Is6() {
			return dst, fmt.Errorf("%v with %v..%v: %w", ts.Type, ts.Start, ts.End, ErrInvalid)
		}
		dst = append(dst, byte(ts.Type), ts.IPProtocol, 0, tsIPv6Len)
		dst = appendU16(appendU16(dst, ts.StartPort), ts.EndPort)
		s, e := ts.Start.As16(), ts.End.As16()
		return append(append(dst, s[:]...), e[:]...), nil
	}
	n := 4 + len(ts.Opaque)
	if n > 0xffff {
		return dst, fmt.Errorf("%v selector: %w", ts.Type, ErrTooLong)
	}
	dst = append(dst, byte(ts.Type), ts.IPProtocol)
	dst = appendU16(dst, uint16(n))
	return append(dst, ts.Opaque...), nil
}

// TSPayload is a Traffic Selector payload (RFC 7296 §3.13): TSi when Responder is false,
// TSr when it is true.
type TSPayload struct {
	Responder bool
	Selectors []TrafficSelector
}

// Type is PayloadTSi or PayloadTSr.
func (p *TSPayload) Type() PayloadType {
	if p.Responder {
		return PayloadTSr
	}
	return PayloadTSi
}

// AppendBody appends the number of selectors, three reserved octets and the selectors.
func (p *TSPayload) AppendBody(dst []byte) ([]byte, error) {
	if len(p.Selectors) > 255 {
		return dst, fmt.Errorf("%v: %d selectors: %w", p.Type(), len(p.Selectors), ErrTooLong)
	}
	dst = append(dst, byte(len(p.Selectors)), 0, 0, 0)
	var err error
	for _, ts := range p.Selectors {
		if dst, err = ts.appendTo(dst); err != nil {
			return dst, fmt.Errorf("%v: %w", p.Type(), err)
		}
	}
	return dst, nil
}

func (p *TSPayload) decode(b []byte, base int) error {
	pt := p.Type()
	if len(b) < 4 {
		return errAt(AnswerInvalidSyntax, pt, base, ErrShort)
	}
	num := int(b[0])
	if num == 0 {
		if len(b) != 4 {
			return errAt(AnswerInvalidSyntax, pt, base, fmt.Errorf("0 selectors in %d octets: %w", len(b)-4, ErrCount))
		}
		p.Selectors = nil
		return nil
	}
	sels := make([]TrafficSelector, 0, min(num, (len(b)-4)/4)) // a selector is at least 4 octets
	off := 4
	for i := 0; i < num; i++ {
		n, _, err := readU16(b, off+2)
		if err != nil {
			return errAt(AnswerInvalidSyntax, pt, base+off, fmt.Errorf("selector %d: %w", i+1, err))
		}
		sb, end, err := readBytes(b, off, int(n))
		if err != nil || n < 4 {
			return errAt(AnswerInvalidSyntax, pt, base+off, fmt.Errorf("selector %d length %d: %w", i+1, n, ErrSubstructure))
		}
		ts := TrafficSelector{Type: TSType(sb[0]), IPProtocol: sb[1]}
		switch ts.Type {
		case TSIPv4AddrRange, TSIPv6AddrRange:
			want := tsIPv4Len
			if ts.Type == TSIPv6AddrRange {
				want = tsIPv6Len
			}
			if int(n) != want {
				return errAt(AnswerInvalidSyntax, pt, base+off, fmt.Errorf("%v of length %d: %w", ts.Type, n, ErrSubstructure))
			}
			ts.StartPort = uint16(sb[4])<<8 | uint16(sb[5])
			ts.EndPort = uint16(sb[6])<<8 | uint16(sb[7])
			if ts.Type == TSIPv4AddrRange {
				ts.Start, ts.End = netip.AddrFrom4([4]byte(sb[8:12])), netip.AddrFrom4([4]byte(sb[12:16]))
			} else {
				ts.Start, ts.End = netip.AddrFrom16([16]byte(sb[8:24])), netip.AddrFrom16([16]byte(sb[24:40]))
			}
		default:
			ts.Opaque = string(sb[4:])
		}
		sels = append(sels, ts)
		off = end
	}
	if off != len(b) {
		return errAt(AnswerInvalidSyntax, pt, base+off, fmt.Errorf("%d selectors do not fill the payload: %w", num, ErrCount))
	}
	p.Selectors = sels
	return nil
}

// Verify checks that there is at least one selector and that each address range has
// Start <= End and each port range StartPort <= EndPort or is OPAQUE (65535..0) (§3.13.1).
// Selectors of unknown types pass: refusing them is a policy decision (TS_UNACCEPTABLE).
func (p *TSPayload) Verify() error {
	if len(p.Selectors) == 0 {
		return invalid(p.Type(), "no traffic selectors")
	}
	for i, ts := range p.Selectors {
		if ts.Type != TSIPv4AddrRange && ts.Type != TSIPv6AddrRange {
			continue
		}
		if ts.End.Less(ts.Start) {
			return invalid(p.Type(), "selector %d: start %v after end %v", i+1, ts.Start, ts.End)
		}
		if ts.StartPort > ts.EndPort && (ts.StartPort != 0xffff || ts.EndPort != 0) {
			return invalid(p.Type(), "selector %d: start port %d after end port %d", i+1, ts.StartPort, ts.EndPort)
		}
	}
	return nil
}
