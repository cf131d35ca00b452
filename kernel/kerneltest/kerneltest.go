// Package kerneltest holds the contract that every kernel.Kernel keeps, as tests that run
// against any implementation: kernel/memkernel on any host, kernel/xfrm inside a network
// namespace (policies on a host without ESP, everything in the test VM).
//
// RunPolicies covers what needs no ESP in the kernel (policies, acquire, DeleteOwned and
// CleanupStale over policies); RunSAs covers SPIs, SAs, counters and expiry; Run runs both.
// Each test gets a fresh Target from the caller's constructor.
//
// Addresses come from the documentation ranges: the local end point is 192.0.2.1, the
// peer 192.0.2.2; traffic selectors use 198.51.100.0/24 (local side) and 203.0.113.0/24
// (remote side). A Target's SendUDP must be able to send from 198.51.100.1 to
// 203.0.113.0/24 through the SPD, and from 192.0.2.1 towards 192.0.2.2.
package kerneltest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/kernel"
)

// Target is one kernel under test.
type Target struct {
	// Kernel is the implementation under test, with empty tables.
	Kernel kernel.Kernel
	// Restart simulates a crash of the daemon: it returns a new Kernel over the same
	// tables that knows nothing of what Kernel installed. Kernel is abandoned, not
	// cleaned up.
	Restart func(t *testing.T) kernel.Kernel
	// AddForeignSA and AddForeignPolicy install objects the way another IKE daemon would,
	// bypassing cygnet: any reqid, no owner.
	AddForeignSA     func(t *testing.T, sa kernel.SA) error
	AddForeignPolicy func(t *testing.T, p kernel.Policy) error
	// Elapse lets d of the kernel's time pass. A real kernel's clock runs by itself:
	// its Elapse does nothing, and the tests wait up to EventTimeout for events.
	Elapse func(t *testing.T, d time.Duration)
	// SendUDP sends count outbound UDP datagrams with payload bytes each from src to
	// dst:port through the SPD.
	SendUDP func(t *testing.T, src, dst netip.Addr, port uint16, payload, count int)
	// EventTimeout bounds the wait for one kernel event.
	EventTimeout time.Duration
}

// Run runs the whole contract.
func Run(t *testing.T, newTarget func(t *testing.T) *Target) {
	t.Run("policies", func(t *testing.T) { RunPolicies(t, newTarget) })
	t.Run("sas", func(t *testing.T) { RunSAs(t, newTarget) })
}

// RunPolicies runs the part of the contract that needs no ESP support in the kernel.
func RunPolicies(t *testing.T, newTarget func(t *testing.T) *Target) {
	for _, tc := range []struct {
		name string
		f    func(t *testing.T, tg *Target)
	}{
		{"AddGetDeletePolicy", testAddGetDeletePolicy},
		{"PolicyIdentity", testPolicyIdentity},
		{"UpdatePolicy", testUpdatePolicy},
		{"InvalidPolicyRejected", testInvalidPolicy},
		{"AllocReqid", testAllocReqid},
		{"AcquireOnTrap", testAcquire},
		{"DeleteOwnedPolicies", testDeleteOwnedPolicies},
		{"CleanupStalePolicies", testCleanupStalePolicies},
		{"ConcurrentPolicies", testConcurrentPolicies},
		{"SubscriptionClose", testSubscriptionClose},
		{"ListSACountersNoSAs", testListSACountersNoSAs},
		{"ListSACountersConcurrent", testListSACountersConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newTarget(t)) })
	}
}

// RunSAs runs the part of the contract that needs ESP SAs.
func RunSAs(t *testing.T, newTarget func(t *testing.T) *Target) {
	for _, tc := range []struct {
		name string
		f    func(t *testing.T, tg *Target)
	}{
		{"AllocSPIUnique", testAllocSPIUnique},
		{"AllocSPIRange", testAllocSPIRange},
		{"AddGetDeleteSA", testAddGetDeleteSA},
		{"AddAfterAllocSPI", testAddAfterAllocSPI},
		{"DuplicateSA", testDuplicateSA},
		{"UpdateSA", testUpdateSA},
		{"InvalidSARejected", testInvalidSA},
		{"TablesText", testTablesText},
		{"TimeExpiry", testTimeExpiry},
		{"ByteAndPacketExpiry", testTrafficExpiry},
		{"SlowSubscriberLoses", testSlowSubscriber},
		{"DeleteOwned", testDeleteOwned},
		{"CleanupStale", testCleanupStale},
		{"ConcurrentChildSAs", testConcurrentChildSAs},
		{"ListSACounters", testListSACounters},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newTarget(t)) })
	}
}

// Fixtures.

var (
	local    = netip.MustParseAddr("192.0.2.1")
	peer     = netip.MustParseAddr("192.0.2.2")
	localNet = netip.MustParsePrefix("198.51.100.0/24")
	peerNet  = netip.MustParsePrefix("203.0.113.0/24")
	innerSrc = netip.MustParseAddr("198.51.100.1")
)

func reqid(n uint32) kernel.Reqid { return kernel.ReqidMin + kernel.Reqid(n) }

func key(n int, seed byte) []byte {
	k := make([]byte, n)
	for i := range k {
		k[i] = seed + byte(i)
	}
	return k
}

// gcmSA is a tunnel-mode AES-GCM-128 SA.
func gcmSA(src, dst netip.Addr, spi kernel.SPI, r kernel.Reqid, owner kernel.Owner) kernel.SA {
	return kernel.SA{
		Src: src, Dst: dst, SPI: spi, Mode: kernel.ModeTunnel, Reqid: r, Owner: owner,
		Encr: kernel.EncrAESGCM16, EncrKey: key(20, byte(spi)), ReplayWindow: 32,
	}
}

// hostNet returns the n-th /32 of a /24, so that concurrent children do not overlap.
func hostNet(p netip.Prefix, n int) netip.Prefix {
	a := p.Addr().As4()
	a[3] = byte(n)
	return netip.PrefixFrom(netip.AddrFrom4(a), 32)
}

func tunnelPolicy(dir kernel.Dir, sel kernel.Selector, r kernel.Reqid, owner kernel.Owner) kernel.Policy {
	src, dst := local, peer
	if dir != kernel.DirOut {
		src, dst = peer, local
		sel.Src, sel.Dst = sel.Dst, sel.Src
		sel.SrcPort, sel.DstPort = sel.DstPort, sel.SrcPort
	}
	return kernel.Policy{
		Dir: dir, Selector: sel, Priority: 1000, Owner: owner,
		Template: kernel.Template{Src: src, Dst: dst, Mode: kernel.ModeTunnel, Reqid: r},
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

func mustNil(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one wrapping %v", what, err, target)
	}
}

func snapshot(t *testing.T, k kernel.Kernel) kernel.Tables {
	t.Helper()
	tb, err := k.Snapshot(ctx(t))
	mustNil(t, err, "Snapshot")
	return tb
}

// waitEvent returns the next event on sub that satisfies match, failing the test after
// the target's EventTimeout.
func waitEvent(t *testing.T, tg *Target, sub *kernel.Subscription, what string, match func(kernel.Event) bool) kernel.Event {
	t.Helper()
	timer := time.NewTimer(tg.EventTimeout)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				t.Fatalf("waiting for %s: subscription closed (saw %v)", what, seen)
			}
			if match(ev) {
				return ev
			}
			seen = append(seen, ev.String())
		case <-timer.C:
			t.Fatalf("no %s within %v (saw %v)", what, tg.EventTimeout, seen)
		}
	}
}

