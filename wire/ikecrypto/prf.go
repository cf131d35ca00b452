package ikecrypto

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"

	"github.com/cygnet-ipsec/cygnet/wire"
)

// ErrUnsupported is wrapped by every error about a transform this package does not implement.
var ErrUnsupported = errors.New("unsupported transform")

// ErrPRFPlusTooLong is returned when prf+ is asked for more than 255 blocks (RFC 7296 §2.13).
var ErrPRFPlusTooLong = errors.New("prf+: more than 255 iterations requested")

// PRF is a pseudorandom function of IKEv2 (RFC 7296 §2.13, Transform Type 2). The HMAC
// PRFs take keys of any length (RFC 2104); their preferred key length, used for SK_d,
// SK_pi and SK_pr, equals their output length (RFC 4868 §2.2, RFC 7296 §2.14).
//
// A PRF value is immutable and safe for concurrent use.
type PRF struct {
	id      wire.TransformID
	newHash func() hash.Hash
	size    int
}

var prfs = map[wire.TransformID]*PRF{
	wire.PRFHMACSHA1:     {id: wire.PRFHMACSHA1, newHash: sha1.New, size: sha1.Size},
	wire.PRFHMACSHA2_256: {id: wire.PRFHMACSHA2_256, newHash: sha256.New, size: sha256.Size},
	wire.PRFHMACSHA2_384: {id: wire.PRFHMACSHA2_384, newHash: sha512.New384, size: sha512.Size384},
	wire.PRFHMACSHA2_512: {id: wire.PRFHMACSHA2_512, newHash: sha512.New, size: sha512.Size},
}

// LookupPRF returns the PRF with the given Transform ID. PRF_HMAC_SHA1 is supported so
// that old peers can be read; configuration should not offer it.
func LookupPRF(id wire.TransformID) (*PRF, error) {
	p, ok := prfs[id]
	if !ok {
		return nil, fmt.Errorf("prf %d: %w", id, ErrUnsupported)
	}
	return p, nil
}

// ID returns the PRF's Transform ID.
func (p *PRF) ID() wire.TransformID { return p.id }

// String returns the IANA name of the PRF.
func (p *PRF) String() string {
	switch p.id {
	case wire.PRFHMACSHA1:
		return "PRF_HMAC_SHA1"
	case wire.PRFHMACSHA2_256:
		return "PRF_HMAC_SHA2_256"
	case wire.PRFHMACSHA2_384:
		return "PRF_HMAC_SHA2_384"
	case wire.PRFHMACSHA2_512:
		return "PRF_HMAC_SHA2_512"
	}
	return fmt.Sprintf("PRF(%d)", p.id)
}

// Size is the length in octets of one PRF output.
func (p *PRF) Size() int { return p.size }

// KeyLen is the preferred key length in octets: the length of SK_d, SK_pi and SK_pr.
func (p *PRF) KeyLen() int { return p.size }

// fixedKeyLen is the key length a PRF requires, or 0 when it takes keys of any length
// (every HMAC PRF). It drives the Ni | Nr rule of §2.14.
func (p *PRF) fixedKeyLen() int { return 0 }

// Compute returns prf(key, data[0] | data[1] | …), a fresh slice of Size octets.
func (p *PRF) Compute(key []byte, data ...[]byte) []byte {
	return p.AppendCompute(make([]byte, 0, p.size), key, data...)
}

// AppendCompute appends prf(key, data[0] | data[1] | …) to dst.
func (p *PRF) AppendCompute(dst, key []byte, data ...[]byte) []byte {
	m := hmac.New(p.newHash, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(dst)
}

// Expand is prf+ (RFC 7296 §2.13): it returns the first n octets of
//
//	T1 | T2 | T3 | …   where T1 = prf(K, S | 0x01), Tk = prf(K, Tk-1 | S | k)
//
// It fails with ErrPRFPlusTooLong when n needs more than 255 blocks.
func (p *PRF) Expand(key, seed []byte, n int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("prf+: negative length %d", n)
	}
	blocks := (n + p.size - 1) / p.size
	if blocks > 255 {
		return nil, fmt.Errorf("%w (%d octets of %s need %d)", ErrPRFPlusTooLong, n, p, blocks)
	}
	out := make([]byte, 0, blocks*p.size)
	m := hmac.New(p.newHash, key)
	var prev []byte
	for k := 1; k <= blocks; k++ {
		m.Reset()
		m.Write(prev)
		m.Write(seed)
		m.Write([]byte{byte(k)})
		start := len(out)
		out = m.Sum(out)
		prev = out[start:]
	}
	return out[:n:n], nil
}
