package ikecrypto

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// keyPad is the constant of RFC 7296 §2.15 that the shared secret is keyed with.
const keyPad = "Key Pad for IKEv2"

// SignedOctets builds the octets an AUTH payload covers (RFC 7296 §2.15):
//
//	InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
//	MACedIDForI = prf(SK_pi, RestOfInitIDPayload)
//
// and the responder's mirror (RealMessage2 | NonceIData | prf(SK_pr, RestOfRespIDPayload)).
// realMessage is the sender's whole IKE_SA_INIT message as sent (from the IKE header,
// without a non-ESP marker), peerNonce the Nonce Data of the other side's Nonce payload,
// skP the sender's SK_pi or SK_pr, and idBody the sender's ID payload body after the
// generic payload header (ID Type, three reserved octets, identification data).
func SignedOctets(prf *PRF, realMessage, peerNonce, skP, idBody []byte) []byte {
	out := make([]byte, 0, len(realMessage)+len(peerNonce)+prf.Size())
	out = append(append(out, realMessage...), peerNonce...)
	return prf.AppendCompute(out, skP, idBody)
}

// SharedKeyAuth returns the Authentication Data of a Shared Key Message Integrity Code
// AUTH payload (RFC 7296 §2.15, auth method 2):
//
//	AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
//
// With EAP (§2.16), the shared secret is the MSK (or SK_pi/SK_pr when EAP yields none).
func SharedKeyAuth(prf *PRF, secret, signedOctets []byte) []byte {
	return prf.Compute(prf.Compute(secret, []byte(keyPad)), signedOctets)
}

// VerifySharedKeyAuth recomputes SharedKeyAuth and compares it with the received
// Authentication Data in constant time.
func VerifySharedKeyAuth(prf *PRF, secret, signedOctets, authData []byte) bool {
	return hmac.Equal(SharedKeyAuth(prf, secret, signedOctets), authData)
}

// SignatureScheme is a signature algorithm of the Digital Signature authentication
// method (RFC 7427, auth method 14), identified in the AUTH data by its ASN.1
// AlgorithmIdentifier.
type SignatureScheme uint8

// The schemes cygnet signs and verifies with.
const (
	SigECDSASHA256  SignatureScheme = iota + 1 // ecdsa-with-SHA256 (RFC 5758), P-256
	SigECDSASHA384                             // ecdsa-with-SHA384, P-384
	SigEd25519                                 // id-Ed25519 (RFC 8420): the signed octets, unhashed
	SigRSAPSSSHA256                            // id-RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-octet salt (RFC 4055)
)

func (s SignatureScheme) String() string {
	switch s {
	case SigECDSASHA256:
		return "ECDSA-SHA256"
	case SigECDSASHA384:
		return "ECDSA-SHA384"
	case SigEd25519:
		return "Ed25519"
	case SigRSAPSSSHA256:
		return "RSASSA-PSS-SHA256"
	}
	return fmt.Sprintf("SignatureScheme(%d)", uint8(s))
}

// ErrAuthSignature is wrapped by every failure to parse or verify Digital Signature AUTH data.
var ErrAuthSignature = errors.New("digital signature authentication failed")

var (
	oidECDSASHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSASHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidEd25519     = asn1.ObjectIdentifier{1, 3, 101, 112}
	oidRSAPSS      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidSHA256      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

// algorithmIdentifier is the DER AlgorithmIdentifier of a scheme (RFC 7427 §3).
func (s SignatureScheme) algorithmIdentifier() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		switch s {
		case SigECDSASHA256:
			b.AddASN1ObjectIdentifier(oidECDSASHA256)
		case SigECDSASHA384:
			b.AddASN1ObjectIdentifier(oidECDSASHA384)
		case SigEd25519:
			b.AddASN1ObjectIdentifier(oidEd25519)
		case SigRSAPSSSHA256:
			b.AddASN1ObjectIdentifier(oidRSAPSS)
			// RSASSA-PSS-params (RFC 4055 §3.1), hash parameters NULL as in its examples.
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					addHashAlg(b, oidSHA256)
				})
				b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidMGF1)
						addHashAlg(b, oidSHA256)
					})
				})
				b.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1Int64(32)
				})
			})
		default:
			b.SetError(fmt.Errorf("signature scheme %d: %w", s, ErrUnsupported))
		}
	})
	return b.Bytes()
}

func addHashAlg(b *cryptobyte.Builder, oid asn1.ObjectIdentifier) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		b.AddASN1NULL()
	})
}

