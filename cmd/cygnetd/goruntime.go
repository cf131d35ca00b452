package main

import (
	"math"
	"runtime/debug"
	"strconv"

	"go.uber.org/zap"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/config"
)

// goRuntime is the Go runtime's garbage collector settings: the GC target percentage
// (GOGC; -1 off) and the soft memory limit in bytes (GOMEMLIMIT; math.MaxInt64 none).
//
// The trade-off an operator tunes (daemon.gc_percent, daemon.memory_limit): a
// concentrator's heap is mostly long-lived SA state, so the default GOGC=100 lets the
// heap grow to twice the live state before a collection. A higher gc_percent (or off)
// spends less CPU on collection at the price of a larger peak heap; a memory_limit
// makes the collector work harder only as the heap nears the limit, so "gc_percent off
// + memory_limit a bit under the machine's share" uses the memory it is given and no
// more — but too low a limit makes the collector run continuously (CPU spent, setup
// rate down), which is why the loader refuses limits below 64m.
type goRuntime struct {
	gcPercent   int
	memoryLimit int64
}

// currentGoRuntime reads the runtime's settings (those of GOGC and GOMEMLIMIT, until
// cygnetd changes them). Call it once, before anything else changes them.
func currentGoRuntime() goRuntime {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return goRuntime{gcPercent: p, memoryLimit: debug.SetMemoryLimit(-1)}
}

// want is what the daemon: section asks for, base (Go's own settings) where it asks
// for nothing.
func (base goRuntime) want(d config.Daemon) goRuntime {
	g := base
	switch {
	case d.GCPercent == config.GCPercentOff:
		g.gcPercent = -1
	case d.GCPercent > 0:
		g.gcPercent = d.GCPercent
	}
	if d.MemoryLimit > 0 {
		g.memoryLimit = d.MemoryLimit
	}
	return g
}

// apply sets the runtime to what d asks for (at start and at every reload) and logs the
// settings when they change.
func (base goRuntime) apply(d config.Daemon, log *zap.Logger) {
	g := base.want(d)
	before := currentGoRuntime()
	if g == before {
		return
	}
	debug.SetGCPercent(g.gcPercent)
	debug.SetMemoryLimit(g.memoryLimit)
	log.Info("Go runtime garbage collector settings", zap.String("gc_percent", g.gcString()), zap.String("memory_limit", g.limitString()))
}

func (g goRuntime) gcString() string {
	if g.gcPercent < 0 {
		return "off"
	}
	return strconv.Itoa(g.gcPercent)
}

func (g goRuntime) limitString() string {
	if g.memoryLimit == math.MaxInt64 {
		return "none"
	}
	return strconv.FormatInt(g.memoryLimit>>20, 10) + "m"
}
