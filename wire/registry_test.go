package wire

import (
	"net/netip"
	"testing"
)

func TestRegistryNames(t *testing.T) {
	cases := []struct {
		got, want string
	}{
		{ExchangeIKESAInit.String(), "IKE_SA_INIT"},
		{ExchangeIKEFollowupKE.String(), "IKE_FOLLOWUP_KE"},
		{ExchangeType(99).String(), "ExchangeType(99)"},
		{PayloadSKF.String(), "SKF"},
		{PayloadNonce.String(), "No"},
		{PayloadType(7).String(), "PayloadType(7)"},
		{NotifyTSUnacceptable.String(), "TS_UNACCEPTABLE"},
		{NotifyIKEv2FragmentationSupported.String(), "IKEV2_FRAGMENTATION_SUPPORTED"},
		{NotifyType(16430).String(), "IKEV2_FRAGMENTATION_SUPPORTED"},
		{NotifyType(16431).String(), "SIGNATURE_HASH_ALGORITHMS"},
		{NotifyType(16418).String(), "CHILDLESS_IKEV2_SUPPORTED"},
		{NotifyType(16441).String(), "ADDITIONAL_KEY_EXCHANGE"},
		{NotifyType(16438).String(), "INTERMEDIATE_EXCHANGE_SUPPORTED"},
		{NotifyType(12345).String(), "NotifyType(12345)"},
		{IDRFC822Addr.String(), "ID_RFC822_ADDR"},
		{TSIPv6AddrRange.String(), "TS_IPV6_ADDR_RANGE"},
		{AuthDigitalSig.String(), "DIGITAL_SIGNATURE"},
		{AuthECDSA384.String(), "ECDSA_384"},
		{CPReply.String(), "CFG_REPLY"},
		{CPInternalIP4Address.String(), "INTERNAL_IP4_ADDRESS"},
		{CertX509Sig.String(), "X509_CERT_SIG"},
		{ProtoESP.String(), "ESP"},
		{TransformADDKE1.String(), "ADDKE1"},
		{TransformName(TransformENCR, EncrAESGCM16), "ENCR_AES_GCM_16"},
		{TransformName(TransformPRF, PRFHMACSHA2_256), "PRF_HMAC_SHA2_256"},
		{TransformName(TransformINTEG, IntegHMACSHA2_512_256), "AUTH_HMAC_SHA2_512_256"},
		{TransformName(TransformKE, KECurve25519), "CURVE25519"},
		{TransformName(TransformADDKE2, KEMLKEM768), "ML_KEM_768"},
		{TransformName(TransformESN, ESNYes), "ESN"},
		{TransformName(TransformENCR, 999), "ENCR(999)"},
		{Transform{Type: TransformENCR, ID: EncrAESCBC, KeyLength: 128}.String(), "ENCR:ENCR_AES_CBC/128"},
		{(FlagInitiator | FlagResponse).String(), "I|R"},
		{Flags(0).String(), "0"},
		{Flags(0x09).String(), "I|0x1"},
		{AnswerInvalidSyntax.String(), "INVALID_SYNTAX"},
		{FormatPayloads([]Payload{&IDPayload{}, NewNotify(NotifyInitialContact, nil), &EncryptedPayload{NextPayload: PayloadIDi}, &FragmentPayload{Number: 2, Total: 3}}), "[ IDi N(INITIAL_CONTACT) SK{IDi} SKF(2/3) ]"},
		{FormatPayloads(nil), "[ ]"},
		{Header{SPIi: 0xd77925670b93638a, Exchange: ExchangeIKEAuth, Flags: FlagInitiator, MsgID: 1}.String(), "IKE_AUTH request 1 [I] d77925670b93638a_i 0000000000000000_r"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	// Every named notify below 16384 is an error, every other a status type.
	for n, s := range notifyNames {
		if n.IsError() != (n < 16384) {
			t.Errorf("%s: IsError %v", s, n.IsError())
		}
	}
	if !NotifyNoProposalChosen.IsError() || NotifyCookie.IsError() || !NotifyType(8000).IsError() {
		t.Error("IsError")
	}
	if ExchangeIKESAInit.Protected() || !ExchangeIKEAuth.Protected() || !ExchangeIKEIntermediate.Protected() {
		t.Error("Protected")
	}
	for a := AnswerDrop; a <= AnswerInvalidMajorVersion; a++ {
		n, ok := a.Notify()
		if ok == (a == AnswerDrop) || (ok && !n.IsError()) {
			t.Errorf("%v.Notify() = %v, %v", a, n, ok)
		}
	}
}

func TestTrafficSelectorPrefix(t *testing.T) {
	for _, s := range []string{"192.0.2.0/24", "0.0.0.0/0", "203.0.113.7/32", "2001:db8::/32", "::/0", "2001:db8::1/128", "10.0.0.0/8"} {
		p := netip.MustParsePrefix(s)
		ts := TSFromPrefix(p)
		if want := TSIPv4AddrRange; p.Addr().Is6() && ts.Type == want {
			t.Errorf("%s: type %v", s, ts.Type)
		}
		got, ok := ts.Prefix()
		if !ok || got != p {
			t.Errorf("%s: Prefix() = %v, %v", s, got, ok)
		}
		if ts.String() != p.String() {
			t.Errorf("%s: String() = %q", s, ts.String())
		}
	}
	ts := TSFromPrefix(netip.MustParsePrefix("198.51.100.77/24"))
	if ts.Start != netip.MustParseAddr("198.51.100.0") || ts.End != netip.MustParseAddr("198.51.100.255") || !ts.AnyPort() || ts.IPProtocol != 0 {
		t.Errorf("unmasked prefix: %+v", ts)
	}
	r := TSFromRange(netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.9"))
	if _, ok := r.Prefix(); ok || r.String() != "192.0.2.1..192.0.2.9" {
		t.Errorf("range: %v", r)
	}
	r.IPProtocol, r.StartPort, r.EndPort = 6, 443, 443
	if r.String() != "192.0.2.1..192.0.2.9[6/443]" {
		t.Errorf("range with port: %q", r.String())
	}
	r.StartPort, r.EndPort = 0xffff, 0
	if r.String() != "192.0.2.1..192.0.2.9[6/OPAQUE]" {
		t.Errorf("opaque: %q", r.String())
	}
	mixed := TrafficSelector{Type: TSIPv4AddrRange, Start: netip.MustParseAddr("192.0.2.1"), End: netip.MustParseAddr("2001:db8::1")}
	if _, ok := mixed.Prefix(); ok {
		t.Error("mixed families have a prefix")
	}
	// 10.0.0.0..10.0.1.255 is a /23; 10.0.0.0..10.0.2.255 is not a prefix.
	if p, ok := TSFromRange(netip.MustParseAddr("10.0.0.0"), netip.MustParseAddr("10.0.1.255")).Prefix(); !ok || p.Bits() != 23 {
		t.Errorf("/23: %v %v", p, ok)
	}
	if _, ok := TSFromRange(netip.MustParseAddr("10.0.0.0"), netip.MustParseAddr("10.0.2.255")).Prefix(); ok {
		t.Error("10.0.0.0..10.0.2.255 taken for a prefix")
	}
}

func TestIdentity(t *testing.T) {
	v4 := IdentityFromAddr(netip.MustParseAddr("192.0.2.1"))
	mapped := IdentityFromAddr(netip.MustParseAddr("::ffff:192.0.2.1"))
	v6 := IdentityFromAddr(netip.MustParseAddr("2001:db8::1"))
	cases := []struct {
		id   Identity
		typ  IDType
		text string
	}{
		{v4, IDIPv4Addr, "192.0.2.1"},
		{mapped, IDIPv4Addr, "192.0.2.1"},
		{v6, IDIPv6Addr, "2001:db8::1"},
		{IdentityFQDN("vpn.example.com"), IDFQDN, "vpn.example.com"},
		{IdentityRFC822("user@example.com"), IDRFC822Addr, "user@example.com"},
		{IdentityKeyID([]byte{0xab, 0x01}), IDKeyID, "@#ab01"},
		{Identity{Type: IDNull}, IDNull, "%null"},
		{Identity{Type: IDDERASN1DN, Data: []byte{0x30, 0}}, IDDERASN1DN, "ID_DER_ASN1_DN:3000"},
		{Identity{Type: IDFQDN, Data: []byte{0}}, IDFQDN, "ID_FQDN:00"},
		{Identity{Type: IDIPv4Addr, Data: []byte{1}}, IDIPv4Addr, "ID_IPV4_ADDR:01"},
	}
	for _, c := range cases {
		if c.id.Type != c.typ || c.id.String() != c.text {
			t.Errorf("%v: type %v text %q, want %v %q", c.id.Data, c.id.Type, c.id.String(), c.typ, c.text)
		}
	}
	if a, ok := v4.Addr(); !ok || a != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("Addr: %v %v", a, ok)
	}
	if !v4.Equal(mapped) || v4.Equal(v6) {
		t.Error("Equal")
	}
	// The ID payload body is the RestOfIDPayload that AUTH covers (RFC 7296 §2.15).
	body, _ := (&IDPayload{ID: v4}).AppendBody(nil)
	if string(body) != "\x01\x00\x00\x00\xc0\x00\x02\x01" {
		t.Errorf("ID body %x", body)
	}
}

func TestPayloadHelpers(t *testing.T) {
	d := NewDeleteChild(ProtoESP, 0x11223344, 0xaabbccdd)
	if d.Count() != 2 || string(d.SPI(1)) != "\xaa\xbb\xcc\xdd" {
		t.Errorf("delete: %+v", d)
	}
	if got := d.ChildSPIs(nil); len(got) != 2 || got[0] != 0x11223344 || got[1] != 0xaabbccdd {
		t.Errorf("ChildSPIs %x", got)
	}
	if NewDeleteIKE().Count() != 0 || NewDeleteIKE().ChildSPIs(nil) != nil {
		t.Error("IKE delete has SPIs")
	}
	n := NewChildNotify(NotifyRekeySA, ProtoESP, 0x01020304, nil)
	if spi, ok := n.ChildSPI(); !ok || spi != 0x01020304 {
		t.Errorf("ChildSPI %x %v", spi, ok)
	}
	if _, ok := NewNotify(NotifyCookie, []byte{1}).ChildSPI(); ok {
		t.Error("IKE notify has a child SPI")
	}
	ps := []Payload{nonce(), NewNotify(NotifyCookie, []byte{1}), NewNotify(NotifyInitialContact, nil)}
	if got, ok := First[*NotifyPayload](ps); !ok || got.NotifyType != NotifyCookie {
		t.Error("First")
	}
	if _, ok := First[*KEPayload](ps); ok {
		t.Error("First found a missing type")
	}
	if got, ok := FindNotify(ps, NotifyInitialContact); !ok || got != ps[2] {
		t.Error("FindNotify")
	}
	if len(Notifies(nil, ps)) != 2 {
		t.Error("Notifies")
	}
}
