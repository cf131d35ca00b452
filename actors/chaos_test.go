package actors

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// The chaos harness: two cygnet instances in one process (real UDP on loopback,
// in-memory kernels, the real core), many IKE families, and a random schedule of
// initiations, rekeys (IKE and Child SAs, from both ends), deletions and kills of child
// and family actors (stopped from outside, or made to panic), on both ends. Then the
// network is let to settle and the failure table's promises are checked:
//
//  1. an IKE SA whose family lost only Child SAs is still up, on both ends;
//  2. every kernel SA and policy has a live owner, and every live Child SA has its SAs
//     and policies in the kernel (both ends);
//  3. every killed family is gone on both ends within the liveness timeout, and the two
//     ends agree on the IKE SAs that exist;
//  4. no family is stuck stopping (every listed family answers, and a graceful shutdown
//     finishes), and no goroutine leaks.
//
// The suite runs a short schedule; a long one runs behind flags, e.g.
//
//	go test ./actors -run TestChaos -chaos.families=20000 -chaos.kills=100000 -timeout 2h
var (
	chaosFamilies = flag.Int("chaos.families", 40, "IKE families in TestChaos")
	chaosKills    = flag.Int("chaos.kills", 300, "actor kills in TestChaos")
	chaosSeed     = flag.Uint64("chaos.seed", 0, "seed of TestChaos's schedule (0: time-based)")
)

// chaosRun is the bookkeeping of one run, keyed by a's connection names.
type chaosRun struct {
	t    *testing.T
	a, b *node
	rng  *rand.Rand
	n    int

	// disturbed connections had a family-level event (kill, delete) on either end:
	// promise 1 does not apply to them.
	disturbed map[string]bool
	// firstFamily is a's family of each connection after the initial establishment.
	firstFamily map[string]kernel.FamilyID
	// childKills counts child kills per connection.
	childKills map[string]int

	kills, childKillCount, familyKillCount, panics, rekeys, deletes, initiates int

	// Listings are refreshed every few steps (a listing of 20,000 families is not free);
	// operations on families that ended meanwhile just fail.
	steps      int
	listA      []SA
	listB      []SA
	connBySPI  map[[2]ike.SPI]string
	haveFamily map[string]bool
}

func (r *chaosRun) refresh() {
	if r.listA != nil && r.steps%max(10, r.n/50) != 0 {
		return
	}
	r.listA, r.listB = r.a.m.ListSAs(), r.b.m.ListSAs()
	r.connBySPI = map[[2]ike.SPI]string{}
	r.haveFamily = map[string]bool{}
	for _, sa := range r.listA {
		r.haveFamily[sa.Conn] = true
		for _, i := range sa.IKE {
			r.connBySPI[[2]ike.SPI{i.SPIi, i.SPIr}] = sa.Conn
		}
	}
}

