package ikecrypto

import (
	"encoding/binary"
	"fmt"

	"github.com/cygnet-ipsec/cygnet/wire"
)

// IKEKeys are the seven secrets of an IKE SA (RFC 7296 §2.14):
//
//	{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
//
// "i" and "r" are the original initiator and responder of this IKE SA (after a rekey,
// the peer that started the rekey is the initiator of the new SA, §2.18). With an AEAD,
// Ai and Ar are empty and Ei/Er are key ‖ salt (RFC 5282 §7.1).
type IKEKeys struct {
	D, Ai, Ar, Ei, Er, Pi, Pr []byte
}

// ChildKeys is the KEYMAT of an ESP Child SA split per direction (RFC 7296 §2.17).
// EncrI/IntegI protect traffic from the initiator of the exchange that created the
// Child SA to its responder (inbound on the responder, under the SPI the responder
// chose); EncrR/IntegR the other way. With an AEAD the Integ keys are empty and the
// Encr keys are key ‖ salt (RFC 4106 §8.1, RFC 7634 §4).
type ChildKeys struct {
	EncrI, IntegI, EncrR, IntegR []byte
}

// SKEYSEED computes SKEYSEED = prf(Ni | Nr, g^ir) for a new IKE SA (RFC 7296 §2.14).
// For a PRF with a fixed key length, the key is the first half of that length taken
// from Ni followed by the first half taken from Nr, as §2.14 prescribes.
func SKEYSEED(prf *PRF, ni, nr, gir []byte) []byte {
	if l := prf.fixedKeyLen(); l > 0 {
		return prf.Compute(fixedNonceKey(l, ni, nr), gir)
	}
	key := make([]byte, 0, len(ni)+len(nr))
	key = append(append(key, ni...), nr...)
	return prf.Compute(key, gir)
}

// fixedNonceKey is the §2.14 rule for PRFs that take a fixed key length: "half the bits
// must come from Ni and half from Nr, taking the first bits of each".
func fixedNonceKey(l int, ni, nr []byte) []byte {
	h := l / 2
	key := make([]byte, 0, l)
	key = append(key, ni[:min(h, len(ni))]...)
	key = append(key, nr[:min(l-h, len(nr))]...)
	return key
}

// RekeySKEYSEED computes the SKEYSEED of an IKE SA created by CREATE_CHILD_SA
// (RFC 7296 §2.18) and of the keys after an additional key exchange (RFC 9370 §2.2.2,
// §2.2.4):
//
//	SKEYSEED = prf(SK_d (old), SK(0) | SK(1) | … | SK(n) | Ni | Nr)
//
// prf is the old IKE SA's PRF (the exchange belongs to the old SA), SK(0) is g^ir of
// the KE payloads and SK(1…n) the secrets of the additional key exchanges in order.
func RekeySKEYSEED(prf *PRF, oldSKd, ni, nr []byte, sharedSecrets ...[]byte) []byte {
	data := make([][]byte, 0, len(sharedSecrets)+2)
	data = append(data, sharedSecrets...)
	data = append(data, ni, nr)
	return prf.Compute(oldSKd, data...)
}

// Lengths returns the lengths in octets of SK_d, SK_a* and SK_e* for the suite (SK_p*
// have the length of SK_d).
func (s IKESuite) lengths() (d, a, e int, err error) {
	prf, err := LookupPRF(s.PRF)
	if err != nil {
		return 0, 0, 0, err
	}
	if e, err = encrKeyMatLen(s.Encr, s.EncrKeyLen); err != nil {
		return 0, 0, 0, err
	}
	if a, err = integKeyLen(s.Integ); err != nil {
		return 0, 0, 0, err
	}
	return prf.KeyLen(), a, e, nil
}

// KeysFromSKEYSEED expands SKEYSEED into the seven keys of the IKE SA (RFC 7296 §2.14)
// with the suite's PRF and key lengths.
func (s IKESuite) KeysFromSKEYSEED(skeyseed, ni, nr []byte, spiI, spiR uint64) (*IKEKeys, error) {
	prf, err := LookupPRF(s.PRF)
	if err != nil {
		return nil, fmt.Errorf("ike keys: %w", err)
	}
	dLen, aLen, eLen, err := s.lengths()
	if err != nil {
		return nil, fmt.Errorf("ike keys: %w", err)
	}
	seed := make([]byte, 0, len(ni)+len(nr)+16)
	seed = append(append(seed, ni...), nr...)
	seed = binary.BigEndian.AppendUint64(seed, spiI)
	seed = binary.BigEndian.AppendUint64(seed, spiR)
	km, err := prf.Expand(skeyseed, seed, 3*dLen+2*aLen+2*eLen)
	if err != nil {
		return nil, fmt.Errorf("ike keys: %w", err)
	}
	var k IKEKeys
	for _, f := range []struct {
		dst *[]byte
		n   int
	}{{&k.D, dLen}, {&k.Ai, aLen}, {&k.Ar, aLen}, {&k.Ei, eLen}, {&k.Er, eLen}, {&k.Pi, dLen}, {&k.Pr, dLen}} {
		*f.dst, km = km[:f.n:f.n], km[f.n:]
	}
	return &k, nil
}

