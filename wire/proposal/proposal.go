// Package proposal reads and writes strongSwan's proposal strings (swanctl.conf
// "proposals" and "esp_proposals") as SA payload proposals, and makes the proposal
// choices of RFC 7296 §2.7: the responder's selection, the initiator's check of the
// answer, and the key exchange methods an initiator offers.
//
// Contract:
//
//   - Parse accepts strongSwan's keywords (src/libstrongswan/crypto/proposal/
//     proposal_keywords_static.txt) for the algorithms cygnet implements, and applies
//     strongSwan's normalisation (check_proposal in proposal.c): an IKE proposal without
//     a PRF gets the PRFs matching its integrity algorithms (an AEAD one, which has
//     none, gets prfsha256, prfsha384 and prfsha512: strongSwan refuses it instead),
//     KE "none" is dropped from IKE proposals, integrity algorithms are dropped next to AEADs, an ESP proposal
//     without ESN keyword gets "noesn", PRFs in ESP proposals are dropped. An unknown
//     keyword, or a proposal strongSwan would refuse, is an error naming the token.
//   - Proposals hold their transforms grouped by Transform Type in strongSwan's order
//     (ENCR, INTEG, PRF, KE, ESN, ADDKE1…7, see TypeOrder), each type in preference
//     order, so an SA payload built from them matches charon's byte for byte; this is
//     what Parse and Select return and what Format expects. Format(Parse(s)) is canonical, and
//     Parse(Format(p)) == p for every p Parse can return.
//   - Selection and checks never modify their arguments; results share no memory with
//     them except SPI slices.
package proposal

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cygnet-ipsec/cygnet/wire"
)

// keyword is one algorithm keyword of a proposal string.
type keyword struct {
	name   string
	typ    wire.TransformType // TransformKE for "ke1_…" keywords too; the prefix picks ADDKEn
	id     wire.TransformID
	keyLen uint16
}

// keywords lists the accepted keywords; for each (type, ID, key length) the first one is
// the canonical spelling Format prints.
var keywords = []keyword{
	{"aes128", wire.TransformENCR, wire.EncrAESCBC, 128},
	{"aes", wire.TransformENCR, wire.EncrAESCBC, 128},
	{"aes192", wire.TransformENCR, wire.EncrAESCBC, 192},
	{"aes256", wire.TransformENCR, wire.EncrAESCBC, 256},
	{"aes128gcm16", wire.TransformENCR, wire.EncrAESGCM16, 128},
	{"aes128gcm128", wire.TransformENCR, wire.EncrAESGCM16, 128},
	{"aes128gcm", wire.TransformENCR, wire.EncrAESGCM16, 128},
	{"aes192gcm16", wire.TransformENCR, wire.EncrAESGCM16, 192},
	{"aes192gcm128", wire.TransformENCR, wire.EncrAESGCM16, 192},
	{"aes192gcm", wire.TransformENCR, wire.EncrAESGCM16, 192},
	{"aes256gcm16", wire.TransformENCR, wire.EncrAESGCM16, 256},
	{"aes256gcm128", wire.TransformENCR, wire.EncrAESGCM16, 256},
	{"aes256gcm", wire.TransformENCR, wire.EncrAESGCM16, 256},
	{"chacha20poly1305", wire.TransformENCR, wire.EncrChaCha20Poly1305, 0},

	{"sha256", wire.TransformINTEG, wire.IntegHMACSHA2_256_128, 0},
	{"sha2_256", wire.TransformINTEG, wire.IntegHMACSHA2_256_128, 0},
	{"sha384", wire.TransformINTEG, wire.IntegHMACSHA2_384_192, 0},
	{"sha2_384", wire.TransformINTEG, wire.IntegHMACSHA2_384_192, 0},
	{"sha512", wire.TransformINTEG, wire.IntegHMACSHA2_512_256, 0},
	{"sha2_512", wire.TransformINTEG, wire.IntegHMACSHA2_512_256, 0},
	{"sha1", wire.TransformINTEG, wire.IntegHMACSHA1_96, 0},
	{"sha", wire.TransformINTEG, wire.IntegHMACSHA1_96, 0},

	{"prfsha256", wire.TransformPRF, wire.PRFHMACSHA2_256, 0},
	{"prfsha384", wire.TransformPRF, wire.PRFHMACSHA2_384, 0},
	{"prfsha512", wire.TransformPRF, wire.PRFHMACSHA2_512, 0},
	{"prfsha1", wire.TransformPRF, wire.PRFHMACSHA1, 0},

	{"none", wire.TransformKE, wire.KENone, 0},
	{"modpnone", wire.TransformKE, wire.KENone, 0},
	{"modp2048", wire.TransformKE, wire.KEMODP2048, 0},
	{"modp3072", wire.TransformKE, wire.KEMODP3072, 0},
	{"modp4096", wire.TransformKE, wire.KEMODP4096, 0},
	{"ecp256", wire.TransformKE, wire.KEECP256, 0},
	{"ecp384", wire.TransformKE, wire.KEECP384, 0},
	{"ecp521", wire.TransformKE, wire.KEECP521, 0},
	{"x25519", wire.TransformKE, wire.KECurve25519, 0},
	{"curve25519", wire.TransformKE, wire.KECurve25519, 0},
	{"mlkem768", wire.TransformKE, wire.KEMLKEM768, 0},
	{"mlkem1024", wire.TransformKE, wire.KEMLKEM1024, 0},

	{"noesn", wire.TransformESN, wire.ESNNo, 0},
	{"esn", wire.TransformESN, wire.ESNYes, 0},
}

