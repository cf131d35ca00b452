package actors

import (
	"net/netip"
	"testing"

	"github.com/cygnet-ipsec/cygnet/kernel"
)

// Pairs whose selector hashes collide share a map slot through a chain: each is found
// by its own selector, and any one of them can leave.
func TestPolicyShardCollisionChain(t *testing.T) {
	sel := func(i int) kernel.Selector {
		return kernel.Selector{
			Src: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i), 0}), 24),
			Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{20, 0, byte(i), 0}), 24),
		}
	}
	for _, leave := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 0, 2}, {1, 2, 0}} {
		sh := &policyShard{m: map[uint64]*pairHolders{}}
		const h = 42 // one hash for all: a forced collision
		for i := range 3 {
			sh.m[h] = &pairHolders{out: sel(i), next: sh.m[h]}
		}
		left := map[int]bool{0: true, 1: true, 2: true}
		for _, i := range leave {
			e := sh.find(h, sel(i))
			if e == nil {
				t.Fatalf("order %v: pair %d not found", leave, i)
			}
			sh.remove(h, e)
			delete(left, i)
			for j := range 3 {
				if got := sh.find(h, sel(j)) != nil; got != left[j] {
					t.Fatalf("order %v, after %d left: pair %d found=%v", leave, i, j, got)
				}
			}
		}
		if len(sh.m) != 0 {
			t.Fatalf("order %v: %d slots left", leave, len(sh.m))
		}
	}
}
