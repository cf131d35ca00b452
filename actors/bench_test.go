package actors

import (
	"context"
	"crypto/ecdh"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/cygnet-ipsec/cygnet/kernel/memkernel"
)

// nullKernel keeps nothing: the memory benchmark measures the daemon's memory, and a
// real kernel keeps its SAs and policies in kernel memory, not in the daemon's heap.
type nullKernel struct {
	reqid, spi atomic.Uint32
	hub        *kernel.Hub
}

var _ kernel.Kernel = (*nullKernel)(nil)

func newNullKernel() *nullKernel { return &nullKernel{hub: kernel.NewHub()} }

func (k *nullKernel) AllocReqid() (kernel.Reqid, error) {
	return kernel.ReqidMin + kernel.Reqid(k.reqid.Add(1)), nil
}
func (k *nullKernel) AllocSPI(context.Context, kernel.SPIRequest) (kernel.SPI, error) {
	return kernel.SPI(0xc0000000 + k.spi.Add(1)), nil
}
func (k *nullKernel) AddSA(context.Context, kernel.SA) error            { return nil }
func (k *nullKernel) UpdateSA(context.Context, kernel.SA) error         { return nil }
func (k *nullKernel) DeleteSA(context.Context, kernel.SAID) error       { return nil }
func (k *nullKernel) AddPolicy(context.Context, kernel.Policy) error    { return nil }
func (k *nullKernel) UpdatePolicy(context.Context, kernel.Policy) error { return nil }
func (k *nullKernel) DeletePolicy(context.Context, kernel.PolicyID) error {
	return nil
}
func (k *nullKernel) GetSA(context.Context, kernel.SAID) (kernel.SA, kernel.Counters, error) {
	return kernel.SA{}, kernel.Counters{}, kernel.ErrNotFound
}
func (k *nullKernel) GetPolicy(context.Context, kernel.PolicyID) (kernel.Policy, error) {
	return kernel.Policy{}, kernel.ErrNotFound
}
func (k *nullKernel) Snapshot(context.Context) (kernel.Tables, error)    { return kernel.Tables{}, nil }
func (k *nullKernel) Subscribe(n int) *kernel.Subscription               { return k.hub.Subscribe(n) }
func (k *nullKernel) DeleteOwned(context.Context, kernel.FamilyID) error { return nil }
func (k *nullKernel) CleanupStale(context.Context) (kernel.Cleanup, error) {
	return kernel.Cleanup{}, nil
}
func (k *nullKernel) Close() error { k.hub.Close(); return nil }

