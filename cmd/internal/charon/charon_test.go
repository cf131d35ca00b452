package charon

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strongswan/govici/vici"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/netns"
)

func TestRenderConfPluginOrder(t *testing.T) {
	lib := renderConf("/tmp/x", Options{})
	i, n := strings.Index(lib, "kernel-libipsec"), strings.Index(lib, "kernel-netlink")
	if i < 0 || n < 0 || i > n {
		t.Errorf("LibIPsec: kernel-libipsec must be loaded before kernel-netlink:\n%s", lib)
	}
	for _, banned := range []string{"stroke", "lookip", "error-notify", "updown"} {
		if strings.Contains(lib, banned) {
			t.Errorf("plugin %s loaded (binds fixed paths under /run)", banned)
		}
	}
	if !strings.Contains(lib, "socket = unix:///tmp/x/charon.vici") {
		t.Errorf("vici socket not in the private directory:\n%s", lib)
	}
	nl := renderConf("/tmp/x", Options{Backend: NetlinkOnly, FragmentSize: 576, RetransmitTries: 2, RetransmitTimeout: 0.5, LogKeys: true})
	if strings.Contains(nl, "kernel-libipsec") {
		t.Errorf("NetlinkOnly loads kernel-libipsec:\n%s", nl)
	}
	for _, want := range []string{"fragment_size = 576", "retransmit_tries = 2", "retransmit_timeout = 0.5", "ike = 4", "chd = 4"} {
		if !strings.Contains(nl, want) {
			t.Errorf("missing %q:\n%s", want, nl)
		}
	}
	if strings.Count(nl, "{") != strings.Count(nl, "}") {
		t.Errorf("unbalanced braces:\n%s", nl)
	}
}