func TestChaos(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		// protoactor's dead-letter throttle waits one period (1 s) in a goroutine of its
		// own, whatever happens to the actor system.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -chaos.seed=%d)", seed, seed)
	n := *chaosFamilies
	// Liveness: a family whose peer died finds out after DPDDelay plus the
	// retransmission schedule (RFC 7296 §2.4).
	// Liveness checks cost an INFORMATIONAL exchange per family and DPD period on both
	// ends (both in this process): the period grows with the number of families.
	dpd := 2 * time.Second
	retr := ike.Retransmit{Timeout: 500 * time.Millisecond, Base: 1.5, Tries: 3}
	if n > 1000 {
		dpd = time.Duration(n/1000) * 1500 * time.Millisecond
		retr = ike.Retransmit{Timeout: 2 * time.Second, Base: 1.5, Tries: 4}
	}
	livenessTimeout := dpd
	for i, d := 0, retr.Timeout; i <= retr.Tries; i++ {
		livenessTimeout += d
		d = time.Duration(float64(d) * retr.Base)
	}
	o := pairOptions{conns: n, conn: func(c *ike.Connection) {
		c.DPDDelay = dpd
		c.Retransmit = retr
		// A responder whose initiator died between IKE_SA_INIT and IKE_AUTH waits this
		// long for IKE_AUTH; the default (30 s) outlasts the agreement window.
		c.HalfOpenTimeout = livenessTimeout
	}, cfg: func(c *Config) { c.ShutdownGrace = 3 * time.Second }}
	a, b := newPair(t, o)
	r := &chaosRun{t: t, a: a, b: b, rng: rand.New(rand.NewPCG(seed, 1)), n: n,
		disturbed: map[string]bool{}, firstFamily: map[string]kernel.FamilyID{}, childKills: map[string]int{}}
	defer func() {
		b.shutdown(t)
		a.shutdown(t)
	}()

	limit := time.Minute + time.Duration(n)*20*time.Millisecond
	start := time.Now()
	up := func(s state) bool { return s.established == n && s.children == 2*n && s.families == n }
	r.bringUp(limit, up)
	t.Logf("%d IKE SAs with %d Child SAs up in %v", n, 2*n, time.Since(start))
	for _, sa := range a.m.ListSAs() {
		r.firstFamily[sa.Conn] = sa.Family
	}

	start = time.Now()
	for r.kills < *chaosKills {
		r.step()
	}
	t.Logf("chaos: %d kills (%d child, %d family, %d as panics), %d rekeys, %d deletes, %d initiations (IKE and Child SAs) in %v",
		r.kills, r.childKillCount, r.familyKillCount, r.panics, r.rekeys, r.deletes, r.initiates, time.Since(start))

	// Let the network settle: killed families' peers find out by liveness checks.
	settled := time.Now()
	r.waitAgreement(livenessTimeout*2 + 10*time.Second)
	t.Logf("both ends agree after %v (liveness timeout %v)", time.Since(settled), livenessTimeout)
	if d := time.Since(settled); d > livenessTimeout*2+5*time.Second {
		t.Logf("note: settling took longer than twice the liveness timeout")
	}
	r.checkContainment()
	r.checkKernels()
	r.checkResponsive()

	// Finally everything is deleted and both kernels end empty.
	for _, sa := range a.m.ListSAs() {
		_, _ = a.m.Terminate(Target{Family: sa.Family})
	}
	waitState(t, "all families gone", limit, func(s state) bool { return s.families == 0 }, a, b)
	for _, x := range []*node{a, b} {
		x.m.janitor.wait()
		if !x.kernelEmpty(t) {
			tb, _ := x.k.Snapshot(context.Background())
			t.Fatalf("%s's kernel not empty at the end:\n%v", x.name, tb)
		}
	}
}

