package memkernel_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/cygnet-ipsec/cygnet/kernel/kerneltest"
	"github.com/cygnet-ipsec/cygnet/kernel/memkernel"
)

func newTarget(t *testing.T) *kerneltest.Target {
	k := memkernel.New(memkernel.Options{})
	cur := k
	t.Cleanup(func() { cur.Close() })
	return &kerneltest.Target{
		Kernel: k,
		Restart: func(t *testing.T) kernel.Kernel {
			cur = cur.Restart()
			return cur
		},
		AddForeignSA:     func(t *testing.T, sa kernel.SA) error { return cur.AddForeignSA(sa) },
		AddForeignPolicy: func(t *testing.T, p kernel.Policy) error { return cur.AddForeignPolicy(p) },
		Elapse:           func(t *testing.T, d time.Duration) { cur.Advance(cur.Now().Add(d)) },
		SendUDP: func(t *testing.T, src, dst netip.Addr, port uint16, payload, count int) {
			for range count {
				pkt := memkernel.Packet{Src: src, Dst: dst, Proto: 17, SrcPort: 40000, DstPort: port, Len: payload + 28}
				if _, _, err := cur.Send(pkt); err != nil {
					t.Fatalf("Send: %v", err)
				}
			}
		},
		EventTimeout: time.Second,
	}
}

func TestContract(t *testing.T) { kerneltest.Run(t, newTarget) }
