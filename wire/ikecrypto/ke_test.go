package ikecrypto

import (
	"bytes"
	crand "crypto/rand"
	"errors"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/cygnet-ipsec/cygnet/wire"
)

var keGroups = []struct {
	id               wire.TransformID
	pubLen, replyLen int // initiator's KE data, responder's KE data
	secretLen        int
}{
	{wire.KECurve25519, 32, 32, 32},
	{wire.KEECP256, 64, 64, 32},
	{wire.KEECP384, 96, 96, 48},
	{wire.KEECP521, 132, 132, 66},
	{wire.KEMODP2048, 256, 256, 256},
	{wire.KEMODP3072, 384, 384, 384},
	{wire.KEMODP4096, 512, 512, 512},
	{wire.KEMLKEM768, 1184, 1088, 32},
	{wire.KEMLKEM1024, 1568, 1568, 32},
}

func seeded(seed byte) *rand.ChaCha8 { return rand.NewChaCha8([32]byte{seed}) }

func TestKEAgreementAndDeterminism(t *testing.T) {
	for _, c := range keGroups {
		g, err := Group(c.id)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(g.String(), func(t *testing.T) {
			if g.ID() != c.id {
				t.Fatalf("ID() = %d", g.ID())
			}
			if kem := c.id == wire.KEMLKEM768 || c.id == wire.KEMLKEM1024; g.IsKEM() != kem {
				t.Fatalf("IsKEM() = %v", g.IsKEM())
			}
			ini, err := g.Generate(seeded(1))
			if err != nil {
				t.Fatal(err)
			}
			if len(ini.Public()) != c.pubLen {
				t.Fatalf("public value of %d octets, want %d", len(ini.Public()), c.pubLen)
			}
			reply, rs, err := g.Respond(seeded(2), ini.Public())
			if err != nil {
				t.Fatal(err)
			}
			if len(reply) != c.replyLen || len(rs) != c.secretLen {
				t.Fatalf("reply %d octets, secret %d; want %d, %d", len(reply), len(rs), c.replyLen, c.secretLen)
			}
			is, err := ini.SharedSecret(reply)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(is, rs) {
				t.Fatal("initiator and responder secrets differ")
			}
			// The same reader bytes give the same keys, ciphertexts and secrets.
			ini2, _ := g.Generate(seeded(1))
			reply2, rs2, _ := g.Respond(seeded(2), ini2.Public())
			if !bytes.Equal(ini.Public(), ini2.Public()) || !bytes.Equal(reply, reply2) || !bytes.Equal(rs, rs2) {
				t.Fatal("same randomness, different key exchange")
			}
			// Other bytes, other keys.
			ini3, _ := g.Generate(seeded(3))
			if bytes.Equal(ini.Public(), ini3.Public()) {
				t.Fatal("different randomness, same public value")
			}
			// The system's randomness works too (ML-KEM takes the standard library's
			// randomized encapsulation then).
			reply4, rs4, err := g.Respond(crand.Reader, ini.Public())
			if err != nil {
				t.Fatal(err)
			}
			if is4, err := ini.SharedSecret(reply4); err != nil || !bytes.Equal(is4, rs4) {
				t.Fatalf("with crypto/rand: secrets differ (%v)", err)
			}
			// An exhausted reader is an error, not a panic.
			if _, err := g.Generate(bytes.NewReader(nil)); err == nil {
				t.Fatal("Generate with an empty reader succeeded")
			}
		})
	}
}

