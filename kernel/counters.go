package kernel

import (
	"context"
	"time"
)

// SACounterLister is an optional interface of a Kernel: a dump of the SAD that carries
// only what a listing of Child SAs shows (which SA, its reqid, its lifetime counters),
// without keys, algorithms or the SPD. It is what `cygnetctl list-sas` reads once per
// listing; Snapshot is its fallback for a Kernel that does not implement it.
//
// Contract (kernel/kerneltest checks it):
//
//   - The result holds one entry per installed ESP SA, cygnet's and foreign ones alike:
//     the same SAs, reqids and counters as Snapshot's non-larval entries. Larval SAs
//     (SPIs reserved by AllocSPI and not yet filled in) are left out.
//   - The order is unspecified.
//   - The dump is not one atomic moment: an SA added or removed while it runs may or may
//     not be in it, but an SA present for the whole dump is in it exactly once. (The
//     in-memory kernel copies its table in chunks so that installs are not held up;
//     Linux dumps in netlink batches.)
//   - Errors wrap ErrClosed when the Kernel is closed, and the context's error when ctx
//     ends before the dump starts.
type SACounterLister interface {
	ListSACounters(ctx context.Context) ([]SACounters, error)
}

// SACounters is one SA as ListSACounters reports it: its ID, its reqid and its current
// lifetime (RFC 4301 §4.4.2.1: bytes and packets so far, when it was added and when it
// was first used, as Linux's struct xfrm_lifetime_cur counts them).
type SACounters struct {
	ID       SAID
	Reqid    Reqid
	Counters Counters
	// Added is when the kernel installed the SA, to the second on Linux.
	Added time.Time
	// Used is when the SA first protected or accepted a packet; zero if it never has, or
	// if the kernel does not record it (kernel/memkernel does not).
	Used time.Time
	// LastUsed is when the SA last protected or accepted a packet, when the kernel
	// reports it (Linux's XFRMA_LASTUSED, which it sends only once set: ESP traffic
	// alone leaves it unset on Linux 6.1); else zero. kernel/memkernel does not record it.
	LastUsed time.Time
}
