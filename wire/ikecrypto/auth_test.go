package ikecrypto

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"sync"
	"testing"

	"github.com/cygnet-ipsec/cygnet/wire"
)

func TestSharedKeyAuth(t *testing.T) {
	prf, _ := LookupPRF(wire.PRFHMACSHA2_256)
	msg1 := []byte("IKE_SA_INIT request bytes")
	nr := bytes.Repeat([]byte{0xab}, 32)
	skPi := bytes.Repeat([]byte{0x11}, 32)
	idBody := []byte{1, 0, 0, 0, 192, 0, 2, 1} // ID_IPV4_ADDR 192.0.2.1
	octets := SignedOctets(prf, msg1, nr, skPi, idBody)
	// The definition, spelled out (RFC 7296 §2.15).
	want := append(append(bytes.Clone(msg1), nr...), prf.Compute(skPi, idBody)...)
	if !bytes.Equal(octets, want) {
		t.Fatalf("signed octets = %x, want %x", octets, want)
	}
	psk := []byte("secret")
	auth := SharedKeyAuth(prf, psk, octets)
	if !bytes.Equal(auth, prf.Compute(prf.Compute(psk, []byte("Key Pad for IKEv2")), octets)) {
		t.Fatal("AUTH is not prf(prf(PSK, \"Key Pad for IKEv2\"), octets)")
	}
	if !VerifySharedKeyAuth(prf, psk, octets, auth) {
		t.Fatal("own AUTH does not verify")
	}
	for what, a := range map[string][]byte{"empty": nil, "short": auth[:31], "flipped": append(bytes.Clone(auth[:31]), auth[31]^1)} {
		if VerifySharedKeyAuth(prf, psk, octets, a) {
			t.Errorf("%s AUTH verifies", what)
		}
	}
}

var (
	keysOnce sync.Once
	p256Key  *ecdsa.PrivateKey
	p384Key  *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
	rsaKey   *rsa.PrivateKey
)

