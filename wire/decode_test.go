package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"testing"
)

// Decode and verify failures, one case per rule, checking the answer each implies.

func initMsg(t *testing.T, ps ...Payload) []byte {
	t.Helper()
	m := &Message{Header: Header{SPIi: 0x0102030405060708, Exchange: ExchangeIKESAInit, Flags: FlagInitiator}, Payloads: ps}
	b, err := m.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func nonce() *NoncePayload { return &NoncePayload{Data: bytes.Repeat([]byte{7}, 32)} }

func wantDecodeErr(t *testing.T, err error, answer Answer, sentinel error) *DecodeError {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T), want *DecodeError", err, err)
	}
	if de.Answer != answer || !errors.Is(err, sentinel) {
		t.Fatalf("error %v: answer %v, want %v wrapping %v", err, de.Answer, answer, sentinel)
	}
	return de
}

func TestDecodeHeaderErrors(t *testing.T) {
	good := initMsg(t, nonce())
	set := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	cases := []struct {
		name     string
		b        []byte
		answer   Answer
		sentinel error
	}{
		{"empty", nil, AnswerDrop, ErrShort},
		{"short header", good[:27], AnswerDrop, ErrShort},
		{"major version 3", set(17, 0x30), AnswerInvalidMajorVersion, ErrMajorVersion},
		{"IKEv1", set(17, 0x10), AnswerDrop, ErrMajorVersion},
		{"length beyond datagram", set(27, good[27]+1), AnswerDrop, ErrLength},
		{"length short of datagram", append(bytes.Clone(good), 0), AnswerDrop, ErrLength},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeMessage(c.b)
			wantDecodeErr(t, err, c.answer, c.sentinel)
		})
	}
	// The header survives an INVALID_MAJOR_VERSION error, for the answer.
	m, _ := DecodeMessage(set(17, 0x30))
	if m.Header.SPIi != 0x0102030405060708 || m.Header.Exchange != ExchangeIKESAInit {
		t.Fatalf("header after version error: %v", m.Header)
	}
	if n := (&DecodeError{Answer: AnswerInvalidMajorVersion}).Notify(); n == nil || n.NotifyType != NotifyInvalidMajorVersion {
		t.Fatalf("notify for major version: %+v", n)
	}
}