// integToPRF is strongSwan's integ_prf_map: the PRF an IKE proposal gets for each of
// its integrity algorithms when it names no PRF.
var integToPRF = map[wire.TransformID]wire.TransformID{
	wire.IntegHMACSHA1_96:      wire.PRFHMACSHA1,
	wire.IntegHMACSHA2_256_128: wire.PRFHMACSHA2_256,
	wire.IntegHMACSHA2_384_192: wire.PRFHMACSHA2_384,
	wire.IntegHMACSHA2_512_256: wire.PRFHMACSHA2_512,
}

// aeadDefaultPRFs are the PRFs an AEAD IKE proposal without PRF keyword gets: those of
// strongSwan's default AEAD proposal, in its order.
// strongSwan 5.9 and 6.0 themselves refuse such a proposal ("a PRF algorithm is
// mandatory in IKE proposals"); cygnet accepts it so that "aes256gcm16-x25519" and
// "aes256gcm16-x25519-ke1_mlkem768" mean what they say.
var aeadDefaultPRFs = []wire.TransformID{wire.PRFHMACSHA2_256, wire.PRFHMACSHA2_384, wire.PRFHMACSHA2_512}

func isAEAD(id wire.TransformID) bool {
	return id == wire.EncrAESGCM16 || id == wire.EncrChaCha20Poly1305 || id == wire.EncrAESGCM8 || id == wire.EncrAESGCM12
}

// TypeOrder is the order of transform types in the proposals this package builds:
// strongSwan's (proposal.c sorts INTEG before PRF), otherwise ascending.
var TypeOrder = []wire.TransformType{
	wire.TransformENCR, wire.TransformINTEG, wire.TransformPRF, wire.TransformKE, wire.TransformESN,
	wire.TransformADDKE1, wire.TransformADDKE2, wire.TransformADDKE3, wire.TransformADDKE4,
	wire.TransformADDKE5, wire.TransformADDKE6, wire.TransformADDKE7,
}

// typeRank is the position of a type in TypeOrder; unknown types sort last.
func typeRank(t wire.TransformType) int {
	for i, o := range TypeOrder {
		if o == t {
			return i
		}
	}
	return len(TypeOrder) + int(t)
}

// ErrSyntax is wrapped by every Parse error.
var ErrSyntax = errors.New("invalid proposal string")

