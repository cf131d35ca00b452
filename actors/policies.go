package actors

import (
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// The kernel keeps one policy per direction and selector (RFC 4301 §4.4.1; Linux XFRM
// does not count the priority in). Several holders may want the same ones: a trap
// policy and the Child SA negotiated for it; an old IKE family whose peer has not been
// found dead yet and the new family the peer made after reconnecting, with the same
// traffic selectors; two Child SAs of one definition. policyTable keeps, per selector
// pair (named by its outbound selector; the inbound and forward policies mirror it), the
// stack of its holders: the newest holder's policies are in the kernel; when it lets go,
// the ones below come back; the last one out deletes them. (strongSwan's kernel
// interface keeps such a list too.) The table keeps only the holders; each holder
// rebuilds its policies on demand, so that an idle family costs two small entries.

// policyOwner is a holder of a selector pair: a Child SA lineage or a trap.
type policyOwner interface {
	// policiesFor returns the owner's policies of the pair whose outbound selector is
	// out (out, in and fwd for a tunnel-mode Child SA; out alone for a trap).
	policiesFor(out kernel.Selector) []kernel.Policy
}

// pairHolders is the stack of holders of one selector pair. The shards' maps are keyed
// by the selector's hash, with the (rare) pairs whose hashes collide chained through
// next: a map slot of 16 octets instead of a 112-octet selector and holder record
// (~70 octets less per pair held, two per idle family).
type pairHolders struct {
	out   kernel.Selector
	top   policyOwner
	below []policyOwner
	next  *pairHolders
}

type policyShard struct {
	mu sync.Mutex
	m  map[uint64]*pairHolders
}

// find returns the holders of the pair out, whose hash is h.
func (sh *policyShard) find(h uint64, out kernel.Selector) *pairHolders {
	for e := sh.m[h]; e != nil; e = e.next {
		if e.out == out {
			return e
		}
	}
	return nil
}

// remove unlinks e, filed under h.
func (sh *policyShard) remove(h uint64, e *pairHolders) {
	first := sh.m[h]
	if first == e {
		if e.next == nil {
			delete(sh.m, h)
		} else {
			sh.m[h] = e.next
		}
		return
	}
	for p := first; p != nil && p.next != nil; p = p.next {
		if p.next == e {
			p.next = e.next
			return
		}
	}
}

type policyTable struct {
	seed   maphash.Seed
	shards [shards]policyShard
}

func newPolicyTable() *policyTable {
	pt := &policyTable{seed: maphash.MakeSeed()}
	for i := range pt.shards {
		pt.shards[i].m = map[uint64]*pairHolders{}
	}
	return pt
}

// shard returns the shard of the pair out and its hash.
func (pt *policyTable) shard(out kernel.Selector) (*policyShard, uint64) {
	h := maphash.Comparable(pt.seed, out)
	return &pt.shards[h%shards], h
}

// hold installs owner's policies of the pair out, over those of the current holder.
func (pt *policyTable) hold(t *tree, owner policyOwner, out kernel.Selector) error {
	sh, hash := pt.shard(out)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.find(hash, out)
	held := e != nil
	var prev policyOwner
	if held {
		prev = e.top
	}
	var installed []kernel.PolicyID
	for _, p := range owner.policiesFor(out) {
		if err := pt.put(t, p, held); err != nil {
			// Undo this owner's part: what was there before comes back.
			for _, id := range installed {
				pt.restore(t, id, prev)
			}
			return err
		}
		installed = append(installed, p.ID())
	}
	if held {
		e.below = append(e.below, e.top)
		e.top = owner
	} else {
		sh.m[hash] = &pairHolders{out: out, top: owner, next: sh.m[hash]}
	}
	return nil
}

// put installs p, replacing what the kernel has for its ID.
func (pt *policyTable) put(t *tree, p kernel.Policy, replace bool) error {
	ctx, cancel := t.kctx()
	defer cancel()
	start := time.Now()
	var err error
	if replace {
		err = t.kernel.UpdatePolicy(ctx, p) // installs it if absent
	} else {
		err = t.kernel.AddPolicy(ctx, p)
		if errors.Is(err, kernel.ErrExists) {
			// Left by a family whose DeleteOwned has not run yet: take it over.
			err = t.kernel.UpdatePolicy(ctx, p)
		}
	}
	t.kernelOp(telemetry.KernelAddPolicy, start, err)
	if err != nil {
		return fmt.Errorf("%s: %w", p.Describe(), err)
	}
	return nil
}

// restore puts back holder's version of the policy id, or deletes it when holder
// (nil: nobody) has none.
func (pt *policyTable) restore(t *tree, id kernel.PolicyID, holder policyOwner) error {
	ctx, cancel := t.kctx()
	defer cancel()
	start := time.Now()
	var err error
	if holder != nil {
		for _, p := range holder.policiesFor(outOf(id)) {
			if p.ID() == id {
				err = t.kernel.UpdatePolicy(ctx, p)
				t.kernelOp(telemetry.KernelAddPolicy, start, err)
				return err
			}
		}
	}
	err = t.kernel.DeletePolicy(ctx, id)
	if errors.Is(err, kernel.ErrNotFound) {
		err = nil
	}
	t.kernelOp(telemetry.KernelDeletePolicy, start, err)
	return err
}

// drop lets go of owner's hold on the pair out: if its policies were the installed
// ones, the previous holder's come back, or they go when nobody is left.
func (pt *policyTable) drop(t *tree, owner policyOwner, out kernel.Selector) error {
	sh, hash := pt.shard(out)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	h := sh.find(hash, out)
	if h == nil {
		return nil
	}
	if h.top != owner {
		if i := slices.Index(h.below, owner); i >= 0 {
			h.below = slices.Delete(h.below, i, i+1)
			if len(h.below) == 0 {
				h.below = nil
			}
		}
		return nil
	}
	var next policyOwner
	if n := len(h.below); n > 0 {
		next = h.below[n-1]
		h.below = slices.Delete(h.below, n-1, n)
		if len(h.below) == 0 {
			h.below = nil
		}
		h.top = next
	} else {
		sh.remove(hash, h)
	}
	var errs []error
	for _, p := range owner.policiesFor(out) {
		if err := pt.restore(t, p.ID(), next); err != nil {
			errs = append(errs, fmt.Errorf("policy %s: %w", p.ID(), err))
		}
	}
	return errors.Join(errs...)
}

// len returns the number of selector pairs held (tests).
func (pt *policyTable) len() int {
	n := 0
	for i := range pt.shards {
		pt.shards[i].mu.Lock()
		for _, e := range pt.shards[i].m {
			for ; e != nil; e = e.next {
				n++
			}
		}
		pt.shards[i].mu.Unlock()
	}
	return n
}

// outOf returns the outbound selector of the pair a policy ID belongs to.
func outOf(id kernel.PolicyID) kernel.Selector {
	if id.Dir == kernel.DirOut {
		return id.Selector
	}
	return mirror(id.Selector)
}
