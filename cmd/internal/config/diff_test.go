package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const diffBase = `
daemon:
  log: {level: info}
connections:
  keep:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.2
    remote: {id: 192.0.2.2}
    children: {keep-net: {local_ts: 10.1.0.0/16}}
  change:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.3
    remote: {id: 192.0.2.3}
    children: {change-net: {local_ts: 10.2.0.0/16}}
  rekeyed-secret:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.4
    remote: {id: 192.0.2.4}
  gone:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.5
    remote: {id: 192.0.2.5}
secrets:
  ike-keep: {id-a: 192.0.2.1, id-b: 192.0.2.2, secret: k1}
  ike-change: {id-a: 192.0.2.1, id-b: 192.0.2.3, secret: k2}
  ike-rs: {id-a: 192.0.2.1, id-b: 192.0.2.4, secret: old}
  ike-gone: {id-a: 192.0.2.1, id-b: 192.0.2.5, secret: k4}
`

func TestDiff(t *testing.T) {
	old := mustParse(t, diffBase)
	// The new file moves every line (comments, reordering) without changing "keep":
	// line numbers are not part of a definition.
	cur := mustParse(t, `
# reordered and commented
daemon:
  log: {level: debug}
  port: 5500
connections:
  added:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.6
    remote: {id: 192.0.2.6}
  rekeyed-secret:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.4
    remote: {id: 192.0.2.4}
  change:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.3
    remote: {id: 192.0.2.3}
    children: {change-net: {local_ts: 10.2.0.0/17}}
  keep:
    remote_addrs: 192.0.2.2
    remote: {id: 192.0.2.2}
    local_addrs: 192.0.2.1

    children:
      keep-net:
        local_ts: [10.1.0.0/16]
secrets:
  ike-keep: {id-a: 192.0.2.1, id-b: 192.0.2.2, secret: k1}
  ike-change: {id-a: 192.0.2.1, id-b: 192.0.2.3, secret: k2}
  ike-rs: {id-a: 192.0.2.1, id-b: 192.0.2.4, secret: new}
  ike-added: {id-a: 192.0.2.1, id-b: 192.0.2.6, secret: k5}
`)
	got := Diff(old, cur)
	want := Changes{
		Added:         []string{"added"},
		Removed:       []string{"gone"},
		Changed:       []string{"change"},
		SecretChanged: []string{"rekeyed-secret"},
		Unchanged:     []string{"keep"},
		Restart:       []string{"daemon.port"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Diff (-want +got):\n%s", d)
	}
	if got.Empty() {
		t.Error("Empty() on a diff with changes")
	}
	if same := Diff(old, mustParse(t, diffBase)); !same.Empty() || len(same.Unchanged) != 4 || len(same.Restart) != 0 {
		t.Errorf("Diff of a file with itself = %+v", same)
	}
}

// Every key of a connection or child takes part in the comparison: changing any one of
// them makes the connection "changed".
func TestDiffSeesEveryKey(t *testing.T) {
	base := `
connections:
  c:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.2
    remote: {id: 192.0.2.2}
    children:
      n: {}
secrets:
  ike: {secret: k}
`
	old := mustParse(t, base)
	for _, edit := range []string{
		"    version: 2", "    local_port: 4500", "    remote_port: 4500", "    proposals: aes128gcm16-prfsha256-ecp256",
		"    local: {id: other.example}", "    dpd_delay: 10s", "    rekey_time: 1h",
		"    over_time: 1m", "    rand_time: 1m", "    reauth_time: 2h", "    fragmentation: no", "    encap: yes",
		"    childless: force",
	} {
		src := strings.Replace(base, "    children:", edit+"\n    children:", 1)
		if ch := Diff(old, mustParse(t, src)); len(ch.Changed) != 1 {
			t.Errorf("editing %q: %+v, want c changed", strings.TrimSpace(edit), ch)
		}
	}
	if ch := Diff(old, mustParse(t, strings.Replace(base, "id: 192.0.2.2", "id: peer.example", 1))); len(ch.Changed) != 1 {
		t.Errorf("editing remote.id: %+v, want c changed", ch)
	}
	for _, edit := range []string{
		"local_ts: 10.0.0.0/8", "remote_ts: 10.0.0.0/8", "esp_proposals: aes128gcm16", "mode: transport",
		"start_action: trap", "dpd_action: restart", "close_action: trap", "rekey_time: 2h", "life_time: 3h",
		"rand_time: 1m", "rekey_bytes: 1m", "life_bytes: 2g", "rand_bytes: 1k", "rekey_packets: 1000",
		"life_packets: 5000", "rand_packets: 10", "replay_window: 64",
	} {
		src := strings.Replace(base, "n: {}", "n: {"+edit+"}", 1)
		if ch := Diff(old, mustParse(t, src)); len(ch.Changed) != 1 {
			t.Errorf("editing child %q: %+v, want c changed", edit, ch)
		}
	}
}