func expiryOf(kind kernel.EventKind, id kernel.SAID) func(kernel.Event) bool {
	return func(ev kernel.Event) bool { return ev.Kind == kind && ev.SA == id }
}

func samePolicy(t *testing.T, got, want kernel.Policy) {
	t.Helper()
	if got.Index == 0 {
		t.Errorf("%s: kernel index is 0", want.ID())
	}
	got.Index, want.Index = 0, 0
	if got != want {
		t.Errorf("policy read back differs:\n got %+v\nwant %+v", got, want)
	}
}

func sameSA(t *testing.T, got, want kernel.SA) {
	t.Helper()
	if !got.Equal(&want) {
		t.Errorf("SA read back differs:\n got %s\nwant %s", dumpSA(got), dumpSA(want))
	}
}

func dumpSA(sa kernel.SA) string {
	return kernel.Tables{SAs: []kernel.SAEntry{{SA: sa}}}.Format(kernel.FormatOptions{Keys: true, Owners: true})
}

// Policies.

func testAddGetDeletePolicy(t *testing.T, tg *Target) {
	k := tg.Kernel
	owner := kernel.Owner{Family: 1, Child: 1}
	sel := kernel.Selector{Src: localNet, Dst: peerNet}
	v6 := kernel.Policy{
		Dir: kernel.DirOut, Priority: 2000, Owner: owner,
		Selector: kernel.Selector{
			Src: netip.MustParsePrefix("2001:db8:1::/48"), Dst: netip.MustParsePrefix("2001:db8:2::/48"),
			Proto: 17, SrcPort: 500, DstPort: 4500,
		},
		Template: kernel.Template{
			Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8::2"),
			Mode: kernel.ModeTunnel, Reqid: reqid(2),
		},
	}
	transport := kernel.Policy{
		Dir: kernel.DirIn, Priority: 500, Owner: owner,
		Selector: kernel.Selector{Src: netip.MustParsePrefix("192.0.2.2/32"), Dst: netip.MustParsePrefix("192.0.2.1/32"), Proto: 6, DstPort: 179},
		Template: kernel.Template{Mode: kernel.ModeTransport, Reqid: reqid(3), Optional: true},
	}
	pols := []kernel.Policy{
		tunnelPolicy(kernel.DirOut, sel, reqid(1), owner),
		tunnelPolicy(kernel.DirIn, sel, reqid(1), owner),
		tunnelPolicy(kernel.DirFwd, sel, reqid(1), owner),
		v6, transport,
	}
	for _, p := range pols {
		mustNil(t, k.AddPolicy(ctx(t), p), "AddPolicy "+p.Describe())
	}
	for _, p := range pols {
		got, err := k.GetPolicy(ctx(t), p.ID())
		mustNil(t, err, "GetPolicy "+p.Describe())
		samePolicy(t, got, p)
	}
	if n := len(snapshot(t, k).Policies); n != len(pols) {
		t.Fatalf("Snapshot has %d policies, want %d", n, len(pols))
	}
	for _, p := range pols {
		mustNil(t, k.DeletePolicy(ctx(t), p.ID()), "DeletePolicy "+p.Describe())
		_, err := k.GetPolicy(ctx(t), p.ID())
		wantErr(t, err, kernel.ErrNotFound, "GetPolicy after delete")
		err = k.DeletePolicy(ctx(t), p.ID())
		wantErr(t, err, kernel.ErrNotFound, "DeletePolicy twice")
		if !strings.Contains(err.Error(), p.Selector.Src.String()) {
			t.Errorf("delete error %q does not name the selector", err)
		}
	}
	if tb := snapshot(t, k); len(tb.Policies) != 0 {
		t.Fatalf("policies left:\n%s", tb)
	}
}

func testPolicyIdentity(t *testing.T, tg *Target) {
	k := tg.Kernel
	sel := kernel.Selector{Src: localNet, Dst: peerNet}
	p := tunnelPolicy(kernel.DirOut, sel, reqid(1), kernel.Owner{Family: 1})
	mustNil(t, k.AddPolicy(ctx(t), p), "AddPolicy")
	err := k.AddPolicy(ctx(t), p)
	wantErr(t, err, kernel.ErrExists, "AddPolicy twice")
	if !strings.Contains(err.Error(), "198.51.100.0/24") || !strings.Contains(err.Error(), reqid(1).String()) {
		t.Errorf("error %q does not name the selector and reqid", err)
	}
	// The priority is not part of a policy's identity.
	q := p
	q.Priority = 10
	wantErr(t, k.AddPolicy(ctx(t), q), kernel.ErrExists, "AddPolicy with another priority")
	// Direction and selector are.
	q = p
	q.Dir = kernel.DirFwd
	mustNil(t, k.AddPolicy(ctx(t), q), "AddPolicy fwd, same selector")
	q = p
	q.Selector.Proto, q.Selector.DstPort = 17, 53
	mustNil(t, k.AddPolicy(ctx(t), q), "AddPolicy out, narrower selector")
	if n := len(snapshot(t, k).Policies); n != 3 {
		t.Fatalf("Snapshot has %d policies, want 3", n)
	}
}

func testUpdatePolicy(t *testing.T, tg *Target) {
	k := tg.Kernel
	sel := kernel.Selector{Src: localNet, Dst: peerNet}
	p := tunnelPolicy(kernel.DirOut, sel, reqid(1), kernel.Owner{Family: 1})
	mustNil(t, k.AddPolicy(ctx(t), p), "AddPolicy")
	before, err := k.GetPolicy(ctx(t), p.ID())
	mustNil(t, err, "GetPolicy")
	p.Priority = 7
	p.Template.Reqid = reqid(9)
	p.Template.Dst = netip.MustParseAddr("192.0.2.3")
	mustNil(t, k.UpdatePolicy(ctx(t), p), "UpdatePolicy")
	got, err := k.GetPolicy(ctx(t), p.ID())
	mustNil(t, err, "GetPolicy")
	samePolicy(t, got, p)
	if got.Index != before.Index {
		t.Errorf("index changed on update: %d → %d", before.Index, got.Index)
	}
	// Update installs a missing policy.
	q := tunnelPolicy(kernel.DirIn, sel, reqid(1), kernel.Owner{Family: 1})
	mustNil(t, k.UpdatePolicy(ctx(t), q), "UpdatePolicy of a missing policy")
	got, err = k.GetPolicy(ctx(t), q.ID())
	mustNil(t, err, "GetPolicy")
	samePolicy(t, got, q)
}

