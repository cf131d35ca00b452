package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/netns"
)

// A concentrator connection (remote id %any, responder only) and two branches with
// different pre-shared keys, named by their identities in secrets (swanctl's
// secrets { ike-b1 { id = … } }): both establish, each with its own Child SA; a third
// branch that presents b1's key under its own identity is refused. The b1 connection has
// rekey_time 0 on both ends: list-sas shows no rekey time for its IKE SA or Child SA.
func TestConcentratorPerPeerKeys(t *testing.T) {
	t.Parallel()
	p := netns.NewPair(t)
	a := newDaemon(t, "a", p.A)
	b := newDaemon(t, "b", p.B)
	a.writeConfig(fmt.Sprintf(`
daemon:
  listen_addrs: [%[1]s]
  control_socket: %[2]s
  metrics_address: ~
  log: {format: json, level: debug}
connections:
  branches:
    local_addrs: [%[1]s]
    proposals: [aes128gcm16-prfsha256-x25519]
    local: {auth: psk, id: hq.example}
    remote: {auth: psk, id: "%%any"}
    children:
      lan:
        local_ts: [198.51.100.1/32]
        remote_ts: [203.0.113.0/24]
        esp_proposals: [aes128gcm16]
        rekey_time: 0
secrets:
  ike-b1: {id-hq: hq.example, id-b: b1.example, secret: "branch one key 0123456789"}
  ike-b2: {id-hq: hq.example, id-b: b2.example, secret: "branch two key 0123456789"}
`, p.A.Outer.Addr(), a.socket))
	var branches strings.Builder
	for _, br := range []struct {
		name, key, rekey string
		port             int
	}{{"b1", "branch one key 0123456789", "0", 1001}, {"b2", "branch two key 0123456789", "4h", 1002}, {"b3", "branch one key 0123456789", "4h", 1003}} {
		fmt.Fprintf(&branches, `
  %[1]s:
    local_addrs: [%[2]s]
    remote_addrs: [%[3]s]
    proposals: [aes128gcm16-prfsha256-x25519]
    local: {auth: psk, id: %[1]s.example}
    remote: {auth: psk, id: hq.example}
    rekey_time: %[4]s
    children:
      %[1]s-lan:
        local_ts: ["203.0.113.1/32[udp/%[5]d]"]
        remote_ts: [198.51.100.1/32]
        esp_proposals: [aes128gcm16]
        rekey_time: %[4]s
`, br.name, p.B.Outer.Addr(), p.A.Outer.Addr(), br.rekey, br.port)
	}
	b.writeConfig(fmt.Sprintf(`
daemon:
  listen_addrs: [%s]
  control_socket: %s
  metrics_address: ~
  log: {format: json, level: debug}
connections:%s
secrets:
  ike-b1: {id-a: b1.example, id-b: hq.example, secret: "branch one key 0123456789"}
  ike-b2: {id-a: b2.example, id-b: hq.example, secret: "branch two key 0123456789"}
  ike-b3: {id-a: b3.example, id-b: hq.example, secret: "branch one key 0123456789"}
`, p.B.Outer.Addr(), b.socket, branches.String()))
	a.start()
	b.start()
	b.mustCtl("initiate", "--child", "b1-lan")
	b.mustCtl("initiate", "--child", "b2-lan")
	if r := b.ctl("initiate", "--child", "b3-lan"); r.code != 1 || !strings.Contains(r.stderr, "AUTHENTICATION_FAILED") {
		t.Errorf("b3 with b1's key: exit %d, %q; want 1 and AUTHENTICATION_FAILED named", r.code, r.stderr)
	}
	for _, d := range []*daemon{a, b} {
		if !strings.Contains(d.log.String(), "AUTHENTICATION_FAILED") {
			t.Errorf("cygnetd %s's log does not name AUTHENTICATION_FAILED for b3", d.name)
		}
	}
	eventually(t, 20*time.Second, "the concentrator holds b1's and b2's IKE SAs, each with its Child SA", func() string {
		byPeer := map[string]control.IKESA{}
		for _, sa := range a.sas() {
			if sa.State == "ESTABLISHED" {
				byPeer[sa.RemoteID] = sa
			}
		}
		if len(byPeer) != 2 || countInstalled(byPeer["b1.example"]) != 1 || countInstalled(byPeer["b2.example"]) != 1 {
			return summary(a.sas())
		}
		return ""
	})
	reqids := map[uint32]bool{}
	for _, sa := range a.sas() {
		if sa.RemoteID == "b3.example" && sa.State == "ESTABLISHED" {
			t.Errorf("the concentrator established b3 (wrong key): %+v", sa)
		}
		// list-sas shows each Child SA's kernel reqid (cygnet's tag in the top byte),
		// one per Child SA.
		for _, ch := range sa.Children {
			if ch.ReqID>>24 != 0xc7 || reqids[ch.ReqID] {
				t.Errorf("%s's Child SA %s: reqid %#x; want a distinct cygnet reqid (0xc7……)", sa.RemoteID, ch.Name, ch.ReqID)
			}
			reqids[ch.ReqID] = true
		}
	}
	// rekey_time 0 on both ends of b1 (the concentrator's child and b1's IKE SA and
	// child): no rekey time; b2's IKE SA (4h on b2's side) has one.
	for _, sa := range b.sas() {
		if sa.State != "ESTABLISHED" {
			continue
		}
		switch sa.Conn {
		case "b1":
			if sa.RekeyAt != 0 || len(sa.Children) != 1 || sa.Children[0].RekeyAt != 0 || sa.Children[0].ExpireAt != 0 {
				t.Errorf("b1 (rekey_time 0): %+v; want no rekey or expiry time", sa)
			}
		case "b2":
			if sa.RekeyAt == 0 {
				t.Errorf("b2 (rekey_time 4h): no rekey time")
			}
		}
	}
	for _, sa := range a.sas() {
		if sa.RemoteID == "b1.example" && (len(sa.Children) != 1 || sa.Children[0].RekeyAt != 0) {
			t.Errorf("concentrator's Child SA with b1 (rekey_time 0): %+v; want no rekey time", sa.Children)
		}
	}
}
