package actors

import (
	"slices"
	"testing"

	"github.com/cygnet-ipsec/cygnet/kernel"
)

func TestFamilySet(t *testing.T) {
	e := make([]*familyEntry, 4)
	for i := range e {
		e[i] = &familyEntry{id: kernel.FamilyID(i + 1)}
	}
	members := func(s *familySet) []kernel.FamilyID {
		var ids []kernel.FamilyID
		s.each(func(x *familyEntry) bool { ids = append(ids, x.id); return true })
		slices.Sort(ids)
		return ids
	}
	var none *familySet
	if got := members(none); len(got) != 0 {
		t.Fatalf("nil set has %v", got)
	}
	s := &familySet{}
	s.add(e[0])
	s.add(e[0])
	if got := members(s); !slices.Equal(got, []kernel.FamilyID{1}) || s.many != nil {
		t.Fatalf("one family: %v (map %v)", got, s.many != nil)
	}
	s.add(e[1])
	s.add(e[2])
	if got := members(s); !slices.Equal(got, []kernel.FamilyID{1, 2, 3}) {
		t.Fatalf("three families: %v", got)
	}
	n := 0
	s.each(func(*familyEntry) bool { n++; return false })
	if n != 1 {
		t.Fatalf("each went on after false: %d calls", n)
	}
	if s.remove(e[3]) || s.remove(e[0]) || s.remove(e[1]) {
		t.Fatal("set reported empty too early")
	}
	if got := members(s); !slices.Equal(got, []kernel.FamilyID{3}) || s.many != nil {
		t.Fatalf("back to one: %v (map %v)", got, s.many != nil)
	}
	if !s.remove(e[2]) {
		t.Fatal("set not empty after its last family left")
	}
}
