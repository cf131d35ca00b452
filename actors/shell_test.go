package actors

import (
	"context"
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/kernel"
	"github.com/cygnet-ipsec/cygnet/kernel/memkernel"
)

// peer is the scripted core's stand-in for an IKE family's protocol logic.
//
//	first packet (IKE_SA_INIT) → RouteSPI, a response, Established, InstallChild c1, c2
//	ChildInstalled / ChildInstallFailed / ChildDied / ChildExpired → ChildUp / ChildFailed / a DELETE
//	RekeyChild c → InstallChild (replaces c); DeleteChild c → RemoveChild c
//	InitiateChild "work" → Work; WorkDone → InstallChild
//	InitiateChild other → InstallChild
//	Terminate → a DELETE, FamilyDone
type peer struct {
	mu      sync.Mutex
	spiR    ike.SPI
	nextRef ike.ChildRef
	up      map[ike.ChildRef]ike.ChildInfo
	workRun func() any
	timerAt time.Duration
}

func (p *peer) install(c *fakeCore, ref, replaces ike.ChildRef) []ike.Effect {
	in, err := c.env.AllocSPI(ref)
	if err != nil {
		return []ike.Effect{ike.ChildFailed{Name: "net", Reason: telemetry.ReasonKernel}}
	}
	sa := childSA(ref, replaces, in, 0x0b000000+uint32(c.id)<<8+uint32(ref))
	// Each lineage its own subnets, so that two Child SAs never share policies.
	root := ref
	if replaces != 0 {
		root = replaces
	}
	// and each family its own: 10.<family>.<lineage>.0/24 <=> 10.<100+family>.<lineage>.0/24.
	sa.LocalTS = []ike.TrafficSelector{ike.TSFromPrefix(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(1 + c.id), byte(root), 0}), 24))}
	sa.RemoteTS = []ike.TrafficSelector{ike.TSFromPrefix(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + c.id), byte(root), 0}), 24))}
	sa.Lifetime = ike.Lifetime{SoftTime: 10 * time.Second, HardTime: 20 * time.Second}
	return []ike.Effect{ike.InstallChild{SA: sa}}
}

func (p *peer) newRef() ike.ChildRef {
	p.nextRef++
	return p.nextRef
}

func (p *peer) snapshot(c *fakeCore) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snap = ike.Snapshot{IKE: []ike.IKEInfo{{Name: "gw", SPIi: 0x1111, SPIr: p.spiR, State: ike.IKEStateEstablished, Local: localAP, Remote: remoteAP}}}
	for _, ci := range p.up {
		c.snap.Children = append(c.snap.Children, ci)
	}
	slices.SortFunc(c.snap.Children, func(a, b ike.ChildInfo) int { return int(a.Ref) - int(b.Ref) })
}

func (p *peer) step(c *fakeCore, now time.Time, ev ike.Event) []ike.Effect {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.up == nil {
		p.up = map[ike.ChildRef]ike.ChildInfo{}
	}
	del := ike.SendDatagram{Local: localAP, Remote: remoteAP, Data: []byte("DELETE")}
	var out []ike.Effect
	switch e := ev.(type) {
	case ike.PacketReceived:
		if p.spiR != 0 {
			return nil
		}
		p.spiR = ike.SPI(0xaaaa000000000000 + uint64(c.id))
		info := ike.IKEInfo{Name: "gw", SPIi: ike.SPI(binary.BigEndian.Uint64(e.Data)), SPIr: p.spiR, State: ike.IKEStateEstablished, Local: e.Local, Remote: e.Remote}
		out = append(out, ike.RouteSPI{SPI: p.spiR},
			ike.SendDatagram{Local: e.Local, Remote: e.Remote, Data: []byte("IKE_SA_INIT response")},
			ike.Established{IKE: info})
		out = append(out, p.install(c, p.newRef(), 0)...)
		out = append(out, p.install(c, p.newRef(), 0)...)
		if p.timerAt > 0 {
			out = append(out, ike.ArmTimer{At: now.Add(p.timerAt), Gen: 7})
		}
	case ike.Initiate:
		p.spiR = ike.SPI(0xbbbb000000000000 + uint64(c.id))
		out = append(out, ike.RouteSPI{SPI: p.spiR}, ike.SendDatagram{Local: localAP, Remote: remoteAP, Data: []byte("IKE_SA_INIT")})
	case ike.Acquire:
		out = append(out, p.install(c, p.newRef(), 0)...)
	case ike.ChildInstalled:
		p.up[e.Ref] = ike.ChildInfo{Ref: e.Ref, Name: "net", State: ike.ChildStateUp}
		out = append(out, ike.ChildUp{Child: p.up[e.Ref]})
	case ike.ChildInstallFailed:
		out = append(out, ike.ChildFailed{Name: "net", Reason: telemetry.ReasonKernel}, del)
	case ike.ChildDied:
		delete(p.up, e.Ref)
		out = append(out, del, ike.ChildDown{Ref: e.Ref, Name: "net", Reason: telemetry.ReasonKilled})
	case ike.RekeyChild:
		out = append(out, p.install(c, p.newRef(), e.Ref)...)
	case ike.DeleteChild:
		delete(p.up, e.Ref)
		out = append(out, del, ike.RemoveChild{Ref: e.Ref, Reason: telemetry.ReasonDeleted})
	case ike.InitiateChild:
		if e.Name == "work" {
			out = append(out, ike.Work{Token: 9, Run: p.workRun})
		} else {
			out = append(out, p.install(c, p.newRef(), 0)...)
		}
	case ike.WorkDone:
		out = append(out, p.install(c, p.newRef(), 0)...)
	case ike.TimerFired:
		if p.timerAt > 0 {
			out = append(out, ike.ArmTimer{At: now.Add(p.timerAt), Gen: e.Gen + 1})
		}
	case ike.Terminate:
		out = append(out, del, ike.FamilyDone{Reason: telemetry.ReasonTerminated})
	case ike.RekeyIKE: // (the tests use it to play "the peer stopped answering")
		out = append(out, ike.FamilyDone{Reason: telemetry.ReasonTimeout})
	}
	p.snapshot(c)
	return out
}

