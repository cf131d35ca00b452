//go:build linux

package xfrm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

var _ kernel.SACounterLister = (*Kernel)(nil)

// ListSACounters implements kernel.SACounterLister with one XFRM_MSG_GETSA dump (no
// policy dump) on the Kernel's listing socket, decoded as it arrives: each SA's struct xfrm_usersa_info gives its ID,
// reqid and struct xfrm_lifetime_cur (bytes, packets, add_time, use_time), XFRMA_LASTUSED
// its last use; its algorithm attributes are recognised in place, their keys never
// copied. It lists the SAs Snapshot lists, larval ones left out. A dump the kernel
// reports as interrupted by a concurrent change is retried (at most 5 times in all).
func (k *Kernel) ListSACounters(ctx context.Context) ([]kernel.SACounters, error) {
	if err := k.begin(ctx); err != nil {
		return nil, fmt.Errorf("list SA counters: %w", err)
	}
	defer k.end()
	var out []kernel.SACounters
	var err error
	for range 5 {
		out = out[:0]
		if err = k.dumpSACounters(&out); !errors.Is(err, nl.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list SA counters: %w", err)
	}
	return out, nil
}

// dumpSACounters runs one GETSA dump, appending each listable SA to out.
func (k *Kernel) dumpSACounters(out *[]kernel.SACounters) error {
	req := nl.NewNetlinkRequest(msgGetSA, unix.NLM_F_DUMP)
	req.Sockets = k.list // not k.req: installs go on while the dump runs
	var decodeErr error
	err := req.ExecuteIter(unix.NETLINK_XFRM, msgNewSA, func(m []byte) bool {
		d, err := decodeSACounters(m)
		if err != nil {
			decodeErr = err
			return false
		}
		if d.proto != protoESP || d.sa.SPI == 0 || d.foreign || d.larval {
			return true
		}
		*out = append(*out, saCounters(&d))
		return true
	})
	if decodeErr != nil {
		return decodeErr
	}
	return err
}

// saCounters is what ListSACounters reports of a decoded SA.
func saCounters(d *decodedSA) kernel.SACounters {
	return kernel.SACounters{
		ID:       d.sa.ID(),
		Reqid:    d.sa.Reqid,
		Counters: d.counters,
		Added:    epochSeconds(d.addTime),
		Used:     epochSeconds(d.useTime),
		LastUsed: epochSeconds(d.lastUsed),
	}
}

// epochSeconds is a kernel time in seconds since the epoch; 0 (never) is the zero Time.
func epochSeconds(s uint64) time.Time {
	if s == 0 || s > 1<<40 {
		return time.Time{}
	}
	return time.Unix(int64(s), 0)
}
