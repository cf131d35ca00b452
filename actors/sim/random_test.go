package sim

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var (
	smokeSeeds = flag.Int("sim.smoke", 200, "seeds for the randomized smoke test")
	smokeFrom  = flag.Uint64("sim.smokefrom", 0, "first seed of the randomized smoke test")
)

// randomRun drives a pair with random commands over a lossy network and returns the
// script it ran (for replay) and the invariant violations at the end.
func randomRun(seed uint64) (script []string, violations []string, err error) {
	r := rand.New(rand.NewPCG(seed, 77))
	w := New(seed)
	run := func(cmd string) error {
		script = append(script, cmd)
		_, e := w.Exec(cmd)
		if e != nil && !strings.Contains(e.Error(), "has no") {
			return fmt.Errorf("%s: %w", cmd, e)
		}
		return nil
	}
	opts := []string{"pair", "child-rekey=" + []string{"2m", "5m", "1h"}[r.IntN(3)], "dpd=" + []string{"0s", "20s"}[r.IntN(2)]}
	if r.IntN(3) == 0 {
		opts = append(opts, "esp=aes256gcm16-x25519")
	}
	if r.IntN(3) == 0 {
		opts = append(opts, "rekey="+[]string{"3m", "10m"}[r.IntN(2)])
	}
	for _, c := range []string{strings.Join(opts, " "),
		"child A net2 local=198.51.100.2/32 remote=203.0.113.2/32",
		"child B net2 local=203.0.113.2/32 remote=198.51.100.2/32",
		fmt.Sprintf("link A B loss=%.2f dup=%.2f reorder=%.2f delay=%dms", r.Float64()*0.1, r.Float64()*0.05, r.Float64()*0.2, 5+r.IntN(50)),
		fmt.Sprintf("link B A loss=%.2f dup=%.2f reorder=%.2f delay=%dms", r.Float64()*0.1, r.Float64()*0.05, r.Float64()*0.2, 5+r.IntN(50)),
		"auto on", "initiate A net"} {
		if err := run(c); err != nil {
			return script, nil, err
		}
	}
	nodes := []string{"A", "B"}
	children := []string{"net", "net2"}
	for range 30 {
		n := nodes[r.IntN(2)]
		c := children[r.IntN(2)]
		var cmd string
		switch r.IntN(10) {
		case 0:
			cmd = "rekey-child " + n + " " + c
		case 1:
			cmd = "rekey-ike " + n
		case 2:
			cmd = "initiate " + n + " " + c
		case 3:
			cmd = "delete-child " + n + " " + c
		case 4:
			cmd = "kill-child " + n + " " + c
		case 5:
			cmd = "fail-next-install " + n
		default:
			cmd = fmt.Sprintf("advance %dms", r.IntN(20000))
		}
		if err := run(cmd); err != nil {
			return script, nil, err
		}
		if v := w.checkKernel(); len(v) > 0 {
			return script, v, nil
		}
		if v := w.checkMsgIDs(); len(v) > 0 {
			return script, v, nil
		}
	}
	// Quiesce: a clean network and time for retransmissions, retries and deletes.
	for _, c := range []string{"link A B loss=0 dup=0 reorder=0 delay=10ms", "link B A loss=0 dup=0 reorder=0 delay=10ms", "advance 300s"} {
		if err := run(c); err != nil {
			return script, nil, err
		}
	}
	if !w.Quiet() {
		// Timers may keep it busy (liveness, rekeys): stop at a quiet moment.
		for i := 0; i < 1000 && !w.Quiet(); i++ {
			w.Advance(10 * time.Millisecond)
		}
	}
	return script, w.Check(), nil
}

// TestRandomSmoke runs a few hundred randomized seeds (the full campaign lives with the
// simulator's randomized runs); a failing seed prints the script that replays it.
func TestRandomSmoke(t *testing.T) {
	for seed := *smokeFrom; seed < *smokeFrom+uint64(*smokeSeeds); seed++ {
		script, v, err := randomRun(seed)
		if err != nil || len(v) > 0 {
			t.Fatalf("seed %d: %v %v\nreplay script:\n%s", seed, err, strings.Join(v, "\n"), strings.Join(script, "\n"))
		}
	}
}