func testInvalidPolicy(t *testing.T, tg *Target) {
	k := tg.Kernel
	sel := kernel.Selector{Src: localNet, Dst: peerNet}
	good := tunnelPolicy(kernel.DirOut, sel, reqid(1), kernel.Owner{Family: 1})
	bad := map[string]func(p *kernel.Policy){
		"untagged reqid":      func(p *kernel.Policy) { p.Template.Reqid = 7 },
		"no direction":        func(p *kernel.Policy) { p.Dir = 0 },
		"no selector":         func(p *kernel.Policy) { p.Selector = kernel.Selector{} },
		"mixed families":      func(p *kernel.Policy) { p.Selector.Dst = netip.MustParsePrefix("2001:db8::/32") },
		"host bits":           func(p *kernel.Policy) { p.Selector.Src = netip.MustParsePrefix("198.51.100.1/24") },
		"ports without proto": func(p *kernel.Policy) { p.Selector.DstPort = 80 },
		"tunnel no ends":      func(p *kernel.Policy) { p.Template.Src = netip.Addr{} },
		"transport w/ ends":   func(p *kernel.Policy) { p.Template.Mode = kernel.ModeTransport },
	}
	for name, mutate := range bad {
		p := good
		mutate(&p)
		wantErr(t, k.AddPolicy(ctx(t), p), kernel.ErrInvalid, "AddPolicy with "+name)
		wantErr(t, k.UpdatePolicy(ctx(t), p), kernel.ErrInvalid, "UpdatePolicy with "+name)
	}
	if tb := snapshot(t, k); len(tb.Policies) != 0 {
		t.Fatalf("invalid policies were installed:\n%s", tb)
	}
}

func testAllocReqid(t *testing.T, tg *Target) {
	seen := make(map[kernel.Reqid]bool)
	for range 1000 {
		r, err := tg.Kernel.AllocReqid()
		mustNil(t, err, "AllocReqid")
		if !r.Tagged() {
			t.Fatalf("AllocReqid returned untagged %s", r)
		}
		if seen[r] {
			t.Fatalf("AllocReqid returned %s twice", r)
		}
		seen[r] = true
	}
}

func testAcquire(t *testing.T, tg *Target) {
	k := tg.Kernel
	sub := k.Subscribe(16)
	defer sub.Close()
	owner := kernel.Owner{Family: 4, Child: 0}
	trap := tunnelPolicy(kernel.DirOut, kernel.Selector{Src: localNet, Dst: peerNet, Proto: 17}, reqid(5), owner)
	mustNil(t, k.AddPolicy(ctx(t), trap), "AddPolicy trap")
	installed, err := k.GetPolicy(ctx(t), trap.ID())
	mustNil(t, err, "GetPolicy")
	dst := netip.MustParseAddr("203.0.113.9")
	tg.SendUDP(t, innerSrc, dst, 5353, 32, 1)
	ev := waitEvent(t, tg, sub, "acquire", func(ev kernel.Event) bool { return ev.Kind == kernel.EventAcquire })
	if ev.Reqid != trap.Template.Reqid || ev.Owner != owner || ev.Policy != trap.ID() || ev.PolicyIndex != installed.Index {
		t.Errorf("acquire %v: want reqid %s owner %v %s index %d", ev, trap.Template.Reqid, owner, trap.ID(), installed.Index)
	}
	if ev.Flow.Src.Addr() != innerSrc || ev.Flow.Dst.Addr() != dst || ev.Flow.Proto != 17 || ev.Flow.DstPort != 5353 {
		t.Errorf("acquire flow %s, want %s→%s udp dport 5353", ev.Flow, innerSrc, dst)
	}
	if ev.TmplSrc != local || ev.TmplDst != peer {
		t.Errorf("acquire template end points %s→%s, want %s→%s", ev.TmplSrc, ev.TmplDst, local, peer)
	}
}

func testDeleteOwnedPolicies(t *testing.T, tg *Target) {
	k := tg.Kernel
	f1, f2 := kernel.Owner{Family: 1, Child: 1}, kernel.Owner{Family: 2, Child: 1}
	for i, o := range []kernel.Owner{f1, f2} {
		sel := kernel.Selector{Src: hostNet(localNet, i+1), Dst: hostNet(peerNet, i+1)}
		for _, d := range []kernel.Dir{kernel.DirOut, kernel.DirIn, kernel.DirFwd} {
			mustNil(t, k.AddPolicy(ctx(t), tunnelPolicy(d, sel, reqid(uint32(i+1)), o)), "AddPolicy")
		}
	}
	f2only := onlyFamily(snapshot(t, k), 2)
	mustNil(t, k.DeleteOwned(ctx(t), 1), "DeleteOwned(1)")
	if got := snapshot(t, k).Format(kernel.FormatOptions{Owners: true}); got != f2only {
		t.Fatalf("after DeleteOwned(1):\n%s\nwant:\n%s", got, f2only)
	}
	mustNil(t, k.DeleteOwned(ctx(t), 1), "DeleteOwned(1) again")
	mustNil(t, k.DeleteOwned(ctx(t), 99), "DeleteOwned of an unknown family")
}

// onlyFamily formats the objects of one family (and foreign ones).
func onlyFamily(tb kernel.Tables, f kernel.FamilyID) string {
	return filter(tb, func(o kernel.Owner, _ kernel.Reqid) bool { return o.IsZero() || o.Family == f })
}

// filter formats the objects for which keep returns true.
func filter(tb kernel.Tables, keep func(kernel.Owner, kernel.Reqid) bool) string {
	var out kernel.Tables
	for _, e := range tb.SAs {
		if keep(e.SA.Owner, e.SA.Reqid) {
			out.SAs = append(out.SAs, e)
		}
	}
	for _, p := range tb.Policies {
		if keep(p.Owner, p.Template.Reqid) {
			out.Policies = append(out.Policies, p)
		}
	}
	return out.Format(kernel.FormatOptions{Owners: true})
}

func testCleanupStalePolicies(t *testing.T, tg *Target) {
	old := tg.Kernel
	sel := kernel.Selector{Src: localNet, Dst: peerNet}
	for _, d := range []kernel.Dir{kernel.DirOut, kernel.DirIn, kernel.DirFwd} {
		mustNil(t, old.AddPolicy(ctx(t), tunnelPolicy(d, sel, reqid(1), kernel.Owner{Family: 1})), "AddPolicy")
	}
	foreign := tunnelPolicy(kernel.DirOut, kernel.Selector{Src: hostNet(localNet, 200), Dst: hostNet(peerNet, 200)}, 42, kernel.Owner{})
	mustNil(t, tg.AddForeignPolicy(t, foreign), "AddForeignPolicy")

	k := tg.Restart(t)
	mine := tunnelPolicy(kernel.DirOut, kernel.Selector{Src: hostNet(localNet, 7), Dst: hostNet(peerNet, 7)}, reqid(7), kernel.Owner{Family: 3})
	mustNil(t, k.AddPolicy(ctx(t), mine), "AddPolicy after restart")
	c, err := k.CleanupStale(ctx(t))
	mustNil(t, err, "CleanupStale")
	if c != (kernel.Cleanup{Policies: 3}) {
		t.Errorf("CleanupStale removed %+v, want 3 policies", c)
	}
	want := kernel.Tables{Policies: []kernel.Policy{foreign, mine}}.String()
	if got := snapshot(t, k).String(); got != want {
		t.Fatalf("after CleanupStale:\n%s\nwant (foreign and new policies only):\n%s", got, want)
	}
	c, err = k.CleanupStale(ctx(t))
	mustNil(t, err, "CleanupStale again")
	if c != (kernel.Cleanup{}) {
		t.Errorf("second CleanupStale removed %+v", c)
	}
}