// peerScript gives every core its own peer state.
func peerScript(mod func(*peer)) script {
	var mu sync.Mutex
	peers := map[*fakeCore]*peer{}
	return func(c *fakeCore, now time.Time, ev ike.Event) []ike.Effect {
		mu.Lock()
		p := peers[c]
		if p == nil {
			p = &peer{}
			if mod != nil {
				mod(p)
			}
			peers[c] = p
		}
		mu.Unlock()
		return p.step(c, now, ev)
	}
}

// establish injects an IKE_SA_INIT and waits until its family has both children up.
func (h *harness) establish(spiI uint64) (*fakeCore, *actor.PID) {
	h.t.Helper()
	n := h.coreCount()
	h.inject(ikeInit(spiI))
	eventually(h.t, "the family's core", func() bool { return h.coreCount() == n+1 })
	c := h.core(n)
	deadline := time.Now().Add(20 * time.Second)
	for !(c.has("ChildInstalled c1") && c.has("ChildInstalled c2")) {
		if time.Now().After(deadline) {
			h.t.Fatalf("children not installed; core %d got:\n%s\nkernel:\n%v", c.id, joined(c.events()), h.tables())
		}
		time.Sleep(200 * time.Microsecond)
	}
	// The manager publishes the PID after sending the start message, so the family
	// may get this far first.
	var pid *actor.PID
	eventually(h.t, "the family registered", func() bool {
		h.m.t.reg.each(func(e *familyEntry) {
			if e.id == kernel.FamilyID(n+1) {
				pid = e.pid.Load()
			}
		})
		return pid != nil
	})
	return c, pid
}

func (h *harness) send(pid *actor.PID, msg any) { h.m.t.sys.Root.Send(pid, msg) }

func TestResponderFamilyInstallsChildrenAndIsReachedBySPI(t *testing.T) {
	h := newHarness(t, true, peerScript(nil))
	defer h.stop()
	c, _ := h.establish(0x1111)

	// Two Child SAs: four SAs and, per Child SA, policies out, in and fwd.
	if got := len(h.installed()); got != 4 {
		t.Fatalf("%d SAs installed, want 4:\n%v", got, h.tables())
	}
	if got := h.policies(); got != 6 {
		t.Fatalf("%d policies, want 6:\n%v", got, h.tables())
	}
	// The kernel objects carry the family as owner, and the reqid ties SAs to policies.
	tb := h.tables()
	for _, p := range tb.Policies {
		if !slices.ContainsFunc(tb.SAs, func(e kernel.SAEntry) bool { return e.SA.Reqid == p.Template.Reqid }) {
			t.Fatalf("policy %s has no SA with its reqid", p.Describe())
		}
	}

	// A later message to our SPI reaches the same core; a retransmitted IKE_SA_INIT
	// too; a message to an unknown SPI is counted and dropped.
	h.inject(ikeMsg(0x1111, 0xaaaa000000000000, 1))
	h.inject(ikeInit(0x1111))
	h.inject(ikeMsg(0x1111, 0xdead, 1))
	packets := 0
	for _, e := range c.events() {
		if strings.HasPrefix(e, "PacketReceived") {
			packets++
		}
	}
	if packets != 3 || h.coreCount() != 1 {
		t.Fatalf("%d packets reached the core, %d cores exist; want 3 and 1:\n%s", packets, h.coreCount(), joined(c.events()))
	}
	if n := h.rec.Get("dropped unknown_spi"); n != 1 {
		t.Fatalf("unknown SPI drops counted %d, want 1\n%s", n, h.rec)
	}
	if sent := h.sender.datagrams(); len(sent) != 1 || string(sent[0].data) != "IKE_SA_INIT response" || sent[0].remote != remoteAP {
		t.Fatalf("sent %v", sent)
	}
}

