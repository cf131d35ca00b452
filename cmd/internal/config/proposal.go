package config

import (
	"fmt"
	"regexp"
	"strings"
)

// TODO(config): validate with package wire/proposal once it lands (it parses these same
// strings into wire.Proposal); until then checkProposal knows strongSwan's keywords and
// the shape of a proposal, which catches typos and missing parts at load time.

// proposalKind says whether a proposal is for the IKE SA or for ESP.
type proposalKind uint8

const (
	ikeProposal proposalKind = iota
	espProposal
)

func (k proposalKind) String() string {
	if k == ikeProposal {
		return "IKE"
	}
	return "ESP"
}

var (
	reAEAD  = regexp.MustCompile(`^(aes(128|192|256)?(gcm|ccm)(8|12|16|64|96|128)?|chacha20poly1305)$`)
	reEncr  = regexp.MustCompile(`^(aes(128|192|256)?(ctr)?|3des|camellia(128|192|256)?|null)$`)
	reInteg = regexp.MustCompile(`^(sha1|sha|sha256|sha2_256|sha384|sha2_384|sha512|sha2_512|sha256_96|md5|aesxcbc|aescmac)$`)
	rePRF   = regexp.MustCompile(`^prf(sha1|sha|sha256|sha2_256|sha384|sha2_384|sha512|sha2_512|md5|aesxcbc|aescmac)$`)
	reKE    = regexp.MustCompile(`^(ke[1-7]_)?(modp(768|1024|1536|2048|3072|4096|6144|8192)|ecp(192|224|256|384|521)|x25519|curve25519|x448|curve448|mlkem(512|768|1024)|none)$`)
)

// checkProposal validates one proposal string in strongSwan's syntax: algorithm
// keywords joined by "-" (aes256gcm16-prfsha256-x25519), or "default". A trailing "!"
// (strict, strongSwan) is accepted. It returns the canonical (lowercase, no "!") form.
func checkProposal(kind proposalKind, s string) (string, error) {
	p := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "!")
	if p == "default" {
		return p, nil
	}
	expect := "expected an IKE proposal like aes256gcm16-prfsha256-x25519 or default"
	if kind == espProposal {
		expect = "expected an ESP proposal like aes256gcm16 or aes128-sha256-esn, or default"
	}
	if p == "" {
		return "", fmt.Errorf("%s, got an empty string", expect)
	}
	var aead, encr, integ, prf, ke, esn int
	for _, tok := range strings.Split(p, "-") {
		switch {
		case reAEAD.MatchString(tok):
			aead++
		case reEncr.MatchString(tok):
			encr++
		case reInteg.MatchString(tok):
			integ++
		case rePRF.MatchString(tok):
			prf++
		case reKE.MatchString(tok):
			ke++
		case tok == "esn" || tok == "noesn":
			esn++
		default:
			return "", fmt.Errorf("%s, got %q: unknown algorithm %q", expect, s, tok)
		}
	}
	switch {
	case aead > 0 && encr > 0:
		return "", fmt.Errorf("%s, got %q: combined-mode (AEAD) and classic ciphers cannot share a proposal", expect, s)
	case aead == 0 && encr == 0:
		return "", fmt.Errorf("%s, got %q: no encryption algorithm", expect, s)
	case encr > 0 && integ == 0:
		return "", fmt.Errorf("%s, got %q: %s needs an integrity algorithm (like sha256)", expect, s, "a non-AEAD cipher")
	case kind == ikeProposal && ke == 0:
		return "", fmt.Errorf("%s, got %q: no key exchange method (like x25519 or modp2048)", expect, s)
	case kind == ikeProposal && aead > 0 && prf == 0:
		return "", fmt.Errorf("%s, got %q: an AEAD proposal needs a PRF (like prfsha256)", expect, s)
	case kind == ikeProposal && esn > 0:
		return "", fmt.Errorf("%s, got %q: esn/noesn apply to ESP only", expect, s)
	case kind == espProposal && prf > 0:
		return "", fmt.Errorf("%s, got %q: a PRF applies to IKE only", expect, s)
	}
	return p, nil
}