func lookupKeyword(tok string) (wire.Transform, bool) {
	typ := wire.TransformType(0)
	name := tok
	if len(tok) > 4 && tok[0] == 'k' && tok[1] == 'e' && tok[2] >= '1' && tok[2] <= '7' && tok[3] == '_' {
		typ = wire.TransformADDKE1 + wire.TransformType(tok[2]-'1')
		name = tok[4:]
	}
	for _, k := range keywords {
		if k.name != name {
			continue
		}
		if typ != 0 {
			if k.typ != wire.TransformKE {
				return wire.Transform{}, false
			}
			return wire.Transform{Type: typ, ID: k.id}, true
		}
		return wire.Transform{Type: k.typ, ID: k.id, KeyLength: k.keyLen}, true
	}
	return wire.Transform{}, false
}

// Parse reads a comma-separated list of proposals for protocol (wire.ProtoIKE or
// wire.ProtoESP), each a dash-separated list of keywords, or the keyword "default" for
// Defaults(protocol). Proposal numbers are assigned from 1 in order; SPIs are empty.
func Parse(protocol wire.ProtocolID, s string) ([]wire.Proposal, error) {
	if protocol != wire.ProtoIKE && protocol != wire.ProtoESP {
		return nil, fmt.Errorf("%w: protocol %d", ErrSyntax, protocol)
	}
	var out []wire.Proposal
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "default" {
			out = append(out, Defaults(protocol)...)
			continue
		}
		p, err := parseOne(protocol, item)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if len(out) > 255 {
		return nil, fmt.Errorf("%w: %d proposals, at most 255 fit an SA payload", ErrSyntax, len(out))
	}
	for i := range out {
		out[i].Num = uint8(i + 1)
	}
	return out, nil
}

func parseOne(protocol wire.ProtocolID, item string) (wire.Proposal, error) {
	if item == "" {
		return wire.Proposal{}, fmt.Errorf("%w: empty proposal", ErrSyntax)
	}
	byType := map[wire.TransformType][]wire.Transform{}
	for tok := range strings.SplitSeq(item, "-") {
		t, ok := lookupKeyword(strings.ToLower(strings.TrimSpace(tok)))
		if !ok {
			return wire.Proposal{}, fmt.Errorf("%w: %q: unknown or unsupported algorithm %q", ErrSyntax, item, tok)
		}
		if !slices.Contains(byType[t.Type], t) {
			byType[t.Type] = append(byType[t.Type], t)
		}
	}
	bad := func(format string, a ...any) (wire.Proposal, error) {
		return wire.Proposal{}, fmt.Errorf("%w: %q: %s", ErrSyntax, item, fmt.Sprintf(format, a...))
	}
	encr := byType[wire.TransformENCR]
	if len(encr) == 0 {
		return bad("an encryption algorithm is mandatory")
	}
	aead := isAEAD(encr[0].ID)
	for _, t := range encr[1:] {
		if isAEAD(t.ID) != aead {
			return bad("classic and combined-mode (AEAD) encryption algorithms cannot share a proposal")
		}
	}
	if aead {
		delete(byType, wire.TransformINTEG)
	}
	switch protocol {
	case wire.ProtoIKE:
		if len(byType[wire.TransformESN]) > 0 {
			return bad("%s is not an IKE algorithm", keywordFor(byType[wire.TransformESN][0]))
		}
		if !aead && len(byType[wire.TransformINTEG]) == 0 {
			return bad("an integrity algorithm is mandatory with classic encryption")
		}
		if len(byType[wire.TransformPRF]) == 0 {
			for _, t := range byType[wire.TransformINTEG] {
				prf := wire.Transform{Type: wire.TransformPRF, ID: integToPRF[t.ID]}
				if !slices.Contains(byType[wire.TransformPRF], prf) {
					byType[wire.TransformPRF] = append(byType[wire.TransformPRF], prf)
				}
			}
		}
		if len(byType[wire.TransformPRF]) == 0 && aead {
			for _, id := range aeadDefaultPRFs {
				byType[wire.TransformPRF] = append(byType[wire.TransformPRF], wire.Transform{Type: wire.TransformPRF, ID: id})
			}
		}
		byType[wire.TransformKE] = slices.DeleteFunc(byType[wire.TransformKE], func(t wire.Transform) bool { return t.ID == wire.KENone })
		if len(byType[wire.TransformKE]) == 0 {
			return bad("a key exchange method is mandatory in IKE proposals")
		}
	case wire.ProtoESP:
		delete(byType, wire.TransformPRF)
		if !aead && len(byType[wire.TransformINTEG]) == 0 {
			return bad("an integrity algorithm is mandatory with classic encryption")
		}
		if len(byType[wire.TransformESN]) == 0 {
			byType[wire.TransformESN] = []wire.Transform{{Type: wire.TransformESN, ID: wire.ESNNo}}
		}
	}
	p := wire.Proposal{Protocol: protocol}
	for _, typ := range TypeOrder {
		p.Transforms = append(p.Transforms, byType[typ]...)
	}
	return p, nil
}