func TestChildDeathIsContainedToThatChild(t *testing.T) {
	for _, how := range []string{"killed", "panicked"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t, true, peerScript(nil))
			defer h.stop()
			c, _ := h.establish(0x1111)
			before := h.installed()

			if err := h.m.KillActor(context.Background(), "f1/c1", how == "panicked"); err != nil {
				t.Fatal(err)
			}
			eventually(t, "ChildDied c1", func() bool { return c.has("ChildDied c1") })

			// c1's SAs and policies are gone, c2's are untouched, the family lives.
			after := h.installed()
			if len(after) != 2 || !slices.Contains(before, after[0]) || !slices.Contains(before, after[1]) {
				t.Fatalf("installed %v after killing c1 (before %v)", after, before)
			}
			for _, spi := range after {
				if spi == 0x0b000001 {
					t.Fatal("c1's outbound SA survived")
				}
			}
			if got := h.policies(); got != 3 {
				t.Fatalf("%d policies, want c2's 3", got)
			}
			if h.m.Stats().Families != 1 {
				t.Fatal("the family died with its child")
			}
			if c.has("ChildDied c2") {
				t.Fatal("the sibling was reported dead")
			}
			// The core's answer (a DELETE for c1) went out.
			if sent := h.sender.datagrams(); string(sent[len(sent)-1].data) != "DELETE" {
				t.Fatalf("no DELETE sent: %v", sent)
			}
			want := "actor_stopped child killed"
			if how == "panicked" {
				want = "actor_stopped child panic"
			}
			if h.rec.Get(want) != 1 {
				t.Fatalf("%q not counted:\n%s", want, h.rec)
			}
		})
	}
}

func TestKernelRefusalFailsOnlyThatChild(t *testing.T) {
	h := newHarness(t, true, peerScript(nil))
	defer h.stop()
	c, pid := h.establish(0x1111)
	before := h.tables().String()

	h.k.FailInstalls(1) // the next Child SA's inbound SA
	h.send(pid, ike.InitiateChild{Name: "net"})
	eventually(t, "ChildInstallFailed c3", func() bool {
		return slices.ContainsFunc(c.events(), func(e string) bool { return strings.HasPrefix(e, "ChildInstallFailed c3") })
	})

	if after := h.tables().String(); after != before {
		t.Fatalf("a failed install changed the kernel (the reserved SPI must go too):\nbefore\n%s\nafter\n%s", before, after)
	}
	if c.has("ChildDied c3") {
		t.Fatal("a failed install was also reported as a death")
	}
	if h.m.Stats().Families != 1 || !slices.Contains(h.installed(), 0x0b000001) {
		t.Fatal("the family or a sibling suffered from a child's install failure")
	}
	if h.rec.Get("actor_stopped child normal") != 1 {
		t.Fatalf("failed child's stop not counted as normal:\n%s", h.rec)
	}
}

func TestRekeyedChildKeepsPoliciesUntilTheLastOfItsLineage(t *testing.T) {
	h := newHarness(t, true, peerScript(nil))
	defer h.stop()
	c, pid := h.establish(0x1111)
	reqidOf := func(spi kernel.SPI) kernel.Reqid {
		for _, e := range h.tables().SAs {
			if e.SA.SPI == spi {
				return e.SA.Reqid
			}
		}
		t.Fatalf("no SA %s", spi)
		return 0
	}

	h.send(pid, ike.RekeyChild{Ref: 1})
	eventually(t, "ChildInstalled c3", func() bool { return c.has("ChildInstalled c3") })
	if reqidOf(0x0b000003) != reqidOf(0x0b000001) {
		t.Fatal("the rekeyed Child SA does not share its predecessor's reqid")
	}
	if got := h.policies(); got != 6 {
		t.Fatalf("%d policies after the rekey, want 6", got)
	}
	h.send(pid, ike.DeleteChild{Ref: 1})
	eventually(t, "c1 removed", func() bool { return !slices.Contains(h.installed(), 0x0b000001) })
	if got := h.policies(); got != 6 {
		t.Fatalf("%d policies after the old Child SA went, want 6 (its successor keeps them)", got)
	}
	h.send(pid, ike.DeleteChild{Ref: 3})
	eventually(t, "c3 removed", func() bool { return !slices.Contains(h.installed(), 0x0b000003) })
	if got := h.policies(); got != 3 {
		t.Fatalf("%d policies after the lineage ended, want c2's 3", got)
	}
	if c.has("ChildDied c1") || c.has("ChildDied c3") {
		t.Fatal("a requested removal was reported as a death")
	}
}

