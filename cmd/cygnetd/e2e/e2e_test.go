package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
)

// Subnets: A's side is 198.51.100.0/24, B's 203.0.113.0/24 (RFC 5737), cut per child.
var (
	siteConn = connSpec{name: "site", children: []childSpec{
		{name: "net1", aTS: "198.51.100.0/26", bTS: "203.0.113.0/26", start: "start"},
		{name: "net2", aTS: "198.51.100.64/26", bTS: "203.0.113.64/26", start: "start"},
	}}
	otherConn = connSpec{name: "other", children: []childSpec{
		{name: "oth", aTS: "198.51.100.128/26", bTS: "203.0.113.128/26", start: "start"},
	}}
)

// TestEstablishListRekeyTerminate: two daemons bring up two connections; both sides
// agree on every SPI and selector; a Child SA rekey and an IKE SA rekey change the SPIs
// on both sides and nothing else; terminate removes a Child SA, then an IKE SA, from
// both sides; a graceful stop deletes the remaining IKE SA at the peer too.
func TestEstablishListRekeyTerminate(t *testing.T) {
	t.Parallel()
	a, b := pairOf(t, daemonOpts{}, siteConn, otherConn)
	site := waitTunnel(t, a, b, "site", "net1", "net2")
	other := waitTunnel(t, a, b, "other", "oth")
	if !site.a.Initiator || site.b.Initiator {
		t.Errorf("site: a initiator=%v, b initiator=%v; a starts it", site.a.Initiator, site.b.Initiator)
	}
	if got := site.child("net1").LocalTS; !equal(got, []string{"198.51.100.0/26"}) {
		t.Errorf("site/net1 local TS on a = %v", got)
	}

	t.Run("list", func(t *testing.T) {
		out := a.mustCtl("list-sas")
		for _, want := range []string{"site: #", "ESTABLISHED", "net1: #", "net2: #", "oth: #", "198.51.100.0/26", "203.0.113.0/26",
			fmt.Sprint(site.a.SPIi), fmt.Sprint(site.child("net1").SPIIn)} {
			if !strings.Contains(out, want) {
				t.Errorf("list-sas on a lacks %q:\n%s", want, out)
			}
		}
		conns := a.mustCtl("list-conns")
		for _, want := range []string{"site: IKEv2", "other: IKEv2", "net1: TUNNEL", "a-site.example"} {
			if !strings.Contains(conns, want) {
				t.Errorf("list-conns on a lacks %q:\n%s", want, conns)
			}
		}
		var st control.Stats
		if err := json.Unmarshal([]byte(a.mustCtl("stats", "--json")), &st); err != nil {
			t.Fatal(err)
		}
		if st.IKESAs != 2 || st.ChildSAs != 3 || st.Connections != 2 {
			t.Errorf("stats on a: %d IKE SAs, %d Child SAs, %d connections; want 2, 3, 2", st.IKESAs, st.ChildSAs, st.Connections)
		}
		// The backend was chosen automatically: whatever it is, stats and the log agree.
		if line := "kernel backend: " + st.Kernel + " ("; (st.Kernel != "memory" && st.Kernel != "xfrm") || !strings.Contains(a.log.String(), line) {
			t.Errorf("stats says kernel %q; the log has no line %q", st.Kernel, line)
		}
		if r := a.ctl("list-sas", "--ike", "nosuch"); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
			t.Errorf("list-sas --ike nosuch: exit %d, output %q; want nothing listed", r.code, r.stdout)
		}
		if r := a.ctl("debug", "kill", "f1"); r.code != 1 || !strings.Contains(r.stderr, "debug commands are disabled") {
			t.Errorf("debug kill without chaos: exit %d, %q; want it refused", r.code, r.stderr)
		}
		if r := a.ctl("terminate", "--ike", "nosuch"); r.code != 1 || !strings.Contains(r.stderr, `no connection named "nosuch"`) {
			t.Errorf("terminate --ike nosuch: exit %d, %q; want 1 and the unknown name", r.code, r.stderr)
		}
	})

	t.Run("rekey child", func(t *testing.T) {
		before := site
		a.mustCtl("rekey", "--child", "net1")
		var after tunnel
		eventually(t, 20*time.Second, "net1 rekeyed on both sides", func() string {
			var why string
			if after, why = pairState(a, b, "site", "net1", "net2"); why != "" {
				return why
			}
			if after.child("net1").SPIIn == before.child("net1").SPIIn || after.child("net1").SPIOut == before.child("net1").SPIOut {
				return "net1 still has its old SPIs"
			}
			return ""
		})
		if !sameChild(after.child("net2"), before.child("net2")) {
			t.Errorf("net2 changed when net1 was rekeyed: %+v -> %+v", before.child("net2"), after.child("net2"))
		}
		if after.a.SPIi != before.a.SPIi || after.a.SPIr != before.a.SPIr {
			t.Errorf("the IKE SA changed when a Child SA was rekeyed")
		}
		site = after
	})

	t.Run("rekey IKE", func(t *testing.T) {
		before := site
		events := b.watch()
		a.mustCtl("rekey", "--ike", "site")
		var after tunnel
		eventually(t, 20*time.Second, "site's IKE SA rekeyed on both sides", func() string {
			var why string
			if after, why = pairState(a, b, "site", "net1", "net2"); why != "" {
				return why
			}
			if after.a.SPIi == before.a.SPIi || after.a.SPIr == before.a.SPIr {
				return "the IKE SA still has its old SPIs"
			}
			for _, d := range []*daemon{a, b} {
				if sas := d.sas(); len(sas) != 2 {
					return fmt.Sprintf("%s lists %d IKE SAs, want 2 (the rekeyed one is deleted): %s", d.name, len(sas), summary(sas))
				}
			}
			return ""
		})
		events.expect(t, func(e control.Event) bool {
			return e.Type == control.EventIKERekeyed && e.Conn == "site" && e.SPIi == after.b.SPIi && e.SPIr == after.b.SPIr
		}, "b's watch reports site's IKE SA rekeyed, with the new SPIs")
		if after.a.UniqueID != before.a.UniqueID {
			t.Errorf("IKE SA #%d became #%d: an IKE rekey keeps the family", before.a.UniqueID, after.a.UniqueID)
		}
		for _, name := range []string{"net1", "net2"} {
			if after.child(name).SPIIn != before.child(name).SPIIn {
				t.Errorf("%s's SPIs changed with an IKE rekey (RFC 7296 §2.8: Child SAs move to the new IKE SA)", name)
			}
		}
		if now, why := pairState(a, b, "other", "oth"); why != "" || now.a.SPIi != other.a.SPIi || !sameChild(now.child("oth"), other.child("oth")) {
			t.Errorf("connection other changed when site was rekeyed: %s", why)
		}
		site = after
	})

	t.Run("terminate", func(t *testing.T) {
		id := site.child("net2").UniqueID
		if out := a.mustCtl("terminate", "--child-id", fmt.Sprint(id)); !strings.Contains(out, "1") {
			t.Errorf("terminate --child-id %d: %q", id, out)
		}
		waitTunnel(t, a, b, "site", "net1")
		a.mustCtl("terminate", "--ike", "other")
		eventually(t, 20*time.Second, "other gone on both sides", func() string {
			for _, d := range []*daemon{a, b} {
				for _, sa := range d.sas() {
					if sa.Conn == "other" {
						return fmt.Sprintf("%s still lists other (%s)", d.name, sa.State)
					}
				}
			}
			return ""
		})
		if _, why := pairState(a, b, "site", "net1"); why != "" {
			t.Errorf("site after terminating other: %s", why)
		}
	})

	t.Run("graceful stop", func(t *testing.T) {
		a.stop()
		eventually(t, 10*time.Second, "b learns that a deleted its IKE SA", func() string {
			if sas := b.sas(); len(sas) != 0 {
				return fmt.Sprintf("b still lists %d IKE SAs", len(sas))
			}
			return ""
		})
		for _, want := range []string{"shutting down", "cygnetd stopped"} {
			if !strings.Contains(a.log.String(), want) {
				t.Errorf("a's log lacks %q", want)
			}
		}
	})
}

