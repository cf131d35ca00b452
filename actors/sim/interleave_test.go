package sim

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
)

var interleavings = flag.Int("sim.interleavings", 1500, "TestRekeyCollisionInterleavings: orderings per case")

// TestRekeyCollisionInterleavings explores the orderings of colliding exchanges with
// slow key-exchange work (PFS): both ends rekey the same Child SA, or the IKE SA, or
// one rekeys the IKE SA and the other the Child SA, or one deletes the Child SA the
// other rekeys or the IKE SA the other rekeys; every datagram delivery and every Work
// result comes in a random order. Once all is delivered and done, each end holds
// exactly one Child SA of the definition (none after a delete), the ends agree, and the
// invariants hold (RFC 7296 §2.8.1, §2.8.2: one survivor; §2.25).
func TestRekeyCollisionInterleavings(t *testing.T) {
	for _, kind := range []string{"rekey-child", "rekey-ike", "rekey-ike/rekey-child", "rekey-child/delete-child", "delete-child/rekey-ike"} {
		for seed := range *interleavings {
			if msg := rekeyInterleaving(kind, uint64(seed), false); msg != "" {
				t.Fatalf("%s, ordering %d: %s", kind, seed, msg)
			}
		}
	}
}

// TestRekeyCollisionInterleavingsInOrder is TestRekeyCollisionInterleavings with the
// datagrams delivered in the order they were sent (as on loopback; the Work results
// still come in a random order): then every redundant or replaced IKE SA is deleted
// by the end that should (§2.8.2), not left to the other end's oldIKELinger. Once all
// is delivered and done, and before oldIKELinger has passed, each family holds one IKE
// SA. (A reordering network can make the winner's DELETE overtake its answer, and then
// the linger is what deletes the redundant IKE SA: see the script
// collision_ike_rekey_delete_before_response.)
func TestRekeyCollisionInterleavingsInOrder(t *testing.T) {
	for _, kind := range []string{"rekey-ike", "rekey-ike/rekey-child", "delete-child/rekey-ike"} {
		for seed := range *interleavings {
			if msg := rekeyInterleaving(kind, uint64(seed), true); msg != "" {
				t.Fatalf("%s, in-order ordering %d: %s", kind, seed, msg)
			}
		}
	}
}

// rekeyInterleaving runs one ordering of kind; inOrder delivers the datagrams first in,
// first out and checks that no family holds a second IKE SA before oldIKELinger.
func rekeyInterleaving(kind string, seed uint64, inOrder bool) string {
	w := New(seed%13 + 1) // the nonces, hence the winner, vary with the world's seed
	var script []string
	run := func(cmd string) {
		script = append(script, cmd)
		if _, err := w.Exec(cmd); err != nil {
			panic(fmt.Sprintf("%s: %v", cmd, err))
		}
	}
	run("pair esp=aes256gcm16-x25519")
	run("initiate A net")
	run("deliver")
	run("defer-work on")
	cmds := strings.Split(kind, "/")
	if len(cmds) == 1 {
		cmds = append(cmds, kind) // both ends the same
	}
	for i, n := range []string{"A", "B"} {
		if strings.HasSuffix(cmds[i], "-child") {
			run(cmds[i] + " " + n + " net")
		} else {
			run(cmds[i] + " " + n)
		}
	}
	want := 1 // Child SAs of net at each end in the end
	if strings.Contains(kind, "delete-child") {
		want = 0
	}
	r := rand.New(rand.NewPCG(seed, 0x1e4))
	for range 400 {
		nIn, nWork := len(w.Net.InFlight), len(w.PendingWork())
		if nIn+nWork == 0 {
			break
		}
		i := r.IntN(nIn + nWork)
		if i < nIn {
			if !inOrder {
				w.Net.InFlight[0], w.Net.InFlight[i] = w.Net.InFlight[i], w.Net.InFlight[0]
			}
			w.Deliver(1)
			script = append(script, "deliver: "+w.Output())
		} else {
			name := w.PendingWork()[i-nIn]
			w.RunWorkAt(i - nIn)
			script = append(script, "run "+name+": "+w.Output())
		}
	}
	w.DeferWork = false
	script = append(script, "(all work, all datagrams, time)")
	w.RunWork()
	w.Deliver(-1)
	fail := func(msg string) string {
		return msg + "\n" + w.ShowSAs() + "steps:\n" + strings.Join(script, "\n") + "\nthen:\n" + w.Output()
	}
	if inOrder {
		// Retries after TEMPORARY_FAILURE, but short of oldIKELinger (30 s).
		for range 5 {
			w.Advance(5e9)
			w.RunWork()
			w.Deliver(-1)
		}
		for _, n := range w.Nodes {
			for _, fh := range n.Live() {
				if s := fh.F.Snapshot(); len(s.IKE) != 1 {
					return fail(fmt.Sprintf("%s holds %d IKE SAs 25 s after the last exchange", fh.Name(), len(s.IKE)))
				}
			}
		}
	}
	for range 3 {
		w.Advance(40e9)
		w.RunWork()
		w.Deliver(-1)
	}
	if !w.Quiet() {
		return fail("not quiet")
	}
	if v := w.Check(); len(v) > 0 {
		return fail(strings.Join(v, "; "))
	}
	for _, n := range w.Nodes {
		live := n.Live()
		if len(live) != 1 {
			return fail(fmt.Sprintf("%s has %d families", n.Name, len(live)))
		}
		up := 0
		for _, c := range live[0].F.Snapshot().Children {
			if c.Name == "net" && c.State == ike.ChildStateUp {
				up++
			}
		}
		if up != want {
			return fail(fmt.Sprintf("%s holds %d Child SAs of net", n.Name, up))
		}
	}
	return ""
}
