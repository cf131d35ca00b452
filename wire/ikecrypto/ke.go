package ikecrypto

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/cygnet-ipsec/cygnet/wire"
)

// ErrInvalidPublic is wrapped by every error about a peer's key exchange data that is not
// a valid public value (or ciphertext) of the group.
var ErrInvalidPublic = errors.New("invalid key exchange data")

// KEGroup is a key exchange method (RFC 7296 §3.4, RFC 9370): a Diffie-Hellman group or
// a KEM. The initiator calls Generate and sends Public(); the responder calls Respond
// with it and sends back the returned data; the initiator completes with
// Private.SharedSecret. For a Diffie-Hellman group the responder's data is its own
// public value; for a KEM (RFC 9370 §2.2.2) it is the ciphertext.
//
// Randomness comes only from the rand argument: the same reader bytes give the same
// keys. KEGroup values are immutable and safe for concurrent use.
type KEGroup interface {
	ID() wire.TransformID
	String() string
	// IsKEM tells whether the method is a KEM (the responder's data is a ciphertext).
	IsKEM() bool
	// Generate creates the initiator's private value (for a Diffie-Hellman group, also
	// the responder's, though Respond does it in one step).
	Generate(rand io.Reader) (Private, error)
	// Respond validates the initiator's public data and returns the responder's KE data
	// and the shared secret.
	Respond(rand io.Reader, peerPublic []byte) (public, shared []byte, err error)
}

// Private is one side's secret of a key exchange.
type Private interface {
	// Public returns the KE payload's Key Exchange Data for this private value.
	Public() []byte
	// SharedSecret validates the peer's KE data and returns the shared secret g^ir (for
	// a KEM, the decapsulated key).
	SharedSecret(peer []byte) ([]byte, error)
}

// Group returns the key exchange method with the given Transform ID.
func Group(id wire.TransformID) (KEGroup, error) {
	switch id {
	case wire.KECurve25519:
		return x25519Group{}, nil
	case wire.KEECP256:
		return ecpGroups[0], nil
	case wire.KEECP384:
		return ecpGroups[1], nil
	case wire.KEECP521:
		return ecpGroups[2], nil
	case wire.KEMODP2048:
		return modp2048, nil
	case wire.KEMODP3072:
		return modp3072, nil
	case wire.KEMODP4096:
		return modp4096, nil
	case wire.KEMLKEM768:
		return mlkemGroup{id: wire.KEMLKEM768}, nil
	case wire.KEMLKEM1024:
		return mlkemGroup{id: wire.KEMLKEM1024}, nil
	}
	return nil, fmt.Errorf("key exchange method %d: %w", id, ErrUnsupported)
}

// respondDH is Respond for a Diffie-Hellman group: generate, then derive.
func respondDH(g KEGroup, rand io.Reader, peerPublic []byte) (public, shared []byte, err error) {
	priv, err := g.Generate(rand)
	if err != nil {
		return nil, nil, err
	}
	shared, err = priv.SharedSecret(peerPublic)
	if err != nil {
		return nil, nil, err
	}
	return priv.Public(), shared, nil
}

// ---- Curve25519 (RFC 8031) ----

// x25519Group is Curve25519 (RFC 8031): 32-octet public values as in RFC 7748; the
// private scalar is 32 octets read from rand (RFC 7748 clamps it).
type x25519Group struct{}

func (x25519Group) ID() wire.TransformID { return wire.KECurve25519 }
func (x25519Group) String() string       { return "CURVE_25519" }
func (x25519Group) IsKEM() bool          { return false }

func (g x25519Group) Generate(rand io.Reader) (Private, error) {
	var b [32]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return nil, fmt.Errorf("%s: generate: %w", g, err)
	}
	k, err := ecdh.X25519().NewPrivateKey(b[:])
	if err != nil {
		return nil, fmt.Errorf("%s: generate: %w", g, err)
	}
	return ecdhPrivate{group: g, key: k}, nil
}

func (g x25519Group) Respond(rand io.Reader, peer []byte) ([]byte, []byte, error) {
	return respondDH(g, rand, peer)
}

// ---- ECP groups (RFC 5903) ----

