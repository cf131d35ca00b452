package main

import (
	"strconv"
	"strings"

	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/ikecrypto"
)

// The negotiated proposals (RFC 7296 §3.3) as list-sas shows them, in strongSwan's
// notation so that swanctl users read the same thing: transforms joined by "/",
// the key length after the encryption algorithm ("AES_GCM_16_256"), IANA names without
// their ENCR_/AUTH_ prefixes, "CURVE_25519" for CURVE25519.

// ikeProposal prints an IKE SA's suite, e.g. "AES_CBC_256/HMAC_SHA2_256_128/
// PRF_HMAC_SHA2_256/MODP_2048"; "" before IKE_SA_INIT has chosen one.
func ikeProposal(s ikecrypto.IKESuite) string {
	if s.Encr == 0 {
		return ""
	}
	parts := []string{encrName(s.Encr, s.EncrKeyLen)}
	if s.Integ != wire.IntegNone {
		parts = append(parts, integName(s.Integ))
	}
	parts = append(parts, wire.TransformName(wire.TransformPRF, s.PRF))
	parts = appendKE(parts, s.KE, s.AddKE)
	return strings.Join(parts, "/")
}

// espProposal prints a Child SA's suite, e.g. "AES_GCM_16_256" or
// "AES_CBC_256/HMAC_SHA2_256_128/CURVE_25519/ESN" (a PFS group of its CREATE_CHILD_SA;
// ESN only when extended sequence numbers were chosen).
func espProposal(s ikecrypto.ESPSuite) string {
	if s.Encr == 0 {
		return ""
	}
	parts := []string{encrName(s.Encr, s.KeyLen)}
	if s.Integ != wire.IntegNone {
		parts = append(parts, integName(s.Integ))
	}
	parts = appendKE(parts, s.KE, s.AddKE)
	if s.ESN {
		parts = append(parts, "ESN")
	}
	return strings.Join(parts, "/")
}

func encrName(id wire.TransformID, keyLen int) string {
	n := strings.TrimPrefix(wire.TransformName(wire.TransformENCR, id), "ENCR_")
	if keyLen != 0 {
		n += "_" + strconv.Itoa(keyLen)
	}
	return n
}

func integName(id wire.TransformID) string {
	return strings.TrimPrefix(wire.TransformName(wire.TransformINTEG, id), "AUTH_")
}

func keName(id wire.TransformID) string {
	n := wire.TransformName(wire.TransformKE, id)
	if rest, ok := strings.CutPrefix(n, "CURVE"); ok {
		n = "CURVE_" + rest
	}
	return n
}

func appendKE(parts []string, ke wire.TransformID, add [7]wire.TransformID) []string {
	if ke != wire.KENone {
		parts = append(parts, keName(ke))
	}
	for _, a := range add {
		if a != wire.KENone {
			parts = append(parts, keName(a))
		}
	}
	return parts
}