// SignatureAuth signs the signed octets with key and returns the Authentication Data of
// a Digital Signature AUTH payload (RFC 7427 §3):
//
//	ASN.1 Length (1 octet) | AlgorithmIdentifier ASN.1 object | Signature Value
//
// ECDSA signatures are DER Ecdsa-Sig-Value (RFC 7427 §3) and, for *ecdsa.PrivateKey,
// deterministic (RFC 6979); Ed25519 is deterministic. RSA-PSS draws its salt from
// crypto/rand, the one use of global randomness in this package.
func SignatureAuth(scheme SignatureScheme, key crypto.Signer, signedOctets []byte) ([]byte, error) {
	algID, err := scheme.algorithmIdentifier()
	if err != nil {
		return nil, fmt.Errorf("signature auth: %w", err)
	}
	var sig []byte
	switch scheme {
	case SigECDSASHA256, SigECDSASHA384:
		want := map[SignatureScheme]int{SigECDSASHA256: 256, SigECDSASHA384: 384}[scheme]
		pub, ok := key.Public().(*ecdsa.PublicKey)
		if !ok || pub.Curve.Params().BitSize != want {
			return nil, fmt.Errorf("signature auth: %s needs a P-%d key, got %T", scheme, want, key.Public())
		}
		h, digest := hashFor(scheme, signedOctets)
		var r io.Reader = rand.Reader
		if _, ok := key.(*ecdsa.PrivateKey); ok {
			r = nil // RFC 6979 deterministic signature
		}
		sig, err = key.Sign(r, digest, h)
	case SigEd25519:
		if _, ok := key.Public().(ed25519.PublicKey); !ok {
			return nil, fmt.Errorf("signature auth: %s needs an Ed25519 key, got %T", scheme, key.Public())
		}
		sig, err = key.Sign(nil, signedOctets, crypto.Hash(0))
	case SigRSAPSSSHA256:
		if _, ok := key.Public().(*rsa.PublicKey); !ok {
			return nil, fmt.Errorf("signature auth: %s needs an RSA key, got %T", scheme, key.Public())
		}
		_, digest := hashFor(scheme, signedOctets)
		sig, err = key.Sign(rand.Reader, digest, &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256})
	}
	if err != nil {
		return nil, fmt.Errorf("signature auth: sign with %s: %w", scheme, err)
	}
	out := make([]byte, 0, 1+len(algID)+len(sig))
	out = append(append(append(out, byte(len(algID))), algID...), sig...)
	return out, nil
}

func hashFor(s SignatureScheme, msg []byte) (crypto.Hash, []byte) {
	switch s {
	case SigECDSASHA384:
		d := sha512.Sum384(msg)
		return crypto.SHA384, d[:]
	default:
		d := sha256.Sum256(msg)
		return crypto.SHA256, d[:]
	}
}

// pssParams are the parsed RSASSA-PSS-params of a received AlgorithmIdentifier.
type pssParams struct {
	hash    crypto.Hash
	saltLen int
}

// ParseSignatureAuth splits Digital Signature Authentication Data (RFC 7427 §3) into
// its scheme and signature value. The signature points into data.
func ParseSignatureAuth(data []byte) (SignatureScheme, []byte, error) {
	s, _, sig, err := parseSignatureAuth(data)
	return s, sig, err
}

func parseSignatureAuth(data []byte) (SignatureScheme, pssParams, []byte, error) {
	if len(data) < 1 || int(data[0]) > len(data)-1 {
		return 0, pssParams{}, nil, fmt.Errorf("%w: ASN.1 length exceeds the AUTH data", ErrAuthSignature)
	}
	algID, sig := data[1:1+int(data[0])], data[1+int(data[0]):]
	in := cryptobyte.String(algID)
	var seq cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() || !seq.ReadASN1ObjectIdentifier(&oid) {
		return 0, pssParams{}, nil, fmt.Errorf("%w: malformed AlgorithmIdentifier", ErrAuthSignature)
	}
	var scheme SignatureScheme
	var pss pssParams
	switch {
	case oid.Equal(oidECDSASHA256):
		scheme = SigECDSASHA256
	case oid.Equal(oidECDSASHA384):
		scheme = SigECDSASHA384
	case oid.Equal(oidEd25519):
		scheme = SigEd25519
	case oid.Equal(oidRSAPSS):
		scheme = SigRSAPSSSHA256
		var err error
		if pss, err = parsePSSParams(&seq); err != nil {
			return 0, pssParams{}, nil, err
		}
	default:
		return 0, pssParams{}, nil, fmt.Errorf("%w: signature algorithm %s: %w", ErrAuthSignature, oid, ErrUnsupported)
	}
	if !seq.Empty() {
		return 0, pssParams{}, nil, fmt.Errorf("%w: unexpected parameters for %s", ErrAuthSignature, scheme)
	}
	if len(sig) == 0 {
		return 0, pssParams{}, nil, fmt.Errorf("%w: empty signature value", ErrAuthSignature)
	}
	return scheme, pss, sig, nil
}