func heapInUse() uint64 {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkIdleFamilyMemory measures the heap held per idle established IKE family with
// two Child SAs: the family actor, its two child actors, the protocol core's state (keys,
// the cached last response), routes, registry entry and listing summary. Both ends run
// in this process with the real core over loopback; the figure is the heap growth
// divided by the families of both ends. Target: under 8 KiB.
func BenchmarkIdleFamilyMemory(b *testing.B) {
	const n = 2000
	if os.Getenv("CYGNET_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 64
	}
	for b.Loop() {
		o := pairOptions{conns: n, cfg: func(c *Config) { c.ShutdownGrace = time.Second }}
		a, bn := newPairWithKernels(b, o, newNullKernel(), newNullKernel())
		before := heapInUse()
		if p := os.Getenv("CYGNET_HEAPPROFILE"); p != "" {
			writeHeapProfile(b, p+".base") // for go tool pprof -base
		}
		ctx := context.Background()
		for i := range n {
			if err := a.m.Initiate(ctx, connName(i), ""); err != nil {
				b.Fatal(err)
			}
		}
		waitState(b, "all up", 2*time.Minute, func(s state) bool {
			return s.established == n && s.children == 2*n && s.families == n
		}, a, bn)
		time.Sleep(100 * time.Millisecond) // let work results and timers settle
		after := heapInUse()
		b.ReportMetric(float64(after-before)/float64(2*n), "B/family")
		if p := os.Getenv("CYGNET_HEAPPROFILE"); p != "" {
			writeHeapProfile(b, p)
		}
		bn.shutdown(b)
		a.shutdown(b)
	}
}

// writeHeapProfile writes the heap profile as of the last GC to path.
func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

// setupCounter counts the Child SAs installed, without Tally's formatting cost.
type setupCounter struct {
	telemetry.Nop
	children atomic.Int64
}

func (c *setupCounter) ChildSAInstalled(string) { c.children.Add(1) }

// cpuTime is the process's user + system CPU time so far (getrusage).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// x25519Floor is the CPU time of the key exchange alone for one IKE SA, both ends: each
// end makes a key pair and computes the shared secret (RFC 7748 §6.1).
func x25519Floor(b *testing.B, n int) time.Duration {
	peer, err := ecdh.X25519().GenerateKey(crand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	start := cpuTime(b)
	for range 2 * n {
		k, err := ecdh.X25519().GenerateKey(crand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := k.ECDH(peer.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
	return (cpuTime(b) - start) / time.Duration(n)
}

// BenchmarkHandshakeCPU measures the CPU time per established IKE SA of both ends: two
// instances in this process (real core, real sockets on loopback, in-memory kernels)
// set up CYGNET_BENCH_SAS (default 2,000) IKE SAs with one Child SA each (X25519,
// AES-GCM, PSK), from the initiator's first command to the last Child SA installed on
// both ends, read from getrusage. It reports the figure next to the X25519 floor (the
// key exchange alone, both ends) measured in the same run; the two ends do about the
// same work, so half of cpu-µs/IKE-SA compares with the daemon benchmark's responder.
// It runs the actors' turns on the worker dispatcher (Config.PooledTurns);
// CYGNET_BENCH_DISPATCHER=goroutine on protoactor's goroutine per turn instead.
func BenchmarkHandshakeCPU(b *testing.B) {
	n := 2000
	if v := os.Getenv("CYGNET_BENCH_SAS"); v != "" {
		fmt.Sscan(v, &n)
	}
	oneChild := func(c *ike.Connection) { c.Children = c.Children[:1] }
	for b.Loop() {
		ra, rb := &setupCounter{}, &setupCounter{}
		o := pairOptions{conns: n, conn: oneChild, recs: [2]telemetry.Recorder{ra, rb},
			cfg: func(c *Config) {
				c.ShutdownGrace = time.Second
				c.PooledTurns = os.Getenv("CYGNET_BENCH_DISPATCHER") != "goroutine"
			}}
		a, bn := newPairWithKernels(b, o, memkernel.New(memkernel.Options{}), memkernel.New(memkernel.Options{FirstSPI: 0xd0000000}))
		runtime.GC()
		if p := os.Getenv("CYGNET_CPUPROFILE"); p != "" {
			f, err := os.Create(p)
			if err != nil {
				b.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				b.Fatal(err)
			}
		}
		start := cpuTime(b)
		ctx := context.Background()
		for i := range n {
			if err := a.m.Initiate(ctx, connName(i), ""); err != nil {
				b.Fatal(err)
			}
		}
		deadline := time.Now().Add(2 * time.Minute)
		for ra.children.Load() < int64(n) || rb.children.Load() < int64(n) {
			if time.Now().After(deadline) {
				b.Fatalf("timed out: %d and %d of %d Child SAs installed", ra.children.Load(), rb.children.Load(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		cpu := cpuTime(b) - start
		if os.Getenv("CYGNET_CPUPROFILE") != "" {
			pprof.StopCPUProfile()
		}
		floor := x25519Floor(b, n)
		per := cpu / time.Duration(n)
		b.ReportMetric(float64(per.Microseconds()), "cpu-µs/IKE-SA")
		b.ReportMetric(float64(floor.Microseconds()), "x25519-µs/IKE-SA")
		b.ReportMetric(float64(per)/float64(floor), "x-floor")
		if d := a.m.t.dispatcher; d != nil {
			b.ReportMetric(float64(d.Spilled()+bn.m.t.dispatcher.Spilled())/float64(n), "spilled-turns/IKE-SA")
		}
		bn.shutdown(b)
		a.shutdown(b)
	}
}

// newPairWithKernels is newPair with the given kernels in place of in-memory ones.
func newPairWithKernels(t testing.TB, o pairOptions, ka, kb kernel.Kernel) (a, b *node) {
	t.Helper()
	mk := func(name string, addr netip.Addr, k kernel.Kernel, rec telemetry.Recorder) *node {
		n := &node{name: name, addr: addr}
		cfg := DefaultConfig()
		cfg.Sockets.Addrs = []netip.Addr{addr}
		cfg.Sockets.IKEPort, cfg.Sockets.NATTPort = 0, 0
		cfg.Sockets.KernelESPInUDP = false
		cfg.HalfOpenPerPeer = 0
		cfg.StartActions = false
		if o.cfg != nil {
			o.cfg(&cfg)
		}
		m, err := New(cfg, k, nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		n.m = m
		return n
	}
	a = mk("a", netip.MustParseAddr("127.0.0.1"), ka, o.recs[0])
	b = mk("b", netip.MustParseAddr("127.0.0.2"), kb, o.recs[1])
	var ac []*ike.Connection
	for i := range o.conns {
		ac = append(ac, pairConn(i, a, b, o))
	}
	if err := a.m.SetConnections(context.Background(), ac); err != nil {
		t.Fatal(err)
	}
	if err := b.m.SetConnections(context.Background(), []*ike.Connection{concentratorConn(b, a, o)}); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// keyExchangeWork stands for one key-exchange computation (~1 ms of CPU, as a
// 3072-bit MODP exponentiation costs): repeated hashing.
func keyExchangeWork() any {
	h := sha256.Sum256([]byte("kex"))
	for range 4000 {
		h = sha256.Sum256(h[:])
	}
	return h[0]
}

// busyWork keeps a family busy with one key exchange after another: in the pool, or
// (inline) computed in the family's own turn, with an empty Work to come back for the
// next one.
func busyWork(mode string, stop *atomic.Bool) []ike.Effect {
	if stop.Load() {
		return nil
	}
	if mode == "inline" {
		keyExchangeWork()
		return []ike.Effect{ike.Work{Token: 1, Run: func() any { return nil }}}
	}
	return []ike.Effect{ike.Work{Token: 1, Run: keyExchangeWork}}
}

// BenchmarkPacketLatencyUnderLoad measures the latency of one family's packet handling
// while 10,000 other families are busy with key exchanges: from a peer's UDP datagram
// sent to the daemon's socket, through the reader, the routing and the family's turn, to
// the family's answer received back by the peer (loopback). The busy families each run
// one key exchange (~1 ms of CPU) after another: in the pool ("pool"), or computed in
// their own turn ("inline", the design's anti-pattern) for comparison.
func BenchmarkPacketLatencyUnderLoad(b *testing.B) {
	for _, mode := range []string{"pool", "inline"} {
		b.Run(mode, func(b *testing.B) {
			const busy = 10000
			const probeSPI = busy + 1
			var stop atomic.Bool
			script := func(c *fakeCore, now time.Time, ev ike.Event) []ike.Effect {
				switch e := ev.(type) {
				case ike.PacketReceived:
					spiI := binary.BigEndian.Uint64(e.Data)
					spi := ike.SPI(0x5000000000000000 | spiI)
					if e.Data[18] == 34 { // IKE_SA_INIT: route our SPI
						return []ike.Effect{ike.RouteSPI{SPI: spi}}
					}
					if spiI == probeSPI {
						return []ike.Effect{ike.SendDatagram{Local: e.Local, Remote: e.Remote, Data: e.Data}}
					}
					return busyWork(mode, &stop)
				case ike.WorkDone:
					return busyWork(mode, &stop)
				}
				return nil
			}
			h := newHarnessSockets(b, script, func(c *Config) {
				c.CookieThreshold = busy * 10
				c.ManagerQueue = busy * 2
				c.FamilyQueue = 4
				if w := os.Getenv("CYGNET_BENCH_WORKERS"); w != "" {
					fmt.Sscan(w, &c.Workers)
				}
			})
			defer h.m.Kill()
			ike500, _ := h.m.Ports()
			daemon := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ike500)
			for i := range busy {
				h.inject(ikeInit(uint64(i + 1)))
			}
			probe, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
			if err != nil {
				b.Fatal(err)
			}
			defer probe.Close()
			if _, err := probe.WriteToUDPAddrPort(ikeInit(probeSPI), daemon); err != nil {
				b.Fatal(err)
			}
			eventually(b, "all families", func() bool { return h.m.Stats().SPIRoutes == busy+1 })
			// Start the storm: every busy family begins key exchanges that never end.
			for i := range busy {
				for !h.inject(ikeMsg(uint64(i+1), 0x5000000000000000|uint64(i+1), 1)) {
					time.Sleep(time.Millisecond)
				}
			}
			time.Sleep(time.Second)
			msg := ikeMsg(probeSPI, 0x5000000000000000|probeSPI, 2)
			buf := make([]byte, 128)
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				if _, err := probe.WriteToUDPAddrPort(msg, daemon); err != nil {
					b.Fatal(err)
				}
				probe.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, _, err := probe.ReadFromUDPAddrPort(buf); err != nil {
					b.Fatalf("no answer: %v", err)
				}
				lat = append(lat, time.Since(start))
				time.Sleep(time.Millisecond)
			}
			stop.Store(true)
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.Logf("%s: %d samples, p50 %v, p99 %v, max %v; pool %v", mode, len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1], h.m.t.pool.Stats())
		})
	}
}
