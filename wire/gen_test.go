package wire

import (
	"net/netip"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// Generators of valid payloads and messages for the property tests. Empty byte fields
// are nil, as the decoder leaves them, so that decoded values compare equal.

var cmpOpts = cmp.Options{cmp.Comparer(func(a, b netip.Addr) bool { return a == b })}

func genBytes(min, max int) *rapid.Generator[[]byte] {
	return rapid.Custom(func(t *rapid.T) []byte {
		b := rapid.SliceOfN(rapid.Byte(), min, max).Draw(t, "bytes")
		if len(b) == 0 {
			return nil
		}
		return b
	})
}

// genAttrs draws transform attributes other than a non-zero TV Key Length.
func genAttrs() *rapid.Generator[string] {
	return rapid.Custom(func(t *rapid.T) string {
		var b []byte
		for range rapid.IntRange(0, 3).Draw(t, "nattrs") {
			at := rapid.Uint16Range(1, 0x7fff).Draw(t, "attrType")
			if rapid.Bool().Draw(t, "tv") {
				v := rapid.Uint16().Draw(t, "tvValue")
				if at == AttrKeyLength {
					v = 0
				}
				b = appendU16(appendU16(b, 0x8000|at), v)
			} else {
				val := rapid.SliceOfN(rapid.Byte(), 0, 12).Draw(t, "tlvValue")
				b = append(appendU16(appendU16(b, at), uint16(len(val))), val...)
			}
		}
		return string(b)
	})
}

func genTransform() *rapid.Generator[Transform] {
	return rapid.Custom(func(t *rapid.T) Transform {
		tr := Transform{
			Type: TransformType(rapid.Uint8Range(1, 12).Draw(t, "ttype")),
			ID:   TransformID(rapid.Uint16().Draw(t, "tid")),
		}
		if rapid.Bool().Draw(t, "keylen") {
			tr.KeyLength = rapid.SampledFrom([]uint16{128, 192, 256, 1}).Draw(t, "kl")
		}
		if rapid.IntRange(0, 4).Draw(t, "odd") == 0 {
			tr.OtherAttrs = genAttrs().Draw(t, "attrs")
		}
		return tr
	})
}

func genSA() *rapid.Generator[*SAPayload] {
	return rapid.Custom(func(t *rapid.T) *SAPayload {
		n := rapid.IntRange(1, 4).Draw(t, "nprops")
		sa := &SAPayload{}
		for i := range n {
			p := Proposal{
				Num:      uint8(i + 1),
				Protocol: rapid.SampledFrom([]ProtocolID{ProtoIKE, ProtoAH, ProtoESP}).Draw(t, "proto"),
			}
			switch p.Protocol {
			case ProtoIKE:
				p.SPI = rapid.SampledFrom([][]byte{nil, {1, 2, 3, 4, 5, 6, 7, 8}}).Draw(t, "ikespi")
			default:
				p.SPI = genBytes(4, 4).Draw(t, "spi")
			}
			p.Transforms = rapid.SliceOfN(genTransform(), 1, 8).Draw(t, "transforms")
			sa.Proposals = append(sa.Proposals, p)
		}
		return sa
	})
}

func genAddr(v6 bool) *rapid.Generator[netip.Addr] {
	return rapid.Custom(func(t *rapid.T) netip.Addr {
		if v6 {
			return netip.AddrFrom16([16]byte(rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "a6")))
		}
		return netip.AddrFrom4([4]byte(rapid.SliceOfN(rapid.Byte(), 4, 4).Draw(t, "a4")))
	})
}

// genSelector draws a selector that passes Verify (start <= end) unless it is of an
// unknown type.
func genSelector() *rapid.Generator[TrafficSelector] {
	return rapid.Custom(func(t *rapid.T) TrafficSelector {
		switch rapid.IntRange(0, 9).Draw(t, "tskind") {
		case 0:
			return TrafficSelector{
				Type:       TSType(rapid.SampledFrom([]uint8{0, 9, 10, 200}).Draw(t, "tstype")),
				IPProtocol: rapid.Uint8().Draw(t, "octet1"),
				Opaque:     string(rapid.SliceOfN(rapid.Byte(), 0, 24).Draw(t, "opaque")),
			}
		case 1, 2, 3:
			p := netip.PrefixFrom(genAddr(true).Draw(t, "addr"), rapid.IntRange(0, 128).Draw(t, "bits"))
			return TSFromPrefix(p)
		case 4, 5, 6:
			p := netip.PrefixFrom(genAddr(false).Draw(t, "addr"), rapid.IntRange(0, 32).Draw(t, "bits"))
			ts := TSFromPrefix(p)
			ts.IPProtocol = rapid.Uint8().Draw(t, "ipproto")
			return ts
		}
		v6 := rapid.Bool().Draw(t, "v6")
		a, b := genAddr(v6).Draw(t, "start"), genAddr(v6).Draw(t, "end")
		if b.Less(a) {
			a, b = b, a
		}
		ts := TSFromRange(a, b)
		ts.IPProtocol = rapid.Uint8().Draw(t, "ipproto")
		ts.StartPort = rapid.Uint16().Draw(t, "sport")
		ts.EndPort = rapid.Uint16Min(ts.StartPort).Draw(t, "eport")
		return ts
	})
}