func TestFamilyEndLeavesNothingBehind(t *testing.T) {
	for _, how := range []string{"done", "killed", "panicked"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t, true, peerScript(nil))
			defer h.stop()
			_, pid := h.establish(0x1111)
			// A larval SPI that no Child SA used: only DeleteOwned removes it.
			var e *familyEntry
			h.m.t.reg.each(func(x *familyEntry) { e = x })
			f := &family{t: h.m.t, e: e, local: localAP, remote: remoteAP}
			if _, err := f.AllocSPI(99); err != nil {
				t.Fatal(err)
			}
			events := h.m.Subscribe(16)
			defer events.Close()

			switch how {
			case "done":
				h.send(pid, ike.Terminate{})
			case "killed":
				h.m.KillActor(context.Background(), "f1", false)
			case "panicked":
				h.m.KillActor(context.Background(), "f1", true)
			}
			eventually(t, "family gone", func() bool { return h.m.Stats().Families == 0 })
			h.m.janitor.wait()
			if tb := h.tables(); len(tb.SAs) != 0 || len(tb.Policies) != 0 {
				t.Fatalf("kernel state left:\n%v", tb)
			}
			if spis, inits := h.m.t.routes.counts(); spis != 0 || inits != 0 {
				t.Fatalf("routes left: %d SPI, %d IKE_SA_INIT", spis, inits)
			}
			if e.pid.Load() != nil {
				t.Fatal("the dead family's PID is still cached")
			}
			want := map[string]string{"done": "normal", "killed": "killed", "panicked": "panic"}[how]
			if h.rec.Get("actor_stopped family "+want) != 1 {
				t.Fatalf("family stop not counted as %s:\n%s", want, h.rec)
			}
			ev := <-events.C
			if ev.Kind != EventFamilyDone {
				t.Fatalf("event %v", ev)
			}
			// A message for its SPI is now junk.
			h.inject(ikeMsg(0x1111, 0xaaaa000000000000, 2))
			if h.rec.Get("dropped unknown_spi") != 1 {
				t.Fatalf("late message not dropped as unknown SPI:\n%s", h.rec)
			}
		})
	}
}

func TestTimerFollowsTheCoreOnVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, true, peerScript(func(p *peer) { p.timerAt = 30 * time.Second }))
		h.inject(ikeInit(0x1111))
		c := h.core(0)
		count := func() int {
			n := 0
			for _, e := range c.events() {
				if strings.HasPrefix(e, "TimerFired") {
					n++
				}
			}
			return n
		}
		time.Sleep(29 * time.Second)
		synctest.Wait()
		if count() != 0 {
			t.Fatal("timer fired before the core's deadline")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if !c.has("TimerFired gen=7") || count() != 1 {
			t.Fatalf("events:\n%s", joined(c.events()))
		}
		// The core re-armed with gen 8: one firing per deadline, the generation passed on.
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if !c.has("TimerFired gen=8") || count() != 2 {
			t.Fatalf("events:\n%s", joined(c.events()))
		}
		// After the family ends nothing fires any more.
		h.stop()
		n := count()
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if count() != n {
			t.Fatal("a timer outlived its family")
		}
	})
}

func TestWorkRunsInThePoolAndComesBack(t *testing.T) {
	h := newHarness(t, false, peerScript(func(p *peer) { p.workRun = func() any { return 42 } }))
	defer h.stop()
	c, pid := h.establish(0x1111)
	h.send(pid, ike.InitiateChild{Name: "work"})
	eventually(t, "WorkDone", func() bool { return c.has("WorkDone token=9") })
	eventually(t, "the child it asked for", func() bool { return c.has("ChildInstalled c3") })
	c.mu.Lock()
	var res any
	for _, e := range c.got {
		if w, ok := e.(ike.WorkDone); ok {
			res = w.Result
		}
	}
	c.mu.Unlock()
	if res != 42 {
		t.Fatalf("result %v", res)
	}
}

