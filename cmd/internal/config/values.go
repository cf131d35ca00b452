package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// This file holds the parsers for swanctl.conf's value syntaxes. Each returns an error
// whose text completes "key: ..." — the decoder adds file, line and key path.

// IDType is the type of an IKE identity (RFC 7296 §3.5).
type IDType uint8

const (
	IDAny    IDType = 0 // configuration only: "%any" matches every identity
	IDIPv4   IDType = 1
	IDFQDN   IDType = 2
	IDRFC822 IDType = 3
	IDIPv6   IDType = 5
	IDKeyID  IDType = 11
)

func (t IDType) String() string {
	switch t {
	case IDAny:
		return "ANY"
	case IDIPv4:
		return "ID_IPV4_ADDR"
	case IDFQDN:
		return "ID_FQDN"
	case IDRFC822:
		return "ID_RFC822_ADDR"
	case IDIPv6:
		return "ID_IPV6_ADDR"
	case IDKeyID:
		return "ID_KEY_ID"
	}
	return fmt.Sprintf("IDType(%d)", uint8(t))
}

// Identity is an IKE identity as configured. Value is canonical: an address as
// netip prints it, an FQDN or e-mail address as written, a key ID as lowercase hex.
// Identities are comparable with ==.
type Identity struct {
	Type  IDType
	Value string
}

// AnyID is "%any".
var AnyID = Identity{Type: IDAny}

// String prints the identity in the syntax ParseIdentity reads.
func (id Identity) String() string {
	switch id.Type {
	case IDAny:
		return "%any"
	case IDKeyID:
		return "keyid:" + id.Value
	}
	// The bare form when it reads back the same, else with an explicit prefix.
	if back, err := ParseIdentity(id.Value); err == nil && back == id {
		return id.Value
	}
	switch id.Type {
	case IDFQDN:
		return "fqdn:" + id.Value
	case IDRFC822:
		return "email:" + id.Value
	}
	return id.Value
}

// IdentityFromAddr is the ID_IPV4_ADDR/ID_IPV6_ADDR identity of a.
func IdentityFromAddr(a netip.Addr) Identity {
	a = a.Unmap()
	if a.Is4() {
		return Identity{Type: IDIPv4, Value: a.String()}
	}
	return Identity{Type: IDIPv6, Value: a.String()}
}

// ParseIdentity reads an identity as swanctl does: an IPv4/IPv6 address, "%any",
// "@fqdn" or a bare name (ID_FQDN), "user@domain" (ID_RFC822_ADDR), "keyid:hex" or
// "@#hex" (ID_KEY_ID), or with an explicit "fqdn:", "email:", "ipv4:", "ipv6:" prefix.
// Distinguished names (ID_DER_ASN1_DN) are not supported: there are no certificates.
func ParseIdentity(s string) (Identity, error) {
	switch {
	case s == "":
		return Identity{}, errors.New("expected an identity (address, @fqdn, user@domain or keyid:hex), got an empty string")
	case s == "%any":
		return AnyID, nil
	case strings.ContainsAny(s, " \t\n"):
		return Identity{}, fmt.Errorf("expected an identity (address, @fqdn, user@domain or keyid:hex), got %q: it contains white space", s)
	case strings.Contains(s, "=") && strings.Contains(s, ","):
		return Identity{}, fmt.Errorf("distinguished names like %q need certificates, which cygnet does not support; use an address, @fqdn, user@domain or keyid:hex", s)
	}
	if prefix, rest, ok := strings.Cut(s, ":"); ok {
		switch prefix {
		case "fqdn":
			return nonEmptyID(IDFQDN, rest, s)
		case "email", "rfc822":
			return nonEmptyID(IDRFC822, rest, s)
		case "keyid":
			return parseKeyID(rest, s)
		case "ipv4", "ipv6":
			a, err := netip.ParseAddr(rest)
			if err != nil || a.Zone() != "" || (prefix == "ipv4") != a.Unmap().Is4() {
				return Identity{}, fmt.Errorf("expected an %s address after %s:, got %q", prefix, prefix, rest)
			}
			return IdentityFromAddr(a), nil
		}
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return IdentityFromAddr(a), nil
	}
	if rest, ok := strings.CutPrefix(s, "@#"); ok {
		return parseKeyID(rest, s)
	}
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		return nonEmptyID(IDFQDN, rest, s)
	}
	if strings.Contains(s, "@") {
		return Identity{Type: IDRFC822, Value: s}, nil
	}
	return Identity{Type: IDFQDN, Value: s}, nil
}