func TestConnMessage(t *testing.T) {
	c := Conn{
		Name: "ab", LocalAddrs: []string{"192.0.2.1"}, RemoteAddrs: []string{"192.0.2.2"},
		Proposals: []string{"aes256gcm16-prfsha256-x25519"}, LocalID: "a", RemoteID: "b",
		RekeyTime: Never, DPDDelay: 2 * time.Second, Fragmentation: "force",
		Children: []Child{{Name: "net", LocalTS: []string{"198.51.100.1/32"}, RemoteTS: []string{"203.0.113.1/32"},
			ESPProposals: []string{"aes256gcm16"}, LifeTime: time.Hour}},
	}
	m, err := c.message()
	if err != nil {
		t.Fatal(err)
	}
	body, ok := m.Get("ab").(*vici.Message)
	if !ok {
		t.Fatalf("no section ab in %s", m)
	}
	for key, want := range map[string]string{"version": "2", "mobike": "no", "rekey_time": "0", "dpd_delay": "2s", "fragmentation": "force"} {
		if got := str(body, key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if str(body, "reauth_time") != "" {
		t.Errorf("unset reauth_time was sent")
	}
	child := sub(sub(body, "children"), "net")
	if child == nil {
		t.Fatalf("no child net in %s", m)
	}
	if got := list(child, "esp_proposals"); len(got) != 1 || got[0] != "aes256gcm16" {
		t.Errorf("esp_proposals %v", got)
	}
	if got := str(child, "life_time"); got != "3600s" {
		t.Errorf("life_time %q", got)
	}
	if got := str(sub(body, "local"), "auth"); got != "psk" {
		t.Errorf("local auth %q", got)
	}
	c.DPDDelay = 500 * time.Millisecond
	if _, err := c.message(); err == nil {
		t.Error("sub-second dpd_delay accepted")
	}
}

func TestTargetExactlyOne(t *testing.T) {
	for _, tc := range []struct {
		t  Target
		ok bool
	}{{Target{IKE: "ab"}, true}, {Target{ChildID: 3}, true}, {Target{}, false}, {Target{IKE: "ab", Child: "net"}, false}} {
		err := tc.t.set(vici.NewMessage())
		if (err == nil) != tc.ok {
			t.Errorf("%+v: err %v", tc.t, err)
		}
	}
}

// msg builds a vici message from alternating keys and values (string, []string
// or *vici.Message).
func msg(t *testing.T, kv ...any) *vici.Message {
	t.Helper()
	m := vici.NewMessage()
	for i := 0; i < len(kv); i += 2 {
		if err := m.Set(kv[i].(string), kv[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestParseChildRekeyEvent(t *testing.T) {
	child := func(id, spiIn string) *vici.Message {
		return msg(t, "name", "net", "uniqueid", id, "state", "INSTALLED", "spi-in", spiIn, "spi-out", "0badc0de",
			"encap", "yes", "local-ts", []string{"198.51.100.1/32"}, "remote-ts", []string{"203.0.113.1/32"})
	}
	ev := vici.Event{Name: "child-rekey", Message: msg(t, "ab", msg(t,
		"uniqueid", "7", "state", "ESTABLISHED", "initiator", "yes",
		"initiator-spi", "d77925670b93638a", "responder-spi", "fbe5e2dfbce63b03",
		"child-sas", msg(t, "net-1", msg(t, "old", child("1", "cf63544a"), "new", child("2", "5114d257"))),
	))}
	e := parseEvent(ev)
	if e.Err != nil {
		t.Fatal(e.Err)
	}
	if e.Kind != ChildRekey || e.IKE.Conn != "ab" || e.IKE.UniqueID != 7 || !e.IKE.Initiator {
		t.Errorf("event %+v", e)
	}
	if e.IKE.SPIi != 0xd77925670b93638a || e.IKE.SPIr != 0xfbe5e2dfbce63b03 {
		t.Errorf("SPIs %x %x", e.IKE.SPIi, e.IKE.SPIr)
	}
	if e.OldChild == nil || e.Child == nil || e.OldChild.SPIIn != 0xcf63544a || e.Child.SPIIn != 0x5114d257 || !e.Child.Encap {
		t.Errorf("children old %+v new %+v", e.OldChild, e.Child)
	}

	bad := parseEvent(vici.Event{Name: "ike-updown", Message: msg(t, "up", "yes", "ab", msg(t, "uniqueid", "x"))})
	if bad.Err == nil {
		t.Error("non-numeric uniqueid parsed without error")
	}
	empty := parseEvent(vici.Event{Name: "ike-updown", Message: msg(t, "up", "yes")})
	if empty.Err == nil {
		t.Error("event without an IKE SA section parsed without error")
	}
}

// TestStartLoadStop starts a real charon: it answers vici, loads a connection,
// holds no SA, and is gone after Stop.
func TestStartLoadStop(t *testing.T) {
	t.Parallel()
	p := netns.NewPair(t)
	c := Start(t, "A", p.A, Options{Backend: NetlinkOnly})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.LoadConn(ctx, Conn{Name: "ab", LocalAddrs: []string{"192.0.2.1"}, RemoteAddrs: []string{"192.0.2.2"},
		LocalID: "192.0.2.1", RemoteID: "192.0.2.2", PSK: "secret-secret-secret",
		Children: []Child{{Name: "net", LocalTS: []string{"198.51.100.1/32"}, RemoteTS: []string{"203.0.113.1/32"}}}}); err != nil {
		t.Fatal(err)
	}
	// A bad connection is refused with charon's reason.
	if err := c.LoadConn(ctx, Conn{Name: "bad", Proposals: []string{"no-such-algorithm"}}); err == nil {
		t.Error("charon accepted proposal no-such-algorithm")
	}
	out, err := c.Swanctl(ctx, "--list-conns")
	if err != nil || !strings.Contains(string(out), "ab:") {
		t.Errorf("swanctl --list-conns: %v\n%s", err, out)
	}
	sas, err := c.ListSAs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sas) != 0 {
		t.Errorf("fresh charon holds SAs:\n%s", FormatSAs(sas))
	}
	if !strings.Contains(c.Log(), "loaded plugins: charon") || strings.Contains(c.Log(), "kernel-libipsec") {
		t.Errorf("log does not show the netlink-only plugin list:\n%s", c.Log())
	}
	pid := c.Pid()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("charon pid %d still exists after Stop", pid)
	}
}

// TestPairEvents establishes between two charons and checks the recorded vici
// events: up on both sides with the same SPIs, a child rekey with old and new
// SPIs, and the IKE SA going down on both after a delete.
func TestPairEvents(t *testing.T) {
	t.Parallel()
	p := netns.NewPair(t)
	a := Start(t, "A", p.A, Options{})
	b := Start(t, "B", p.B, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := func(l, r *netns.NS) Conn {
		return Conn{Name: "ab", LocalAddrs: []string{l.Outer.Addr().String()}, RemoteAddrs: []string{r.Outer.Addr().String()},
			LocalID: l.Outer.Addr().String(), RemoteID: r.Outer.Addr().String(), PSK: "interop-test-psk-0123456789abcdef",
			Children: []Child{{Name: "net", LocalTS: []string{l.Inner.String() + "/32"}, RemoteTS: []string{r.Inner.String() + "/32"}}}}
	}
	if err := a.LoadConn(ctx, conn(p.A, p.B)); err != nil {
		t.Fatal(err)
	}
	if err := b.LoadConn(ctx, conn(p.B, p.A)); err != nil {
		t.Fatal(err)
	}
	if err := a.Initiate(ctx, "ab", "net"); err != nil {
		t.Fatal(err)
	}
	var ups [2]Event
	for i, c := range []*Charon{a, b} {
		ike, _, err := c.Events().WaitFrom(ctx, 0, OfKind(IKEUp, "ab"))
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		child, _, err := c.Events().WaitFrom(ctx, 0, OfKind(ChildUp, "ab"))
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if ike.IKE.SPIi == 0 || child.Child == nil || child.Child.SPIIn == 0 {
			t.Fatalf("%s: events %v / %v", c.Name, ike, child)
		}
		ups[i] = child
	}
	if ups[0].IKE.SPIi != ups[1].IKE.SPIi || ups[0].Child.SPIIn != ups[1].Child.SPIOut || !ups[0].IKE.Initiator || ups[1].IKE.Initiator {
		t.Errorf("A and B disagree: %v / %v", ups[0], ups[1])
	}
	mark := b.Events().Len()
	if err := a.Rekey(ctx, Target{Child: "net"}); err != nil {
		t.Fatal(err)
	}
	rk, _, err := b.Events().WaitFrom(ctx, mark, OfKind(ChildRekey, "ab"))
	if err != nil {
		t.Fatal(err)
	}
	if rk.OldChild == nil || rk.Child == nil || rk.OldChild.SPIIn != ups[1].Child.SPIIn || rk.Child.SPIIn == rk.OldChild.SPIIn {
		t.Errorf("child-rekey on B: %+v", rk)
	}
	if err := b.Rekey(ctx, Target{Child: "nosuch"}); err == nil {
		t.Error("rekey of an unknown child matched something")
	}
	if err := b.Terminate(ctx, Target{IKE: "ab"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Charon{a, b} {
		if _, _, err := c.Events().WaitFrom(ctx, 0, OfKind(IKEDown, "ab")); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
	}
}
