package proposal

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/cygnet-ipsec/cygnet/wire"
)

func tr(typ wire.TransformType, id wire.TransformID, keyLen uint16) wire.Transform {
	return wire.Transform{Type: typ, ID: id, KeyLength: keyLen}
}

var (
	encr    = func(id wire.TransformID, l uint16) wire.Transform { return tr(wire.TransformENCR, id, l) }
	integ   = func(id wire.TransformID) wire.Transform { return tr(wire.TransformINTEG, id, 0) }
	prf     = func(id wire.TransformID) wire.Transform { return tr(wire.TransformPRF, id, 0) }
	ke      = func(id wire.TransformID) wire.Transform { return tr(wire.TransformKE, id, 0) }
	esn     = func(id wire.TransformID) wire.Transform { return tr(wire.TransformESN, id, 0) }
	addke1  = func(id wire.TransformID) wire.Transform { return tr(wire.TransformADDKE1, id, 0) }
	ikeProp = func(ts ...wire.Transform) wire.Proposal {
		return wire.Proposal{Num: 1, Protocol: wire.ProtoIKE, Transforms: ts}
	}
	espProp = func(ts ...wire.Transform) wire.Proposal {
		return wire.Proposal{Num: 1, Protocol: wire.ProtoESP, Transforms: ts}
	}
)