func testConcurrentPolicies(t *testing.T, tg *Target) {
	k := tg.Kernel
	const workers, each = 8, 12
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				n := w*each + i
				a := netip.AddrFrom4([4]byte{10, byte(w), byte(i), 0})
				b := netip.AddrFrom4([4]byte{10, 128 + byte(w), byte(i), 0})
				sel := kernel.Selector{Src: netip.PrefixFrom(a, 24), Dst: netip.PrefixFrom(b, 24)}
				o := kernel.Owner{Family: kernel.FamilyID(w + 1), Child: uint64(i)}
				r, err := k.AllocReqid()
				if err != nil {
					errs <- err
					return
				}
				for _, d := range []kernel.Dir{kernel.DirOut, kernel.DirIn, kernel.DirFwd} {
					if err := k.AddPolicy(ctx(t), tunnelPolicy(d, sel, r, o)); err != nil {
						errs <- err
					}
				}
				if n%2 == 0 {
					if err := k.DeletePolicy(ctx(t), kernel.PolicyID{Dir: kernel.DirOut, Selector: sel}); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, want := len(snapshot(t, k).Policies), workers*each*3-workers*each/2; got != want {
		t.Fatalf("%d policies installed, want %d", got, want)
	}
	for w := range workers {
		mustNil(t, k.DeleteOwned(ctx(t), kernel.FamilyID(w+1)), "DeleteOwned")
	}
	if tb := snapshot(t, k); len(tb.Policies) != 0 {
		t.Fatalf("policies left after DeleteOwned of every family: %d", len(tb.Policies))
	}
}

func testSubscriptionClose(t *testing.T, tg *Target) {
	sub := tg.Kernel.Subscribe(4)
	sub.Close()
	sub.Close()
	if _, ok := <-sub.C; ok {
		t.Fatal("closed subscription delivered an event")
	}
	other := tg.Kernel.Subscribe(4)
	mustNil(t, tg.Kernel.Close(), "Close")
	select {
	case _, ok := <-other.C:
		if ok {
			t.Fatal("subscription delivered an event after Close")
		}
	case <-time.After(tg.EventTimeout):
		t.Fatal("Close did not close the subscription's channel")
	}
	_, err := tg.Kernel.GetPolicy(ctx(t), kernel.PolicyID{Dir: kernel.DirOut, Selector: kernel.Selector{Src: localNet, Dst: peerNet}})
	wantErr(t, err, kernel.ErrClosed, "GetPolicy after Close")
}

// SAs.

func spiReq(r kernel.Reqid, owner kernel.Owner) kernel.SPIRequest {
	return kernel.SPIRequest{Src: peer, Dst: local, Mode: kernel.ModeTunnel, Reqid: r, Owner: owner}
}

func testAllocSPIUnique(t *testing.T, tg *Target) {
	k := tg.Kernel
	seen := make(map[kernel.SPI]bool)
	for i := range 200 {
		spi, err := k.AllocSPI(ctx(t), spiReq(reqid(uint32(i%3)), kernel.Owner{Family: 1}))
		mustNil(t, err, "AllocSPI")
		if spi < kernel.MinSPI {
			t.Fatalf("AllocSPI returned reserved SPI %s", spi)
		}
		if seen[spi] {
			t.Fatalf("AllocSPI returned %s twice", spi)
		}
		seen[spi] = true
	}
	larval := 0
	for _, e := range snapshot(t, k).SAs {
		if !e.Larval {
			t.Errorf("allocated SPI %s is not larval", e.SA.SPI)
		}
		if !e.SA.Reqid.Tagged() {
			t.Errorf("larval SA %s is not tagged: reqid %s", e.SA.SPI, e.SA.Reqid)
		}
		larval++
	}
	if larval != len(seen) {
		t.Errorf("%d larval SAs for %d allocated SPIs", larval, len(seen))
	}
}

func testAllocSPIRange(t *testing.T, tg *Target) {
	k := tg.Kernel
	req := spiReq(reqid(1), kernel.Owner{Family: 1})
	req.Range = kernel.SPIRange{Min: 0x4000, Max: 0x4003}
	got := make(map[kernel.SPI]bool)
	for range 4 {
		spi, err := k.AllocSPI(ctx(t), req)
		mustNil(t, err, "AllocSPI in a range of 4")
		if spi < 0x4000 || spi > 0x4003 || got[spi] {
			t.Fatalf("AllocSPI returned %s (had %v)", spi, got)
		}
		got[spi] = true
	}
	_, err := k.AllocSPI(ctx(t), req)
	wantErr(t, err, kernel.ErrSPIExhausted, "AllocSPI in a full range")
	if !strings.Contains(err.Error(), "0x00004000") {
		t.Errorf("error %q does not name the range", err)
	}
	// Releasing one makes it available again.
	mustNil(t, k.DeleteSA(ctx(t), kernel.SAID{Dst: local, SPI: 0x4002}), "DeleteSA of a larval SA")
	spi, err := k.AllocSPI(ctx(t), req)
	mustNil(t, err, "AllocSPI after release")
	if spi != 0x4002 {
		t.Fatalf("AllocSPI returned %s, want the released 0x00004002", spi)
	}
	req.Reqid = 5
	wantErr(t, func() error { _, err := k.AllocSPI(ctx(t), req); return err }(), kernel.ErrInvalid, "AllocSPI with an untagged reqid")
}

// saVariants covers every transform and option the interface offers.
func saVariants() []kernel.SA {
	owner := kernel.Owner{Family: 1, Child: 2}
	base := gcmSA(local, peer, 0x1001, reqid(1), owner)
	var out []kernel.SA
	add := func(spi kernel.SPI, f func(sa *kernel.SA)) {
		sa := base
		sa.SPI = spi
		sa.EncrKey = key(len(sa.EncrKey), byte(spi))
		f(&sa)
		out = append(out, sa)
	}
	add(0x1001, func(sa *kernel.SA) {})
	add(0x1002, func(sa *kernel.SA) { sa.EncrKey = key(36, 2) })
	add(0x1003, func(sa *kernel.SA) { sa.Encr, sa.EncrKey = kernel.EncrChaCha20Poly1305, key(36, 3) })
	add(0x1004, func(sa *kernel.SA) {
		sa.Encr, sa.EncrKey = kernel.EncrAESCBC, key(16, 4)
		sa.Integ, sa.IntegKey = kernel.IntegHMACSHA256128, key(32, 40)
	})
	add(0x1005, func(sa *kernel.SA) {
		sa.Encr, sa.EncrKey = kernel.EncrAESCBC, key(32, 5)
		sa.Integ, sa.IntegKey = kernel.IntegHMACSHA384192, key(48, 50)
	})
	add(0x1006, func(sa *kernel.SA) {
		sa.Encr, sa.EncrKey = kernel.EncrAESCBC, key(24, 6)
		sa.Integ, sa.IntegKey = kernel.IntegHMACSHA512256, key(64, 60)
	})
	add(0x1007, func(sa *kernel.SA) { sa.ESN, sa.ReplayWindow = true, 1024 })
	add(0x1008, func(sa *kernel.SA) { sa.ReplayWindow = 0 })
	add(0x1009, func(sa *kernel.SA) { sa.ReplayWindow = 256 })
	add(0x100a, func(sa *kernel.SA) { sa.Encap = &kernel.Encap{SrcPort: 4500, DstPort: 31337} })
	add(0x100b, func(sa *kernel.SA) {
		sa.Limits = kernel.Limits{
			Soft: kernel.Lifetime{Bytes: 900_000, Packets: 9000, Time: 3000 * time.Second},
			Hard: kernel.Lifetime{Bytes: 1_000_000, Packets: 10000, Time: 3600 * time.Second},
		}
	})
	add(0x100c, func(sa *kernel.SA) {
		sa.Mode = kernel.ModeTransport
		sa.Selector = kernel.Selector{Src: netip.PrefixFrom(local, 32), Dst: netip.PrefixFrom(peer, 32), Proto: 6, DstPort: 179}
	})
	add(0x100d, func(sa *kernel.SA) {
		sa.Src, sa.Dst = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	})
	add(0x100e, func(sa *kernel.SA) {
		sa.Src, sa.Dst = peer, local
		sa.Owner = kernel.Owner{Family: 1, Child: 3}
		sa.ESN, sa.ReplayWindow = true, 64
		sa.Encap = &kernel.Encap{SrcPort: 4500, DstPort: 4500}
	})
	return out
}

func testAddGetDeleteSA(t *testing.T, tg *Target) {
	k := tg.Kernel
	sas := saVariants()
	for _, sa := range sas {
		mustNil(t, k.AddSA(ctx(t), sa), "AddSA "+sa.Describe())
	}
	for _, sa := range sas {
		got, c, err := k.GetSA(ctx(t), sa.ID())
		mustNil(t, err, "GetSA "+sa.Describe())
		sameSA(t, got, sa)
		if c != (kernel.Counters{}) {
			t.Errorf("%s: fresh SA has counters %+v", sa.Describe(), c)
		}
	}
	if n := len(snapshot(t, k).SAs); n != len(sas) {
		t.Fatalf("Snapshot has %d SAs, want %d", n, len(sas))
	}
	for _, sa := range sas {
		mustNil(t, k.DeleteSA(ctx(t), sa.ID()), "DeleteSA "+sa.Describe())
		_, _, err := k.GetSA(ctx(t), sa.ID())
		wantErr(t, err, kernel.ErrNotFound, "GetSA after delete")
		err = k.DeleteSA(ctx(t), sa.ID())
		wantErr(t, err, kernel.ErrNotFound, "DeleteSA twice")
		if !strings.Contains(err.Error(), sa.SPI.String()) {
			t.Errorf("error %q does not name the SPI %s", err, sa.SPI)
		}
	}
	if tb := snapshot(t, k); len(tb.SAs) != 0 {
		t.Fatalf("SAs left:\n%s", tb)
	}
}

func testAddAfterAllocSPI(t *testing.T, tg *Target) {
	k := tg.Kernel
	owner := kernel.Owner{Family: 1, Child: 1}
	r, err := k.AllocReqid()
	mustNil(t, err, "AllocReqid")
	spi, err := k.AllocSPI(ctx(t), spiReq(r, owner))
	mustNil(t, err, "AllocSPI")
	_, _, err = k.GetSA(ctx(t), kernel.SAID{Dst: local, SPI: spi})
	wantErr(t, err, kernel.ErrNotFound, "GetSA of a larval SA")
	in := gcmSA(peer, local, spi, r, owner)
	mustNil(t, k.AddSA(ctx(t), in), "AddSA with the allocated SPI")
	got, _, err := k.GetSA(ctx(t), in.ID())
	mustNil(t, err, "GetSA")
	sameSA(t, got, in)
	tb := snapshot(t, k)
	if len(tb.SAs) != 1 || tb.SAs[0].Larval {
		t.Fatalf("want one installed SA, got:\n%s", tb)
	}
	wantErr(t, k.AddSA(ctx(t), in), kernel.ErrExists, "AddSA twice with the allocated SPI")
}

func testDuplicateSA(t *testing.T, tg *Target) {
	k := tg.Kernel
	sa := gcmSA(local, peer, 0x2001, reqid(1), kernel.Owner{Family: 1})
	mustNil(t, k.AddSA(ctx(t), sa), "AddSA")
	dup := sa
	dup.EncrKey = key(20, 99)
	dup.Src = netip.MustParseAddr("192.0.2.5")
	err := k.AddSA(ctx(t), dup)
	wantErr(t, err, kernel.ErrExists, "AddSA of the same SPI and destination")
	for _, want := range []string{"0x00002001", "192.0.2.5", "192.0.2.2", "aes-gcm-16"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	got, _, err := k.GetSA(ctx(t), sa.ID())
	mustNil(t, err, "GetSA")
	sameSA(t, got, sa)
	// The same SPI to another destination is another SA.
	other := sa
	other.Dst = netip.MustParseAddr("192.0.2.3")
	mustNil(t, k.AddSA(ctx(t), other), "AddSA of the same SPI to another destination")
}

func testUpdateSA(t *testing.T, tg *Target) {
	k := tg.Kernel
	sa := gcmSA(peer, local, 0x3001, reqid(1), kernel.Owner{Family: 1})
	sa.Encap = &kernel.Encap{SrcPort: 4500, DstPort: 4500}
	mustNil(t, k.AddSA(ctx(t), sa), "AddSA")
	upd := sa.Clone()
	upd.Encap.SrcPort = 61000
	upd.Limits.Hard = kernel.Lifetime{Bytes: 1 << 40, Time: 7200 * time.Second}
	mustNil(t, k.UpdateSA(ctx(t), upd), "UpdateSA")
	got, _, err := k.GetSA(ctx(t), sa.ID())
	mustNil(t, err, "GetSA")
	sameSA(t, got, upd)

	rekeyed := upd.Clone()
	rekeyed.EncrKey = key(20, 200)
	wantErr(t, k.UpdateSA(ctx(t), rekeyed), kernel.ErrInvalid, "UpdateSA changing the key")
	noEncap := upd.Clone()
	noEncap.Encap = nil
	wantErr(t, k.UpdateSA(ctx(t), noEncap), kernel.ErrInvalid, "UpdateSA removing encapsulation")
	got, _, err = k.GetSA(ctx(t), sa.ID())
	mustNil(t, err, "GetSA")
	sameSA(t, got, upd)

	missing := sa.Clone()
	missing.SPI = 0x3002
	err = k.UpdateSA(ctx(t), missing)
	wantErr(t, err, kernel.ErrNotFound, "UpdateSA of a missing SA")
	if !strings.Contains(err.Error(), "0x00003002") {
		t.Errorf("error %q does not name the SPI", err)
	}
}

func testInvalidSA(t *testing.T, tg *Target) {
	k := tg.Kernel
	good := gcmSA(local, peer, 0x5001, reqid(1), kernel.Owner{Family: 1})
	bad := map[string]func(sa *kernel.SA){
		"untagged reqid":     func(sa *kernel.SA) { sa.Reqid = 1 },
		"reserved SPI":       func(sa *kernel.SA) { sa.SPI = 0xff },
		"short GCM key":      func(sa *kernel.SA) { sa.EncrKey = key(16, 1) },
		"GCM with integrity": func(sa *kernel.SA) { sa.Integ, sa.IntegKey = kernel.IntegHMACSHA256128, key(32, 1) },
		"CBC without integrity": func(sa *kernel.SA) {
			sa.Encr, sa.EncrKey = kernel.EncrAESCBC, key(16, 1)
		},
		"short HMAC key": func(sa *kernel.SA) {
			sa.Encr, sa.EncrKey = kernel.EncrAESCBC, key(16, 1)
			sa.Integ, sa.IntegKey = kernel.IntegHMACSHA512256, key(32, 1)
		},
		"ESN without window": func(sa *kernel.SA) { sa.ESN, sa.ReplayWindow = true, 0 },
		"huge window":        func(sa *kernel.SA) { sa.ReplayWindow = 100000 },
		"mixed families":     func(sa *kernel.SA) { sa.Dst = netip.MustParseAddr("2001:db8::2") },
		"no mode":            func(sa *kernel.SA) { sa.Mode = 0 },
		"soft above hard": func(sa *kernel.SA) {
			sa.Limits = kernel.Limits{Soft: kernel.Lifetime{Bytes: 10}, Hard: kernel.Lifetime{Bytes: 5}}
		},
		"fractional seconds": func(sa *kernel.SA) { sa.Limits.Hard.Time = 1500 * time.Millisecond },
		"encap without port": func(sa *kernel.SA) { sa.Encap = &kernel.Encap{SrcPort: 4500} },
	}
	for name, mutate := range bad {
		sa := good.Clone()
		mutate(&sa)
		err := k.AddSA(ctx(t), sa)
		wantErr(t, err, kernel.ErrInvalid, "AddSA with "+name)
		if !strings.Contains(err.Error(), sa.SPI.String()) {
			t.Errorf("error %q does not name the SPI", err)
		}
	}
	if tb := snapshot(t, k); len(tb.SAs) != 0 {
		t.Fatalf("invalid SAs were installed:\n%s", tb)
	}
}

// tablesText is what testTablesText installs, as every kernel must print it.
const tablesText = `src 192.0.2.2 dst 192.0.2.1
	proto esp spi 0x00002001 reqid 0xc7000002 mode tunnel
	replay-window 64 flag esn
	aead rfc4106(gcm(aes)) <36 bytes> 128
	encap type espinudp sport 4500 dport 4500
src 192.0.2.1 dst 192.0.2.2
	proto esp spi 0x00001001 reqid 0xc7000002 mode tunnel
	replay-window 0
	aead rfc4106(gcm(aes)) <20 bytes> 128
	limit soft 900000B,3000s hard 1000000B,3600s
src 192.0.2.1 dst 192.0.2.2
	proto esp spi 0x00001002 reqid 0xc7000003 mode transport
	replay-window 32
	auth-trunc hmac(sha256) <32 bytes> 128
	enc cbc(aes) <16 bytes>
	sel src 192.0.2.1/32 dst 192.0.2.2/32 proto tcp dport 179
src 2001:db8::2 dst 2001:db8::1
	proto esp spi 0x00001003 reqid 0xc7000004 mode tunnel
	replay-window 2048 flag esn
	aead rfc7539esp(chacha20,poly1305) <36 bytes> 128
src 203.0.113.0/24 dst 198.51.100.0/24
	dir in priority 1000
	tmpl src 192.0.2.2 dst 192.0.2.1 proto esp reqid 0xc7000002 mode tunnel
src 198.51.100.0/24 dst 203.0.113.0/24
	dir out priority 1000
	tmpl src 192.0.2.1 dst 192.0.2.2 proto esp reqid 0xc7000002 mode tunnel
src 198.51.100.7/32 dst 203.0.113.0/24 proto udp dport 53
	dir out priority 100
	tmpl src 192.0.2.1 dst 192.0.2.2 proto esp reqid 0xc7000005 mode tunnel
src 203.0.113.0/24 dst 198.51.100.0/24
	dir fwd priority 1000
	tmpl src 192.0.2.2 dst 192.0.2.1 proto esp reqid 0xc7000002 mode tunnel level use
`

// testTablesText installs a fixed set of objects and compares the whole table as text:
// every kernel must read back exactly what was installed.
func testTablesText(t *testing.T, tg *Target) {
	k := tg.Kernel
	o := kernel.Owner{Family: 1, Child: 1}
	out := gcmSA(local, peer, 0x1001, reqid(1), o)
	out.ReplayWindow = 0
	out.Limits = kernel.Limits{
		Soft: kernel.Lifetime{Bytes: 900_000, Time: 3000 * time.Second},
		Hard: kernel.Lifetime{Bytes: 1_000_000, Time: 3600 * time.Second},
	}
	in := gcmSA(peer, local, 0x2001, reqid(1), o)
	in.EncrKey = key(36, 1)
	in.ESN, in.ReplayWindow = true, 64
	in.Encap = &kernel.Encap{SrcPort: 4500, DstPort: 4500}
	transport := kernel.SA{
		Src: local, Dst: peer, SPI: 0x1002, Mode: kernel.ModeTransport, Reqid: reqid(2), Owner: o,
		Encr: kernel.EncrAESCBC, EncrKey: key(16, 1), Integ: kernel.IntegHMACSHA256128, IntegKey: key(32, 2),
		ReplayWindow: 32,
		Selector:     kernel.Selector{Src: netip.PrefixFrom(local, 32), Dst: netip.PrefixFrom(peer, 32), Proto: 6, DstPort: 179},
	}
	v6 := kernel.SA{
		Src: netip.MustParseAddr("2001:db8::2"), Dst: netip.MustParseAddr("2001:db8::1"), SPI: 0x1003,
		Mode: kernel.ModeTunnel, Reqid: reqid(3), Owner: o,
		Encr: kernel.EncrChaCha20Poly1305, EncrKey: key(36, 3), ESN: true, ReplayWindow: 2048,
	}
	for _, sa := range []kernel.SA{out, in, transport, v6} {
		mustNil(t, k.AddSA(ctx(t), sa), "AddSA "+sa.Describe())
	}
	sel := kernel.Selector{Src: localNet, Dst: peerNet}
	fwd := tunnelPolicy(kernel.DirFwd, sel, reqid(1), o)
	fwd.Template.Optional = true
	trap := tunnelPolicy(kernel.DirOut, kernel.Selector{Src: hostNet(localNet, 7), Dst: peerNet, Proto: 17, DstPort: 53}, reqid(4), kernel.Owner{Family: 1})
	trap.Priority = 100
	for _, p := range []kernel.Policy{tunnelPolicy(kernel.DirOut, sel, reqid(1), o), tunnelPolicy(kernel.DirIn, sel, reqid(1), o), fwd, trap} {
		mustNil(t, k.AddPolicy(ctx(t), p), "AddPolicy "+p.Describe())
	}
	if got := snapshot(t, k).String(); got != tablesText {
		t.Fatalf("tables:\n%s\nwant:\n%s", got, tablesText)
	}
	if got := snapshot(t, k).Format(kernel.FormatOptions{Keys: true}); !strings.Contains(got, fmt.Sprintf("0x%x", in.EncrKey)) {
		t.Fatalf("tables with keys do not show the inbound SA's key:\n%s", got)
	}
}

func testTimeExpiry(t *testing.T, tg *Target) {
	k := tg.Kernel
	sub := k.Subscribe(16)
	defer sub.Close()
	owner := kernel.Owner{Family: 3, Child: 7}
	// Each SA has one limit due: a late kernel timer that finds soft and hard limits
	// both passed reports only the hard one (Linux does), so they are not combined.
	soft := gcmSA(local, peer, 0x6001, reqid(1), owner)
	soft.Limits = kernel.Limits{Soft: kernel.Lifetime{Time: time.Second}, Hard: kernel.Lifetime{Time: 3600 * time.Second}}
	hard := gcmSA(local, peer, 0x6002, reqid(1), owner)
	hard.Limits = kernel.Limits{Hard: kernel.Lifetime{Time: time.Second}}
	long := gcmSA(local, peer, 0x6003, reqid(1), owner)
	long.Limits = kernel.Limits{Soft: kernel.Lifetime{Time: 3000 * time.Second}, Hard: kernel.Lifetime{Time: 3600 * time.Second}}
	for _, sa := range []kernel.SA{soft, hard, long} {
		mustNil(t, k.AddSA(ctx(t), sa), "AddSA")
	}

	tg.Elapse(t, time.Second)
	ev := waitEvent(t, tg, sub, "soft expiry", expiryOf(kernel.EventSoftExpire, soft.ID()))
	if ev.Owner != owner || ev.Reqid != soft.Reqid || ev.Src != soft.Src {
		t.Errorf("soft expiry %v: want owner %v reqid %s src %s", ev, owner, soft.Reqid, soft.Src)
	}
	ev = waitEvent(t, tg, sub, "hard expiry", expiryOf(kernel.EventHardExpire, hard.ID()))
	if ev.Owner != owner || ev.Reqid != hard.Reqid {
		t.Errorf("hard expiry %v: want owner %v reqid %s", ev, owner, hard.Reqid)
	}
	_, _, err := k.GetSA(ctx(t), soft.ID())
	mustNil(t, err, "GetSA after soft expiry")
	_, _, err = k.GetSA(ctx(t), hard.ID())
	wantErr(t, err, kernel.ErrNotFound, "GetSA after hard expiry")
	_, _, err = k.GetSA(ctx(t), long.ID())
	mustNil(t, err, "GetSA of an SA with a longer lifetime")
	select {
	case ev := <-sub.C:
		t.Errorf("unexpected event %v", ev)
	default:
	}
}

// outboundChild installs an outbound SA with sa's limits and the policy that routes
// 198.51.100.1 → 203.0.113.0/24 UDP into it.
func outboundChild(t *testing.T, k kernel.Kernel, sa kernel.SA) {
	t.Helper()
	mustNil(t, k.AddSA(ctx(t), sa), "AddSA")
	sel := kernel.Selector{Src: netip.PrefixFrom(innerSrc, 32), Dst: peerNet, Proto: 17}
	mustNil(t, k.AddPolicy(ctx(t), tunnelPolicy(kernel.DirOut, sel, sa.Reqid, sa.Owner)), "AddPolicy")
}

func testTrafficExpiry(t *testing.T, tg *Target) {
	k := tg.Kernel
	sub := k.Subscribe(64)
	defer sub.Close()
	owner := kernel.Owner{Family: 5, Child: 1}
	dst := netip.MustParseAddr("203.0.113.1")

	sa := gcmSA(local, peer, 0x7001, reqid(1), owner)
	sa.Limits = kernel.Limits{Soft: kernel.Lifetime{Bytes: 2000}, Hard: kernel.Lifetime{Bytes: 1 << 30}}
	outboundChild(t, k, sa)
	tg.SendUDP(t, innerSrc, dst, 9, 100, 10)
	_, c, err := k.GetSA(ctx(t), sa.ID())
	mustNil(t, err, "GetSA")
	if c.Packets != 10 || c.Bytes < 10*100 {
		t.Fatalf("counters after 10 datagrams of 100 bytes: %+v", c)
	}
	tg.SendUDP(t, innerSrc, dst, 9, 100, 15)
	waitEvent(t, tg, sub, "soft expiry on bytes", expiryOf(kernel.EventSoftExpire, sa.ID()))
	_, c, err = k.GetSA(ctx(t), sa.ID())
	mustNil(t, err, "GetSA after soft expiry")
	if c.Packets != 25 {
		t.Fatalf("counters after 25 datagrams: %+v", c)
	}
	mustNil(t, k.DeleteOwned(ctx(t), owner.Family), "DeleteOwned")

	owner.Child = 2
	sa = gcmSA(local, peer, 0x7002, reqid(2), owner)
	sa.Limits = kernel.Limits{Hard: kernel.Lifetime{Packets: 5}}
	outboundChild(t, k, sa)
	tg.SendUDP(t, innerSrc, dst, 9, 10, 8)
	ev := waitEvent(t, tg, sub, "hard expiry on packets", expiryOf(kernel.EventHardExpire, sa.ID()))
	if ev.Owner != owner {
		t.Errorf("hard expiry %v: want owner %v", ev, owner)
	}
	_, _, err = k.GetSA(ctx(t), sa.ID())
	wantErr(t, err, kernel.ErrNotFound, "GetSA after hard expiry")
}

func testSlowSubscriber(t *testing.T, tg *Target) {
	k := tg.Kernel
	slow := k.Subscribe(1)
	defer slow.Close()
	fast := k.Subscribe(64)
	defer fast.Close()
	const n = 4
	for i := range n {
		sa := gcmSA(local, peer, kernel.SPI(0x8001+i), reqid(1), kernel.Owner{Family: 1})
		sa.Limits.Hard.Time = time.Second
		mustNil(t, k.AddSA(ctx(t), sa), "AddSA")
	}
	tg.Elapse(t, time.Second)
	for range n {
		waitEvent(t, tg, fast, "hard expiry", func(ev kernel.Event) bool { return ev.Kind == kernel.EventHardExpire })
	}
	if got := len(slow.C); got != 1 {
		t.Errorf("slow subscriber holds %d events, want 1", got)
	}
	if got := slow.Lost(); got != n-1 {
		t.Errorf("slow subscriber lost %d events, want %d", got, n-1)
	}
	if got := fast.Lost(); got != 0 {
		t.Errorf("fast subscriber lost %d events", got)
	}
}

// child installs a complete tunnel-mode Child SA: an SPI allocated for the inbound SA,
// both SAs, and in/out/fwd policies for a /32 pair numbered n.
func child(t *testing.T, k kernel.Kernel, owner kernel.Owner, n int) error {
	r, err := k.AllocReqid()
	if err != nil {
		return err
	}
	spiIn, err := k.AllocSPI(ctx(t), spiReq(r, owner))
	if err != nil {
		return err
	}
	if err := k.AddSA(ctx(t), gcmSA(peer, local, spiIn, r, owner)); err != nil {
		return err
	}
	if err := k.AddSA(ctx(t), gcmSA(local, peer, kernel.SPI(0x10000+n), r, owner)); err != nil {
		return err
	}
	sel := kernel.Selector{Src: hostNet(localNet, n%250+1), Dst: hostNet(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(n >> 8), byte(n), 0}), 24), 1)}
	for _, d := range []kernel.Dir{kernel.DirOut, kernel.DirIn, kernel.DirFwd} {
		if err := k.AddPolicy(ctx(t), tunnelPolicy(d, sel, r, owner)); err != nil {
			return err
		}
	}
	return nil
}

