package actors

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/cygnet-ipsec/cygnet/actors/actorkit"
	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/actors/workpool"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// sender is what the shells need of the UDP layer (*sockets.Set); tests substitute it.
type sender interface {
	Send(local, remote netip.AddrPort, msg []byte) error
	KeepAlive(local, remote netip.AddrPort)
	StopKeepAlive(local, remote netip.AddrPort)
}

// core is what the family shell needs of the protocol core; *ike.Family is one.
type core interface {
	Step(now time.Time, ev ike.Event) []ike.Effect
	Snapshot() ike.Snapshot
}

// coreFactory builds cores. The default uses package ike; shell tests script their own.
type coreFactory interface {
	NewInitiator(cfg *ike.Connection, env ike.Env, opts ike.Options) (core, error)
	NewResponder(now time.Time, candidates []*ike.Connection, env ike.Env, opts ike.Options, first ike.PacketReceived) (core, []ike.Effect, error)
}

type ikeCores struct{}

func (ikeCores) NewInitiator(cfg *ike.Connection, env ike.Env, opts ike.Options) (core, error) {
	f, err := ike.NewInitiator(cfg, env, opts)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (ikeCores) NewResponder(now time.Time, candidates []*ike.Connection, env ike.Env, opts ike.Options, first ike.PacketReceived) (core, []ike.Effect, error) {
	f, effs, err := ike.NewResponder(now, candidates, env, opts, first)
	if err != nil {
		return nil, nil, err
	}
	return f, effs, nil
}

// tree holds what every actor of one daemon shares. It is read-only after New, apart
// from the concurrent structures it points to.
type tree struct {
	sys      *actor.ActorSystem
	kernel   kernel.Kernel
	socks    sender
	pool     *workpool.Pool
	log      *zap.Logger
	rec      telemetry.Recorder
	now      func() time.Time
	cores    coreFactory
	ikeOpts  ike.Options
	routes   *router
	reg      *registry
	events   *eventHub
	traps    *trapTable
	policies *policyTable
	hooks    actorkit.Hooks

	// dispatcher runs the actors' turns, unless Config.Dispatcher replaced it (nil).
	dispatcher *actorkit.Dispatcher

	familyProps, childProps *actor.Props
	// The guard policies the actors run in their own Receive (actorkit.Options.Inline).
	familyPolicy, childPolicy, managerPolicy *actorkit.Policy

	kernelTimeout time.Duration
	familyQueue   int32
	shutdownGrace time.Duration
	workRetry     time.Duration
}

// kctx is the context of one kernel call: its deadline is KernelTimeout from now.
func (t *tree) kctx() (context.Context, context.CancelFunc) {
	c := &kernelCtx{deadline: time.Now().Add(t.kernelTimeout)}
	return c, c.cancel
}

// kernelCtx is a context with a deadline that pays for a timer only when a kernel
// waits on Done. The kernels check Err when a call starts (package memkernel, and
// xfrm before its netlink request); context.WithTimeout armed and stopped a runtime
// timer for each of the half-dozen kernel calls of every Child SA install.
type kernelCtx struct {
	deadline time.Time

	mu       sync.Mutex
	done     chan struct{} // made by the first Done
	closed   bool
	timer    *time.Timer
	canceled bool
}

var _ context.Context = (*kernelCtx)(nil)

func (c *kernelCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *kernelCtx) Value(any) any { return nil }

func (c *kernelCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errLocked()
}

func (c *kernelCtx) errLocked() error {
	if c.canceled {
		return context.Canceled
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *kernelCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.errLocked() != nil {
			c.closeLocked()
		} else {
			c.timer = time.AfterFunc(time.Until(c.deadline), func() {
				c.mu.Lock()
				c.closeLocked()
				c.mu.Unlock()
			})
		}
	}
	return c.done
}

func (c *kernelCtx) closeLocked() {
	if !c.closed {
		c.closed = true
		close(c.done)
	}
}

func (c *kernelCtx) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.canceled {
		return
	}
	c.canceled = true
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.done != nil {
		c.closeLocked()
	}
}

// kernelOp times one kernel call for the metrics.
func (t *tree) kernelOp(op telemetry.KernelOp, start time.Time, err error) {
	r := telemetry.ResultOK
	if err != nil {
		r = telemetry.ResultError
	}
	t.rec.KernelOp(op, r, time.Since(start))
}

// hooks adapts actorkit's counters to the Recorder.
type recorderHooks struct{ rec telemetry.Recorder }

// Panicked: the middleware logs it at error level; the Recorder has no counter for a
// panic in a lifecycle handler (the actor's stop is counted as usual).
func (h recorderHooks) Panicked(kind, phase string) {}

func (h recorderHooks) Refused(kind string) {
	if kind == string(telemetry.ActorFamily) {
		h.rec.PacketDropped(telemetry.DropFamilyStopping)
	}
}