// keywordFor returns the canonical keyword of a transform, or unknown_TYPE_ID[_KEYLEN]
// (which Parse refuses) for one without a keyword.
func keywordFor(t wire.Transform) string {
	typ, prefix := t.Type, ""
	if typ >= wire.TransformADDKE1 && typ <= wire.TransformADDKE7 {
		prefix = "ke" + strconv.Itoa(int(typ-wire.TransformADDKE1)+1) + "_"
		typ = wire.TransformKE
	}
	for _, k := range keywords {
		if k.typ == typ && k.id == t.ID && (k.keyLen == t.KeyLength || typ == wire.TransformKE && t.KeyLength == 0) {
			return prefix + k.name
		}
	}
	s := "unknown_" + strconv.Itoa(int(t.Type)) + "_" + strconv.Itoa(int(t.ID))
	if t.KeyLength != 0 {
		s += "_" + strconv.Itoa(int(t.KeyLength))
	}
	return s
}

// Format prints proposals as a strongSwan proposal string: keywords joined by "-",
// proposals by ",". The ESN keyword is left out of an ESP proposal whose only ESN
// transform is "noesn" (Parse adds it back). Transforms without a keyword print as
// unknown_TYPE_ID, so received proposals can be logged; such strings do not parse.
func Format(props []wire.Proposal) string {
	var b strings.Builder
	for i, p := range props {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(FormatOne(p))
	}
	return b.String()
}

// FormatOne prints one proposal; see Format.
func FormatOne(p wire.Proposal) string {
	var esn []wire.Transform
	for _, t := range p.Transforms {
		if t.Type == wire.TransformESN {
			esn = append(esn, t)
		}
	}
	omitESN := p.Protocol == wire.ProtoESP && len(esn) == 1 && esn[0].ID == wire.ESNNo
	var toks []string
	for _, t := range p.Transforms {
		if omitESN && t.Type == wire.TransformESN {
			continue
		}
		toks = append(toks, keywordFor(t))
	}
	return strings.Join(toks, "-")
}

// Defaults returns strongSwan's default proposals (proposal_create_default_aead and
// proposal_create_default, AEAD first) restricted to the algorithms cygnet implements
// and without SHA-1. Numbers are 1 and 2.
func Defaults(protocol wire.ProtocolID) []wire.Proposal {
	var s string
	switch protocol {
	case wire.ProtoIKE:
		kes := "ecp256-ecp384-ecp521-x25519-modp3072-modp4096-modp2048"
		s = "aes128gcm16-aes192gcm16-aes256gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-" + kes +
			",aes128-aes192-aes256-sha256-sha384-sha512-prfsha256-prfsha384-prfsha512-" + kes
	case wire.ProtoESP:
		s = "aes128gcm16-aes192gcm16-aes256gcm16,aes128-aes192-aes256-sha256-sha384-sha512"
	default:
		return nil
	}
	props, err := Parse(protocol, s)
	if err != nil {
		panic("proposal: default proposals do not parse: " + err.Error())
	}
	return props
}