func TestDecodePayloadErrors(t *testing.T) {
	// Messages built by hand: header + raw chain, with the header length fixed up.
	msg := func(exch ExchangeType, first PayloadType, chain []byte) []byte {
		h := Header{Exchange: exch, NextPayload: first, Length: uint32(HeaderLen + len(chain))}
		return append(h.AppendTo(nil), chain...)
	}
	nonceBody := bytes.Repeat([]byte{1}, 16)
	gen := func(next PayloadType, crit bool, body []byte) []byte {
		c := byte(0)
		if crit {
			c = 0x80
		}
		b := []byte{byte(next), c, 0, 0}
		putU16(b[2:], uint16(4+len(body)))
		return append(b, body...)
	}
	cases := []struct {
		name     string
		exch     ExchangeType
		first    PayloadType
		chain    []byte
		answer   Answer
		sentinel error
		pt       PayloadType
	}{
		{"truncated generic header", ExchangeIKESAInit, PayloadNonce, []byte{0, 0}, AnswerInvalidSyntax, ErrShort, PayloadNonce},
		{"payload length < 4", ExchangeIKESAInit, PayloadNonce, []byte{0, 0, 0, 3}, AnswerInvalidSyntax, ErrLength, PayloadNonce},
		{"payload length beyond message", ExchangeIKESAInit, PayloadNonce, []byte{0, 0, 0, 9, 1}, AnswerInvalidSyntax, ErrLength, PayloadNonce},
		{"trailing octets", ExchangeIKESAInit, PayloadNonce, append(gen(0, false, nonceBody), 1, 2), AnswerInvalidSyntax, ErrTrailing, PayloadNone},
		{"chain promised but empty", ExchangeIKESAInit, PayloadNonce, nil, AnswerInvalidSyntax, ErrShort, PayloadNonce},
		{"unknown critical", ExchangeIKESAInit, 99, gen(0, true, []byte{1}), AnswerUnsupportedCriticalPayload, ErrCriticalPayload, 99},
		{"unknown critical after nonce", ExchangeIKESAInit, PayloadNonce, append(gen(200, false, nonceBody), gen(0, true, nil)...), AnswerUnsupportedCriticalPayload, ErrCriticalPayload, 200},
		{"unknown critical outside SK", ExchangeIKEAuth, 99, gen(0, true, nil), AnswerDrop, ErrCriticalPayload, 99},
		{"malformed outside SK", ExchangeInformational, PayloadNonce, []byte{0, 0, 0, 3}, AnswerDrop, ErrLength, PayloadNonce},
		{"SK not last", ExchangeIKEAuth, PayloadSK, append(gen(PayloadNonce, false, nil), gen(0, false, nonceBody)...), AnswerDrop, ErrSKPlacement, PayloadSK},
		{"SKF short", ExchangeIKEAuth, PayloadSKF, gen(0, false, []byte{0, 1}), AnswerDrop, ErrShort, PayloadSKF},
		{"KE short", ExchangeIKESAInit, PayloadKE, gen(0, false, []byte{0, 31, 0}), AnswerInvalidSyntax, ErrShort, PayloadKE},
		{"ID short", ExchangeIKESAInit, PayloadIDi, gen(0, false, []byte{1}), AnswerInvalidSyntax, ErrShort, PayloadIDi},
		{"AUTH short", ExchangeIKESAInit, PayloadAUTH, gen(0, false, []byte{2, 0}), AnswerInvalidSyntax, ErrShort, PayloadAUTH},
		{"CERT empty", ExchangeIKESAInit, PayloadCERT, gen(0, false, nil), AnswerInvalidSyntax, ErrShort, PayloadCERT},
		{"notify SPI beyond payload", ExchangeIKESAInit, PayloadNotify, gen(0, false, []byte{3, 4, 0x40, 0x09, 1, 2}), AnswerInvalidSyntax, ErrShort, PayloadNotify},
		{"delete count mismatch", ExchangeIKESAInit, PayloadDelete, gen(0, false, []byte{3, 4, 0, 2, 1, 2, 3, 4}), AnswerInvalidSyntax, ErrCount, PayloadDelete},
		{"delete size 0 count 1", ExchangeIKESAInit, PayloadDelete, gen(0, false, []byte{1, 0, 0, 1}), AnswerInvalidSyntax, ErrCount, PayloadDelete},
		{"TS count too high", ExchangeIKESAInit, PayloadTSi, gen(0, false, append([]byte{2, 0, 0, 0}, tsBytes(t)...)), AnswerInvalidSyntax, ErrShort, PayloadTSi},
		{"TS count too low", ExchangeIKESAInit, PayloadTSi, gen(0, false, append(append([]byte{1, 0, 0, 0}, tsBytes(t)...), tsBytes(t)...)), AnswerInvalidSyntax, ErrCount, PayloadTSi},
		{"TS IPv4 of IPv6 length", ExchangeIKESAInit, PayloadTSr, gen(0, false, append([]byte{1, 0, 0, 0}, tsWrongLen(t)...)), AnswerInvalidSyntax, ErrSubstructure, PayloadTSr},
		{"CP attribute truncated", ExchangeIKESAInit, PayloadCP, gen(0, false, []byte{1, 0, 0, 0, 0, 1, 0, 4, 1}), AnswerInvalidSyntax, ErrShort, PayloadCP},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeMessage(msg(c.exch, c.first, c.chain))
			de := wantDecodeErr(t, err, c.answer, c.sentinel)
			if de.PayloadType != c.pt {
				t.Fatalf("payload type %v, want %v (%v)", de.PayloadType, c.pt, err)
			}
			if de.Offset < HeaderLen || de.Offset > HeaderLen+len(c.chain) {
				t.Fatalf("offset %d outside the chain [%d, %d]", de.Offset, HeaderLen, HeaderLen+len(c.chain))
			}
		})
	}
	t.Run("unknown non-critical is kept and skipped", func(t *testing.T) {
		m, err := DecodeMessage(msg(ExchangeIKESAInit, 99, append(gen(PayloadNonce, false, []byte{5}), gen(0, false, nonceBody)...)))
		if err != nil {
			t.Fatal(err)
		}
		u, ok := m.Payloads[0].(*UnknownPayload)
		if !ok || u.PayloadType != 99 || !bytes.Equal(u.Body, []byte{5}) {
			t.Fatalf("payloads %#v", m.Payloads)
		}
		if err := m.Verify(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("critical notify data", func(t *testing.T) {
		_, err := DecodeMessage(msg(ExchangeIKESAInit, 99, gen(0, true, nil)))
		var de *DecodeError
		errors.As(err, &de)
		n := de.Notify()
		if n == nil || n.NotifyType != NotifyUnsupportedCriticalPayload || !bytes.Equal(n.Data, []byte{99}) {
			t.Fatalf("notify %+v", n)
		}
	})
	t.Run("SK nested in SK", func(t *testing.T) {
		inner := append(gen(0, false, nil), nil...)
		_, err := DecodePayloads(nil, PayloadSK, inner)
		wantDecodeErr(t, err, AnswerInvalidSyntax, ErrSKPlacement)
	})
}

func tsBytes(t *testing.T) []byte {
	b, err := TSFromPrefix(netip.MustParsePrefix("198.51.100.0/24")).appendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tsWrongLen(t *testing.T) []byte {
	b := tsBytes(t)
	b[3] = 40
	return append(b, make([]byte, 24)...)
}

func TestDecodeSAErrors(t *testing.T) {
	good, err := (&SAPayload{Proposals: []Proposal{
		{Num: 1, Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, Transforms: []Transform{{Type: TransformENCR, ID: EncrAESCBC, KeyLength: 128}, {Type: TransformINTEG, ID: IntegHMACSHA2_256_128}}},
		{Num: 2, Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, Transforms: []Transform{{Type: TransformENCR, ID: EncrAESGCM16, KeyLength: 256}}},
	}}).AppendBody(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Offsets: proposal 1 at 0 (SPI at 8, transforms at 12, 24), proposal 2 at 32.
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name     string
		b        []byte
		sentinel error
	}{
		{"proposal last substruc 0 but more follow", mod(func(b []byte) []byte { b[0] = 0; return b }), ErrSubstructure},
		{"proposal last substruc 2 on the last", mod(func(b []byte) []byte { b[32] = 2; return b }), ErrSubstructure},
		{"proposal last substruc 3", mod(func(b []byte) []byte { b[0] = 3; return b }), ErrSubstructure},
		{"proposal length past payload", mod(func(b []byte) []byte { b[35] = 0xff; return b }), ErrSubstructure},
		{"proposal length < 8", mod(func(b []byte) []byte { b[35] = 7; return b }), ErrSubstructure},
		{"truncated proposal header", good[:34], ErrShort},
		{"SPI size past proposal", mod(func(b []byte) []byte { b[38] = 200; return b }), ErrShort},
		{"transform count high", mod(func(b []byte) []byte { b[7] = 3; return b }), ErrSubstructure},
		{"transform count low", mod(func(b []byte) []byte { b[7] = 1; return b }), ErrSubstructure},
		{"transform last substruc 0 early", mod(func(b []byte) []byte { b[12] = 0; return b }), ErrSubstructure},
		{"transform length < 8", mod(func(b []byte) []byte { b[15] = 4; return b }), ErrSubstructure},
		{"transform length past proposal", mod(func(b []byte) []byte { b[27] = 40; return b }), ErrSubstructure},
		{"attribute truncated", mod(func(b []byte) []byte { b[15] = 10; return b }), ErrShort},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var sa SAPayload
			err := sa.decode(c.b, 100)
			de := wantDecodeErr(t, err, AnswerInvalidSyntax, c.sentinel)
			if de.PayloadType != PayloadSA || de.Offset < 100 || de.Offset > 100+len(c.b) {
				t.Fatalf("error %v: type %v offset %d", err, de.PayloadType, de.Offset)
			}
		})
	}
	var sa SAPayload
	if err := sa.decode(good, 0); err != nil || sa.Proposals[0].Transforms[0].KeyLength != 128 {
		t.Fatalf("good SA: %v %+v", err, sa)
	}
}

func TestTransformAttributes(t *testing.T) {
	// A TLV key length, an unknown TV attribute, a zero key length and a repeated one
	// are kept verbatim in OtherAttrs; the first non-zero TV key length is KeyLength.
	attrs := []byte{
		0x00, 0x0e, 0x00, 0x02, 0x01, 0x00, // TLV Key Length 256: not the TV form
		0x80, 0x0e, 0x00, 0x00, // TV Key Length 0
		0x80, 0x0e, 0x00, 0x80, // TV Key Length 128: this one
		0x80, 0x0e, 0x01, 0x00, // TV Key Length 256 again
		0x80, 0x63, 0x12, 0x34, // unknown TV 99
	}
	body := append([]byte{0, 0, 0, 0, byte(TransformENCR), 0, 0, byte(EncrAESCBC)}, attrs...)
	putU16(body[2:], uint16(len(body)))
	prop := append([]byte{0, 0, 0, 0, 1, byte(ProtoIKE), 0, 1}, body...)
	putU16(prop[2:], uint16(len(prop)))
	var sa SAPayload
	if err := sa.decode(prop, 0); err != nil {
		t.Fatal(err)
	}
	tr := sa.Proposals[0].Transforms[0]
	want := string(attrs[:10]) + string(attrs[14:])
	if tr.KeyLength != 128 || tr.OtherAttrs != want {
		t.Fatalf("transform %+v, want key length 128 and other attrs %x", tr, want)
	}
	if !strings.Contains(tr.String(), "+attrs") {
		t.Fatalf("String %q does not flag the attributes", tr.String())
	}
	// Stable: encode → decode gives the same transform.
	b, _ := sa.AppendBody(nil)
	var sa2 SAPayload
	if err := sa2.decode(b, 0); err != nil || sa2.Proposals[0].Transforms[0] != tr {
		t.Fatalf("re-decode %v %+v", err, sa2)
	}
}

func TestVerify(t *testing.T) {
	esp := func(spi []byte, tr ...Transform) Proposal {
		return Proposal{Num: 1, Protocol: ProtoESP, SPI: spi, Transforms: tr}
	}
	aes := Transform{Type: TransformENCR, ID: EncrAESGCM16, KeyLength: 256}
	v4 := TSFromPrefix(netip.MustParsePrefix("192.0.2.0/24"))
	rev := v4
	rev.Start, rev.End = v4.End, v4.Start
	badPorts := v4
	badPorts.StartPort, badPorts.EndPort = 500, 400
	opaque := v4
	opaque.StartPort, opaque.EndPort = 0xffff, 0
	unknownTS := TrafficSelector{Type: TSSecLabel, Opaque: "label"}
	cases := []struct {
		name string
		p    Payload
		ok   bool
	}{
		{"nonce 16", &NoncePayload{Data: make([]byte, 16)}, true},
		{"nonce 256", &NoncePayload{Data: make([]byte, 256)}, true},
		{"nonce 15", &NoncePayload{Data: make([]byte, 15)}, false},
		{"nonce 257", &NoncePayload{Data: make([]byte, 257)}, false},
		{"KE", &KEPayload{Group: KECurve25519, Data: make([]byte, 32)}, true},
		{"KE empty", &KEPayload{Group: KECurve25519}, false},
		{"KE group NONE", &KEPayload{Data: []byte{1}}, false},
		{"SA", &SAPayload{Proposals: []Proposal{esp([]byte{1, 2, 3, 4}, aes)}}, true},
		{"SA empty", &SAPayload{}, false},
		{"SA ESP SPI 8", &SAPayload{Proposals: []Proposal{esp(make([]byte, 8), aes)}}, false},
		{"SA no transforms", &SAPayload{Proposals: []Proposal{esp([]byte{1, 2, 3, 4})}}, false},
		{"SA IKE rekey SPI", &SAPayload{Proposals: []Proposal{{Num: 1, Protocol: ProtoIKE, SPI: make([]byte, 8), Transforms: []Transform{aes}}}}, true},
		{"SA IKE SPI 4", &SAPayload{Proposals: []Proposal{{Num: 1, Protocol: ProtoIKE, SPI: make([]byte, 4), Transforms: []Transform{aes}}}}, false},
		{"SA protocol 9", &SAPayload{Proposals: []Proposal{{Num: 1, Protocol: 9, Transforms: []Transform{aes}}}}, false},
		{"SA response proposal 3", &SAPayload{Proposals: []Proposal{{Num: 3, Protocol: ProtoIKE, Transforms: []Transform{aes}}}}, true},
		{"SA proposals 1, 3", &SAPayload{Proposals: []Proposal{esp([]byte{1, 2, 3, 4}, aes), {Num: 3, Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, Transforms: []Transform{aes}}}}, false},
		{"SA proposal 0", &SAPayload{Proposals: []Proposal{{Num: 0, Protocol: ProtoIKE, Transforms: []Transform{aes}}}}, false},
		{"TS", &TSPayload{Selectors: []TrafficSelector{v4}}, true},
		{"TS empty", &TSPayload{}, false},
		{"TS start > end", &TSPayload{Selectors: []TrafficSelector{rev}}, false},
		{"TS ports reversed", &TSPayload{Selectors: []TrafficSelector{badPorts}}, false},
		{"TS opaque ports", &TSPayload{Selectors: []TrafficSelector{opaque}}, true},
		{"TS unknown type (policy, not syntax)", &TSPayload{Selectors: []TrafficSelector{unknownTS}}, true},
		{"ID IPv4", &IDPayload{ID: IdentityFromAddr(netip.MustParseAddr("192.0.2.1"))}, true},
		{"ID IPv4 5 octets", &IDPayload{ID: Identity{Type: IDIPv4Addr, Data: make([]byte, 5)}}, false},
		{"ID IPv6 4 octets", &IDPayload{ID: Identity{Type: IDIPv6Addr, Data: make([]byte, 4)}}, false},
		{"ID FQDN empty", &IDPayload{ID: Identity{Type: IDFQDN}}, false},
		{"ID NULL", &IDPayload{ID: Identity{Type: IDNull}}, true},
		{"ID NULL with data", &IDPayload{ID: Identity{Type: IDNull, Data: []byte{1}}}, false},
		{"AUTH empty", &AuthPayload{Method: AuthPSK}, false},
		{"notify child SPI", NewChildNotify(NotifyRekeySA, ProtoESP, 7, nil), true},
		{"REKEY_SA without SPI", NewNotify(NotifyRekeySA, nil), false},
		{"notify SPI 3", &NotifyPayload{Protocol: ProtoESP, SPI: make([]byte, 3), NotifyType: NotifyChildSANotFound}, false},
		{"notify ESP SPI 8", &NotifyPayload{Protocol: ProtoESP, SPI: make([]byte, 8), NotifyType: NotifyChildSANotFound}, false},
		{"INVALID_KE_PAYLOAD", NewNotify(NotifyInvalidKEPayload, []byte{0, 31}), true},
		{"INVALID_KE_PAYLOAD 1 octet", NewNotify(NotifyInvalidKEPayload, []byte{31}), false},
		{"COOKIE empty", NewNotify(NotifyCookie, nil), false},
		{"COOKIE 65", NewNotify(NotifyCookie, make([]byte, 65)), false},
		{"NATD 20", NewNotify(NotifyNATDetectionSourceIP, make([]byte, 20)), true},
		{"NATD 32", NewNotify(NotifyNATDetectionDestinationIP, make([]byte, 32)), false},
		{"unknown status notify", NewNotify(60000, []byte{1, 2, 3}), true},
		{"delete IKE", NewDeleteIKE(), true},
		{"delete IKE with SPIs", &DeletePayload{Protocol: ProtoIKE, SPISize: 8, SPIs: make([]byte, 8)}, false},
		{"delete ESP", NewDeleteChild(ProtoESP, 1, 2), true},
		{"delete ESP none", &DeletePayload{Protocol: ProtoESP, SPISize: 4}, false},
		{"delete ESP size 8", &DeletePayload{Protocol: ProtoESP, SPISize: 8, SPIs: make([]byte, 8)}, false},
		{"EAP", &EAPPayload{Data: []byte{1, 1, 0, 5, 1}}, true},
		{"EAP length mismatch", &EAPPayload{Data: []byte{1, 1, 0, 9, 1}}, false},
		{"CERTREQ partial hash", &CertReqPayload{Encoding: CertX509Sig, Authority: make([]byte, 21)}, false},
		{"CP type 0", &CPPayload{}, false},
		{"SKF 0 of 2", &FragmentPayload{Number: 0, Total: 2}, false},
		{"SKF 3 of 2", &FragmentPayload{Number: 3, Total: 2}, false},
		{"vendor ID empty", &VendorIDPayload{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifyPayloads([]Payload{c.p})
			if c.ok {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			de := wantDecodeErr(t, err, AnswerInvalidSyntax, ErrInvalid)
			if de.PayloadType != c.p.Type() {
				t.Fatalf("error names payload %v, want %v", de.PayloadType, c.p.Type())
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	big := &CertPayload{Encoding: CertX509Sig, Data: make([]byte, 0xffff)}
	cases := []struct {
		name string
		ps   []Payload
		want error
	}{
		{"payload over 64 KiB", []Payload{big}, ErrTooLong},
		{"SK not last", []Payload{&EncryptedPayload{}, nonce()}, ErrSKPlacement},
		{"256 selectors", []Payload{&TSPayload{Selectors: make([]TrafficSelector, 256)}}, ErrTooLong},
		{"IPv6 address in IPv4 selector", []Payload{&TSPayload{Selectors: []TrafficSelector{{Type: TSIPv4AddrRange, Start: netip.IPv6Loopback(), End: netip.IPv6Loopback()}}}}, ErrInvalid},
		{"delete SPIs not whole", []Payload{&DeletePayload{Protocol: ProtoESP, SPISize: 4, SPIs: make([]byte, 5)}}, ErrCount},
		{"notify SPI of 256", []Payload{&NotifyPayload{SPI: make([]byte, 256)}}, ErrTooLong},
		{"256 transforms", []Payload{&SAPayload{Proposals: []Proposal{{Num: 1, Transforms: make([]Transform, 256)}}}}, ErrTooLong},
		{"CP attribute type > 15 bits", []Payload{&CPPayload{CFGType: CPRequest, Attributes: []CPAttribute{{Type: 0x8000}}}}, ErrTooLong},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prefix := []byte{1, 2, 3}
			out, err := AppendPayloads(prefix, c.ps)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if !bytes.Equal(out, prefix) {
				t.Fatalf("failed encode left %x, want the prefix back", out)
			}
		})
	}
	c := newToy(8, 16, 16)
	if _, err := AppendProtected(nil, Header{}, nil, c, make([]byte, 7)); !errors.Is(err, ErrIVSize) {
		t.Fatalf("short IV: %v", err)
	}
	if _, err := AppendProtected(nil, Header{}, []Payload{&CertPayload{Data: make([]byte, 0xfff0)}}, c, make([]byte, 8)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("SK over 64 KiB: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	c := newToy(8, 16, 16)
	h := Header{SPIi: 1, SPIr: 2, Exchange: ExchangeInformational, MsgID: 5}
	good, err := AppendProtected(nil, h, []Payload{NewDeleteIKE()}, c, make([]byte, 8))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("plain message", func(t *testing.T) {
		m, err := DecodeMessage(initMsg(t, nonce()))
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.Open(nil, c)
		wantDecodeErr(t, err, AnswerDrop, ErrNotProtected)
	})
	t.Run("integrity", func(t *testing.T) {
		b := bytes.Clone(good)
		b[len(b)-1] ^= 1
		m, _ := DecodeMessage(b)
		dst := []byte("keep")
		out, err := m.Open(dst, c)
		wantDecodeErr(t, err, AnswerDrop, ErrIntegrity)
		if !errors.Is(err, errToyICV) || string(out) != "keep" || m.Inner != nil {
			t.Fatalf("after integrity failure: err %v out %q inner %v", err, out, m.Inner)
		}
	})
	t.Run("body shorter than IV and ICV", func(t *testing.T) {
		b, _ := (&Message{Header: h, Payloads: []Payload{&EncryptedPayload{Body: make([]byte, 20)}}}).AppendTo(nil)
		m, _ := DecodeMessage(b)
		_, err := m.Open(nil, c)
		wantDecodeErr(t, err, AnswerDrop, ErrShort)
	})
	// After integrity passes, bad padding and bad inner chains are INVALID_SYNTAX.
	sealRaw := func(next PayloadType, plain []byte) *Message {
		b, err := seal(nil, h, PayloadSK, next, nil, plain, c, make([]byte, 8))
		if err != nil {
			t.Fatal(err)
		}
		m, err := DecodeMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Run("pad length beyond plaintext", func(t *testing.T) {
		plain := make([]byte, 16)
		plain[15] = 16
		_, err := sealRaw(PayloadNone, plain).Open(nil, c)
		wantDecodeErr(t, err, AnswerInvalidSyntax, ErrPadding)
	})
	t.Run("inner chain malformed", func(t *testing.T) {
		plain := make([]byte, 16)
		plain[15] = 15 // all padding: the chain promised by next is missing
		_, err := sealRaw(PayloadNonce, plain).Open(nil, c)
		wantDecodeErr(t, err, AnswerInvalidSyntax, ErrShort)
	})
	t.Run("inner critical unknown", func(t *testing.T) {
		plain := []byte{0, 0x80, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11}
		_, err := sealRaw(150, plain).Open(nil, c)
		de := wantDecodeErr(t, err, AnswerUnsupportedCriticalPayload, ErrCriticalPayload)
		if de.PayloadType != 150 || de.Offset != 0 {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("opens into dst", func(t *testing.T) {
		m, _ := DecodeMessage(good)
		plain, err := m.Open([]byte("pre"), c)
		if err != nil || string(plain[:3]) != "pre" {
			t.Fatalf("open: %v %q", err, plain)
		}
		if d, ok := m.Inner[0].(*DeletePayload); !ok || d.Protocol != ProtoIKE {
			t.Fatalf("inner %v", m.Inner)
		}
	})
}

func TestNonESPMarker(t *testing.T) {
	ike := initMsg(t, nonce())
	d := append(AppendNonESPMarker(nil), ike...)
	got, ok := StripNonESPMarker(d)
	if !ok || !bytes.Equal(got, ike) {
		t.Fatal("marker not stripped")
	}
	if _, ok := StripNonESPMarker([]byte{0, 0, 0, 1, 5}); ok {
		t.Fatal("ESP taken for IKE")
	}
	if _, ok := StripNonESPMarker([]byte{0xff}); ok || !IsNATKeepalive([]byte{0xff}) {
		t.Fatal("keepalive")
	}
}

// TestDecodeAllocationBound: a 64 KiB SA payload of 8-octet proposals each claiming 255
// transforms must be refused without allocating room for two million transforms.
func TestDecodeAllocationBound(t *testing.T) {
	body := make([]byte, 0, 0xfff0)
	for len(body)+8 <= cap(body) {
		body = append(body, 2, 0, 0, 8, 1, byte(ProtoESP), 0, 255)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var sa SAPayload
	err := sa.decode(body, 0)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("decoded proposals without their transforms")
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 4<<20 {
		t.Fatalf("refusing %d octets allocated %d octets", len(body), grown)
	}
}

// TestZeroCopy: decoded byte fields alias the input, with their capacity clipped so that
// appending to one cannot write into the rest of the datagram.
func TestZeroCopy(t *testing.T) {
	n := nonce()
	ke := &KEPayload{Group: KECurve25519, Data: bytes.Repeat([]byte{9}, 32)}
	b := initMsg(t, ke, n)
	m, err := DecodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	gotKE := m.Payloads[0].(*KEPayload)
	gotN := m.Payloads[1].(*NoncePayload)
	// KE data starts after header, generic header and group/reserved; the nonce after
	// that payload's generic header.
	keOff := HeaderLen + 4 + 4
	nOff := keOff + 32 + 4
	b[keOff], b[nOff] = 0x5a, 0xa5
	if gotKE.Data[0] != 0x5a || gotN.Data[0] != 0xa5 || &m.Raw()[0] != &b[0] {
		t.Fatal("decoded fields do not point into the datagram")
	}
	_ = append(gotKE.Data, 0xee)
	if b[keOff+32] == 0xee {
		t.Fatal("append to a decoded field overwrote the next payload")
	}
	if cap(gotKE.Data) != len(gotKE.Data) {
		t.Fatalf("capacity %d not clipped to %d", cap(gotKE.Data), len(gotKE.Data))
	}
}