// tallyWithout drops the per-connection lines of a Tally's text.
func tallyWithout(text string, prefixes ...string) string {
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(line, p) }) {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func connName(i int) string { return fmt.Sprintf("c%04d", i) }

// bringUp initiates every connection, at most bringUpWindow at a time (a concentrator
// sees its tunnels arrive over time, and a burst of 20,000 IKE_SA_INITs on two cores
// only exercises back-pressure), re-initiating those that gave up, until all are up.
func (r *chaosRun) bringUp(limit time.Duration, up func(state) bool) {
	const bringUpWindow = 500
	deadline := time.Now().Add(limit)
	// A family is listed from its first Step on; one just spawned is not yet: a
	// connection initiated recently is not initiated again before it had time to show.
	initiated := map[string]time.Time{}
	for {
		sa, sb := r.a.state(), r.b.state()
		if up(sa) && up(sb) {
			return
		}
		if time.Now().After(deadline) {
			for _, x := range []*node{r.a, r.b} {
				r.t.Logf("%s: %+v\n%s", x.name, x.m.Stats(), tallyWithout(x.rec.String(), "ike_sas_established c", "child_sas_installed c", "child_failed c"))
			}
			r.t.Fatalf("tunnels not up after %v: a %d families, %d established, %d children; b %d/%d/%d",
				limit, sa.families, sa.established, sa.children, sb.families, sb.established, sb.children)
		}
		have := map[string]bool{}
		for _, x := range r.a.m.ListSAs() {
			have[x.Conn] = true
		}
		room := bringUpWindow - (sa.families - sa.established)
		for i := 0; i < r.n && room > 0; i++ {
			c := connName(i)
			if have[c] || time.Since(initiated[c]) < time.Minute {
				continue
			}
			if err := r.a.m.Initiate(context.Background(), c, ""); err != nil {
				r.t.Fatal(err)
			}
			initiated[c] = time.Now()
			room--
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// step performs one random operation.
func (r *chaosRun) step() {
	ctx := context.Background()
	r.steps++
	r.refresh()
	side, sas := r.a, r.listA
	if r.rng.IntN(2) == 0 {
		side, sas = r.b, r.listB
	}
	if len(sas) == 0 {
		r.initiateDown()
		return
	}
	sa := sas[r.rng.IntN(len(sas))]
	conn := r.connOf(side, sa)
	switch p := r.rng.IntN(100); {
	case p < 45: // kill a child actor
		var up []ike.ChildInfo
		for _, c := range sa.Children {
			if c.State == ike.ChildStateUp {
				up = append(up, c)
			}
		}
		if len(up) == 0 {
			return
		}
		c := up[r.rng.IntN(len(up))]
		panic := r.rng.IntN(3) == 0
		if side.m.KillActor(ctx, fmt.Sprintf("f%d/c%d", sa.Family, c.Ref), panic) == nil {
			r.kills++
			r.childKillCount++
			if conn != "" {
				r.childKills[conn]++
			}
			if panic {
				r.panics++
			}
		}
	case p < 60: // re-create a Child SA a family lost (CREATE_CHILD_SA)
		r.recreateChild()
	case p < 63: // kill a family actor
		if r.protected(conn) {
			return
		}
		panic := r.rng.IntN(3) == 0
		if side.m.KillActor(ctx, fmt.Sprintf("f%d", sa.Family), panic) == nil {
			r.kills++
			r.familyKillCount++
			if panic {
				r.panics++
			}
			r.disturb(conn)
		}
	case p < 78: // rekey a Child SA
		if len(sa.Children) > 0 {
			c := sa.Children[r.rng.IntN(len(sa.Children))]
			if _, err := side.m.Rekey(Target{Family: sa.Family, ChildRef: c.Ref}); err == nil {
				r.rekeys++
			}
		}
	case p < 86: // rekey the IKE SA
		if _, err := side.m.Rekey(Target{Family: sa.Family}); err == nil {
			r.rekeys++
		}
	case p < 88: // delete the IKE SA
		if r.protected(conn) {
			return
		}
		if _, err := side.m.Terminate(Target{Family: sa.Family}); err == nil {
			r.deletes++
			r.disturb(conn)
		}
	case p < 90: // delete a Child SA
		if len(sa.Children) > 0 {
			c := sa.Children[r.rng.IntN(len(sa.Children))]
			if _, err := side.m.Terminate(Target{Family: sa.Family, ChildRef: c.Ref}); err == nil {
				r.deletes++
			}
		}
	default: // bring a connection back up
		r.initiateDown()
	}
	time.Sleep(time.Duration(r.rng.IntN(3)) * time.Millisecond)
}

// connOf names the connection of a family on either side (b's families are matched
// to a's by IKE SPI; "" if unknown).
func (r *chaosRun) connOf(side *node, sa SA) string {
	if side == r.a {
		return sa.Conn
	}
	if len(sa.IKE) == 0 {
		return ""
	}
	return r.connBySPI[[2]ike.SPI{sa.IKE[0].SPIi, sa.IKE[0].SPIr}]
}

// protected connections (every other one) only ever lose Child SAs, so that promise 1
// is checked on many of them however long the run.
func (r *chaosRun) protected(conn string) bool {
	var i int
	if _, err := fmt.Sscanf(conn, "c%d", &i); err != nil {
		return true // unknown (a b family not matched yet): leave it alone
	}
	return i%2 == 0
}

func (r *chaosRun) disturb(conn string) {
	if conn != "" {
		r.disturbed[conn] = true
	}
}

// recreateChild asks one of a's families that lost a Child SA for it again.
func (r *chaosRun) recreateChild() {
	sas := r.listA
	if len(sas) == 0 {
		return
	}
	sa := sas[r.rng.IntN(len(sas))]
	have := map[string]bool{}
	for _, c := range sa.Children {
		have[c.Name] = true
	}
	for _, name := range []string{"net0", "net1"} {
		if !have[name] {
			if r.a.m.Initiate(context.Background(), sa.Conn, name) == nil {
				r.initiates++
			}
			return
		}
	}
}

// initiateDown brings up a connection a has no family for.
func (r *chaosRun) initiateDown() {
	for range 5 {
		c := connName(r.rng.IntN(r.n))
		if !r.haveFamily[c] {
			r.haveFamily[c] = true // initiated: not again before the next listing
			r.disturb(c)
			if r.a.m.Initiate(context.Background(), c, "") == nil {
				r.initiates++
			}
			return
		}
	}
}

// pairs returns the IKE SAs (SPIi, SPIr of the current one) of a node's families.
func pairsOf(n *node) map[[2]ike.SPI]SA {
	out := map[[2]ike.SPI]SA{}
	for _, sa := range n.m.ListSAs() {
		if len(sa.IKE) > 0 {
			out[[2]ike.SPI{sa.IKE[0].SPIi, sa.IKE[0].SPIr}] = sa
		}
	}
	return out
}

// waitAgreement waits until both ends list the same established IKE SAs and nothing
// else (no half-open family, no family without an IKE SA, nothing in flight).
func (r *chaosRun) waitAgreement(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		diff := r.disagreement()
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the two ends do not agree after %v:\n%s\na: %s\nb: %s", limit, diff, dropLines(r.a), dropLines(r.b))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *chaosRun) disagreement() string {
	pa, pb := pairsOf(r.a), pairsOf(r.b)
	var b strings.Builder
	for _, x := range []struct {
		name     string
		own      map[[2]ike.SPI]SA
		other    map[[2]ike.SPI]SA
		families int
	}{{"a", pa, pb, r.a.m.Stats().Families}, {"b", pb, pa, r.b.m.Stats().Families}} {
		if x.families != len(x.own) {
			fmt.Fprintf(&b, "%s: %d families, %d with an IKE SA\n", x.name, x.families, len(x.own))
		}
		for k, sa := range x.own {
			if sa.IKE[0].State != ike.IKEStateEstablished {
				fmt.Fprintf(&b, "%s: family %d (%s) IKE SA %v\n", x.name, sa.Family, sa.Conn, sa.IKE[0].State)
			}
			if _, ok := x.other[k]; !ok {
				fmt.Fprintf(&b, "%s: family %d (%s) %v_i %v_r has no peer\n", x.name, sa.Family, sa.Conn, k[0], k[1])
			}
			if len(sa.IKE) > 1 {
				fmt.Fprintf(&b, "%s: family %d still has a rekeyed IKE SA\n", x.name, sa.Family)
				// Which one, and who made it: a redundant IKE SA of a simultaneous
				// rekey (§2.8.2) that we answered (initiator false) waits for the
				// peer's DELETE; the peer should not list it.
				for _, i := range sa.IKE[1:] {
					_, peerHas := x.other[[2]ike.SPI{i.SPIi, i.SPIr}]
					fmt.Fprintf(&b, "  %v_i %v_r %v initiator=%v established %v outstanding=%v, the peer lists it: %v\n",
						i.SPIi, i.SPIr, i.State, i.Initiator, i.EstablishedAt.Format("15:04:05.000"), i.Outstanding, peerHas)
				}
			}
			for _, c := range sa.Children {
				if c.State != ike.ChildStateUp {
					fmt.Fprintf(&b, "%s: family %d child %v %v\n", x.name, sa.Family, c.Ref, c.State)
				}
			}
		}
	}
	// Child SAs pair up: a's inbound SPI is b's outbound and vice versa.
	for k, sa := range pa {
		other, ok := pb[k]
		if !ok {
			continue
		}
		var in, out []uint32
		for _, c := range sa.Children {
			in, out = append(in, c.SPIIn), append(out, c.SPIOut)
		}
		var oin, oout []uint32
		for _, c := range other.Children {
			oin, oout = append(oin, c.SPIIn), append(oout, c.SPIOut)
		}
		slices.Sort(in)
		slices.Sort(out)
		slices.Sort(oin)
		slices.Sort(oout)
		if !slices.Equal(in, oout) || !slices.Equal(out, oin) {
			fmt.Fprintf(&b, "family a%d/b%d (%s): Child SAs differ: a in %x out %x, b in %x out %x\n", sa.Family, other.Family, sa.Conn, in, out, oin, oout)
		}
	}
	return b.String()
}

// checkContainment: promise 1. A connection that lost only Child SAs still has the
// family it started with, established on both ends.
func (r *chaosRun) checkContainment() {
	alive := map[kernel.FamilyID]SA{}
	for _, sa := range r.a.m.ListSAs() {
		alive[sa.Family] = sa
	}
	pb := pairsOf(r.b)
	checked := 0
	for conn, kills := range r.childKills {
		if r.disturbed[conn] || kills == 0 {
			continue
		}
		checked++
		sa, ok := alive[r.firstFamily[conn]]
		if !ok {
			r.t.Errorf("%s lost only Child SAs (%d killed) but its IKE family %d is gone", conn, kills, r.firstFamily[conn])
			continue
		}
		if _, ok := pb[[2]ike.SPI{sa.IKE[0].SPIi, sa.IKE[0].SPIr}]; !ok {
			r.t.Errorf("%s lost only Child SAs but its IKE SA is gone on b", conn)
		}
	}
	r.t.Logf("containment: %d connections lost only Child SAs (some of them many) and kept their IKE SA", checked)
}

// checkKernels: promise 2, on both ends.
func (r *chaosRun) checkKernels() {
	for _, x := range []*node{r.a, r.b} {
		x.m.janitor.wait()
		type childKey struct {
			f   kernel.FamilyID
			ref uint64
		}
		live := map[childKey]ike.ChildInfo{}
		families := map[kernel.FamilyID]bool{}
		for _, sa := range x.m.ListSAs() {
			families[sa.Family] = true
			for _, c := range sa.Children {
				live[childKey{sa.Family, uint64(c.Ref)}] = c
			}
		}
		tb, err := x.k.Snapshot(context.Background())
		if err != nil {
			r.t.Fatal(err)
		}
		inKernel := map[kernel.SPI]bool{}
		reqids := map[kernel.Reqid]bool{}
		for _, e := range tb.SAs {
			o := e.SA.Owner
			if e.Larval {
				if !families[o.Family] {
					r.t.Errorf("%s: reserved SPI %s of dead family %d", x.name, e.SA.SPI, o.Family)
				}
				continue
			}
			if _, ok := live[childKey{o.Family, o.Child}]; !ok {
				r.t.Errorf("%s: SA %s owned by %v, which is not a live Child SA", x.name, e.SA.Describe(), o)
			}
			inKernel[e.SA.SPI] = true
			reqids[e.SA.Reqid] = true
		}
		for k, c := range live {
			if !inKernel[kernel.SPI(c.SPIIn)] || !inKernel[kernel.SPI(c.SPIOut)] {
				r.t.Errorf("%s: live Child SA %v of family %d is missing from the kernel", x.name, c, k.f)
			}
		}
		outPolicies := map[kernel.Reqid]bool{}
		for _, p := range tb.Policies {
			if !families[p.Owner.Family] {
				r.t.Errorf("%s: %s owned by dead family %d", x.name, p.Describe(), p.Owner.Family)
			}
			if !reqids[p.Template.Reqid] {
				r.t.Errorf("%s: %s has no SA", x.name, p.Describe())
			}
			if p.Dir == kernel.DirOut {
				outPolicies[p.Template.Reqid] = true
			}
		}
		// Two live Child SAs of one connection with the same definition have the same
		// selectors — in one family (a CREATE_CHILD_SA for a child that existed already)
		// or in two families of the connection (it was initiated again while a family
		// was up): the kernel has one set of policies, the newest holder's (policyTable);
		// the other is shadowed, not missing.
		type nameKey struct {
			conn string
			name string
		}
		connOf := map[kernel.FamilyID]string{}
		for _, sa := range x.m.ListSAs() {
			connOf[sa.Family] = sa.Conn
		}
		perName := map[nameKey]int{}
		for k, c := range live {
			perName[nameKey{connOf[k.f], c.Name}]++
		}
		for _, e := range tb.SAs {
			if e.Larval || outPolicies[e.SA.Reqid] {
				continue
			}
			c := live[childKey{e.SA.Owner.Family, e.SA.Owner.Child}]
			if perName[nameKey{connOf[e.SA.Owner.Family], c.Name}] < 2 {
				var same []string
				for k2, c2 := range live {
					if c2.Name == c.Name && slices.Equal(c2.LocalTS, c.LocalTS) && k2 != (childKey{e.SA.Owner.Family, e.SA.Owner.Child}) {
						same = append(same, fmt.Sprintf("family %d child %d %v", k2.f, c2.Ref, c2.State))
					}
				}
				r.t.Errorf("%s: SA %s has no outbound policy (family %d child %d %q %v; live Child SAs with the same selectors: %v)",
					x.name, e.SA.Describe(), e.SA.Owner.Family, e.SA.Owner.Child, c.Name, c.State, same)
			}
		}
		r.t.Logf("%s: kernel holds %d SAs and %d policies, all owned by %d live Child SAs", x.name, len(tb.SAs), len(tb.Policies), len(live))
	}
}

// checkResponsive: promise 4. Every listed family's actor answers (a family stuck in
// its stop window refuses every message).
func (r *chaosRun) checkResponsive() {
	for _, x := range []*node{r.a, r.b} {
		stuck := 0
		x.m.t.reg.each(func(e *familyEntry) {
			pid := e.pid.Load()
			if pid == nil {
				stuck++
				return
			}
			if _, err := x.m.t.sys.Root.RequestFuture(pid, &actor.Touch{}, 10*time.Second).Result(); err != nil {
				stuck++
			}
		})
		if stuck > 0 {
			r.t.Errorf("%s: %d families do not answer", x.name, stuck)
		}
	}
}

// dropLines returns a node's drop and retransmission counters, for a failure message.
func dropLines(n *node) string {
	var out []string
	for _, l := range strings.Split(n.rec.String(), "\n") {
		if strings.HasPrefix(l, "dropped") || strings.HasPrefix(l, "retransmission") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}