// genPayload draws one payload of any type except SK/SKF that passes Verify.
func genPayload() *rapid.Generator[Payload] {
	return rapid.Custom(func(t *rapid.T) Payload {
		switch rapid.IntRange(0, 15).Draw(t, "ptype") {
		case 0:
			return genSA().Draw(t, "sa")
		case 1:
			return &KEPayload{Group: TransformID(rapid.Uint16Range(1, 0xffff).Draw(t, "group")), Data: genBytes(1, 300).Draw(t, "ke")}
		case 2:
			id := rapid.SampledFrom([]Identity{
				IdentityFromAddr(netip.MustParseAddr("192.0.2.1")),
				IdentityFromAddr(netip.MustParseAddr("2001:db8::1")),
				IdentityFQDN("vpn.example.com"),
				IdentityRFC822("user@example.com"),
				IdentityKeyID([]byte{1, 2, 3}),
				{Type: IDNull},
			}).Draw(t, "id")
			return &IDPayload{Responder: rapid.Bool().Draw(t, "r"), ID: id}
		case 3:
			return &CertPayload{Encoding: CertEncoding(rapid.Uint8().Draw(t, "enc")), Data: genBytes(1, 100).Draw(t, "cert")}
		case 4:
			n := 20 * rapid.IntRange(0, 3).Draw(t, "ncas")
			return &CertReqPayload{Encoding: CertX509Sig, Authority: genBytes(n, n).Draw(t, "cas")}
		case 5:
			return &AuthPayload{Method: AuthMethod(rapid.Uint8().Draw(t, "m")), Data: genBytes(1, 64).Draw(t, "auth")}
		case 6:
			return &NoncePayload{Data: genBytes(MinNonceLen, MaxNonceLen).Draw(t, "nonce")}
		case 7:
			n := &NotifyPayload{NotifyType: NotifyType(rapid.Uint16Range(16385, 0xffff).Draw(t, "nt")), Data: genBytes(0, 40).Draw(t, "nd")}
			if n.NotifyType == NotifyCookie || n.NotifyType == NotifyNATDetectionSourceIP || n.NotifyType == NotifyNATDetectionDestinationIP || n.NotifyType == NotifyRekeySA {
				n.NotifyType = NotifyInitialContact
			}
			if rapid.Bool().Draw(t, "childspi") {
				n.Protocol, n.SPI = ProtoESP, genBytes(4, 4).Draw(t, "spi")
			}
			return n
		case 8:
			if rapid.Bool().Draw(t, "ike") {
				return NewDeleteIKE()
			}
			spis := rapid.SliceOfN(rapid.Uint32(), 1, 5).Draw(t, "spis")
			return NewDeleteChild(ProtoESP, spis...)
		case 9:
			return &VendorIDPayload{Data: genBytes(1, 32).Draw(t, "vid")}
		case 10, 11:
			return &TSPayload{Responder: rapid.Bool().Draw(t, "r"), Selectors: rapid.SliceOfN(genSelector(), 1, 6).Draw(t, "ts")}
		case 12:
			cp := &CPPayload{CFGType: CPType(rapid.Uint8Range(1, 4).Draw(t, "cfg"))}
			for range rapid.IntRange(0, 5).Draw(t, "nattr") {
				cp.Attributes = append(cp.Attributes, CPAttribute{Type: CPAttrType(rapid.Uint16Range(0, 0x7fff).Draw(t, "at")), Value: genBytes(0, 20).Draw(t, "av")})
			}
			return cp
		case 13:
			d := genBytes(0, 60).Draw(t, "eap")
			d = append([]byte{1, 2, 0, 0}, d...)
			putU16(d[2:], uint16(len(d)))
			return &EAPPayload{Data: d}
		case 14:
			pt := PayloadType(rapid.SampledFrom([]uint8{1, 32, 49, 50, 54, 99, 255}).Draw(t, "unknown"))
			return &UnknownPayload{PayloadType: pt, Body: genBytes(0, 30).Draw(t, "body")}
		}
		return &NotifyPayload{NotifyType: NotifyCookie, Data: genBytes(1, 64).Draw(t, "cookie")}
	})
}

func genChain() *rapid.Generator[[]Payload] {
	return rapid.SliceOfN(genPayload(), 0, 12)
}

func genHeader() *rapid.Generator[Header] {
	return rapid.Custom(func(t *rapid.T) Header {
		return Header{
			SPIi:     rapid.Uint64().Draw(t, "spii"),
			SPIr:     rapid.Uint64().Draw(t, "spir"),
			Version:  0x20 | rapid.Uint8Range(0, 15).Draw(t, "minor"),
			Exchange: rapid.SampledFrom([]ExchangeType{ExchangeIKEAuth, ExchangeCreateChildSA, ExchangeInformational, ExchangeIKEIntermediate}).Draw(t, "exch"),
			Flags:    Flags(rapid.SampledFrom([]uint8{0, 0x08, 0x20, 0x28}).Draw(t, "flags")),
			MsgID:    rapid.Uint32().Draw(t, "msgid"),
		}
	})
}