func TestParseExamples(t *testing.T) {
	for _, c := range []struct {
		protocol wire.ProtocolID
		in       string
		want     wire.Proposal
		format   string
	}{
		{wire.ProtoIKE, "aes256gcm16-prfsha256-x25519",
			ikeProp(encr(wire.EncrAESGCM16, 256), prf(wire.PRFHMACSHA2_256), ke(wire.KECurve25519)),
			"aes256gcm16-prfsha256-x25519"},
		{wire.ProtoIKE, "aes128-sha256-modp2048", // PRF from the integrity algorithm
			ikeProp(encr(wire.EncrAESCBC, 128), integ(wire.IntegHMACSHA2_256_128), prf(wire.PRFHMACSHA2_256), ke(wire.KEMODP2048)),
			"aes128-sha256-prfsha256-modp2048"},
		{wire.ProtoIKE, "aes256-sha384-ecp384",
			ikeProp(encr(wire.EncrAESCBC, 256), integ(wire.IntegHMACSHA2_384_192), prf(wire.PRFHMACSHA2_384), ke(wire.KEECP384)),
			"aes256-sha384-prfsha384-ecp384"},
		{wire.ProtoIKE, "chacha20poly1305-prfsha256-x25519",
			ikeProp(encr(wire.EncrChaCha20Poly1305, 0), prf(wire.PRFHMACSHA2_256), ke(wire.KECurve25519)),
			"chacha20poly1305-prfsha256-x25519"},
		{wire.ProtoIKE, "aes256gcm16-x25519-ke1_mlkem768", // AEAD without PRF: default PRFs
			ikeProp(encr(wire.EncrAESGCM16, 256), prf(wire.PRFHMACSHA2_256), prf(wire.PRFHMACSHA2_384), prf(wire.PRFHMACSHA2_512),
				ke(wire.KECurve25519), addke1(wire.KEMLKEM768)),
			"aes256gcm16-prfsha256-prfsha384-prfsha512-x25519-ke1_mlkem768"},
		{wire.ProtoIKE, "AES128-aes256-SHA512-sha256-prfsha256-curve25519-ecp256-none", // several per type, KE none dropped
			ikeProp(encr(wire.EncrAESCBC, 128), encr(wire.EncrAESCBC, 256), integ(wire.IntegHMACSHA2_512_256), integ(wire.IntegHMACSHA2_256_128),
				prf(wire.PRFHMACSHA2_256), ke(wire.KECurve25519), ke(wire.KEECP256)),
			"aes128-aes256-sha512-sha256-prfsha256-x25519-ecp256"},
		{wire.ProtoIKE, "aes128gcm16-sha256-prfsha256-x25519", // integrity next to an AEAD dropped
			ikeProp(encr(wire.EncrAESGCM16, 128), prf(wire.PRFHMACSHA2_256), ke(wire.KECurve25519)),
			"aes128gcm16-prfsha256-x25519"},
		{wire.ProtoESP, "aes256gcm16",
			espProp(encr(wire.EncrAESGCM16, 256), esn(wire.ESNNo)), "aes256gcm16"},
		{wire.ProtoESP, "aes128-sha256-modp2048",
			espProp(encr(wire.EncrAESCBC, 128), integ(wire.IntegHMACSHA2_256_128), ke(wire.KEMODP2048), esn(wire.ESNNo)),
			"aes128-sha256-modp2048"},
		{wire.ProtoESP, "aes128-sha256-modp2048-esn",
			espProp(encr(wire.EncrAESCBC, 128), integ(wire.IntegHMACSHA2_256_128), ke(wire.KEMODP2048), esn(wire.ESNYes)),
			"aes128-sha256-modp2048-esn"},
		{wire.ProtoESP, "aes128-sha256-modp2048-noesn",
			espProp(encr(wire.EncrAESCBC, 128), integ(wire.IntegHMACSHA2_256_128), ke(wire.KEMODP2048), esn(wire.ESNNo)),
			"aes128-sha256-modp2048"},
		{wire.ProtoESP, "aes256gcm16-esn-noesn-prfsha256", // PRF dropped from ESP, as strongSwan does
			espProp(encr(wire.EncrAESGCM16, 256), esn(wire.ESNYes), esn(wire.ESNNo)), "aes256gcm16-esn-noesn"},
		{wire.ProtoESP, "aes128gcm16-modp2048-none", // PFS optional
			espProp(encr(wire.EncrAESGCM16, 128), ke(wire.KEMODP2048), ke(wire.KENone), esn(wire.ESNNo)),
			"aes128gcm16-modp2048-none"},
	} {
		got, err := Parse(c.protocol, c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if diff := cmp.Diff([]wire.Proposal{c.want}, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", c.in, diff)
		}
		if f := Format(got); f != c.format {
			t.Errorf("Format(Parse(%q)) = %q, want %q", c.in, f, c.format)
		}
	}
}

func TestParseListAndDefault(t *testing.T) {
	got, err := Parse(wire.ProtoIKE, "aes256gcm16-prfsha256-x25519, aes128-sha256-modp2048")
	if err != nil || len(got) != 2 || got[0].Num != 1 || got[1].Num != 2 {
		t.Fatalf("two proposals: %v, %v", got, err)
	}
	for _, protocol := range []wire.ProtocolID{wire.ProtoIKE, wire.ProtoESP} {
		d, err := Parse(protocol, "aes256gcm16-prfsha256-x25519-modp2048,default")
		if protocol == wire.ProtoESP {
			d, err = Parse(protocol, "aes256gcm16,default")
		}
		if err != nil || len(d) != 3 || d[2].Num != 3 {
			t.Fatalf("%v with default: %v, %v", protocol, d, err)
		}
		def := Defaults(protocol)
		if len(def) != 2 || !isAEAD(def[0].Transforms[0].ID) || isAEAD(def[1].Transforms[0].ID) {
			t.Errorf("%v defaults: %s", protocol, Format(def))
		}
		for _, p := range def {
			for _, tf := range p.Transforms {
				if tf.ID == wire.PRFHMACSHA1 && tf.Type == wire.TransformPRF || tf.ID == wire.IntegHMACSHA1_96 && tf.Type == wire.TransformINTEG {
					t.Errorf("%v defaults offer SHA-1: %s", protocol, Format(def))
				}
			}
		}
	}
}

func TestParseErrorsNameTheToken(t *testing.T) {
	for _, c := range []struct {
		protocol wire.ProtocolID
		in, want string
	}{
		{wire.ProtoIKE, "aes128-sha256-modp1234", `"modp1234"`},
		{wire.ProtoIKE, "aes128-sha256-3des", `"3des"`},
		{wire.ProtoIKE, "aes128-sha256-ke8_mlkem768", `"ke8_mlkem768"`},
		{wire.ProtoIKE, "aes128-sha256-ke1_aes128", `"ke1_aes128"`},
		{wire.ProtoIKE, "aes128-sha256-modp2048-", `""`},
		{wire.ProtoIKE, "sha256-modp2048", "encryption algorithm is mandatory"},
		{wire.ProtoIKE, "aes128-prfsha256-modp2048", "integrity algorithm is mandatory"},
		{wire.ProtoIKE, "aes128-sha256", "key exchange method is mandatory"},
		{wire.ProtoIKE, "aes128-sha256-none", "key exchange method is mandatory"},
		{wire.ProtoIKE, "aes128gcm16-aes128-sha256-x25519", "cannot share"},
		{wire.ProtoIKE, "aes128-sha256-x25519-esn", "esn is not an IKE algorithm"},
		{wire.ProtoESP, "aes128", "integrity algorithm is mandatory"},
		{wire.ProtoIKE, "aes128-sha256-x25519,,aes256gcm16-x25519", "empty proposal"},
		{wire.ProtoAH, "sha256", "protocol"},
	} {
		_, err := Parse(c.protocol, c.in)
		if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q): err %v, want ErrSyntax mentioning %s", c.in, err, c.want)
		}
	}
}