func TestPanickingWorkStopsItsFamilyOnly(t *testing.T) {
	h := newHarness(t, false, peerScript(func(p *peer) { p.workRun = func() any { panic("bad group") } }))
	defer h.stop()
	_, pid := h.establish(0x1111)
	h.establish(0x2222)
	h.send(pid, ike.InitiateChild{Name: "work"})
	eventually(t, "the family stopped", func() bool { return h.m.Stats().Families == 1 })
	h.m.janitor.wait()
	if got := len(h.installed()); got != 4 {
		t.Fatalf("%d SAs left, want the other family's 4", got)
	}
	if h.rec.Get("actor_stopped family panic") != 1 {
		t.Fatalf("not counted as a panic:\n%s", h.rec)
	}
}

func TestFullPoolDefersWorkAndRetries(t *testing.T) {
	h := newHarness(t, false, peerScript(func(p *peer) { p.workRun = func() any { return 1 } }),
		func(c *Config) { c.Workers, c.WorkHighWater, c.WorkMaxQueue = 1, 1, 1 })
	defer h.stop()
	c, pid := h.establish(0x1111)
	block := make(chan struct{})
	running := make(chan struct{})
	h.m.t.pool.TrySubmit(func() { close(running); <-block })
	<-running
	h.m.t.pool.TrySubmit(func() {}) // the queue is full now
	h.send(pid, ike.InitiateChild{Name: "work"})
	eventually(t, "a refusal", func() bool { return h.m.t.pool.Stats().Refused >= 1 })
	close(block)
	eventually(t, "the deferred work done", func() bool { return c.has("WorkDone token=9") })
}

// cookieRequest is ikeInit with a COOKIE notify in front (RFC 7296 §2.6).
func cookieRequest(spiI uint64, cookie []byte) []byte {
	plain := ikeInit(spiI)
	notify := []byte{40 /* next: Nonce */, 0}
	notify = binary.BigEndian.AppendUint16(notify, uint16(8+len(cookie)))
	notify = append(notify, 0, 0)
	notify = binary.BigEndian.AppendUint16(notify, 16390)
	notify = append(notify, cookie...)
	msg := slices.Concat(plain[:28], notify, plain[28:])
	msg[16] = 41 // first payload: Notify
	binary.BigEndian.PutUint32(msg[24:], uint32(len(msg)))
	return msg
}

func TestCookiesAboveTheThreshold(t *testing.T) {
	h := newHarness(t, true, peerScript(nil), func(c *Config) { c.CookieThreshold = 0 })
	defer h.stop()
	h.inject(ikeInit(0x1111))
	if h.coreCount() != 0 {
		t.Fatal("a family was created without a cookie")
	}
	sent := h.sender.datagrams()
	if len(sent) != 1 || h.rec.Get("cookie_sent") != 1 {
		t.Fatalf("sent %v\n%s", sent, h.rec)
	}
	resp := sent[0].data
	if binary.BigEndian.Uint16(resp[34:36]) != 16390 {
		t.Fatalf("response is not N(COOKIE): %x", resp)
	}
	cookie := resp[36:]
	h.inject(cookieRequest(0x1111, append([]byte{cookie[0] ^ 0xff}, cookie[1:]...)))
	if h.coreCount() != 0 || h.rec.Get("dropped invalid_cookie") != 1 {
		t.Fatalf("a wrong cookie was accepted:\n%s", h.rec)
	}
	h.inject(cookieRequest(0x1111, cookie))
	eventually(t, "the family", func() bool { return h.coreCount() == 1 })
}

func TestHalfOpenLimitsAndRelease(t *testing.T) {
	h := newHarness(t, true, nil, func(c *Config) { c.HalfOpenPerPeer = 2; c.CookieThreshold = 100 })
	defer h.stop()
	for i := range 3 {
		h.inject(ikeInit(uint64(0x1000 + i)))
	}
	if h.coreCount() != 2 || h.rec.Get("dropped half_open_limit") != 1 {
		t.Fatalf("%d families; tally:\n%s", h.coreCount(), h.rec)
	}
	if st := h.m.Stats(); st.HalfOpen != 2 || h.rec.Get("ike_sas_half_open") != 2 {
		t.Fatalf("half-open %d; tally:\n%s", st.HalfOpen, h.rec)
	}
	// One completes IKE_AUTH: it is not half-open any more, and the peer may start
	// another.
	var first *familyEntry
	h.m.t.reg.each(func(e *familyEntry) {
		if e.id == 1 {
			first = e
		}
	})
	h.send(first.pid.Load(), ike.Initiate{}) // (the scripted core ignores it)
	h.m.t.sys.Root.Send(h.m.pid, halfOpenDone{first, "gw"})
	h.inject(ikeInit(0x2000))
	if h.coreCount() != 3 || h.m.Stats().HalfOpen != 2 {
		t.Fatalf("%d families, %d half-open", h.coreCount(), h.m.Stats().HalfOpen)
	}
}