// DeriveIKEKeys computes the keys of a new IKE SA from the IKE_SA_INIT nonces, the
// shared secret g^ir and the SPIs (RFC 7296 §2.14). With RFC 9370 additional key
// exchanges, follow with UpdateIKEKeys after each IKE_INTERMEDIATE exchange.
func DeriveIKEKeys(s IKESuite, ni, nr, gir []byte, spiI, spiR uint64) (*IKEKeys, error) {
	prf, err := LookupPRF(s.PRF)
	if err != nil {
		return nil, fmt.Errorf("ike keys: %w", err)
	}
	return s.KeysFromSKEYSEED(SKEYSEED(prf, ni, nr, gir), ni, nr, spiI, spiR)
}

// DeriveRekeyedIKEKeys computes the keys of the new IKE SA of an IKE SA rekey
// (RFC 7296 §2.18, RFC 9370 §2.2.4). s is the new SA's suite; oldPRF and oldSKd belong
// to the old SA; ni, nr, spiI and spiR are those of the CREATE_CHILD_SA exchange, where
// "i" is the peer that sent the rekey request. sharedSecrets are g^ir of the KE payloads
// followed by the secrets of any additional key exchanges.
func DeriveRekeyedIKEKeys(s IKESuite, oldPRF wire.TransformID, oldSKd, ni, nr []byte, spiI, spiR uint64, sharedSecrets ...[]byte) (*IKEKeys, error) {
	prf, err := LookupPRF(oldPRF)
	if err != nil {
		return nil, fmt.Errorf("rekeyed ike keys: %w", err)
	}
	return s.KeysFromSKEYSEED(RekeySKEYSEED(prf, oldSKd, ni, nr, sharedSecrets...), ni, nr, spiI, spiR)
}

// UpdateIKEKeys computes the keys of the IKE SA after the additional key exchange n of
// IKE_INTERMEDIATE (RFC 9370 §2.2.2):
//
//	SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)
//	{SK_d(n) | …} = prf+(SKEYSEED(n), Ni | Nr | SPIi | SPIr)
//
// ni and nr are the IKE_SA_INIT nonces.
func UpdateIKEKeys(s IKESuite, prev *IKEKeys, ni, nr []byte, spiI, spiR uint64, sk []byte) (*IKEKeys, error) {
	return DeriveRekeyedIKEKeys(s, s.PRF, prev.D, ni, nr, spiI, spiR, sk)
}

// DeriveChildKeys computes the KEYMAT of a Child SA (RFC 7296 §2.17, RFC 9370 §2.2.4):
//
//	KEYMAT = prf+(SK_d, Ni | Nr)                           without PFS
//	KEYMAT = prf+(SK_d, g^ir (new) | [SK(1) | …] Ni | Nr)   with PFS
//
// and splits it: initiator-to-responder encryption then integrity key, then
// responder-to-initiator encryption then integrity key. prf is the IKE SA's PRF, skD
// its SK_d; ni and nr are the nonces of the exchange that creates the Child SA (the
// IKE_SA_INIT nonces for the Child SA of IKE_AUTH).
func DeriveChildKeys(s ESPSuite, prf wire.TransformID, skD, ni, nr []byte, sharedSecrets ...[]byte) (*ChildKeys, error) {
	p, err := LookupPRF(prf)
	if err != nil {
		return nil, fmt.Errorf("child keys: %w", err)
	}
	eLen, err := encrKeyMatLen(s.Encr, s.KeyLen)
	if err != nil {
		return nil, fmt.Errorf("child keys: %w", err)
	}
	aLen, err := integKeyLen(s.Integ)
	if err != nil {
		return nil, fmt.Errorf("child keys: %w", err)
	}
	n := len(ni) + len(nr)
	for _, ss := range sharedSecrets {
		n += len(ss)
	}
	seed := make([]byte, 0, n)
	for _, ss := range sharedSecrets {
		seed = append(seed, ss...)
	}
	seed = append(append(seed, ni...), nr...)
	km, err := p.Expand(skD, seed, 2*(eLen+aLen))
	if err != nil {
		return nil, fmt.Errorf("child keys: %w", err)
	}
	var k ChildKeys
	for _, f := range []struct {
		dst *[]byte
		n   int
	}{{&k.EncrI, eLen}, {&k.IntegI, aLen}, {&k.EncrR, eLen}, {&k.IntegR, aLen}} {
		*f.dst, km = km[:f.n:f.n], km[f.n:]
	}
	return &k, nil
}
