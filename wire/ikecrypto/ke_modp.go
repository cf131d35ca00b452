package ikecrypto

import (
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/cygnet-ipsec/cygnet/wire"
)

// modpGroup is a MODP group of RFC 3526 with generator 2. Public values and the shared
// secret are big-endian integers left-padded with zeros to the length of the prime
// (RFC 7296 §3.4, §2.14). A peer's public value y must satisfy 1 < y < p-1
// (RFC 8247 §2.4, NIST SP 800-56A 5.6.2.3.1).
//
// The private exponent has expBits bits drawn from rand: at least twice the group's
// security strength (NIST SP 800-57), as strongSwan and most implementations do, which keeps the
// exponentiation cheap. math/big is not constant-time; MODP groups are for interop with
// peers that offer nothing better, and elliptic curves are preferred.
type modpGroup struct {
	id      wire.TransformID
	name    string
	p       *big.Int
	pMinus1 *big.Int
	size    int // octets of the prime
	expBits int
}

var (
	modp2048 = newMODP(wire.KEMODP2048, "MODP_2048", 256, rfc3526Prime2048)
	modp3072 = newMODP(wire.KEMODP3072, "MODP_3072", 256, rfc3526Prime3072)
	modp4096 = newMODP(wire.KEMODP4096, "MODP_4096", 320, rfc3526Prime4096)
)

func newMODP(id wire.TransformID, name string, expBits int, hexPrime string) *modpGroup {
	p, ok := new(big.Int).SetString(strings.ReplaceAll(hexPrime, " ", ""), 16)
	if !ok {
		panic("ikecrypto: bad MODP prime constant for " + name)
	}
	return &modpGroup{
		id:      id,
		name:    name,
		p:       p,
		pMinus1: new(big.Int).Sub(p, big.NewInt(1)),
		size:    (p.BitLen() + 7) / 8,
		expBits: expBits,
	}
}

var modpGenerator = big.NewInt(2)

func (g *modpGroup) ID() wire.TransformID { return g.id }
func (g *modpGroup) String() string       { return g.name }
func (g *modpGroup) IsKEM() bool          { return false }

func (g *modpGroup) Generate(rand io.Reader) (Private, error) {
	b := make([]byte, g.expBits/8)
	x := new(big.Int)
	for range 64 {
		if _, err := io.ReadFull(rand, b); err != nil {
			return nil, fmt.Errorf("%s: generate: %w", g, err)
		}
		if x.SetBytes(b).Cmp(big.NewInt(1)) > 0 {
			y := new(big.Int).Exp(modpGenerator, x, g.p)
			return &modpPrivate{group: g, x: x, public: y.FillBytes(make([]byte, g.size))}, nil
		}
	}
	return nil, fmt.Errorf("%s: generate: no valid exponent in 64 draws (broken random source)", g)
}

func (g *modpGroup) Respond(rand io.Reader, peer []byte) ([]byte, []byte, error) {
	return respondDH(g, rand, peer)
}

type modpPrivate struct {
	group  *modpGroup
	x      *big.Int
	public []byte
}

func (p *modpPrivate) Public() []byte { return append([]byte(nil), p.public...) }

func (p *modpPrivate) SharedSecret(peer []byte) ([]byte, error) {
	g := p.group
	if len(peer) != g.size {
		return nil, fmt.Errorf("%s: peer public value of %d octets, want %d: %w", g, len(peer), g.size, ErrInvalidPublic)
	}
	y := new(big.Int).SetBytes(peer)
	if y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(g.pMinus1) >= 0 {
		return nil, fmt.Errorf("%s: peer public value outside (1, p-1): %w", g, ErrInvalidPublic)
	}
	return new(big.Int).Exp(y, p.x, g.p).FillBytes(make([]byte, g.size)), nil
}

// The primes of RFC 3526 §3, §4 and §5:
// p = 2^N - 2^(N-64) - 1 + 2^64 * ( [2^(N-130) pi] + k ).
const (
	rfc3526Prime2048 = "" +
		"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74" +
		"020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437" +
		"4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
		"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05" +
		"98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB" +
		"9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B" +
		"E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718" +
		"3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF"
	rfc3526Prime3072 = "" +
		"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74" +
		"020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437" +
		"4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
		"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05" +
		"98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB" +
		"9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B" +
		"E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718" +
		"3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33" +
		"A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7" +
		"ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864" +
		"D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2" +
		"08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
	rfc3526Prime4096 = "" +
		"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74" +
		"020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437" +
		"4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
		"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05" +
		"98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB" +
		"9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B" +
		"E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718" +
		"3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33" +
		"A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7" +
		"ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864" +
		"D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2" +
		"08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7" +
		"88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8" +
		"DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2" +
		"233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9" +
		"93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF"
)