func testKeys(testing.TB) {
	keysOnce.Do(func() {
		var err error
		if p256Key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if p384Key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
		_, edKey, _ = ed25519.GenerateKey(rand.Reader)
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
}

func TestSignatureAuth(t *testing.T) {
	testKeys(t)
	octets := []byte("InitiatorSignedOctets")
	// The AlgorithmIdentifier encodings of RFC 7427 Appendix A (and RFC 8420 §2).
	algIDs := map[SignatureScheme]string{
		SigECDSASHA256:  "300a06082a8648ce3d040302",
		SigECDSASHA384:  "300a06082a8648ce3d040303",
		SigEd25519:      "300506032b6570",
		SigRSAPSSSHA256: "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120",
	}
	signers := map[SignatureScheme]crypto.Signer{
		SigECDSASHA256: p256Key, SigECDSASHA384: p384Key, SigEd25519: edKey, SigRSAPSSSHA256: rsaKey,
	}
	for scheme, signer := range signers {
		data, err := SignatureAuth(scheme, signer, octets)
		if err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		algID, _ := hex.DecodeString(algIDs[scheme])
		if int(data[0]) != len(algID) || !bytes.Equal(data[1:1+len(algID)], algID) {
			t.Errorf("%s: AUTH data starts %x, want %02x%x", scheme, data[:1+len(algID)], len(algID), algID)
		}
		got, sig, err := ParseSignatureAuth(data)
		if err != nil || got != scheme || !bytes.Equal(sig, data[1+len(algID):]) {
			t.Errorf("%s: parse = %v, %v", got, len(sig), err)
		}
		if err := VerifySignatureAuth(signer.Public(), data, octets); err != nil {
			t.Errorf("%s: own signature: %v", scheme, err)
		}
		if err := VerifySignatureAuth(signer.Public(), data, []byte("other octets")); !errors.Is(err, ErrAuthSignature) {
			t.Errorf("%s: signature over other octets: %v", scheme, err)
		}
		bad := bytes.Clone(data)
		bad[len(bad)-1] ^= 1
		if err := VerifySignatureAuth(signer.Public(), bad, octets); !errors.Is(err, ErrAuthSignature) {
			t.Errorf("%s: corrupted signature: %v", scheme, err)
		}
		// A key of another type or curve never verifies.
		for other, s2 := range signers {
			if other != scheme {
				if err := VerifySignatureAuth(s2.Public(), data, octets); err == nil {
					t.Errorf("%s signature verifies with a %s key", scheme, other)
				}
			}
		}
	}
	// ECDSA with *ecdsa.PrivateKey and Ed25519 are deterministic (the simulator needs it).
	a, _ := SignatureAuth(SigECDSASHA256, p256Key, octets)
	b, _ := SignatureAuth(SigECDSASHA256, p256Key, octets)
	if !bytes.Equal(a, b) {
		t.Error("ECDSA AUTH is not deterministic")
	}
	// Scheme and key must agree.
	if _, err := SignatureAuth(SigECDSASHA384, p256Key, octets); err == nil {
		t.Error("ECDSA-SHA384 with a P-256 key accepted")
	}
	if _, err := SignatureAuth(SigRSAPSSSHA256, edKey, octets); err == nil {
		t.Error("RSA-PSS with an Ed25519 key accepted")
	}
}

// RSASSA-PSS parameters other than the ones cygnet sends are read: SHA-384 with
// absent hash parameters and salt 48; SHA-1 defaults are refused.
func TestParsePSSVariants(t *testing.T) {
	testKeys(t)
	octets := []byte("octets")
	h := crypto.SHA384.New()
	h.Write(octets)
	sig, err := rsa.SignPSS(rand.Reader, rsaKey, crypto.SHA384, h.Sum(nil), &rsa.PSSOptions{SaltLength: 48})
	if err != nil {
		t.Fatal(err)
	}
	// SEQUENCE { id-RSASSA-PSS, SEQUENCE { [0] {sha384}, [1] {mgf1 {sha384}}, [2] 48 } }
	algID, _ := hex.DecodeString("303d06092a864886f70d01010a3030" +
		"a00d300b0609608648016503040202" +
		"a11a301806092a864886f70d010108300b0609608648016503040202" +
		"a203020130")
	data := append(append([]byte{byte(len(algID))}, algID...), sig...)
	if err := VerifySignatureAuth(rsaKey.Public(), data, octets); err != nil {
		t.Fatalf("PSS SHA-384 salt 48: %v", err)
	}
	sha1Defaults, _ := hex.DecodeString("300d06092a864886f70d01010a3000")
	if _, _, err := ParseSignatureAuth(append([]byte{byte(len(sha1Defaults))}, append(sha1Defaults, 1)...)); !errors.Is(err, ErrAuthSignature) {
		t.Errorf("PSS with SHA-1 defaults: %v", err)
	}
}

func TestParseSignatureAuthMalformed(t *testing.T) {
	for _, in := range []string{"", "00", "05", "0a300a06082a8648ce3d0403", "0c300a06082a8648ce3d040302", "07300506032b6570",
		"09300706032b65700500aa", "07300506032b6571aa"} {
		b, _ := hex.DecodeString(in)
		if _, _, err := ParseSignatureAuth(b); err == nil {
			t.Errorf("ParseSignatureAuth(%s) accepted", in)
		}
	}
}

func FuzzParseSignatureAuth(f *testing.F) {
	testKeys(f)
	for _, s := range []SignatureScheme{SigECDSASHA256, SigEd25519, SigRSAPSSSHA256} {
		signer := map[SignatureScheme]crypto.Signer{SigECDSASHA256: p256Key, SigEd25519: edKey, SigRSAPSSSHA256: rsaKey}[s]
		d, _ := SignatureAuth(s, signer, []byte("x"))
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, sig, err := ParseSignatureAuth(data)
		if err == nil && (s.String() == "" || len(sig) == 0) {
			t.Fatal("accepted without scheme or signature")
		}
		_ = VerifySignatureAuth(p256Key.Public(), data, []byte("x"))
		_ = VerifySignatureAuth(rsaKey.Public(), data, []byte("x"))
	})
}
