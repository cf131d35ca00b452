package ike

import (
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

type seededEnv struct{ r *rand.ChaCha8 }

func (e seededEnv) Rand() io.Reader                   { return e.r }
func (e seededEnv) AllocSPI(ChildRef) (uint32, error) { return 1, nil }

// TestLifetimeJitter: 10,000 IKE SAs and Child SAs set up in the same second must not
// rekey in the same second (strongSwan's rand_time). With the defaults (Child SA rekey
// 1 h minus up to 6 min, IKE SA 4 h minus up to 24 min) they spread over the window.
func TestLifetimeJitter(t *testing.T) {
	const n = 10000
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	childSec := map[int64]int{}
	ikeSec := map[int64]int{}
	cfg := Connection{Name: "x", RekeyTime: 0}
	cfg = cfg.WithDefaults()
	cc := (&ChildConfig{Name: "c"}).WithDefaults()
	for i := range n {
		var seed [32]byte
		seed[0], seed[1] = byte(i), byte(i>>8)
		f := &Family{cfg: &cfg, rand: seededEnv{rand.NewChaCha8(seed)}.Rand(), now: base}
		lt := f.childLifetime(&cc)
		if lt.SoftTime > cc.RekeyTime || lt.SoftTime <= cc.RekeyTime-cc.RandTime || lt.HardTime != cc.LifeTime {
			t.Fatalf("child lifetime %+v outside [rekey-rand, rekey]", lt)
		}
		childSec[int64(lt.SoftTime/time.Second)]++
		ike := &ikeSA{}
		f.scheduleIKELifetime(ike)
		if d := ike.rekeyAt.Sub(base); d > cfg.RekeyTime || d <= cfg.RekeyTime-cfg.RandTime {
			t.Fatalf("IKE rekey after %v", d)
		}
		ikeSec[ike.rekeyAt.Unix()]++
	}
	for name, m := range map[string]map[int64]int{"child": childSec, "ike": ikeSec} {
		most := 0
		for _, c := range m {
			most = max(most, c)
		}
		// 6 min = 360 s for children: ~28 per second on average.
		if len(m) < 300 || most > 80 {
			t.Errorf("%s rekeys of %d SAs fall in %d distinct seconds, at most %d in one", name, n, len(m), most)
		}
		t.Logf("%s: %d SAs rekey over %d distinct seconds, at most %d in one second", name, n, len(m), most)
	}
}