func nonEmptyID(t IDType, v, orig string) (Identity, error) {
	if v == "" {
		return Identity{}, fmt.Errorf("expected a name after the prefix, got %q", orig)
	}
	return Identity{Type: t, Value: v}, nil
}

func parseKeyID(h, orig string) (Identity, error) {
	h = strings.TrimPrefix(h, "0x")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) == 0 {
		return Identity{}, fmt.Errorf("expected a key ID as hex digits (keyid:0a1b…), got %q", orig)
	}
	return Identity{Type: IDKeyID, Value: hex.EncodeToString(b)}, nil
}

// parseDuration reads strongSwan's time syntax: an integer with an optional unit
// s, m, h or d; no unit means seconds ("3600" is an hour).
func parseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("expected a duration like 30s, 10m, 4h, 1d or a number of seconds, got %q", s)
	if s == "" {
		return 0, bad
	}
	unit := time.Second
	num := s
	switch s[len(s)-1] {
	case 's':
		num = s[:len(s)-1]
	case 'm':
		unit, num = time.Minute, s[:len(s)-1]
	case 'h':
		unit, num = time.Hour, s[:len(s)-1]
	case 'd':
		unit, num = 24*time.Hour, s[:len(s)-1]
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || num == "" || num[0] == '+' {
		return 0, bad
	}
	if n > uint64(math.MaxInt64/int64(unit)) {
		return 0, fmt.Errorf("duration %q is too long", s)
	}
	return time.Duration(n) * unit, nil
}

// parseVolume reads strongSwan's byte/packet count syntax: an integer with an optional
// suffix k, m or g (powers of 1024, either case).
func parseVolume(s string) (uint64, error) {
	bad := fmt.Errorf("expected a number with an optional k, m or g suffix (like 500m), got %q", s)
	if s == "" {
		return 0, bad
	}
	mult := uint64(1)
	num := s
	switch s[len(s)-1] {
	case 'k', 'K':
		mult, num = 1<<10, s[:len(s)-1]
	case 'm', 'M':
		mult, num = 1<<20, s[:len(s)-1]
	case 'g', 'G':
		mult, num = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || num == "" || num[0] == '+' {
		return 0, bad
	}
	if n > math.MaxUint64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// parseAddr reads an outer address. swanctl also allows host names, subnets and ranges
// there; cygnet does not resolve names and needs single addresses.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err == nil && a.Zone() == "" {
		return a.Unmap(), nil
	}
	switch {
	case strings.Contains(s, "/"):
		return netip.Addr{}, fmt.Errorf("expected an IP address or %%any, got the subnet %q: cygnet matches peers by identity, list single addresses or use %%any", s)
	case strings.Contains(s, "-"):
		return netip.Addr{}, fmt.Errorf("expected an IP address or %%any, got the range %q: list single addresses or use %%any", s)
	case strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") && !strings.Contains(s, ":"):
		return netip.Addr{}, fmt.Errorf("expected an IP address or %%any, got %q: cygnet does not resolve host names", s)
	}
	return netip.Addr{}, fmt.Errorf("expected an IP address like 192.0.2.1 or 2001:db8::1, or %%any, got %q", s)
}

