package ikecrypto

import (
	"bytes"
	"testing"

	"github.com/cygnet-ipsec/cygnet/wire"
)

func tr(typ wire.TransformType, id wire.TransformID, keyLen uint16) wire.Transform {
	return wire.Transform{Type: typ, ID: id, KeyLength: keyLen}
}

func TestIKESuiteFromProposal(t *testing.T) {
	good := wire.Proposal{Num: 1, Protocol: wire.ProtoIKE, Transforms: []wire.Transform{
		tr(wire.TransformENCR, wire.EncrAESGCM16, 256), tr(wire.TransformPRF, wire.PRFHMACSHA2_256, 0),
		tr(wire.TransformKE, wire.KECurve25519, 0), tr(wire.TransformADDKE1, wire.KEMLKEM768, 0),
	}}
	s, err := IKESuiteFromProposal(good)
	if err != nil {
		t.Fatal(err)
	}
	want := IKESuite{Encr: wire.EncrAESGCM16, EncrKeyLen: 256, PRF: wire.PRFHMACSHA2_256, KE: wire.KECurve25519, AddKE: [7]wire.TransformID{wire.KEMLKEM768}}
	if s != want {
		t.Fatalf("suite %+v, want %+v", s, want)
	}
	with := func(ts ...wire.Transform) wire.Proposal {
		return wire.Proposal{Num: 1, Protocol: wire.ProtoIKE, Transforms: ts}
	}
	encr := tr(wire.TransformENCR, wire.EncrAESCBC, 128)
	integ := tr(wire.TransformINTEG, wire.IntegHMACSHA2_256_128, 0)
	prf := tr(wire.TransformPRF, wire.PRFHMACSHA2_256, 0)
	ke := tr(wire.TransformKE, wire.KEMODP2048, 0)
	for name, p := range map[string]wire.Proposal{
		"ESP protocol":        {Num: 1, Protocol: wire.ProtoESP, Transforms: good.Transforms},
		"two ENCR":            with(encr, encr, integ, prf, ke),
		"no PRF":              with(encr, integ, ke),
		"no KE":               with(encr, integ, prf),
		"CBC without INTEG":   with(encr, prf, ke),
		"GCM with INTEG":      with(tr(wire.TransformENCR, wire.EncrAESGCM16, 128), integ, prf, ke),
		"CBC without key len": with(tr(wire.TransformENCR, wire.EncrAESCBC, 0), integ, prf, ke),
		"unknown PRF":         with(encr, integ, tr(wire.TransformPRF, 4, 0), ke),
		"unknown KE":          with(encr, integ, prf, tr(wire.TransformKE, 1, 0)),
		"ESN in IKE":          with(encr, integ, prf, ke, tr(wire.TransformESN, wire.ESNNo, 0)),
		"unknown ADDKE":       with(encr, integ, prf, ke, tr(wire.TransformADDKE2, 99, 0)),
	} {
		if _, err := IKESuiteFromProposal(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestESPSuiteFromProposal(t *testing.T) {
	p := wire.Proposal{Num: 2, Protocol: wire.ProtoESP, SPI: []byte{1, 2, 3, 4}, Transforms: []wire.Transform{
		tr(wire.TransformENCR, wire.EncrAESCBC, 128), tr(wire.TransformINTEG, wire.IntegHMACSHA2_256_128, 0),
		tr(wire.TransformKE, wire.KEMODP2048, 0), tr(wire.TransformESN, wire.ESNYes, 0),
	}}
	s, err := ESPSuiteFromProposal(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := (ESPSuite{Encr: wire.EncrAESCBC, KeyLen: 128, Integ: wire.IntegHMACSHA2_256_128, KE: wire.KEMODP2048, ESN: true}); s != want {
		t.Fatalf("suite %+v, want %+v", s, want)
	}
	p.Transforms = p.Transforms[:1] // CBC without integrity
	if _, err := ESPSuiteFromProposal(p); err == nil {
		t.Error("ESP CBC without integrity accepted")
	}
	p.Transforms = []wire.Transform{tr(wire.TransformENCR, wire.EncrAESGCM16, 256)}
	if s, err := ESPSuiteFromProposal(p); err != nil || s.ESN || s.KE != wire.KENone {
		t.Errorf("ESP GCM alone: %+v, %v", s, err)
	}
}

func TestIKEKeyLengths(t *testing.T) {
	for _, s := range skSuites {
		k, err := DeriveIKEKeys(s, []byte("ni"), []byte("nr"), []byte("gir"), 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		prf, _ := LookupPRF(s.PRF)
		e := encrs[s.Encr]
		_, keyLen, _ := lookupEncr(s.Encr, s.EncrKeyLen)
		integLen := 0
		if s.Integ != wire.IntegNone {
			integLen = integs[s.Integ].keyLen
		}
		if len(k.D) != prf.Size() || len(k.Pi) != prf.Size() || len(k.Pr) != prf.Size() ||
			len(k.Ai) != integLen || len(k.Ar) != integLen ||
			len(k.Ei) != keyLen+e.saltLen || len(k.Er) != keyLen+e.saltLen {
			t.Errorf("%s: lengths d%d a%d e%d p%d", suiteName(s), len(k.D), len(k.Ai), len(k.Ei), len(k.Pi))
		}
	}
}

// RFC 7296 §2.18 with a PRF change: SKEYSEED with the old SA's PRF, prf+ with the new.
func TestRekeyedIKEKeysUseOldPRF(t *testing.T) {
	oldPRF, _ := LookupPRF(wire.PRFHMACSHA2_384)
	newSuite := IKESuite{Encr: wire.EncrAESGCM16, EncrKeyLen: 128, PRF: wire.PRFHMACSHA2_256, KE: wire.KECurve25519}
	oldD := bytes.Repeat([]byte{9}, 48)
	ni, nr, g, ss1 := []byte("Ni-rekey"), []byte("Nr-rekey"), []byte("g^ir new"), []byte("ML-KEM secret")
	k, err := DeriveRekeyedIKEKeys(newSuite, wire.PRFHMACSHA2_384, oldD, ni, nr, 0xa, 0xb, g, ss1)
	if err != nil {
		t.Fatal(err)
	}
	seed := oldPRF.Compute(oldD, g, ss1, ni, nr)
	want, _ := newSuite.KeysFromSKEYSEED(seed, ni, nr, 0xa, 0xb)
	if !bytes.Equal(k.D, want.D) || !bytes.Equal(k.Er, want.Er) || len(k.D) != 32 {
		t.Error("rekeyed keys are not prf+_new(prf_old(SK_d, g^ir | SK(1) | Ni | Nr), …)")
	}
	// RFC 9370 §2.2.2: IKE_INTERMEDIATE updates use the SA's own PRF and SK_d(n-1).
	prev := &IKEKeys{D: bytes.Repeat([]byte{7}, 32)}
	upd, err := UpdateIKEKeys(newSuite, prev, ni, nr, 1, 2, ss1)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := LookupPRF(wire.PRFHMACSHA2_256)
	want2, _ := newSuite.KeysFromSKEYSEED(p256.Compute(prev.D, ss1, ni, nr), ni, nr, 1, 2)
	if !bytes.Equal(upd.D, want2.D) || !bytes.Equal(upd.Pi, want2.Pi) {
		t.Error("UpdateIKEKeys is not prf+(prf(SK_d(n-1), SK(n) | Ni | Nr), Ni | Nr | SPIi | SPIr)")
	}
}

// §2.17: KEYMAT = prf+(SK_d, [g^ir |] Ni | Nr), split encr-i, integ-i, encr-r, integ-r.
func TestChildKeysOrder(t *testing.T) {
	prf, _ := LookupPRF(wire.PRFHMACSHA2_256)
	skD := bytes.Repeat([]byte{5}, 32)
	ni, nr, g := []byte("child Ni"), []byte("child Nr"), []byte("pfs g^ir")
	for _, c := range []struct {
		s          ESPSuite
		eLen, aLen int
	}{
		{ESPSuite{Encr: wire.EncrAESCBC, KeyLen: 256, Integ: wire.IntegHMACSHA2_512_256}, 32, 64},
		{ESPSuite{Encr: wire.EncrAESGCM16, KeyLen: 128}, 20, 0},
		{ESPSuite{Encr: wire.EncrChaCha20Poly1305}, 36, 0},
	} {
		for _, pfs := range [][][]byte{nil, {g}} {
			k, err := DeriveChildKeys(c.s, wire.PRFHMACSHA2_256, skD, ni, nr, pfs...)
			if err != nil {
				t.Fatal(err)
			}
			seed := append(append(bytes.Clone(bytes.Join(pfs, nil)), ni...), nr...)
			km, _ := prf.Expand(skD, seed, 2*(c.eLen+c.aLen))
			got := bytes.Join([][]byte{k.EncrI, k.IntegI, k.EncrR, k.IntegR}, nil)
			if !bytes.Equal(got, km) || len(k.EncrI) != c.eLen || len(k.IntegR) != c.aLen {
				t.Errorf("%+v pfs=%v: KEYMAT split wrong", c.s, pfs != nil)
			}
		}
	}
}