// parsePSSParams reads RSASSA-PSS-params (RFC 4055 §3.1). The hash must be SHA-256, -384
// or -512 (absent means SHA-1 and is refused), MGF1 must use the same hash, the trailer
// field must be 1.
func parsePSSParams(seq *cryptobyte.String) (pssParams, error) {
	bad := func(what string) (pssParams, error) {
		return pssParams{}, fmt.Errorf("%w: RSASSA-PSS parameters: %s", ErrAuthSignature, what)
	}
	var params cryptobyte.String
	if !seq.ReadASN1(&params, cbasn1.SEQUENCE) {
		return bad("missing")
	}
	var hashAlg, mgf cryptobyte.String
	var hasHash, hasMGF, hasSalt, hasTrailer bool
	if !params.ReadOptionalASN1(&hashAlg, &hasHash, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!params.ReadOptionalASN1(&mgf, &hasMGF, cbasn1.Tag(1).Constructed().ContextSpecific()) {
		return bad("malformed")
	}
	if !hasHash || !hasMGF {
		return bad("SHA-1 defaults are not accepted")
	}
	h, ok := readHashAlg(&hashAlg)
	if !ok || !hashAlg.Empty() {
		return bad("unsupported hash")
	}
	var mgfSeq cryptobyte.String
	var mgfOID asn1.ObjectIdentifier
	if !mgf.ReadASN1(&mgfSeq, cbasn1.SEQUENCE) || !mgf.Empty() || !mgfSeq.ReadASN1ObjectIdentifier(&mgfOID) || !mgfOID.Equal(oidMGF1) {
		return bad("mask generation function is not MGF1")
	}
	mh, ok := readHashAlg(&mgfSeq)
	if !ok || mh != h || !mgfSeq.Empty() {
		return bad("MGF1 hash differs from the message hash")
	}
	salt := int64(20)
	var saltField, trailerField cryptobyte.String
	if !params.ReadOptionalASN1(&saltField, &hasSalt, cbasn1.Tag(2).Constructed().ContextSpecific()) {
		return bad("malformed salt length")
	}
	if hasSalt && (!saltField.ReadASN1Int64WithTag(&salt, cbasn1.INTEGER) || !saltField.Empty() || salt < 0 || salt > 1024) {
		return bad("malformed salt length")
	}
	if !params.ReadOptionalASN1(&trailerField, &hasTrailer, cbasn1.Tag(3).Constructed().ContextSpecific()) {
		return bad("malformed trailer field")
	}
	if hasTrailer {
		var t int64
		if !trailerField.ReadASN1Int64WithTag(&t, cbasn1.INTEGER) || t != 1 {
			return bad("trailer field is not 1")
		}
	}
	if !params.Empty() {
		return bad("trailing data")
	}
	return pssParams{hash: h, saltLen: int(salt)}, nil
}

// readHashAlg reads a hash AlgorithmIdentifier with absent or NULL parameters.
func readHashAlg(s *cryptobyte.String) (crypto.Hash, bool) {
	var seq cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1ObjectIdentifier(&oid) {
		return 0, false
	}
	if !seq.Empty() {
		var null cryptobyte.String
		if !seq.ReadASN1(&null, cbasn1.NULL) || !null.Empty() || !seq.Empty() {
			return 0, false
		}
	}
	switch {
	case oid.Equal(oidSHA256):
		return crypto.SHA256, true
	case oid.Equal(oidSHA384):
		return crypto.SHA384, true
	case oid.Equal(oidSHA512):
		return crypto.SHA512, true
	}
	return 0, false
}

// VerifySignatureAuth checks Digital Signature Authentication Data (RFC 7427) over the
// signed octets with the peer's public key (from its certificate or configuration). The
// key type must match the scheme named in the data. Errors wrap ErrAuthSignature.
func VerifySignatureAuth(pub crypto.PublicKey, authData, signedOctets []byte) error {
	scheme, pss, sig, err := parseSignatureAuth(authData)
	if err != nil {
		return err
	}
	fail := func(why string) error { return fmt.Errorf("%w: %s: %s", ErrAuthSignature, scheme, why) }
	switch scheme {
	case SigECDSASHA256, SigECDSASHA384:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fail(fmt.Sprintf("peer key is %T", pub))
		}
		_, digest := hashFor(scheme, signedOctets)
		if !ecdsa.VerifyASN1(k, digest, sig) {
			return fail("signature does not verify")
		}
	case SigEd25519:
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return fail(fmt.Sprintf("peer key is %T", pub))
		}
		if !ed25519.Verify(k, signedOctets, sig) {
			return fail("signature does not verify")
		}
	case SigRSAPSSSHA256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fail(fmt.Sprintf("peer key is %T", pub))
		}
		h := pss.hash.New()
		h.Write(signedOctets)
		if err := rsa.VerifyPSS(k, pss.hash, h.Sum(nil), sig, &rsa.PSSOptions{SaltLength: pss.saltLen, Hash: pss.hash}); err != nil {
			return fail("signature does not verify")
		}
	}
	return nil
}