func testDeleteOwned(t *testing.T, tg *Target) {
	k := tg.Kernel
	for i := range 6 {
		mustNil(t, child(t, k, kernel.Owner{Family: kernel.FamilyID(i%2 + 1), Child: uint64(i)}, i), "child")
	}
	// A spare allocated SPI belongs to family 1 as well.
	_, err := k.AllocSPI(ctx(t), spiReq(reqid(100), kernel.Owner{Family: 1, Child: 9}))
	mustNil(t, err, "AllocSPI")
	foreign := gcmSA(peer, local, 0x9999, 77, kernel.Owner{})
	mustNil(t, tg.AddForeignSA(t, foreign), "AddForeignSA")

	want := onlyFamily(snapshot(t, k), 2)
	mustNil(t, k.DeleteOwned(ctx(t), 1), "DeleteOwned(1)")
	if got := snapshot(t, k).Format(kernel.FormatOptions{Owners: true}); got != want {
		t.Fatalf("after DeleteOwned(1):\n%s\nwant:\n%s", got, want)
	}
	mustNil(t, k.DeleteOwned(ctx(t), 2), "DeleteOwned(2)")
	tb := snapshot(t, k)
	if len(tb.Policies) != 0 || len(tb.SAs) != 1 || tb.SAs[0].SA.SPI != foreign.SPI {
		t.Fatalf("after deleting both families, want only the foreign SA:\n%s", tb)
	}
}

