package ikecrypto

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cygnet-ipsec/cygnet/wire"
)

func TestPRFPlusIterationLimit(t *testing.T) {
	for _, id := range []wire.TransformID{wire.PRFHMACSHA1, wire.PRFHMACSHA2_256, wire.PRFHMACSHA2_384, wire.PRFHMACSHA2_512} {
		prf, err := LookupPRF(id)
		if err != nil {
			t.Fatal(err)
		}
		if prf.ID() != id || prf.KeyLen() != prf.Size() {
			t.Fatalf("%s: ID %d, key length %d", prf, prf.ID(), prf.KeyLen())
		}
		max := 255 * prf.Size()
		out, err := prf.Expand([]byte("k"), []byte("s"), max)
		if err != nil || len(out) != max {
			t.Fatalf("%s: prf+ of %d octets (255 blocks): len %d, %v", prf, max, len(out), err)
		}
		if _, err := prf.Expand([]byte("k"), []byte("s"), max+1); !errors.Is(err, ErrPRFPlusTooLong) {
			t.Errorf("%s: prf+ of %d octets (256 blocks): err %v, want ErrPRFPlusTooLong", prf, max+1, err)
		}
		// A shorter output is a prefix of a longer one, and block k has counter k.
		short, _ := prf.Expand([]byte("k"), []byte("s"), prf.Size()+1)
		if !bytes.Equal(short, out[:len(short)]) {
			t.Errorf("%s: prf+ outputs are not prefixes of each other", prf)
		}
		t2 := prf.Compute([]byte("k"), out[:prf.Size()], []byte("s"), []byte{2})
		if !bytes.Equal(t2, out[prf.Size():2*prf.Size()]) {
			t.Errorf("%s: T2 != prf(K, T1 | S | 0x02)", prf)
		}
	}
	if _, err := LookupPRF(wire.TransformID(4)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("PRF_AES128_XCBC: err %v, want ErrUnsupported", err)
	}
}

// The §2.14 rule for fixed-key-length PRFs: half the key from the start of Ni, half
// from the start of Nr.
func TestFixedNonceKey(t *testing.T) {
	ni := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	nr := []byte{101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116}
	got := fixedNonceKey(16, ni, nr)
	want := []byte{1, 2, 3, 4, 5, 6, 7, 8, 101, 102, 103, 104, 105, 106, 107, 108}
	if !bytes.Equal(got, want) {
		t.Errorf("fixedNonceKey = %v, want %v", got, want)
	}
}
