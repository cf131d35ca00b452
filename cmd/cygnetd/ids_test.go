package main

import (
	"testing"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

func TestChildIDs(t *testing.T) {
	ids := newChildIDs()
	a := ids.id(7, 1)
	b := ids.id(7, 2)
	c := ids.id(9, 1)
	if a != 1 || b != 2 || c != 3 {
		t.Fatalf("ids %d %d %d, want 1 2 3", a, b, c)
	}
	if again := ids.id(7, 1); again != a {
		t.Fatalf("same Child SA got a new id %d, want %d", again, a)
	}
	if got := ids.id(7, 0); got != 0 {
		t.Fatalf("ref 0 got id %d, want 0", got)
	}
	if k, ok := ids.lookup(b); !ok || k != (childKey{family: 7, ref: 2}) {
		t.Fatalf("lookup(%d) = %v %v", b, k, ok)
	}
	// Listings: (7,1) stays live, (7,2) and (9,1) vanish. They survive one listing
	// without them and are forgotten after the second.
	list := func(live ...childKey) {
		for _, k := range live {
			ids.id(k.family, k.ref)
		}
		ids.prune()
	}
	list(childKey{7, 1}, childKey{7, 2}, childKey{9, 1})
	list(childKey{7, 1})
	if ids.len() != 3 {
		t.Fatalf("after one listing without them: %d ids, want 3", ids.len())
	}
	list(childKey{7, 1})
	if ids.len() != 1 {
		t.Fatalf("after two listings without them: %d ids, want 1", ids.len())
	}
	if _, ok := ids.lookup(b); ok {
		t.Fatalf("id %d still resolves after its Child SA vanished", b)
	}
	if got := ids.id(7, 1); got != a {
		t.Fatalf("live Child SA's id changed to %d, want %d", got, a)
	}
	// IDs are never reused while held; new ones keep counting.
	if got := ids.id(kernel.FamilyID(11), ike.ChildRef(5)); got != 4 {
		t.Fatalf("next id %d, want 4", got)
	}
}