// genProposal draws a proposal as Parse returns it: known keywords, at most one of each
// transform, types in TypeOrder.
func genProposal(t *rapid.T, protocol wire.ProtocolID) wire.Proposal {
	subset := func(label string, from []wire.Transform, min int) []wire.Transform {
		perm := rapid.Permutation(from).Draw(t, label)
		return perm[:rapid.IntRange(min, len(perm)).Draw(t, label+" count")]
	}
	byType := map[wire.TransformType][]wire.Transform{}
	if rapid.Bool().Draw(t, "aead") {
		byType[wire.TransformENCR] = subset("aead", []wire.Transform{encr(wire.EncrAESGCM16, 128), encr(wire.EncrAESGCM16, 192),
			encr(wire.EncrAESGCM16, 256), encr(wire.EncrChaCha20Poly1305, 0)}, 1)
	} else {
		byType[wire.TransformENCR] = subset("cbc", []wire.Transform{encr(wire.EncrAESCBC, 128), encr(wire.EncrAESCBC, 192), encr(wire.EncrAESCBC, 256)}, 1)
		byType[wire.TransformINTEG] = subset("integ", []wire.Transform{integ(wire.IntegHMACSHA2_256_128), integ(wire.IntegHMACSHA2_384_192),
			integ(wire.IntegHMACSHA2_512_256), integ(wire.IntegHMACSHA1_96)}, 1)
	}
	groups := []wire.Transform{ke(wire.KECurve25519), ke(wire.KEECP256), ke(wire.KEECP384), ke(wire.KEECP521),
		ke(wire.KEMODP2048), ke(wire.KEMODP3072), ke(wire.KEMODP4096), ke(wire.KEMLKEM768), ke(wire.KEMLKEM1024)}
	if protocol == wire.ProtoIKE {
		byType[wire.TransformPRF] = subset("prf", []wire.Transform{prf(wire.PRFHMACSHA2_256), prf(wire.PRFHMACSHA2_384),
			prf(wire.PRFHMACSHA2_512), prf(wire.PRFHMACSHA1)}, 1)
		byType[wire.TransformKE] = subset("ke", groups, 1)
	} else {
		byType[wire.TransformKE] = subset("pfs", append(groups, ke(wire.KENone)), 0)
		byType[wire.TransformESN] = subset("esn", []wire.Transform{esn(wire.ESNNo), esn(wire.ESNYes)}, 1)
	}
	for i := range rapid.IntRange(0, 2).Draw(t, "addkes") {
		typ := wire.TransformADDKE1 + wire.TransformType(rapid.IntRange(i*3, i*3+2).Draw(t, "addke type"))
		var ts []wire.Transform
		for _, g := range subset("addke", append(slices.Clone(groups), ke(wire.KENone)), 1) {
			ts = append(ts, wire.Transform{Type: typ, ID: g.ID})
		}
		byType[typ] = ts
	}
	p := wire.Proposal{Protocol: protocol}
	for _, typ := range TypeOrder {
		p.Transforms = append(p.Transforms, byType[typ]...)
	}
	return p
}

// Parse(Format(x)) == x for every proposal list Parse can return.
func TestFormatParseRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		protocol := rapid.SampledFrom([]wire.ProtocolID{wire.ProtoIKE, wire.ProtoESP}).Draw(t, "protocol")
		n := rapid.IntRange(1, 4).Draw(t, "proposals")
		var props []wire.Proposal
		for i := range n {
			p := genProposal(t, protocol)
			p.Num = uint8(i + 1)
			props = append(props, p)
		}
		s := Format(props)
		back, err := Parse(protocol, s)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		if diff := cmp.Diff(props, back); diff != "" {
			t.Fatalf("Parse(Format(x)) != x for %q (-x +back):\n%s", s, diff)
		}
	})
}

// FuzzParse: Parse never panics, and what it accepts formats to a string that parses
// back to the same proposals.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"aes256gcm16-prfsha256-x25519", "aes128-sha256-modp2048,default", "aes128-sha256-modp2048-esn",
		"aes256gcm16-x25519-ke1_mlkem768-ke2_none", "chacha20poly1305", ",", "ke7_"} {
		f.Add(true, s)
		f.Add(false, s)
	}
	f.Fuzz(func(t *testing.T, ike bool, s string) {
		protocol := wire.ProtoESP
		if ike {
			protocol = wire.ProtoIKE
		}
		props, err := Parse(protocol, s)
		if err != nil {
			return
		}
		back, err := Parse(protocol, Format(props))
		if err != nil || !cmp.Equal(props, back) {
			t.Fatalf("%q: formatted as %q, parses back to %v (%v)", s, Format(props), back, err)
		}
	})
}
