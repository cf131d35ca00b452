package memkernel

import (
	"context"
	"fmt"

	"github.com/cygnet-ipsec/cygnet/kernel"
)

var _ kernel.SACounterLister = (*Kernel)(nil)

// counterChunk is how many SAs ListSACounters copies per hold of the tables' lock: a
// Child SA install waits for one chunk at most, not for the whole SAD.
const counterChunk = 1024

// ListSACounters implements kernel.SACounterLister. It copies the SAD in chunks of
// counterChunk SAs and lets other calls in between: an SA added or removed meanwhile
// may or may not be listed (Go's map iteration allows changes between steps), one
// present throughout is listed once. Keys are not copied, the SPD not read. Used and
// LastUsed are zero: the in-memory kernel does not record use times.
func (k *Kernel) ListSACounters(ctx context.Context) ([]kernel.SACounters, error) {
	if err := k.lock(ctx); err != nil {
		return nil, fmt.Errorf("list SA counters: %w", err)
	}
	out := make([]kernel.SACounters, 0, len(k.t.sas))
	n := 0
	for id, e := range k.t.sas {
		if n++; n%counterChunk == 0 {
			k.unlock()
			// No ctx check here: a listing begun is finished, as a netlink dump is.
			if err := k.lock(context.Background()); err != nil {
				return nil, fmt.Errorf("list SA counters: %w", err)
			}
		}
		if e.larval {
			continue
		}
		out = append(out, kernel.SACounters{ID: id, Reqid: e.sa.Reqid, Counters: e.counters, Added: e.added})
	}
	k.unlock()
	return out, nil
}
