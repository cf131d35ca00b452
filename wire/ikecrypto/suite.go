package ikecrypto

import (
	"fmt"

	"github.com/cygnet-ipsec/cygnet/wire"
)

// encrInfo describes an encryption transform as used in the SK payload (RFC 7296
// §3.14) and in ESP. Lengths are in octets.
type encrInfo struct {
	name      string
	aead      bool
	keyLens   []int // allowed key lengths in octets; the Key Length attribute in bits selects one
	fixedKey  bool  // no Key Length attribute (ChaCha20-Poly1305, RFC 7634 §2)
	saltLen   int   // salt appended to the key in the key material (RFC 5282 §7.1, RFC 7634 §4)
	ivLen     int
	icvLen    int // AEAD tag length
	blockSize int // plaintext alignment of the SK payload
}

var encrs = map[wire.TransformID]encrInfo{
	wire.EncrAESCBC:           {name: "ENCR_AES_CBC", keyLens: []int{16, 24, 32}, ivLen: 16, blockSize: 16},
	wire.EncrAESGCM16:         {name: "ENCR_AES_GCM_16", aead: true, keyLens: []int{16, 24, 32}, saltLen: 4, ivLen: 8, icvLen: 16, blockSize: 1},
	wire.EncrChaCha20Poly1305: {name: "ENCR_CHACHA20_POLY1305", aead: true, keyLens: []int{32}, fixedKey: true, saltLen: 4, ivLen: 8, icvLen: 16, blockSize: 1},
}

// integInfo describes an integrity transform: HMAC with a key of keyLen octets and the
// output truncated to icvLen octets (RFC 4868 §2.1, RFC 2404).
type integInfo struct {
	name   string
	prf    wire.TransformID // the HMAC with the same hash
	keyLen int
	icvLen int
}

var integs = map[wire.TransformID]integInfo{
	wire.IntegHMACSHA1_96:      {name: "AUTH_HMAC_SHA1_96", prf: wire.PRFHMACSHA1, keyLen: 20, icvLen: 12},
	wire.IntegHMACSHA2_256_128: {name: "AUTH_HMAC_SHA2_256_128", prf: wire.PRFHMACSHA2_256, keyLen: 32, icvLen: 16},
	wire.IntegHMACSHA2_384_192: {name: "AUTH_HMAC_SHA2_384_192", prf: wire.PRFHMACSHA2_384, keyLen: 48, icvLen: 24},
	wire.IntegHMACSHA2_512_256: {name: "AUTH_HMAC_SHA2_512_256", prf: wire.PRFHMACSHA2_512, keyLen: 64, icvLen: 32},
}

// lookupEncr checks an encryption transform and its Key Length attribute (bits) and
// returns its description with the key length in octets (without salt).
func lookupEncr(id wire.TransformID, keyBits int) (encrInfo, int, error) {
	e, ok := encrs[id]
	if !ok {
		return encrInfo{}, 0, fmt.Errorf("encryption algorithm %d: %w", id, ErrUnsupported)
	}
	if e.fixedKey {
		if keyBits != 0 && keyBits != e.keyLens[0]*8 {
			return encrInfo{}, 0, fmt.Errorf("%s takes no key length, got %d bits: %w", e.name, keyBits, ErrUnsupported)
		}
		return e, e.keyLens[0], nil
	}
	for _, l := range e.keyLens {
		if keyBits == l*8 {
			return e, l, nil
		}
	}
	return encrInfo{}, 0, fmt.Errorf("%s with key length %d bits: %w", e.name, keyBits, ErrUnsupported)
}

func lookupInteg(id wire.TransformID) (integInfo, error) {
	i, ok := integs[id]
	if !ok {
		return integInfo{}, fmt.Errorf("integrity algorithm %d: %w", id, ErrUnsupported)
	}
	return i, nil
}

// IKESuite is the set of transforms chosen for an IKE SA: one of each type (RFC 7296
// §3.3). EncrKeyLen is the Key Length attribute in bits (0 for algorithms without one,
// such as ChaCha20-Poly1305). Integ is wire.IntegNone for AEAD algorithms. AddKE holds
// the RFC 9370 additional key exchanges ADDKE1…ADDKE7, wire.KENone where absent.
type IKESuite struct {
	Encr       wire.TransformID
	EncrKeyLen int
	Integ      wire.TransformID
	PRF        wire.TransformID
	KE         wire.TransformID
	AddKE      [7]wire.TransformID
}

// ESPSuite is the set of transforms chosen for an ESP Child SA (RFC 7296 §3.3). KeyLen
// is the Key Length attribute in bits; Integ is wire.IntegNone for AEAD; KE is the PFS
// group of a CREATE_CHILD_SA (wire.KENone without PFS); ESN tells whether extended
// sequence numbers were chosen.
type ESPSuite struct {
	Encr   wire.TransformID
	KeyLen int
	Integ  wire.TransformID
	ESN    bool
	KE     wire.TransformID
	AddKE  [7]wire.TransformID
}

