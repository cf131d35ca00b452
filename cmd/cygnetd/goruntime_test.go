package main

import (
	"math"
	"testing"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/config"
)

func TestGoRuntimeWant(t *testing.T) {
	base := goRuntime{gcPercent: 100, memoryLimit: math.MaxInt64}
	for _, c := range []struct {
		d    config.Daemon
		want goRuntime
	}{
		{config.Daemon{}, base},
		{config.Daemon{GCPercent: 400}, goRuntime{400, math.MaxInt64}},
		{config.Daemon{GCPercent: config.GCPercentOff, MemoryLimit: 3 << 30}, goRuntime{-1, 3 << 30}},
	} {
		if got := base.want(c.d); got != c.want {
			t.Errorf("gc_percent %d memory_limit %d: %+v, want %+v", c.d.GCPercent, c.d.MemoryLimit, got, c.want)
		}
	}
	if s := (goRuntime{-1, math.MaxInt64}); s.gcString() != "off" || s.limitString() != "none" {
		t.Errorf("%s %s", s.gcString(), s.limitString())
	}
}