// TrafficSelector is one local_ts/remote_ts entry (RFC 7296 §3.13.1).
type TrafficSelector struct {
	// Dynamic is swanctl's "dynamic": the outer address of that side, as a /32 or /128.
	Dynamic bool
	// Start and End are the address range (unset when Dynamic).
	Start, End netip.Addr
	// Protocol is the IP protocol number, 0 for any.
	Protocol uint8
	// StartPort and EndPort are the port range, 0-65535 for any. For ICMP the
	// type/code are encoded in the port as RFC 7296 §3.13.1 says (type in the high byte).
	StartPort, EndPort uint16
}

// String prints the selector in the syntax parseTS reads: 10.0.0.0/24, a range
// 10.0.0.1-10.0.0.9, or dynamic, followed by [proto/port] when not "any".
func (ts TrafficSelector) String() string {
	var s string
	switch {
	case ts.Dynamic:
		s = "dynamic"
	default:
		if p, ok := ts.Prefix(); ok {
			s = p.String()
		} else {
			s = ts.Start.String() + "-" + ts.End.String()
		}
	}
	if ts.Protocol == 0 && ts.StartPort == 0 && ts.EndPort == 0xffff {
		return s
	}
	proto := ""
	if ts.Protocol != 0 {
		proto = protoName(ts.Protocol)
	}
	port := ""
	switch {
	case ts.StartPort == 0 && ts.EndPort == 0xffff:
	case ts.StartPort == ts.EndPort:
		port = "/" + strconv.Itoa(int(ts.StartPort))
	default:
		port = "/" + strconv.Itoa(int(ts.StartPort)) + "-" + strconv.Itoa(int(ts.EndPort))
	}
	return s + "[" + proto + port + "]"
}

