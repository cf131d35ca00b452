package memkernel_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/cygnet-ipsec/cygnet/kernel/memkernel"
)

// ListSACounters lets other calls in between its chunks: while SAs are added, deleted and
// SPIs allocated concurrently, every SA present throughout is listed exactly once, no
// larval SA is listed, and nothing is listed that was never installed. (Run with -race.)
func TestListSACountersConcurrentChanges(t *testing.T) {
	const stable, churn = 5000, 64
	k := memkernel.New(memkernel.Options{Now: t0})
	defer k.Close()
	ctx := context.Background()
	for i := range stable {
		must(t, k.AddSA(ctx, gcm(kernel.SPI(0x10000+i), kernel.ReqidMin+1, kernel.Owner{Family: 1})))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for j := 0; ; j++ {
			select {
			case <-stop:
				return
			default:
			}
			sa := gcm(kernel.SPI(0x900000+j%churn), kernel.ReqidMin+2, kernel.Owner{Family: 2})
			if j/churn%2 == 0 {
				must(t, k.AddSA(ctx, sa))
			} else {
				must(t, k.DeleteSA(ctx, sa.ID()))
			}
			if _, err := k.AllocSPI(ctx, kernel.SPIRequest{Src: peer, Dst: local, Mode: kernel.ModeTunnel, Reqid: kernel.ReqidMin + 3}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	defer wg.Wait()
	defer close(stop)
	for range 20 {
		cs, err := k.ListSACounters(ctx)
		must(t, err)
		seen := make(map[kernel.SPI]int, len(cs))
		for _, c := range cs {
			seen[c.ID.SPI]++
			switch {
			case c.ID.SPI >= 0x10000 && c.ID.SPI < 0x10000+stable:
				if c.Reqid != kernel.ReqidMin+1 {
					t.Fatalf("%s: reqid %s", c.ID, c.Reqid)
				}
			case c.ID.SPI >= 0x900000 && c.ID.SPI < 0x900000+churn:
			default:
				t.Fatalf("listed %s (reqid %s), never installed by AddSA", c.ID, c.Reqid)
			}
		}
		for i := range stable {
			if n := seen[kernel.SPI(0x10000+i)]; n != 1 {
				t.Fatalf("SA 0x%x present throughout listed %d times", 0x10000+i, n)
			}
		}
	}
}

// BenchmarkListSACounters200k compares the counters dump with Snapshot on 200,000 SAs,
// while one goroutine installs and removes a Child SA's SA in a loop: max-install-wait-ms
// is the longest an AddSA waited for the kernel during the listings (the lock held for
// the whole Snapshot, for one chunk of ListSACounters). B/op and allocs/op include the
// installer's.
func BenchmarkListSACounters200k(b *testing.B) {
	k := memkernel.New(memkernel.Options{Now: t0})
	defer k.Close()
	ctx := context.Background()
	for i := range 200_000 {
		if err := k.AddSA(ctx, gcm(kernel.SPI(0x10000+i), kernel.ReqidMin+1, kernel.Owner{Family: kernel.FamilyID(i)})); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name string
		list func() error
	}{
		{"counters", func() error { _, err := k.ListSACounters(ctx); return err }},
		{"snapshot", func() error { _, err := k.Snapshot(ctx); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var maxWait time.Duration
			wg.Go(func() {
				sa := gcm(0xf00000, kernel.ReqidMin+2, kernel.Owner{Family: 1 << 40})
				for {
					select {
					case <-stop:
						return
					default:
					}
					start := time.Now()
					if err := k.AddSA(ctx, sa); err != nil {
						b.Error(err)
						return
					}
					maxWait = max(maxWait, time.Since(start))
					if err := k.DeleteSA(ctx, sa.ID()); err != nil {
						b.Error(err)
						return
					}
				}
			})
			for b.Loop() {
				if err := bc.list(); err != nil {
					b.Fatal(err)
				}
			}
			close(stop)
			wg.Wait()
			b.ReportMetric(float64(maxWait)/float64(time.Millisecond), "max-install-wait-ms")
		})
	}
}