func TestBusyPoolDropsNewIKESAs(t *testing.T) {
	h := newHarness(t, true, nil, func(c *Config) { c.Workers, c.WorkHighWater = 1, 1 })
	defer h.stop()
	block := make(chan struct{})
	running := make(chan struct{})
	h.m.t.pool.TrySubmit(func() { close(running); <-block })
	<-running
	h.m.t.pool.TrySubmit(func() {})
	h.inject(ikeInit(0x1111))
	if h.coreCount() != 0 || h.rec.Get("dropped queue_full") != 1 {
		t.Fatalf("a new IKE SA was admitted while the pool was busy:\n%s", h.rec)
	}
	close(block)
	eventually(t, "pool drained", func() bool { return !h.m.t.pool.Busy() })
	h.inject(ikeInit(0x1111))
	if h.coreCount() != 1 {
		t.Fatal("not admitted after the pool drained")
	}
}

func TestUnacceptableFirstMessageLeavesNoFamily(t *testing.T) {
	h := newHarness(t, true, nil)
	defer h.stop()
	h.refuseResponder = true
	h.inject(ikeInit(0x1111))
	eventually(t, "the family gone", func() bool { return h.m.Stats().Families == 0 })
	if st := h.m.Stats(); st.HalfOpen != 0 {
		t.Fatalf("half-open %d after a refused IKE_SA_INIT", st.HalfOpen)
	}
	if _, inits := h.m.t.routes.counts(); inits != 0 {
		t.Fatal("IKE_SA_INIT route left")
	}
}

func TestShutdownDeletesEveryIKESAAndEmptiesTheKernel(t *testing.T) {
	h := newHarness(t, false, peerScript(nil))
	cores := []*fakeCore{}
	for i := range 3 {
		c, _ := h.establish(uint64(0x1000 + i))
		cores = append(cores, c)
	}
	h.stop()
	for i, c := range cores {
		if !c.has("Terminate") {
			t.Fatalf("family %d was not asked to delete its IKE SA", i)
		}
	}
	deletes := 0
	for _, s := range h.sender.datagrams() {
		if string(s.data) == "DELETE" {
			deletes++
		}
	}
	if deletes != 3 {
		t.Fatalf("%d DELETEs sent, want 3", deletes)
	}
	if tb := h.tables(); len(tb.SAs) != 0 || len(tb.Policies) != 0 {
		t.Fatalf("kernel not empty after shutdown:\n%v", tb)
	}
	select {
	case <-h.m.Done():
	default:
		t.Fatal("Done not closed")
	}
}

func TestListingAndEvents(t *testing.T) {
	h := newHarness(t, true, peerScript(nil))
	defer h.stop()
	sub := h.m.Subscribe(64)
	defer sub.Close()
	h.establish(0x1111)
	sas := h.m.ListSAs()
	if len(sas) != 1 || len(sas[0].Children) != 2 || sas[0].IKE[0].SPIr != 0xaaaa000000000000 || sas[0].Conn != "gw" {
		t.Fatalf("listing %+v", sas)
	}
	var kinds []string
	for len(sub.C) > 0 {
		ev := <-sub.C
		kinds = append(kinds, ev.Kind.String())
	}
	if want := "ike-up child-up child-up"; strings.Join(kinds, " ") != want {
		t.Fatalf("events %v, want %s", kinds, want)
	}
	n, err := h.m.Rekey(Target{Conn: "gw", Child: "net"})
	if err != nil || n != 2 {
		t.Fatalf("rekey by child name: %d %v", n, err)
	}
	if _, err := h.m.Terminate(Target{Conn: "nope"}); err == nil {
		t.Fatal("terminating an unknown connection is not an error")
	}
}

func TestKernelExpiryReachesTheCoreThroughTheChild(t *testing.T) {
	h := newHarness(t, false, peerScript(nil))
	defer h.stop()
	c, _ := h.establish(0x1111)
	h.k.Advance(h.k.Now().Add(11 * time.Second)) // past the soft limit
	eventually(t, "soft expiry of both children", func() bool {
		return c.has("ChildExpired c1 soft") && c.has("ChildExpired c2 soft")
	})
}

