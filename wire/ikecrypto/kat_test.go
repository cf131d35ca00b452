package ikecrypto

// Known-answer tests from the RFCs (and one hand-checked prf+/SKEYSEED vector), each
// run through the API the protocol core uses.

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/wire"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// RFC 4231 §4.2–§4.8 (test case 5, truncated output, does not apply to a PRF).
func TestRFC4231HMACSHA2(t *testing.T) {
	cases := []struct {
		name             string
		key, data        []byte
		s256, s384, s512 string
	}{
		{"4.2", bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"),
			"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
			"afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
			"87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"},
		{"4.3", []byte("Jefe"), []byte("what do ya want for nothing?"),
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
			"af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
			"164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
		{"4.4", bytes.Repeat([]byte{0xaa}, 20), bytes.Repeat([]byte{0xdd}, 50),
			"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
			"88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27",
			"fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb"},
		{"4.5", []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25}, bytes.Repeat([]byte{0xcd}, 50),
			"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
			"3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
			"b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd"},
		{"4.7", bytes.Repeat([]byte{0xaa}, 131), []byte("Test Using Larger Than Block-Size Key - Hash Key First"),
			"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
			"4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
			"80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"},
		{"4.8", bytes.Repeat([]byte{0xaa}, 131), []byte("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
			"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
			"6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e",
			"e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58"},
	}
	for _, c := range cases {
		for id, want := range map[wire.TransformID]string{wire.PRFHMACSHA2_256: c.s256, wire.PRFHMACSHA2_384: c.s384, wire.PRFHMACSHA2_512: c.s512} {
			prf, err := LookupPRF(id)
			if err != nil {
				t.Fatal(err)
			}
			// Split the data in two to exercise the data... variadic form.
			half := len(c.data) / 2
			if got := prf.Compute(c.key, c.data[:half], c.data[half:]); !bytes.Equal(got, unhex(t, want)) {
				t.Errorf("RFC 4231 %s %s = %x, want %s", c.name, prf, got, want)
			}
		}
	}
}

// fixedReader returns the given bytes, then fails: a test feeding a key exchange its
// private value through the injected randomness.
func fixedReader(t testing.TB, hexs ...string) *bytes.Reader {
	var b []byte
	for _, s := range hexs {
		b = append(b, unhex(t, s)...)
	}
	return bytes.NewReader(b)
}

// RFC 7748 §5.2 (X25519 function) and §6.1 (Diffie-Hellman), through Group(31).
func TestRFC7748X25519(t *testing.T) {
	g, err := Group(wire.KECurve25519)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ scalar, u, out string }{
		{"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
			"e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
			"c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
		{"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
			"e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
			"95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
	} {
		priv, err := g.Generate(fixedReader(t, c.scalar))
		if err != nil {
			t.Fatal(err)
		}
		got, err := priv.SharedSecret(unhex(t, c.u))
		if err != nil {
			t.Fatalf("X25519(%s…): %v", c.scalar[:8], err)
		}
		if !bytes.Equal(got, unhex(t, c.out)) {
			t.Errorf("X25519(%s…) = %x, want %s", c.scalar[:8], got, c.out)
		}
	}

	const (
		alicePriv = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
		alicePub  = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
		bobPriv   = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
		bobPub    = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
		shared    = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
	)
	alice, err := g.Generate(fixedReader(t, alicePriv))
	if err != nil {
		t.Fatal(err)
	}
	if got := alice.Public(); !bytes.Equal(got, unhex(t, alicePub)) {
		t.Errorf("Alice's public key = %x, want %s", got, alicePub)
	}
	pub, k, err := g.Respond(fixedReader(t, bobPriv), alice.Public())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub, unhex(t, bobPub)) || !bytes.Equal(k, unhex(t, shared)) {
		t.Errorf("Bob answers %x with secret %x, want %s and %s", pub, k, bobPub, shared)
	}
	k2, err := alice.SharedSecret(pub)
	if err != nil || !bytes.Equal(k2, unhex(t, shared)) {
		t.Errorf("Alice's secret = %x, %v; want %s", k2, err, shared)
	}
}

// RFC 5903 §8.1–§8.3: the KE payload data is gx ‖ gy and the shared secret girx.
func TestRFC5903ECP(t *testing.T) {
	cases := []struct {
		id                       wire.TransformID
		i, gix, giy, r, grx, gry string
		girx                     string
	}{
		{wire.KEECP256,
			"c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433",
			"dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180",
			"5271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3",
			"c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53",
			"d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63",
			"56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab",
			"d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de"},
		{wire.KEECP384,
			"099f3c7034d4a2c699884d73a375a67f7624ef7c6b3c0f160647b67414dce655e35b538041e649ee3faef896783ab194",
			"667842d7d180ac2cde6f74f37551f55755c7645c20ef73e31634fe72b4c55ee6de3ac808acb4bdb4c88732aee95f41aa",
			"9482ed1fc0eeb9cafc4984625ccfc23f65032149e0e144ada024181535a0f38eeb9fcff3c2c947dae69b4c634573a81c",
			"41cb0779b4bdb85d47846725fbec3c9430fab46cc8dc5060855cc9bda0aa2942e0308312916b8ed2960e4bd55a7448fc",
			"e558dbef53eecde3d3fccfc1aea08a89a987475d12fd950d83cfa41732bc509d0d1ac43a0336def96fda41d0774a3571",
			"dcfbec7aacf3196472169e838430367f66eebe3c6e70c416dd5f0c68759dd1fff83fa40142209dff5eaad96db9e6386c",
			"11187331c279962d93d604243fd592cb9d0a926f422e47187521287e7156c5c4d603135569b9e9d09cf5d4a270f59746"},
		{wire.KEECP521,
			"0037ade9319a89f4dabdb3ef411aaccca5123c61acab57b5393dce47608172a095aa85a30fe1c2952c6771d937ba9777f5957b2639bab072462f68c27a57382d4a52",
			"0015417e84dbf28c0ad3c278713349dc7df153c897a1891bd98bab4357c9ecbee1e3bf42e00b8e380aeae57c2d107564941885942af5a7f4601723c4195d176ced3e",
			"017cae20b6641d2eeb695786d8c946146239d099e18e1d5a514c739d7cb4a10ad8a788015ac405d7799dc75e7b7d5b6cf2261a6a7f1507438bf01beb6ca3926f9582",
			"0145ba99a847af43793fdd0e872e7cdfa16be30fdc780f97bccc3f078380201e9c677d600b343757a3bdbf2a3163e4c2f869cca7458aa4a4effc311f5cb151685eb9",
			"00d0b3975ac4b799f5bea16d5e13e9af971d5e9b984c9f39728b5e5739735a219b97c356436adc6e95bb0352f6be64a6c2912d4ef2d0433ced2b6171640012d9460f",
			"015c68226383956e3bd066e797b623c27ce0eac2f551a10c2c724d9852077b87220b6536c5c408a1d2aebb8e86d678ae49cb57091f4732296579ab44fcd17f0fc56a",
			"01144c7d79ae6956bc8edb8e7c787c4521cb086fa64407f97894e5e6b2d79b04d1427e73ca4baa240a34786859810c06b3c715a3a8cc3151f2bee417996d19f3ddea"},
	}
	for _, c := range cases {
		g, err := Group(c.id)
		if err != nil {
			t.Fatal(err)
		}
		ini, err := g.Generate(fixedReader(t, c.i))
		if err != nil {
			t.Fatalf("%s: %v", g, err)
		}
		if got, want := ini.Public(), unhex(t, c.gix+c.giy); !bytes.Equal(got, want) {
			t.Errorf("%s: initiator KE data = %x, want %x", g, got, want)
		}
		pub, shared, err := g.Respond(fixedReader(t, c.r), ini.Public())
		if err != nil {
			t.Fatalf("%s: respond: %v", g, err)
		}
		if want := unhex(t, c.grx+c.gry); !bytes.Equal(pub, want) {
			t.Errorf("%s: responder KE data = %x, want %x", g, pub, want)
		}
		if !bytes.Equal(shared, unhex(t, c.girx)) {
			t.Errorf("%s: responder secret = %x, want %s", g, shared, c.girx)
		}
		shared2, err := ini.SharedSecret(pub)
		if err != nil || !bytes.Equal(shared2, unhex(t, c.girx)) {
			t.Errorf("%s: initiator secret = %x, %v; want %s", g, shared2, err, c.girx)
		}
	}
}

// RFC 8439 §2.8.2 through the SK cipher (RFC 7634 §2: nonce = salt ‖ IV, so the
// RFC's nonce 07000000 4041424344454647 is salt 07000000 and IV 4041424344454647).
func TestRFC8439ChaCha20Poly1305(t *testing.T) {
	key := unhex(t, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
	aad := unhex(t, "50515253c0c1c2c3c4c5c6c7")
	iv := unhex(t, "4041424344454647")
	pt := []byte("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
	want := unhex(t, `d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
		3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
		92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
		3ff4def08e4b7a9de576d26586cec64b6116 1ae10b594f09e26a7e902ecbd0600691`)
	c, err := NewSKCipher(IKESuite{Encr: wire.EncrChaCha20Poly1305, PRF: wire.PRFHMACSHA2_256, KE: wire.KECurve25519},
		append(key, 0x07, 0, 0, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkSKKnownAnswer(t, c, aad, iv, pt, want)
}

// McGrew–Viega, "The Galois/Counter Mode of Operation", test cases 4 (AES-128) and 16
// (AES-256): 96-bit IV cafebabefacedbaddecaf888 = salt cafebabe ‖ IV facedbaddecaf888.
func TestGCMSpecVectors(t *testing.T) {
	pt := unhex(t, `d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
		1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39`)
	aad := unhex(t, "feedfacedeadbeeffeedfacedeadbeefabaddad2")
	for _, c := range []struct {
		bits    int
		key, ct string
	}{
		{128, "feffe9928665731c6d6a8f9467308308",
			`42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
			21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091 5bc94fbc3221a5db94fae95ae7121a47`},
		{256, "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
			`522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
			8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662 76fc6ece0f4e1768cddf8853bb2d551b`},
	} {
		s := IKESuite{Encr: wire.EncrAESGCM16, EncrKeyLen: c.bits, PRF: wire.PRFHMACSHA2_256, KE: wire.KECurve25519}
		sk, err := NewSKCipher(s, append(unhex(t, c.key), 0xca, 0xfe, 0xba, 0xbe), nil)
		if err != nil {
			t.Fatal(err)
		}
		checkSKKnownAnswer(t, sk, aad, unhex(t, "facedbaddecaf888"), pt, unhex(t, c.ct))
	}
}

// checkSKKnownAnswer seals pt after the AAD prefix and compares with want (ciphertext ‖
// tag), then opens the result.
func checkSKKnownAnswer(t *testing.T, c wire.SKCipher, aad, iv, pt, want []byte) {
	t.Helper()
	msg := c.Seal(bytes.Clone(aad), iv, pt)
	if !bytes.Equal(msg[:len(aad)], aad) || !bytes.Equal(msg[len(aad):len(aad)+len(iv)], iv) {
		t.Fatalf("Seal changed the prefix or IV: %x", msg)
	}
	if got := msg[len(aad)+len(iv):]; !bytes.Equal(got, want) {
		t.Errorf("ciphertext ‖ tag = %x\nwant               %x", got, want)
	}
	back, err := c.Open(nil, msg, len(aad))
	if err != nil || !bytes.Equal(back, pt) {
		t.Errorf("Open = %q, %v", back, err)
	}
}

// Hand-checked vectors, computed independently with Python's hmac module from the
// definitions of RFC 7296 §2.13 and §2.14:
//
//	T1 = HMAC-SHA-256(K, S | 0x01), Tn = HMAC-SHA-256(K, Tn-1 | S | n)
//	SKEYSEED = HMAC-SHA-256(Ni | Nr, g^ir)
func TestPRFPlusAndSKEYSEEDHandChecked(t *testing.T) {
	prf, _ := LookupPRF(wire.PRFHMACSHA2_256)
	got, err := prf.Expand([]byte("key"), []byte("seed"), 100)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `a2392e429a99b173341b368bb5ce320bfd483d89567c14ec187c2d77e3c0a208
		ba45d21d42611712996c0cd4b329ac8681e093a8a5bbbbf0fb8c9d1cf674f742
		3fe3d2fbd6641ff544749daa37804f04be0b1beba59ddc3867c3016209779fa7 4e8b8654`)
	if !bytes.Equal(got, want) {
		t.Errorf("prf+(\"key\", \"seed\")[:100] = %x\nwant %x", got, want)
	}

	ni, nr := make([]byte, 16), make([]byte, 16)
	gir := make([]byte, 32)
	for i := range 16 {
		ni[i], nr[i] = byte(i), byte(16+i)
	}
	for i := range gir {
		gir[i] = byte(0x40 + i)
	}
	if got, want := SKEYSEED(prf, ni, nr, gir), unhex(t, "fc92e8d72d18e727716e91c09f407eed3785c05215b7f8ec6404df192275dd9c"); !bytes.Equal(got, want) {
		t.Errorf("SKEYSEED = %x, want %x", got, want)
	}
	// AES-CBC-128 + HMAC-SHA2-256-128 + PRF-HMAC-SHA2-256: 3×32 + 2×32 + 2×16 octets.
	s := IKESuite{Encr: wire.EncrAESCBC, EncrKeyLen: 128, Integ: wire.IntegHMACSHA2_256_128, PRF: wire.PRFHMACSHA2_256, KE: wire.KEMODP2048}
	k, err := DeriveIKEKeys(s, ni, nr, gir, 0x0102030405060708, 0x1112131415161718)
	if err != nil {
		t.Fatal(err)
	}
	keymat := unhex(t, `9ffbb5d76fb727e51988a5efc83aff08a75a3b5cd1854c2c5edd7326032a15d0
		bb53e19e73f2afa591e5a1215d630202ea9283c87417e77ecbe97c847a699972
		292d1710e5d1809f7bfdb8820281a93bd00c67e005591f53fcc465ac05591c63
		26b64f5e88f94204acd983c95651c788243f793e0e805e0e7fa8e3c67462f52a
		e166397dd1efb750204e3da3b6d307e350288b3668b167e364a6e17da2cc7d15
		0058f21a390614522ab21ddbc963c5759fecc9725e35a56f90f4a73388411652`)
	var cat []byte
	for _, part := range [][]byte{k.D, k.Ai, k.Ar, k.Ei, k.Er, k.Pi, k.Pr} {
		cat = append(cat, part...)
	}
	if !bytes.Equal(cat, keymat) {
		t.Errorf("SK_d|SK_ai|SK_ar|SK_ei|SK_er|SK_pi|SK_pr = %x\nwant %x", cat, keymat)
	}
	if len(k.D) != 32 || len(k.Ai) != 32 || len(k.Ei) != 16 || len(k.Pr) != 32 {
		t.Errorf("key lengths d=%d a=%d e=%d p=%d, want 32 32 16 32", len(k.D), len(k.Ai), len(k.Ei), len(k.Pr))
	}
}
