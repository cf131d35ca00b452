package ike_test

import (
	"testing"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/ikecrypto"
)

// BenchmarkHandshake is one complete IKE_SA_INIT + IKE_AUTH with one Child SA, both ends
// (Curve25519, AES-GCM-256, PSK), key exchange included (run inline).
func BenchmarkHandshake(b *testing.B) {
	b.ReportAllocs()
	for i := range b.N {
		p := newPair(b, uint64(i))
		p.establish()
	}
}

// BenchmarkChildRekey is one Child SA rekey (CREATE_CHILD_SA without PFS, then the
// INFORMATIONAL delete of the old Child SA), both ends.
func BenchmarkChildRekey(b *testing.B) {
	p := newPair(b, 1)
	p.establish()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		before := p.childUp
		p.step(true, p.a, ike.RekeyChild{Ref: installedRef(b, p.a)})
		p.run()
		if p.childUp != before+2 {
			b.Fatalf("rekey: %d ChildUp effects, want 2", p.childUp-before)
		}
	}
}

// BenchmarkKeyExchangeX25519 is the key exchange alone, both ends: the initiator's key
// generation, the responder's generation and shared secret, the initiator's shared
// secret.
func BenchmarkKeyExchangeX25519(b *testing.B) {
	benchKE(b, wire.KECurve25519)
}

// BenchmarkKeyExchangeMODP2048 is the same for the 2048-bit MODP group, for comparison.
func BenchmarkKeyExchangeMODP2048(b *testing.B) {
	benchKE(b, wire.KEMODP2048)
}

func benchKE(b *testing.B, id wire.TransformID) {
	g, err := ikecrypto.Group(id)
	if err != nil {
		b.Fatal(err)
	}
	env := newEnv(7, 0)
	b.ReportAllocs()
	for range b.N {
		priv, err := g.Generate(env.rng)
		if err != nil {
			b.Fatal(err)
		}
		pub, _, err := g.Respond(env.rng, priv.Public())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := priv.SharedSecret(pub); err != nil {
			b.Fatal(err)
		}
	}
}