// TestInitiateChildRejected: the failure rule "CREATE_CHILD_SA: new Child SA rejected
// → that Child SA only", through the daemons: a child B has no policy for fails with
// TS_UNACCEPTABLE, cygnetctl says so, and the IKE SA and its siblings stay.
func TestInitiateChildRejected(t *testing.T) {
	t.Parallel()
	conn := connSpec{name: "site", children: []childSpec{
		{name: "net1", aTS: "198.51.100.0/26", bTS: "203.0.113.0/26", start: "start"},
		{name: "net2", aTS: "198.51.100.64/26", bTS: "203.0.113.64/26", start: "start"},
		{name: "bad", aTS: "198.51.100.0/24", bTS: "192.0.2.128/25", onlyOnSide: "a"},
	}}
	a, b := pairOf(t, daemonOpts{}, conn)
	before := waitTunnel(t, a, b, "site", "net1", "net2")
	r := a.ctl("initiate", "--child", "bad")
	if r.code != 1 || !strings.Contains(r.stderr, "TS_UNACCEPTABLE") {
		t.Fatalf("initiate --child bad: exit %d, %q; want 1 and TS_UNACCEPTABLE", r.code, r.stderr)
	}
	after := waitTunnel(t, a, b, "site", "net1", "net2")
	if after.a.SPIi != before.a.SPIi || !sameChild(after.child("net1"), before.child("net1")) || !sameChild(after.child("net2"), before.child("net2")) {
		t.Errorf("the IKE SA or a sibling changed when a Child SA was rejected")
	}
	var st control.Stats
	if err := json.Unmarshal([]byte(a.mustCtl("stats", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.ChildFailures != 1 {
		t.Errorf("stats: %d Child SA failures, want 1", st.ChildFailures)
	}
	if r := a.ctl("initiate", "--child", "nosuch"); r.code != 1 || !strings.Contains(r.stderr, `no child named "nosuch"`) {
		t.Errorf("initiate --child nosuch: exit %d, %q", r.code, r.stderr)
	}
}

// sameChild reports whether x and y are the same Child SA (ID and SPIs).
func sameChild(x, y control.ChildSA) bool {
	return x.UniqueID == y.UniqueID && x.SPIIn == y.SPIIn && x.SPIOut == y.SPIOut
}

// summary prints IKE SAs briefly for failure messages.
func summary(sas []control.IKESA) string {
	var b strings.Builder
	for _, sa := range sas {
		fmt.Fprintf(&b, "[%s #%d %s %v_i %v_r, %d children] ", sa.Conn, sa.UniqueID, sa.State, sa.SPIi, sa.SPIr, len(sa.Children))
	}
	return b.String()
}

// TestSecondSignalExitsAtOnce: with its peer gone, a graceful stop waits for DELETE
// answers that never come (up to the shutdown grace, 5 s); a second SIGTERM ends the
// daemon at once, with status 1.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	a, b := pairOf(t, daemonOpts{}, siteConn)
	waitTunnel(t, a, b, "site", "net1", "net2")
	b.kill()
	p := a.proc
	a.signal(syscall.SIGTERM)
	eventually(t, 5*time.Second, "a begins its graceful stop", func() string {
		if !strings.Contains(a.log.String(), "shutting down") {
			return "no 'shutting down' in a's log"
		}
		return ""
	})
	if exited, _ := p.Exited(); exited {
		t.Fatalf("a exited before its silent peer could answer the DELETE: the stop was not graceful")
	}
	a.signal(syscall.SIGTERM)
	select {
	case <-p.Done():
	case <-time.After(4 * time.Second): // less than the 5 s a graceful stop would wait
		t.Fatalf("a still runs 4s after the second SIGTERM")
	}
	a.proc = nil
	if _, err := p.Exited(); err == nil || !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("exit after a second signal: %v, want exit status 1", err)
	}
	if !strings.Contains(a.log.String(), "second signal: exiting at once") {
		t.Errorf("a's log does not say why it exited at once")
	}
}

// TestChaosKill: with chaos enabled, cygnetctl debug kill stops actors as if they had
// crashed, and the failure table holds across real daemons: a killed Child SA actor
// takes down that Child SA only (its peer is told, the IKE SA and the sibling stay); a
// killed family takes down its IKE SA and Child SAs.
func TestChaosKill(t *testing.T) {
	t.Parallel()
	a, b := pairOf(t, daemonOpts{extra: "  chaos: yes"}, siteConn)
	before := waitTunnel(t, a, b, "site", "net1", "net2")
	a.mustCtl("debug", "kill", fmt.Sprintf("child:%d", before.child("net1").UniqueID))
	var after tunnel
	eventually(t, 20*time.Second, "net1 gone on both sides, net2 and the IKE SA kept", func() string {
		var why string
		after, why = pairState(a, b, "site", "net2")
		return why
	})
	if after.a.SPIi != before.a.SPIi || after.a.SPIr != before.a.SPIr || !sameChild(after.child("net2"), before.child("net2")) {
		t.Errorf("killing net1's actor changed the IKE SA or net2")
	}
	a.mustCtl("debug", "kill", fmt.Sprintf("ike:%d", before.a.UniqueID))
	eventually(t, 20*time.Second, "the killed family's SAs gone from a", func() string {
		if sas := a.sas(); len(sas) != 0 {
			return fmt.Sprintf("a still lists %s", summary(sas))
		}
		return ""
	})
	if r := a.ctl("debug", "kill", "child:999"); r.code != 1 || !strings.Contains(r.stderr, "no Child SA #999") {
		t.Errorf("debug kill child:999: exit %d, %q", r.code, r.stderr)
	}
}