func TestTrapPolicyAcquireInitiatesAndComesBack(t *testing.T) {
	h := newHarness(t, false, peerScript(nil), func(c *Config) {
		conn := testConn("trapped")
		conn.Children[0].StartAction = ike.ActionTrap
		// The scripted core's first Child SA uses 10.1.1.0/24 <=> 10.100.1.0/24.
		conn.Children[0].LocalTS = []ike.TrafficSelector{ike.TSFromPrefix(netip.MustParsePrefix("10.1.1.0/24"))}
		conn.Children[0].RemoteTS = []ike.TrafficSelector{ike.TSFromPrefix(netip.MustParsePrefix("10.100.1.0/24"))}
		c.Connections = []*ike.Connection{conn}
	})
	defer h.stop()
	if got := h.policies(); got != 1 {
		t.Fatalf("%d policies, want the trap", got)
	}
	trapText := h.tables().String()
	// Traffic hits the trap: the kernel acquires and an initiator family starts.
	if _, _, err := h.k.Send(memkernelPacket()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "an initiator core", func() bool { return h.coreCount() == 1 })
	c := h.core(0)
	eventually(t, "the acquire", func() bool { return c.has("Acquire net") })
	eventually(t, "the child", func() bool { return c.has("ChildInstalled c1") })
	if got := h.policies(); got != 3 {
		t.Fatalf("%d policies with the Child SA up, want 3 (its out policy replaced the trap):\n%v", got, h.tables())
	}
	h.send(h.firstFamily(), ike.DeleteChild{Ref: 1})
	eventually(t, "trap restored", func() bool { return h.tables().String() == trapText })
}

func (h *harness) firstFamily() *actor.PID {
	var pid *actor.PID
	h.m.t.reg.each(func(e *familyEntry) { pid = e.pid.Load() })
	return pid
}

func memkernelPacket() memkernel.Packet {
	return memkernel.Packet{Src: netip.MustParseAddr("10.1.1.5"), Dst: netip.MustParseAddr("10.100.1.7"), Proto: 6, SrcPort: 40000, DstPort: 443, Len: 100}
}

func TestNATKeepalivesFollowTheFamily(t *testing.T) {
	natScript := func(c *fakeCore, now time.Time, ev ike.Event) []ike.Effect {
		switch ev.(type) {
		case ike.PacketReceived:
			info := ike.IKEInfo{Name: "gw", SPIr: 0xaaaa, NATLocal: true,
				Local: netip.AddrPortFrom(localIP, 4500), Remote: netip.AddrPortFrom(remoteIP, 4500)}
			return []ike.Effect{ike.RouteSPI{SPI: 0xaaaa}, ike.Established{IKE: info}}
		case ike.Terminate:
			return []ike.Effect{ike.FamilyDone{Reason: telemetry.ReasonTerminated}}
		}
		return nil
	}
	h := newHarness(t, true, natScript)
	defer h.stop()
	h.inject(ikeInit(0x1111))
	if n := h.sender.keepaliveFlows(); n != 1 {
		t.Fatalf("%d keepalive flows behind a NAT, want 1", n)
	}
	h.send(h.firstFamily(), ike.Terminate{})
	eventually(t, "family gone", func() bool { return h.m.Stats().Families == 0 })
	if n := h.sender.keepaliveFlows(); n != 0 {
		t.Fatalf("%d keepalive flows after the family ended", n)
	}
}

