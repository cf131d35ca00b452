package actors

import (
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// The kernel keeps one policy per direction and selector (RFC 4301 §4.4.1; Linux XFRM
// does not count the priority in). Several holders may want the same one: a trap
// policy and the Child SA negotiated for it; an old IKE family whose peer has not been
// found dead yet and the new family the peer made after reconnecting, with the same
// traffic selectors. policyTable keeps, per policy, the stack of its holders: the
// newest holder's policy is in the kernel; when it lets go, the one below comes back;
// the last one out deletes it. (strongSwan's kernel interface keeps such a list too.)

// policyHolder is one holder's version of a policy.
type policyHolder struct {
	owner any // *lineage or *trap
	pol   kernel.Policy
}

type policyTable struct {
	seed   maphash.Seed
	shards [shards]struct {
		mu sync.Mutex
		m  map[kernel.PolicyID][]policyHolder // the last holder's policy is installed
	}
}

func newPolicyTable() *policyTable {
	pt := &policyTable{seed: maphash.MakeSeed()}
	for i := range pt.shards {
		pt.shards[i].m = map[kernel.PolicyID][]policyHolder{}
	}
	return pt
}

func (pt *policyTable) shard(id kernel.PolicyID) *struct {
	mu sync.Mutex
	m  map[kernel.PolicyID][]policyHolder
} {
	return &pt.shards[maphash.Comparable(pt.seed, id)%shards]
}

// hold installs p for owner: added if nobody holds it, replacing the current holder's
// version otherwise.
func (pt *policyTable) hold(t *tree, owner any, p kernel.Policy) error {
	id := p.ID()
	sh := pt.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	stack := sh.m[id]
	ctx, cancel := t.kctx()
	defer cancel()
	start := time.Now()
	var err error
	if len(stack) == 0 {
		err = t.kernel.AddPolicy(ctx, p)
		if errors.Is(err, kernel.ErrExists) {
			// Not ours to know about (left behind by a family whose DeleteOwned has not
			// run yet): take it over.
			err = t.kernel.UpdatePolicy(ctx, p)
		}
	} else {
		err = t.kernel.UpdatePolicy(ctx, p)
	}
	t.kernelOp(telemetry.KernelAddPolicy, start, err)
	if err != nil {
		return fmt.Errorf("%s: %w", p.Describe(), err)
	}
	sh.m[id] = append(stack, policyHolder{owner: owner, pol: p})
	return nil
}

// drop lets go of owner's hold on the policy id: if it was the installed version, the
// previous holder's comes back, or the policy goes when nobody is left.
func (pt *policyTable) drop(t *tree, owner any, id kernel.PolicyID) error {
	sh := pt.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	stack := sh.m[id]
	i := len(stack) - 1
	for i >= 0 && stack[i].owner != owner {
		i--
	}
	if i < 0 {
		return nil
	}
	top := i == len(stack)-1
	stack = append(stack[:i], stack[i+1:]...)
	if len(stack) == 0 {
		delete(sh.m, id)
	} else {
		sh.m[id] = stack
	}
	if !top {
		return nil
	}
	ctx, cancel := t.kctx()
	defer cancel()
	start := time.Now()
	var err error
	if len(stack) == 0 {
		err = t.kernel.DeletePolicy(ctx, id)
		if errors.Is(err, kernel.ErrNotFound) {
			err = nil
		}
	} else {
		err = t.kernel.UpdatePolicy(ctx, stack[len(stack)-1].pol)
	}
	t.kernelOp(telemetry.KernelDeletePolicy, start, err)
	if err != nil {
		return fmt.Errorf("policy %s: %w", id, err)
	}
	return nil
}

// len returns the number of policies held (tests).
func (pt *policyTable) len() int {
	n := 0
	for i := range pt.shards {
		pt.shards[i].mu.Lock()
		n += len(pt.shards[i].m)
		pt.shards[i].mu.Unlock()
	}
	return n
}