func testCleanupStale(t *testing.T, tg *Target) {
	old := tg.Kernel
	for i := range 3 {
		mustNil(t, child(t, old, kernel.Owner{Family: 1, Child: uint64(i)}, i), "child")
	}
	_, err := old.AllocSPI(ctx(t), spiReq(reqid(100), kernel.Owner{Family: 1}))
	mustNil(t, err, "AllocSPI")
	foreignSA := gcmSA(peer, local, 0x9999, 77, kernel.Owner{})
	mustNil(t, tg.AddForeignSA(t, foreignSA), "AddForeignSA")
	foreignPol := tunnelPolicy(kernel.DirOut, kernel.Selector{Src: hostNet(localNet, 200), Dst: hostNet(peerNet, 200)}, 77, kernel.Owner{})
	mustNil(t, tg.AddForeignPolicy(t, foreignPol), "AddForeignPolicy")

	k := tg.Restart(t)
	mustNil(t, child(t, k, kernel.Owner{Family: 5}, 50), "child after restart")
	// What must remain: the new child, and the foreign objects.
	fresh := filter(snapshot(t, k), func(o kernel.Owner, r kernel.Reqid) bool { return o.Family == 5 || !r.Tagged() })
	c, err := k.CleanupStale(ctx(t))
	mustNil(t, err, "CleanupStale")
	if want := (kernel.Cleanup{SAs: 3*2 + 1, Policies: 3 * 3}); c != want {
		t.Errorf("CleanupStale removed %+v, want %+v", c, want)
	}
	if got := snapshot(t, k).Format(kernel.FormatOptions{Owners: true}); got != fresh {
		t.Fatalf("after CleanupStale:\n%s\nwant:\n%s", got, fresh)
	}
	got, _, err := k.GetSA(ctx(t), foreignSA.ID())
	mustNil(t, err, "GetSA of the foreign SA")
	sameSA(t, got, foreignSA)
}