// ecpGroup is a NIST prime curve group with RFC 5903 §7 encoding: the public value is
// x ‖ y, each coordinate the length of the field, without the SEC1 0x04 prefix; the
// shared secret is the x coordinate of the product (RFC 5903 §9).
type ecpGroup struct {
	id     wire.TransformID
	name   string
	curve  ecdh.Curve
	size   int  // octets of one coordinate and of a scalar
	topMsk byte // mask for the first scalar octet so the scalar has the order's bit length
}

var ecpGroups = [3]ecpGroup{
	{id: wire.KEECP256, name: "ECP_256", curve: ecdh.P256(), size: 32, topMsk: 0xff},
	{id: wire.KEECP384, name: "ECP_384", curve: ecdh.P384(), size: 48, topMsk: 0xff},
	{id: wire.KEECP521, name: "ECP_521", curve: ecdh.P521(), size: 66, topMsk: 0x01},
}

func (g ecpGroup) ID() wire.TransformID { return g.id }
func (g ecpGroup) String() string       { return g.name }
func (g ecpGroup) IsKEM() bool          { return false }

// Generate draws the private scalar by rejection sampling (FIPS 186-5 A.4.2 style):
// read size octets, mask to the order's bit length, retry while the value is not in
// [1, n-1], which crypto/ecdh.NewPrivateKey checks.
func (g ecpGroup) Generate(rand io.Reader) (Private, error) {
	b := make([]byte, g.size)
	for range 64 {
		if _, err := io.ReadFull(rand, b); err != nil {
			return nil, fmt.Errorf("%s: generate: %w", g, err)
		}
		b[0] &= g.topMsk
		k, err := g.curve.NewPrivateKey(b)
		if err == nil {
			return ecdhPrivate{group: g, key: k}, nil
		}
	}
	return nil, fmt.Errorf("%s: generate: no valid scalar in 64 draws (broken random source)", g)
}

func (g ecpGroup) Respond(rand io.Reader, peer []byte) ([]byte, []byte, error) {
	return respondDH(g, rand, peer)
}

// ecdhPrivate is a private key of Curve25519 or an ECP group.
type ecdhPrivate struct {
	group KEGroup
	key   *ecdh.PrivateKey
}

func (p ecdhPrivate) Public() []byte {
	b := p.key.PublicKey().Bytes()
	if _, ok := p.group.(ecpGroup); ok {
		return b[1:] // RFC 5903 §7: drop the SEC1 uncompressed-point prefix 0x04
	}
	return b
}

func (p ecdhPrivate) SharedSecret(peer []byte) ([]byte, error) {
	var enc []byte
	switch g := p.group.(type) {
	case ecpGroup:
		if len(peer) != 2*g.size {
			return nil, fmt.Errorf("%s: peer public value of %d octets, want %d: %w", g, len(peer), 2*g.size, ErrInvalidPublic)
		}
		enc = make([]byte, 0, 1+len(peer))
		enc = append(append(enc, 4), peer...)
	default:
		if len(peer) != 32 {
			return nil, fmt.Errorf("%s: peer public value of %d octets, want 32: %w", p.group, len(peer), ErrInvalidPublic)
		}
		enc = peer
	}
	pub, err := p.key.Curve().NewPublicKey(enc) // checks the point is on the curve
	if err != nil {
		return nil, fmt.Errorf("%s: peer public value: %w: %v", p.group, ErrInvalidPublic, err)
	}
	s, err := p.key.ECDH(pub) // fails for X25519 low-order points (all-zero result)
	if err != nil {
		return nil, fmt.Errorf("%s: shared secret: %w: %v", p.group, ErrInvalidPublic, err)
	}
	return s, nil
}

// ---- ML-KEM (FIPS 203) as an RFC 9370 additional key exchange ----

// mlkemGroup is ML-KEM-768 or ML-KEM-1024 (draft-ietf-ipsecme-ikev2-mlkem): the
// initiator sends its encapsulation key, the responder the ciphertext; the shared
// secret is the 32-octet ML-KEM shared key.
//
// Determinism: the decapsulation key comes from a 64-octet seed (d ‖ z) read from rand.
// Encapsulation reads 32 octets m from rand and runs ML-KEM.Encaps_internal through
// crypto/mlkem/mlkemtest, except when rand is crypto/rand.Reader: then the standard
// library's own randomized ML-KEM.Encaps runs (identical in distribution, and the only
// path allowed in FIPS 140-only mode).
type mlkemGroup struct{ id wire.TransformID }