// IKESuiteFromProposal reads the suite from a proposal that carries exactly one
// transform of each type, as selection returns it (RFC 7296 §2.7).
func IKESuiteFromProposal(p wire.Proposal) (IKESuite, error) {
	if p.Protocol != wire.ProtoIKE {
		return IKESuite{}, fmt.Errorf("ike suite: proposal %d has protocol %d, want IKE", p.Num, p.Protocol)
	}
	var s IKESuite
	seen := map[wire.TransformType]bool{}
	for _, t := range p.Transforms {
		if seen[t.Type] {
			return IKESuite{}, fmt.Errorf("ike suite: proposal %d has more than one transform of type %d", p.Num, t.Type)
		}
		seen[t.Type] = true
		switch {
		case t.Type == wire.TransformENCR:
			s.Encr, s.EncrKeyLen = t.ID, int(t.KeyLength)
		case t.Type == wire.TransformINTEG:
			s.Integ = t.ID
		case t.Type == wire.TransformPRF:
			s.PRF = t.ID
		case t.Type == wire.TransformKE:
			s.KE = t.ID
		case t.Type >= wire.TransformADDKE1 && t.Type <= wire.TransformADDKE7:
			s.AddKE[t.Type-wire.TransformADDKE1] = t.ID
		default:
			return IKESuite{}, fmt.Errorf("ike suite: proposal %d has transform type %d", p.Num, t.Type)
		}
	}
	if !seen[wire.TransformENCR] || !seen[wire.TransformPRF] || !seen[wire.TransformKE] {
		return IKESuite{}, fmt.Errorf("ike suite: proposal %d lacks ENCR, PRF or KE", p.Num)
	}
	if err := s.Validate(); err != nil {
		return IKESuite{}, err
	}
	return s, nil
}

// Validate checks that every transform of the suite is implemented and that they fit
// together: an AEAD has no integrity algorithm, any other cipher needs one.
func (s IKESuite) Validate() error {
	e, _, err := lookupEncr(s.Encr, s.EncrKeyLen)
	if err != nil {
		return fmt.Errorf("ike suite: %w", err)
	}
	if err := checkInteg(e, s.Integ); err != nil {
		return fmt.Errorf("ike suite: %w", err)
	}
	if _, err := LookupPRF(s.PRF); err != nil {
		return fmt.Errorf("ike suite: %w", err)
	}
	if _, err := Group(s.KE); err != nil {
		return fmt.Errorf("ike suite: %w", err)
	}
	for i, ke := range s.AddKE {
		if ke == wire.KENone {
			continue
		}
		if _, err := Group(ke); err != nil {
			return fmt.Errorf("ike suite: ADDKE%d: %w", i+1, err)
		}
	}
	return nil
}

// ESPSuiteFromProposal reads the suite from an ESP proposal that carries at most one
// transform of each type, as selection returns it. A missing ESN transform means no ESN.
func ESPSuiteFromProposal(p wire.Proposal) (ESPSuite, error) {
	if p.Protocol != wire.ProtoESP {
		return ESPSuite{}, fmt.Errorf("esp suite: proposal %d has protocol %d, want ESP", p.Num, p.Protocol)
	}
	var s ESPSuite
	seen := map[wire.TransformType]bool{}
	for _, t := range p.Transforms {
		if seen[t.Type] {
			return ESPSuite{}, fmt.Errorf("esp suite: proposal %d has more than one transform of type %d", p.Num, t.Type)
		}
		seen[t.Type] = true
		switch {
		case t.Type == wire.TransformENCR:
			s.Encr, s.KeyLen = t.ID, int(t.KeyLength)
		case t.Type == wire.TransformINTEG:
			s.Integ = t.ID
		case t.Type == wire.TransformKE:
			s.KE = t.ID
		case t.Type == wire.TransformESN:
			s.ESN = t.ID == wire.ESNYes
		case t.Type >= wire.TransformADDKE1 && t.Type <= wire.TransformADDKE7:
			s.AddKE[t.Type-wire.TransformADDKE1] = t.ID
		default:
			return ESPSuite{}, fmt.Errorf("esp suite: proposal %d has transform type %d", p.Num, t.Type)
		}
	}
	if !seen[wire.TransformENCR] {
		return ESPSuite{}, fmt.Errorf("esp suite: proposal %d lacks ENCR", p.Num)
	}
	if err := s.Validate(); err != nil {
		return ESPSuite{}, err
	}
	return s, nil
}

// Validate checks that the suite's encryption and integrity algorithms are known and fit
// together, and that its PFS group, if any, is implemented.
func (s ESPSuite) Validate() error {
	e, _, err := lookupEncr(s.Encr, s.KeyLen)
	if err != nil {
		return fmt.Errorf("esp suite: %w", err)
	}
	if err := checkInteg(e, s.Integ); err != nil {
		return fmt.Errorf("esp suite: %w", err)
	}
	if s.KE != wire.KENone {
		if _, err := Group(s.KE); err != nil {
			return fmt.Errorf("esp suite: %w", err)
		}
	}
	for i, ke := range s.AddKE {
		if ke == wire.KENone {
			continue
		}
		if _, err := Group(ke); err != nil {
			return fmt.Errorf("esp suite: ADDKE%d: %w", i+1, err)
		}
	}
	return nil
}

func checkInteg(e encrInfo, integ wire.TransformID) error {
	if e.aead {
		if integ != wire.IntegNone {
			return fmt.Errorf("%s is combined-mode and takes no integrity algorithm (got %d): %w", e.name, integ, ErrUnsupported)
		}
		return nil
	}
	if integ == wire.IntegNone {
		return fmt.Errorf("%s needs an integrity algorithm: %w", e.name, ErrUnsupported)
	}
	_, err := lookupInteg(integ)
	return err
}

// encrKeyMatLen is the key material one direction's cipher takes: the key and, for the
// AEADs of RFC 4106/5282/7634, a 4-octet salt after it.
func encrKeyMatLen(id wire.TransformID, keyBits int) (int, error) {
	e, l, err := lookupEncr(id, keyBits)
	if err != nil {
		return 0, err
	}
	return l + e.saltLen, nil
}

func integKeyLen(id wire.TransformID) (int, error) {
	if id == wire.IntegNone {
		return 0, nil
	}
	i, err := lookupInteg(id)
	if err != nil {
		return 0, err
	}
	return i.keyLen, nil
}