func TestReloadStartsAddedAndEndsRemovedConnections(t *testing.T) {
	h := newHarness(t, true, peerScript(nil))
	defer h.stop()
	gw := h.m.conns["gw"]
	c0, _ := h.establish(0x1111)

	auto := testConn("auto")
	auto.Children[0].StartAction = ike.ActionStart
	auto.Children[0].LocalTS = []ike.TrafficSelector{ike.TSFromPrefix(netip.MustParsePrefix("10.9.0.0/16"))}
	if err := h.m.SetConnections(context.Background(), []*ike.Connection{gw, auto}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the added connection initiated", func() bool { return h.coreCount() == 2 && h.core(1).has("Initiate") })
	if c0.has("Terminate") {
		t.Fatal("an unchanged connection's family was touched by the reload")
	}
	// A fresh copy of the same definitions, as a reload of an unchanged file gives: with
	// a per-peer key function (never deeply equal to another) and defaults spelled out.
	gw2 := gw.WithDefaults()
	gw2.PSKFor = func(local, remote ike.Identity) (ike.Secret, bool) { return gw.PSK, true }
	auto2 := *auto
	if err := h.m.SetConnections(context.Background(), []*ike.Connection{&gw2, &auto2}); err != nil {
		t.Fatal(err)
	}
	if err := h.m.SetConnections(context.Background(), []*ike.Connection{&gw2, &auto2}); err != nil {
		t.Fatal(err) // a second call waits for the first's terminations to be sent
	}
	if c0.has("Terminate") || h.core(1).has("Terminate") || h.coreCount() != 2 {
		t.Fatal("a reload with the same definitions replaced a connection's SAs")
	}

	if err := h.m.SetConnections(context.Background(), []*ike.Connection{auto}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the removed connection's family deleted", func() bool { return c0.has("Terminate") })
	if h.core(1).has("Terminate") {
		t.Fatal("the remaining connection's family was touched")
	}
}

func TestDeadPeerRestartsTheConnection(t *testing.T) {
	h := newHarness(t, true, peerScript(nil), func(c *Config) {
		c.Connections[0].Children[0].DPDAction = ike.ActionStart
	})
	defer h.stop()
	_, pid := h.establish(0x1111)
	h.send(pid, ike.RekeyIKE{}) // the scripted core: peer unreachable
	eventually(t, "a new initiator family for the connection", func() bool {
		return h.coreCount() == 2 && h.core(1).has("InitiateChild net")
	})
	// An operator's terminate brings nothing back.
	h.send(h.firstFamily(), ike.Terminate{})
	eventually(t, "the family gone", func() bool { return h.m.Stats().Families == 0 })
	if h.coreCount() != 2 {
		t.Fatal("a terminated connection was restarted")
	}
}

// A peer that reconnects before its old IKE family is found dead makes a second family
// with the same traffic selectors: the new Child SA takes the policies over, the old
// family's end gives them back to it, and the last one out removes them.
func TestSamePoliciesHeldBySuccessiveFamilies(t *testing.T) {
	sameTS := func(c *fakeCore, now time.Time, ev ike.Event) []ike.Effect {
		switch e := ev.(type) {
		case ike.PacketReceived:
			spiR := ike.SPI(0xcccc000000000000 + uint64(c.id))
			in, err := c.env.AllocSPI(1)
			if err != nil {
				t.Error(err)
			}
			sa := childSA(1, 0, in, 0x0c000000+uint32(c.id))
			return []ike.Effect{ike.RouteSPI{SPI: spiR}, ike.Established{IKE: ike.IKEInfo{Name: "gw", SPIr: spiR, Local: e.Local, Remote: e.Remote}},
				ike.InstallChild{SA: sa}}
		case ike.Terminate:
			return []ike.Effect{ike.FamilyDone{Reason: telemetry.ReasonTerminated}}
		}
		return nil
	}
	h := newHarness(t, true, sameTS)
	defer h.stop()
	h.inject(ikeInit(0x1111))
	h.inject(ikeInit(0x2222))
	for i := range 2 {
		if !h.core(i).has("ChildInstalled c1") {
			t.Fatalf("family %d's Child SA was not installed:\n%s", i, joined(h.core(i).events()))
		}
	}
	reqidOf := func(spi kernel.SPI) kernel.Reqid {
		for _, e := range h.tables().SAs {
			if e.SA.SPI == spi {
				return e.SA.Reqid
			}
		}
		return 0
	}
	policyReqids := func() map[kernel.Reqid]int {
		out := map[kernel.Reqid]int{}
		for _, p := range h.tables().Policies {
			out[p.Template.Reqid]++
		}
		return out
	}
	second := reqidOf(0x0c000001)
	if got := policyReqids(); len(got) != 1 || got[second] != 3 {
		t.Fatalf("policies %v, want the newest Child SA's (reqid %v) three", got, second)
	}
	var e1, e2 *familyEntry
	h.m.t.reg.each(func(e *familyEntry) {
		if e.id == 1 {
			e1 = e
		} else {
			e2 = e
		}
	})
	// The newer family ends first: the older one's policies come back.
	h.send(e2.pid.Load(), ike.Terminate{})
	eventually(t, "family 2 gone", func() bool { return h.m.Stats().Families == 1 })
	h.m.janitor.wait()
	first := reqidOf(0x0c000000)
	if got := policyReqids(); len(got) != 1 || got[first] != 3 {
		t.Fatalf("policies %v after the newer family ended, want the older Child SA's (reqid %v)", got, first)
	}
	h.send(e1.pid.Load(), ike.Terminate{})
	eventually(t, "family 1 gone", func() bool { return h.m.Stats().Families == 0 })
	h.m.janitor.wait()
	if tb := h.tables(); len(tb.Policies) != 0 || len(tb.SAs) != 0 || h.m.t.policies.len() != 0 {
		t.Fatalf("left behind:\n%v", tb)
	}
}
