// Package owners is the in-process index that Kernel implementations keep of the objects
// they installed: which IKE family (and Child SA) owns each SA and policy, which SAs are
// still larval (an SPI from AllocSPI), and which reqids are in use. It is what
// DeleteOwned reads and what CleanupStale spares. It is safe for concurrent use.
package owners

import (
	"cmp"
	"slices"
	"sync"

	"github.com/cygnet-ipsec/cygnet/kernel"
)

// SAInfo is what the index knows about an SA.
type SAInfo struct {
	Owner  kernel.Owner
	Reqid  kernel.Reqid
	Larval bool
}

// PolicyInfo is what the index knows about a policy.
type PolicyInfo struct {
	Owner kernel.Owner
	Reqid kernel.Reqid
}

// Index maps installed objects to their owners.
type Index struct {
	mu       sync.Mutex
	sas      map[kernel.SAID]SAInfo
	policies map[kernel.PolicyID]PolicyInfo
	families map[kernel.FamilyID]*family
	reqids   map[kernel.Reqid]int // objects using each reqid
	next     kernel.Reqid         // last reqid handed out
}

type family struct {
	sas      map[kernel.SAID]struct{}
	policies map[kernel.PolicyID]struct{}
}

// New returns an empty index.
func New() *Index {
	return &Index{
		sas:      make(map[kernel.SAID]SAInfo),
		policies: make(map[kernel.PolicyID]PolicyInfo),
		families: make(map[kernel.FamilyID]*family),
		reqids:   make(map[kernel.Reqid]int),
	}
}

// AllocReqid hands out reqids of cygnet's range in sequence, wrapping around and
// skipping those that installed objects use.
func (x *Index) AllocReqid() (kernel.Reqid, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := uint32(kernel.ReqidMax - kernel.ReqidMin + 1)
	for range n {
		r := x.next + 1
		if r < kernel.ReqidMin || r > kernel.ReqidMax {
			r = kernel.ReqidMin
		}
		x.next = r
		if x.reqids[r] == 0 {
			return r, nil
		}
	}
	return 0, kernel.ErrReqidExhausted
}

func (x *Index) family(f kernel.FamilyID) *family {
	fam := x.families[f]
	if fam == nil {
		fam = &family{sas: make(map[kernel.SAID]struct{}), policies: make(map[kernel.PolicyID]struct{})}
		x.families[f] = fam
	}
	return fam
}

func (x *Index) dropFamilyIfEmpty(f kernel.FamilyID) {
	if fam := x.families[f]; fam != nil && len(fam.sas) == 0 && len(fam.policies) == 0 {
		delete(x.families, f)
	}
}

func (x *Index) unuseReqid(r kernel.Reqid) {
	if x.reqids[r]--; x.reqids[r] <= 0 {
		delete(x.reqids, r)
	}
}

// PutSA records (or replaces) an SA.
func (x *Index) PutSA(id kernel.SAID, info SAInfo) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeSA(id)
	x.sas[id] = info
	x.reqids[info.Reqid]++
	x.family(info.Owner.Family).sas[id] = struct{}{}
}

// RemoveSA forgets an SA and returns what was known about it.
func (x *Index) RemoveSA(id kernel.SAID) (SAInfo, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.removeSA(id)
}

func (x *Index) removeSA(id kernel.SAID) (SAInfo, bool) {
	info, ok := x.sas[id]
	if !ok {
		return info, false
	}
	delete(x.sas, id)
	x.unuseReqid(info.Reqid)
	if fam := x.families[info.Owner.Family]; fam != nil {
		delete(fam.sas, id)
		x.dropFamilyIfEmpty(info.Owner.Family)
	}
	return info, true
}

// SA returns what is known about an SA.
func (x *Index) SA(id kernel.SAID) (SAInfo, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	info, ok := x.sas[id]
	return info, ok
}

// PutPolicy records (or replaces) a policy.
func (x *Index) PutPolicy(id kernel.PolicyID, info PolicyInfo) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removePolicy(id)
	x.policies[id] = info
	x.reqids[info.Reqid]++
	x.family(info.Owner.Family).policies[id] = struct{}{}
}

// RemovePolicy forgets a policy.
func (x *Index) RemovePolicy(id kernel.PolicyID) (PolicyInfo, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.removePolicy(id)
}

func (x *Index) removePolicy(id kernel.PolicyID) (PolicyInfo, bool) {
	info, ok := x.policies[id]
	if !ok {
		return info, false
	}
	delete(x.policies, id)
	x.unuseReqid(info.Reqid)
	if fam := x.families[info.Owner.Family]; fam != nil {
		delete(fam.policies, id)
		x.dropFamilyIfEmpty(info.Owner.Family)
	}
	return info, true
}

// Policy returns what is known about a policy.
func (x *Index) Policy(id kernel.PolicyID) (PolicyInfo, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	info, ok := x.policies[id]
	return info, ok
}

// Family returns the SAs and policies a family owns, in a deterministic order.
func (x *Index) Family(f kernel.FamilyID) ([]kernel.SAID, []kernel.PolicyID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	fam := x.families[f]
	if fam == nil {
		return nil, nil
	}
	sas := make([]kernel.SAID, 0, len(fam.sas))
	for id := range fam.sas {
		sas = append(sas, id)
	}
	pols := make([]kernel.PolicyID, 0, len(fam.policies))
	for id := range fam.policies {
		pols = append(pols, id)
	}
	slices.SortFunc(sas, func(a, b kernel.SAID) int {
		return cmp.Or(a.Dst.Compare(b.Dst), cmp.Compare(a.SPI, b.SPI))
	})
	slices.SortFunc(pols, func(a, b kernel.PolicyID) int {
		return cmp.Compare(a.String(), b.String())
	})
	return sas, pols
}

// Len returns how many SAs and policies are indexed.
func (x *Index) Len() (sas, policies int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.sas), len(x.policies)
}