func TestKERejectsInvalidPeerValues(t *testing.T) {
	for _, c := range keGroups {
		g, _ := Group(c.id)
		ini, err := g.Generate(seeded(5))
		if err != nil {
			t.Fatal(err)
		}
		reply, _, err := g.Respond(seeded(6), ini.Public())
		if err != nil {
			t.Fatal(err)
		}
		bad := map[string][]byte{
			"empty":     nil,
			"short":     reply[:len(reply)-1],
			"long":      append(bytes.Clone(reply), 0),
			"all zeros": make([]byte, len(reply)),
		}
		switch c.id {
		case wire.KEECP256, wire.KEECP384, wire.KEECP521:
			off := bytes.Clone(reply)
			off[len(off)-1] ^= 1 // y no longer matches x
			bad["not on curve"] = off
			bad["SEC1 prefixed"] = append([]byte{4}, reply[1:]...)
		case wire.KEMODP2048, wire.KEMODP3072, wire.KEMODP4096:
			p := g.(*modpGroup).p
			one := make([]byte, len(reply))
			one[len(one)-1] = 1
			bad["y = 1"] = one
			bad["y = p-1"] = new(big.Int).Sub(p, big.NewInt(1)).FillBytes(make([]byte, len(reply)))
			bad["y = p"] = p.FillBytes(make([]byte, len(reply)))
			bad["y > p"] = bytes.Repeat([]byte{0xff}, len(reply))
		case wire.KEMLKEM768, wire.KEMLKEM1024:
			delete(bad, "all zeros") // a zero ciphertext is valid input (implicit rejection)
		}
		for what, peer := range bad {
			if _, err := ini.SharedSecret(peer); !errors.Is(err, ErrInvalidPublic) {
				t.Errorf("%s: SharedSecret(%s): err %v, want ErrInvalidPublic", g, what, err)
			}
		}
		// The responder validates the initiator's value the same way.
		for what, peer := range map[string][]byte{"short": ini.Public()[:len(ini.Public())-1], "empty": nil} {
			if _, _, err := g.Respond(seeded(7), peer); !errors.Is(err, ErrInvalidPublic) {
				t.Errorf("%s: Respond(%s): err %v, want ErrInvalidPublic", g, what, err)
			}
		}
	}
	// X25519: a low-order point gives the all-zero secret, refused (RFC 7748 §6.1).
	x, _ := Group(wire.KECurve25519)
	priv, _ := x.Generate(seeded(8))
	if _, err := priv.SharedSecret(make([]byte, 32)); !errors.Is(err, ErrInvalidPublic) {
		t.Errorf("X25519 u=0: err %v, want ErrInvalidPublic", err)
	}
	// ML-KEM: an encapsulation key with coefficients ≥ q is refused (FIPS 203 §7.2).
	m, _ := Group(wire.KEMLKEM768)
	if _, _, err := m.Respond(seeded(9), bytes.Repeat([]byte{0xff}, 1184)); !errors.Is(err, ErrInvalidPublic) {
		t.Errorf("ML-KEM-768 bad encapsulation key: err %v, want ErrInvalidPublic", err)
	}
}

func TestKEUnsupported(t *testing.T) {
	for _, id := range []wire.TransformID{wire.KENone, 1, 2, 5, 22, 32, wire.KEMLKEM512} {
		if _, err := Group(id); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Group(%d): err %v, want ErrUnsupported", id, err)
		}
	}
}

// The RFC 3526 primes: safe primes of the stated size whose top and bottom 64 bits are
// all ones (p = 2^N - 2^(N-64) - 1 + 2^64 * (…)).
func TestRFC3526Primes(t *testing.T) {
	for _, g := range []*modpGroup{modp2048, modp3072, modp4096} {
		bits := map[wire.TransformID]int{wire.KEMODP2048: 2048, wire.KEMODP3072: 3072, wire.KEMODP4096: 4096}[g.id]
		if g.p.BitLen() != bits || g.size*8 != bits {
			t.Errorf("%s: %d bits", g, g.p.BitLen())
		}
		b := g.p.Bytes()
		if !bytes.Equal(b[:8], bytes.Repeat([]byte{0xff}, 8)) || !bytes.Equal(b[len(b)-8:], bytes.Repeat([]byte{0xff}, 8)) {
			t.Errorf("%s: top or bottom 64 bits are not all ones", g)
		}
		q := new(big.Int).Rsh(g.p, 1)
		if !g.p.ProbablyPrime(0) || !q.ProbablyPrime(0) {
			t.Errorf("%s: not a safe prime", g)
		}
	}
}

// BenchmarkKE measures each group: the initiator's Generate + SharedSecret, and the
// responder's Respond (for ML-KEM: encapsulation; for DH: generate + derive).
func BenchmarkKE(b *testing.B) {
	for _, c := range keGroups {
		g, _ := Group(c.id)
		peer, _ := g.Generate(seeded(1))
		reply, _, _ := g.Respond(seeded(2), peer.Public())
		b.Run("Initiator/"+g.String(), func(b *testing.B) {
			rng := seeded(3)
			b.ReportAllocs()
			for b.Loop() {
				priv, err := g.Generate(rng)
				if err != nil {
					b.Fatal(err)
				}
				_ = priv.Public()
				if _, err := priv.SharedSecret(reply); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Responder/"+g.String(), func(b *testing.B) {
			rng := seeded(4)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := g.Respond(rng, peer.Public()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
