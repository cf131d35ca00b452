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

func mustParse(t *testing.T, protocol wire.ProtocolID, s string) []wire.Proposal {
	t.Helper()
	p, err := Parse(protocol, s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return p
}

// withSPI gives every proposal an SPI and a number offset, as a peer's offer has.
func withSPI(props []wire.Proposal, spi []byte, numBase uint8) []wire.Proposal {
	out := make([]wire.Proposal, len(props))
	for i, p := range props {
		p.SPI = spi
		p.Num = numBase + uint8(i)
		out[i] = p
	}
	return out
}

func TestSelectPreference(t *testing.T) {
	ours := mustParse(t, wire.ProtoIKE, "aes256gcm16-prfsha384-ecp384,aes128-sha256-modp2048")
	peer := withSPI(mustParse(t, wire.ProtoIKE, "aes128-aes256-sha256-sha384-modp2048-ecp384,aes256gcm16-aes128gcm16-prfsha256-prfsha384-x25519-ecp384"), nil, 1)

	// Our order first (the default): our first proposal matches the peer's second.
	got, err := Select(ours, peer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := wire.Proposal{Num: 2, Protocol: wire.ProtoIKE, Transforms: []wire.Transform{
		encr(wire.EncrAESGCM16, 256), prf(wire.PRFHMACSHA2_384), ke(wire.KEECP384)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("prefer local (-want +got):\n%s", diff)
	}
	// The peer's order first: its first proposal matches our second, and inside it the
	// peer's transform order wins.
	got, err = Select(ours, peer, Options{PreferPeer: true})
	if err != nil {
		t.Fatal(err)
	}
	want = wire.Proposal{Num: 1, Protocol: wire.ProtoIKE, Transforms: []wire.Transform{
		encr(wire.EncrAESCBC, 128), integ(wire.IntegHMACSHA2_256_128), prf(wire.PRFHMACSHA2_256), ke(wire.KEMODP2048)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("prefer peer (-want +got):\n%s", diff)
	}
	if _, err := CheckChosen(peer, []wire.Proposal{got}, Options{}); err != nil {
		t.Errorf("the selection fails the initiator's check: %v", err)
	}
}

func TestSelectCarriesPeerNumberAndSPI(t *testing.T) {
	ours := mustParse(t, wire.ProtoESP, "aes256gcm16")
	spi := []byte{0xc0, 0xff, 0xee, 0x01}
	peer := withSPI(mustParse(t, wire.ProtoESP, "aes128-sha256,aes256gcm16-esn-noesn"), spi, 7)
	got, err := Select(ours, peer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Num != 8 || string(got.SPI) != string(spi) {
		t.Errorf("num %d SPI %x, want 8 %x", got.Num, got.SPI, spi)
	}
	if diff := cmp.Diff([]wire.Transform{encr(wire.EncrAESGCM16, 256), esn(wire.ESNNo)}, got.Transforms); diff != "" {
		t.Errorf("transforms (-want +got):\n%s", diff)
	}
}

func TestSelectNoProposalChosen(t *testing.T) {
	ours := mustParse(t, wire.ProtoIKE, "aes256gcm16-prfsha256-x25519")
	for name, peer := range map[string][]wire.Proposal{
		"other group":    mustParse(t, wire.ProtoIKE, "aes256gcm16-prfsha256-ecp256"),
		"other key size": mustParse(t, wire.ProtoIKE, "aes128gcm16-prfsha256-x25519"),
		"other prf":      mustParse(t, wire.ProtoIKE, "aes256gcm16-prfsha512-x25519"),
		"ESP offered":    mustParse(t, wire.ProtoESP, "aes256gcm16"),
		"nothing":        nil,
		"extra ADDKE":    mustParse(t, wire.ProtoIKE, "aes256gcm16-prfsha256-x25519-ke1_mlkem768"),
	} {
		_, err := Select(ours, peer, Options{})
		var npc *NoProposalChosenError
		if !errors.Is(err, ErrNoProposalChosen) || !errors.As(err, &npc) {
			t.Errorf("%s: err %v, want *NoProposalChosenError", name, err)
			continue
		}
		if !strings.Contains(err.Error(), "NO_PROPOSAL_CHOSEN") || !strings.Contains(err.Error(), "x25519") {
			t.Errorf("%s: error %q does not show the proposals", name, err)
		}
	}
}

func TestSelectOptionalKE(t *testing.T) {
	// ESP: PFS group against a peer without KE fails unless we list "none".
	pfs := mustParse(t, wire.ProtoESP, "aes128-sha256-modp2048")
	pfsOptional := mustParse(t, wire.ProtoESP, "aes128-sha256-modp2048-none")
	noPFS := mustParse(t, wire.ProtoESP, "aes128-sha256")
	if _, err := Select(pfs, noPFS, Options{}); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("PFS required, peer without KE: %v", err)
	}
	got, err := Select(pfsOptional, noPFS, Options{})
	if err != nil || hasType(got, wire.TransformKE) {
		t.Errorf("PFS optional, peer without KE: %v, %v", got, err)
	}
	got, err = Select(noPFS, mustParse(t, wire.ProtoESP, "aes128-sha256-ecp256-none"), Options{})
	if err != nil || hasType(got, wire.TransformKE) {
		t.Errorf("no PFS, peer offers none: %v, %v", got, err)
	}
	got, err = Select(pfsOptional, mustParse(t, wire.ProtoESP, "aes128-sha256-modp2048"), Options{})
	if err != nil || !hasType(got, wire.TransformKE) {
		t.Errorf("PFS optional, peer wants modp2048: %v, %v", got, err)
	}
	// IKE_AUTH: KE transforms are ignored on both sides.
	got, err = Select(pfs, noPFS, Options{IgnoreKE: true})
	if err != nil || hasType(got, wire.TransformKE) {
		t.Errorf("IgnoreKE: %v, %v", got, err)
	}
	// IKE: the KE is never optional.
	ike := mustParse(t, wire.ProtoIKE, "aes128-sha256-modp2048")
	ike[0].Transforms = ike[0].Transforms[:3]
	if _, err := Select(mustParse(t, wire.ProtoIKE, "aes128-sha256-modp2048"), ike, Options{}); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("IKE without KE: %v", err)
	}
	// RFC 9370: an additional key exchange offered with NONE is optional.
	hybrid := mustParse(t, wire.ProtoIKE, "aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_none")
	classic := mustParse(t, wire.ProtoIKE, "aes256gcm16-prfsha256-x25519")
	if got, err := Select(classic, hybrid, Options{}); err != nil || hasType(got, wire.TransformADDKE1) {
		t.Errorf("peer's optional ADDKE1: %v, %v", got, err)
	}
	if got, err := Select(hybrid, hybrid, Options{}); err != nil || !hasType(got, wire.TransformADDKE1) {
		t.Errorf("both offer ML-KEM: %v, %v", got, err)
	}
}

func hasType(p wire.Proposal, typ wire.TransformType) bool {
	for _, t := range p.Transforms {
		if t.Type == typ {
			return true
		}
	}
	return false
}

func TestSelectOddPeerTransforms(t *testing.T) {
	ours := mustParse(t, wire.ProtoESP, "aes256gcm16")
	// Some peers send INTEG NONE with an AEAD: acceptable, and not echoed.
	peer := espProp(encr(wire.EncrAESGCM16, 256), integ(wire.IntegNone), esn(wire.ESNNo))
	got, err := Select(ours, []wire.Proposal{peer}, Options{})
	if err != nil || hasType(got, wire.TransformINTEG) {
		t.Errorf("AEAD with INTEG NONE: %v, %v", got, err)
	}
	// A transform with an attribute we do not understand is never chosen (§3.3.6).
	odd := encr(wire.EncrAESGCM16, 256)
	odd.OtherAttrs = "\x80\x63\x00\x01"
	if _, err := Select(ours, []wire.Proposal{espProp(odd, esn(wire.ESNNo))}, Options{}); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("transform with unknown attribute selected: %v", err)
	}
	// ESP without ESN transform from the peer does not match (RFC 7296 §3.3.3: mandatory).
	if _, err := Select(ours, []wire.Proposal{espProp(encr(wire.EncrAESGCM16, 256))}, Options{}); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("ESP without ESN selected: %v", err)
	}
}

func TestCheckChosen(t *testing.T) {
	offered := withSPI(mustParse(t, wire.ProtoIKE, "aes256gcm16-prfsha256-x25519-ecp256,aes128-sha256-modp2048"), nil, 1)
	good := wire.Proposal{Num: 1, Protocol: wire.ProtoIKE, Transforms: []wire.Transform{encr(wire.EncrAESGCM16, 256), prf(wire.PRFHMACSHA2_256), ke(wire.KEECP256)}}
	if got, err := CheckChosen(offered, []wire.Proposal{good}, Options{}); err != nil || got.Num != 1 {
		t.Fatalf("good answer: %v, %v", got, err)
	}
	// Order does not matter.
	rev := good
	rev.Transforms = []wire.Transform{ke(wire.KEECP256), prf(wire.PRFHMACSHA2_256), encr(wire.EncrAESGCM16, 256)}
	if _, err := CheckChosen(offered, []wire.Proposal{rev}, Options{}); err != nil {
		t.Errorf("reordered answer: %v", err)
	}
	mod := func(f func(p *wire.Proposal)) []wire.Proposal {
		p := good
		p.Transforms = append([]wire.Transform(nil), good.Transforms...)
		f(&p)
		return []wire.Proposal{p}
	}
	for name, answer := range map[string][]wire.Proposal{
		"no proposal":      nil,
		"two proposals":    {good, good},
		"unknown number":   mod(func(p *wire.Proposal) { p.Num = 3 }),
		"other protocol":   mod(func(p *wire.Proposal) { p.Protocol = wire.ProtoESP }),
		"number of other":  mod(func(p *wire.Proposal) { p.Num = 2 }),
		"not offered":      mod(func(p *wire.Proposal) { p.Transforms[2] = ke(wire.KEMODP2048) }),
		"other key length": mod(func(p *wire.Proposal) { p.Transforms[0] = encr(wire.EncrAESGCM16, 128) }),
		"two of a type":    mod(func(p *wire.Proposal) { p.Transforms = append(p.Transforms, ke(wire.KECurve25519)) }),
		"missing KE":       mod(func(p *wire.Proposal) { p.Transforms = p.Transforms[:2] }),
		"integ with AEAD":  mod(func(p *wire.Proposal) { p.Transforms = append(p.Transforms, integ(wire.IntegHMACSHA2_256_128)) }),
	} {
		if _, err := CheckChosen(offered, answer, Options{}); !errors.Is(err, ErrBadChoice) {
			t.Errorf("%s: err %v, want ErrBadChoice", name, err)
		}
	}
	// IKE_AUTH: a KE in the answer other than NONE is wrong; the offer's KE need not be answered.
	esp := withSPI(mustParse(t, wire.ProtoESP, "aes128-sha256-modp2048"), []byte{1, 2, 3, 4}, 1)
	answer := espProp(encr(wire.EncrAESCBC, 128), integ(wire.IntegHMACSHA2_256_128), esn(wire.ESNNo))
	if _, err := CheckChosen(esp, []wire.Proposal{answer}, Options{IgnoreKE: true}); err != nil {
		t.Errorf("IKE_AUTH answer without KE: %v", err)
	}
	if _, err := CheckChosen(esp, []wire.Proposal{answer}, Options{}); !errors.Is(err, ErrBadChoice) {
		t.Errorf("CREATE_CHILD_SA answer without the required PFS group: %v", err)
	}
	answer.Transforms = append(answer.Transforms, ke(wire.KEMODP2048))
	if _, err := CheckChosen(esp, []wire.Proposal{answer}, Options{IgnoreKE: true}); !errors.Is(err, ErrBadChoice) {
		t.Errorf("IKE_AUTH answer with a KE: %v", err)
	}
}

func TestKEGroupsAndWithoutKE(t *testing.T) {
	props := mustParse(t, wire.ProtoIKE, "aes256gcm16-prfsha256-x25519-ecp256-ke1_mlkem768,aes128-sha256-ecp384-x25519-modp2048")
	if got, want := KEGroups(props), []wire.TransformID{wire.KECurve25519, wire.KEECP256, wire.KEECP384, wire.KEMODP2048}; !cmp.Equal(got, want) {
		t.Errorf("KEGroups = %v, want %v", got, want)
	}
	if got := KEGroups(mustParse(t, wire.ProtoESP, "aes256gcm16-none-modp2048")); !cmp.Equal(got, []wire.TransformID{wire.KEMODP2048}) {
		t.Errorf("KEGroups with none = %v", got)
	}
	stripped := WithoutKE(props)
	for _, p := range stripped {
		if hasType(p, wire.TransformKE) || hasType(p, wire.TransformADDKE1) {
			t.Errorf("WithoutKE left %v", p)
		}
	}
	if !hasType(props[0], wire.TransformKE) || !hasType(props[0], wire.TransformADDKE1) {
		t.Error("WithoutKE modified its argument")
	}
}

// Whatever Select picks passes the initiator's CheckChosen, takes each transform from
// both sides, and the choice succeeds whenever the two offers are identical.
func TestSelectProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		protocol := rapid.SampledFrom([]wire.ProtocolID{wire.ProtoIKE, wire.ProtoESP}).Draw(t, "protocol")
		var ours, peer []wire.Proposal
		for i := range rapid.IntRange(1, 3).Draw(t, "ours") {
			p := genProposal(t, protocol)
			p.Num = uint8(i + 1)
			ours = append(ours, p)
		}
		for i := range rapid.IntRange(1, 3).Draw(t, "peer") {
			p := genProposal(t, protocol)
			p.Num = uint8(i + 1)
			p.SPI = []byte{1, 2, 3, byte(i)}
			peer = append(peer, p)
		}
		opt := Options{PreferPeer: rapid.Bool().Draw(t, "prefer peer"), IgnoreKE: rapid.Bool().Draw(t, "ignore KE")}
		if _, err := Select(peer, peer, opt); err != nil {
			t.Fatalf("identical offers do not match: %v", err)
		}
		got, err := Select(ours, peer, opt)
		if err != nil {
			if !errors.Is(err, ErrNoProposalChosen) {
				t.Fatalf("error %v is not NO_PROPOSAL_CHOSEN", err)
			}
			return
		}
		if _, err := CheckChosen(peer, []wire.Proposal{got}, opt); err != nil {
			t.Fatalf("Select chose %v from %s, which CheckChosen refuses: %v", got, Format(peer), err)
		}
		src := peer[got.Num-1]
		if string(got.SPI) != string(src.SPI) {
			t.Fatalf("SPI %x, peer's proposal %d has %x", got.SPI, got.Num, src.SPI)
		}
		for _, tf := range got.Transforms {
			inOurs := false
			for _, p := range ours {
				inOurs = inOurs || slices.Contains(p.Transforms, tf)
			}
			if !inOurs || !slices.Contains(src.Transforms, tf) {
				t.Fatalf("chosen %v is not offered by both sides", tf)
			}
		}
	})
}