// Prefix returns the prefix equal to the address range, if the range is one.
func (ts TrafficSelector) Prefix() (netip.Prefix, bool) {
	if ts.Dynamic || !ts.Start.IsValid() || ts.Start.BitLen() != ts.End.BitLen() {
		return netip.Prefix{}, false
	}
	for bits := 0; bits <= ts.Start.BitLen(); bits++ {
		p := netip.PrefixFrom(ts.Start, bits)
		if p.Masked().Addr() == ts.Start && lastAddr(p) == ts.End {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

var protoNumbers = map[string]uint8{"icmp": 1, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58, "icmpv6": 58, "sctp": 132}

func protoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 47:
		return "gre"
	case 50:
		return "esp"
	case 51:
		return "ah"
	case 58:
		return "icmpv6"
	case 132:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

const tsExpect = "expected CIDR like 10.1.0.0/16, an address, a range a-b or dynamic, optionally with [proto/port]"

// parseTS reads a swanctl traffic selector: CIDR (10.1.0.0/16), a single address, a
// range (10.1.0.1-10.1.0.9), or dynamic, optionally followed by [proto], [proto/port],
// [proto/lo-hi] or [/port]; proto is a name (tcp, udp, icmp, …) or a number, port a
// number, a range or %any.
func parseTS(s string) (TrafficSelector, error) {
	ts := TrafficSelector{EndPort: 0xffff}
	addr := s
	if i := strings.IndexByte(s, '['); i >= 0 {
		if !strings.HasSuffix(s, "]") {
			return ts, fmt.Errorf("%s, got %q: missing ]", tsExpect, s)
		}
		if err := parseProtoPort(s[i+1:len(s)-1], &ts); err != nil {
			return ts, fmt.Errorf("%s, got %q: %v", tsExpect, s, err)
		}
		addr = s[:i]
	}
	switch {
	case addr == "dynamic":
		ts.Dynamic = true
	case strings.Contains(addr, "/"):
		p, err := netip.ParsePrefix(addr)
		if err != nil {
			a, bits, _ := strings.Cut(addr, "/")
			ip, aerr := netip.ParseAddr(a)
			n, nerr := strconv.Atoi(bits)
			if aerr == nil && nerr == nil && n > ip.BitLen() {
				return ts, fmt.Errorf("expected CIDR like 10.1.0.0/16, got %q: the prefix length is at most %d", s, ip.BitLen())
			}
			return ts, fmt.Errorf("expected CIDR like 10.1.0.0/16, got %q", s)
		}
		if p.Addr().Zone() != "" {
			return ts, fmt.Errorf("%s, got %q: zones are not allowed", tsExpect, s)
		}
		if p.Masked() != p {
			return ts, fmt.Errorf("%s, got %q: host bits are set (did you mean %s?)", tsExpect, s, p.Masked())
		}
		ts.Start, ts.End = p.Addr(), lastAddr(p)
	case strings.Contains(addr, "-"):
		lo, hi, _ := strings.Cut(addr, "-")
		a, err1 := netip.ParseAddr(lo)
		b, err2 := netip.ParseAddr(hi)
		if err1 != nil || err2 != nil || a.Zone() != "" || b.Zone() != "" {
			return ts, fmt.Errorf("%s, got %q", tsExpect, s)
		}
		if a.Is4() != b.Is4() {
			return ts, fmt.Errorf("%s, got %q: the range mixes IPv4 and IPv6", tsExpect, s)
		}
		if b.Less(a) {
			return ts, fmt.Errorf("%s, got %q: the range ends before it starts", tsExpect, s)
		}
		ts.Start, ts.End = a, b
	default:
		a, err := netip.ParseAddr(addr)
		if err != nil || a.Zone() != "" {
			return ts, fmt.Errorf("%s, got %q", tsExpect, s)
		}
		ts.Start, ts.End = a, a
	}
	if ts.Start.IsValid() {
		ts.Start, ts.End = ts.Start.Unmap(), ts.End.Unmap()
	}
	return ts, nil
}

func parseProtoPort(s string, ts *TrafficSelector) error {
	proto, port, hasPort := strings.Cut(s, "/")
	switch proto {
	case "", "%any", "any":
	default:
		if n, ok := protoNumbers[strings.ToLower(proto)]; ok {
			ts.Protocol = n
		} else if n, err := strconv.ParseUint(proto, 10, 8); err == nil && proto[0] != '+' {
			ts.Protocol = uint8(n)
		} else {
			return fmt.Errorf("unknown protocol %q", proto)
		}
	}
	if !hasPort || port == "%any" || port == "" {
		return nil
	}
	if ts.Protocol != 0 && ts.Protocol != 6 && ts.Protocol != 17 && ts.Protocol != 132 && ts.Protocol != 1 && ts.Protocol != 58 {
		return fmt.Errorf("protocol %s has no ports", protoName(ts.Protocol))
	}
	lo, hi, isRange := strings.Cut(port, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil || lo[0] == '+' {
		return fmt.Errorf("port %q is not a number 0-65535", port)
	}
	b := a
	if isRange {
		b, err = strconv.ParseUint(hi, 10, 16)
		if err != nil || hi == "" || hi[0] == '+' || b < a {
			return fmt.Errorf("port range %q is not lo-hi with 0 <= lo <= hi <= 65535", port)
		}
	}
	ts.StartPort, ts.EndPort = uint16(a), uint16(b)
	return nil
}

// parsePSK reads a swanctl secret value: a plain string, "0x" followed by hex, or "0s"
// followed by base64. Errors never include the value.
func parsePSK(s string) ([]byte, error) {
	switch {
	case strings.HasPrefix(s, "0x"):
		b, err := hex.DecodeString(s[2:])
		if err != nil {
			return nil, errors.New("a secret starting with 0x must be hex digits (the value is not shown)")
		}
		if len(b) == 0 {
			return nil, errors.New("expected a non-empty secret")
		}
		return b, nil
	case strings.HasPrefix(s, "0s"):
		b, err := base64.StdEncoding.DecodeString(s[2:])
		if err != nil {
			return nil, errors.New("a secret starting with 0s must be base64 (the value is not shown)")
		}
		if len(b) == 0 {
			return nil, errors.New("expected a non-empty secret")
		}
		return b, nil
	case s == "":
		return nil, errors.New("expected a non-empty secret")
	}
	return []byte(s), nil
}