func (g mlkemGroup) ID() wire.TransformID { return g.id }
func (g mlkemGroup) IsKEM() bool          { return true }
func (g mlkemGroup) String() string {
	if g.id == wire.KEMLKEM1024 {
		return "ML_KEM_1024"
	}
	return "ML_KEM_768"
}

func (g mlkemGroup) Generate(rand io.Reader) (Private, error) {
	seed := make([]byte, mlkem.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("%s: generate: %w", g, err)
	}
	if g.id == wire.KEMLKEM1024 {
		dk, err := mlkem.NewDecapsulationKey1024(seed)
		if err != nil {
			return nil, fmt.Errorf("%s: generate: %w", g, err)
		}
		return mlkemPrivate1024{dk}, nil
	}
	dk, err := mlkem.NewDecapsulationKey768(seed)
	if err != nil {
		return nil, fmt.Errorf("%s: generate: %w", g, err)
	}
	return mlkemPrivate768{dk}, nil
}

func (g mlkemGroup) Respond(r io.Reader, peer []byte) (ciphertext, shared []byte, err error) {
	var m []byte
	if r != rand.Reader {
		m = make([]byte, 32)
		if _, err := io.ReadFull(r, m); err != nil {
			return nil, nil, fmt.Errorf("%s: encapsulate: %w", g, err)
		}
	}
	if g.id == wire.KEMLKEM1024 {
		ek, err := mlkem.NewEncapsulationKey1024(peer)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: peer encapsulation key: %w: %v", g, ErrInvalidPublic, err)
		}
		if m == nil {
			shared, ciphertext = ek.Encapsulate()
			return ciphertext, shared, nil
		}
		shared, ciphertext, err = mlkemtest.Encapsulate1024(ek, m)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: encapsulate: %w", g, err)
		}
		return ciphertext, shared, nil
	}
	ek, err := mlkem.NewEncapsulationKey768(peer)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: peer encapsulation key: %w: %v", g, ErrInvalidPublic, err)
	}
	if m == nil {
		shared, ciphertext = ek.Encapsulate()
		return ciphertext, shared, nil
	}
	shared, ciphertext, err = mlkemtest.Encapsulate768(ek, m)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: encapsulate: %w", g, err)
	}
	return ciphertext, shared, nil
}

type mlkemPrivate768 struct{ dk *mlkem.DecapsulationKey768 }

func (p mlkemPrivate768) Public() []byte { return p.dk.EncapsulationKey().Bytes() }
func (p mlkemPrivate768) SharedSecret(ct []byte) ([]byte, error) {
	if len(ct) != mlkem.CiphertextSize768 {
		return nil, fmt.Errorf("ML_KEM_768: ciphertext of %d octets, want %d: %w", len(ct), mlkem.CiphertextSize768, ErrInvalidPublic)
	}
	s, err := p.dk.Decapsulate(ct)
	if err != nil {
		return nil, fmt.Errorf("ML_KEM_768: decapsulate: %w: %v", ErrInvalidPublic, err)
	}
	return s, nil
}

type mlkemPrivate1024 struct{ dk *mlkem.DecapsulationKey1024 }

func (p mlkemPrivate1024) Public() []byte { return p.dk.EncapsulationKey().Bytes() }
func (p mlkemPrivate1024) SharedSecret(ct []byte) ([]byte, error) {
	if len(ct) != mlkem.CiphertextSize1024 {
		return nil, fmt.Errorf("ML_KEM_1024: ciphertext of %d octets, want %d: %w", len(ct), mlkem.CiphertextSize1024, ErrInvalidPublic)
	}
	s, err := p.dk.Decapsulate(ct)
	if err != nil {
		return nil, fmt.Errorf("ML_KEM_1024: decapsulate: %w: %v", ErrInvalidPublic, err)
	}
	return s, nil
}