func testConcurrentChildSAs(t *testing.T, tg *Target) {
	k := tg.Kernel
	sub := k.Subscribe(1) // nobody reads it: must not block anything
	defer sub.Close()
	const workers, each = 8, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				n := w*each + i
				owner := kernel.Owner{Family: kernel.FamilyID(w + 1), Child: uint64(i)}
				if err := child(t, k, owner, n); err != nil {
					errs <- err
					continue
				}
				if i%4 == 0 {
					if _, err := k.Snapshot(ctx(t)); err != nil {
						errs <- err
					}
				}
				if i%4 == 3 {
					if err := k.DeleteSA(ctx(t), kernel.SAID{Dst: peer, SPI: kernel.SPI(0x10000 + n)}); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	tb := snapshot(t, k)
	if got, want := len(tb.SAs), workers*each*2-workers*each/4; got != want {
		t.Errorf("%d SAs installed, want %d", got, want)
	}
	if got, want := len(tb.Policies), workers*each*3; got != want {
		t.Errorf("%d policies installed, want %d", got, want)
	}
	wg = sync.WaitGroup{}
	for w := range workers {
		wg.Go(func() {
			if err := k.DeleteOwned(ctx(t), kernel.FamilyID(w+1)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if tb := snapshot(t, k); len(tb.SAs)+len(tb.Policies) != 0 {
		t.Fatalf("objects left after DeleteOwned of every family:\n%s", tb)
	}
}
