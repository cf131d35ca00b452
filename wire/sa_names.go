package wire

import "strconv"

// Names of the SA payload registries (IANA "IKEv2 Parameters": Security Protocol
// Identifiers, Transform Type Values and the per-type Transform IDs).

var protocolNames = map[ProtocolID]string{ProtoIKE: "IKE", ProtoAH: "AH", ProtoESP: "ESP"}

func (p ProtocolID) String() string { return name(protocolNames, p, "ProtocolID") }

var transformTypeNames = map[TransformType]string{
	TransformENCR: "ENCR", TransformPRF: "PRF", TransformINTEG: "INTEG", TransformKE: "KE",
	TransformESN: "ESN", TransformADDKE1: "ADDKE1", TransformADDKE2: "ADDKE2",
	TransformADDKE3: "ADDKE3", TransformADDKE4: "ADDKE4", TransformADDKE5: "ADDKE5",
	TransformADDKE6: "ADDKE6", TransformADDKE7: "ADDKE7",
}

func (t TransformType) String() string { return name(transformTypeNames, t, "TransformType") }

// IsKE reports whether t carries a key exchange method: KE (4) or ADDKE1…ADDKE7 (RFC 9370).
func (t TransformType) IsKE() bool {
	return t == TransformKE || (t >= TransformADDKE1 && t <= TransformADDKE7)
}

var encrNames = map[TransformID]string{
	1: "ENCR_DES_IV64", 2: "ENCR_DES", 3: "ENCR_3DES", 4: "ENCR_RC5", 5: "ENCR_IDEA",
	6: "ENCR_CAST", 7: "ENCR_BLOWFISH", 8: "ENCR_3IDEA", 9: "ENCR_DES_IV32", 11: "ENCR_NULL",
	EncrAESCBC: "ENCR_AES_CBC", EncrAESCTR: "ENCR_AES_CTR", 14: "ENCR_AES_CCM_8",
	15: "ENCR_AES_CCM_12", 16: "ENCR_AES_CCM_16", EncrAESGCM8: "ENCR_AES_GCM_8",
	EncrAESGCM12: "ENCR_AES_GCM_12", EncrAESGCM16: "ENCR_AES_GCM_16",
	21: "ENCR_NULL_AUTH_AES_GMAC", 23: "ENCR_CAMELLIA_CBC", 24: "ENCR_CAMELLIA_CTR",
	25: "ENCR_CAMELLIA_CCM_8", 26: "ENCR_CAMELLIA_CCM_12", 27: "ENCR_CAMELLIA_CCM_16",
	EncrChaCha20Poly1305: "ENCR_CHACHA20_POLY1305",
}

var prfNames = map[TransformID]string{
	1: "PRF_HMAC_MD5", PRFHMACSHA1: "PRF_HMAC_SHA1", 3: "PRF_HMAC_TIGER",
	4: "PRF_AES128_XCBC", PRFHMACSHA2_256: "PRF_HMAC_SHA2_256",
	PRFHMACSHA2_384: "PRF_HMAC_SHA2_384", PRFHMACSHA2_512: "PRF_HMAC_SHA2_512",
	8: "PRF_AES128_CMAC",
}

var integNames = map[TransformID]string{
	IntegNone: "NONE", 1: "AUTH_HMAC_MD5_96", IntegHMACSHA1_96: "AUTH_HMAC_SHA1_96",
	3: "AUTH_DES_MAC", 4: "AUTH_KPDK_MD5", 5: "AUTH_AES_XCBC_96", 6: "AUTH_HMAC_MD5_128",
	7: "AUTH_HMAC_SHA1_160", 8: "AUTH_AES_CMAC_96", 9: "AUTH_AES_128_GMAC",
	10: "AUTH_AES_192_GMAC", 11: "AUTH_AES_256_GMAC",
	IntegHMACSHA2_256_128: "AUTH_HMAC_SHA2_256_128", IntegHMACSHA2_384_192: "AUTH_HMAC_SHA2_384_192",
	IntegHMACSHA2_512_256: "AUTH_HMAC_SHA2_512_256",
}

var keNames = map[TransformID]string{
	KENone: "NONE", 1: "MODP_768", 2: "MODP_1024", 5: "MODP_1536", KEMODP2048: "MODP_2048",
	KEMODP3072: "MODP_3072", KEMODP4096: "MODP_4096", 17: "MODP_6144", 18: "MODP_8192",
	KEECP256: "ECP_256", KEECP384: "ECP_384", KEECP521: "ECP_521", 22: "MODP_1024_160",
	23: "MODP_2048_224", 24: "MODP_2048_256", 25: "ECP_192", 26: "ECP_224",
	27: "BRAINPOOL_P224R1", 28: "BRAINPOOL_P256R1", 29: "BRAINPOOL_P384R1",
	30: "BRAINPOOL_P512R1", KECurve25519: "CURVE25519", 32: "CURVE448",
	KEMLKEM512: "ML_KEM_512", KEMLKEM768: "ML_KEM_768", KEMLKEM1024: "ML_KEM_1024",
}

var esnNames = map[TransformID]string{ESNNo: "NO_ESN", ESNYes: "ESN"}

// TransformName is the IANA name of Transform ID id of type t, e.g. "ENCR_AES_GCM_16",
// "PRF_HMAC_SHA2_256", "CURVE25519"; "ENCR(99)" for an unassigned value.
func TransformName(t TransformType, id TransformID) string {
	var table map[TransformID]string
	switch {
	case t == TransformENCR:
		table = encrNames
	case t == TransformPRF:
		table = prfNames
	case t == TransformINTEG:
		table = integNames
	case t.IsKE():
		table = keNames
	case t == TransformESN:
		table = esnNames
	}
	if s, ok := table[id]; ok {
		return s
	}
	return t.String() + "(" + strconv.FormatUint(uint64(id), 10) + ")"
}

// String prints the transform as TYPE:NAME, with the key length when present, e.g.
// "ENCR:ENCR_AES_GCM_16/256", "KE:CURVE25519".
func (t Transform) String() string {
	s := t.Type.String() + ":" + TransformName(t.Type, t.ID)
	if t.KeyLength != 0 {
		s += "/" + strconv.FormatUint(uint64(t.KeyLength), 10)
	}
	if t.OtherAttrs != "" {
		s += "+attrs"
	}
	return s
}
