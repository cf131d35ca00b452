package owners

import (
	"net/netip"
	"testing"

	"github.com/cygnet-ipsec/cygnet/kernel"
)

func TestAllocReqidWrapsAndSkipsUsed(t *testing.T) {
	x := New()
	first, err := x.AllocReqid()
	if err != nil || first != kernel.ReqidMin {
		t.Fatalf("first reqid %s, %v", first, err)
	}
	x.PutSA(kernel.SAID{SPI: 0x100}, SAInfo{Reqid: kernel.ReqidMin})
	x.PutPolicy(kernel.PolicyID{Dir: kernel.DirOut}, PolicyInfo{Reqid: kernel.ReqidMin + 1})
	x.next = kernel.ReqidMax - 1
	got := []kernel.Reqid{}
	for range 3 {
		r, err := x.AllocReqid()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	want := []kernel.Reqid{kernel.ReqidMax, kernel.ReqidMin + 2, kernel.ReqidMin + 3}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("reqids %v, want %v (wrap, skipping the two in use)", got, want)
		}
	}
	x.RemoveSA(kernel.SAID{SPI: 0x100})
	x.next = kernel.ReqidMax
	if r, _ := x.AllocReqid(); r != kernel.ReqidMin {
		t.Fatalf("released reqid not reused after wrapping: %s", r)
	}
}

func TestFamilyIndex(t *testing.T) {
	x := New()
	a := kernel.SAID{Dst: netip.MustParseAddr("192.0.2.1"), SPI: 0x100}
	b := kernel.SAID{Dst: netip.MustParseAddr("192.0.2.1"), SPI: 0x101}
	p := kernel.PolicyID{Dir: kernel.DirIn}
	x.PutSA(a, SAInfo{Owner: kernel.Owner{Family: 1}, Reqid: kernel.ReqidMin, Larval: true})
	x.PutSA(a, SAInfo{Owner: kernel.Owner{Family: 1, Child: 2}, Reqid: kernel.ReqidMin}) // filled in
	x.PutSA(b, SAInfo{Owner: kernel.Owner{Family: 2}, Reqid: kernel.ReqidMin})
	x.PutPolicy(p, PolicyInfo{Owner: kernel.Owner{Family: 1}, Reqid: kernel.ReqidMin})
	sas, pols := x.Family(1)
	if len(sas) != 1 || sas[0] != a || len(pols) != 1 || pols[0] != p {
		t.Fatalf("family 1: %v %v", sas, pols)
	}
	if info, _ := x.SA(a); info.Larval || info.Owner.Child != 2 {
		t.Fatalf("replaced SA: %+v", info)
	}
	x.RemoveSA(a)
	x.RemovePolicy(p)
	if sas, pols := x.Family(1); len(sas)+len(pols) != 0 {
		t.Fatalf("family 1 after removal: %v %v", sas, pols)
	}
	if _, ok := x.families[1]; ok {
		t.Fatal("empty family kept")
	}
	if n, m := x.Len(); n != 1 || m != 0 {
		t.Fatalf("Len %d %d", n, m)
	}
	if x.reqids[kernel.ReqidMin] != 1 {
		t.Fatalf("reqid use count %d, want 1", x.reqids[kernel.ReqidMin])
	}
}
