package actorkit

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
)

// Hooks receives what the middleware counts. Implementations must be safe for
// concurrent use; the daemon adapts them to its metrics.
type Hooks interface {
	// Panicked counts a panic recovered while an actor of this kind handled a lifecycle
	// message; phase is "stopping", "stopped", "restarting" or "terminated".
	Panicked(kind, phase string)
	// Refused counts a user message dropped because its actor was already stopping.
	Refused(kind string)
}

// AfterStopping marks a message type that an actor still accepts after Stopping (for
// example a reply it waits for to finish its own stop). Every other user message is
// refused by the stopping guard.
type AfterStopping interface{ AfterStopping() }

// Guard is the stopping guard. Embed it (by value) in an actor: [Middleware] sets it on
// Stopping, cancels the timers the actor made with [Guard.NewTimer], and refuses new
// user messages from then on. The zero value is an alive actor with no timers.
type Guard struct {
	stopping bool
	timers   []*Timer
}

// Stopping reports whether the actor has received Stopping: it must start no new work
// (no spawn, no send that asks for more work, no timer).
func (g *Guard) Stopping() bool { return g.stopping }

// NewTimer returns a timer that the guard stops when the actor stops.
func (g *Guard) NewTimer() *Timer {
	t := &Timer{}
	g.timers = append(g.timers, t)
	return t
}

func (g *Guard) guard() *Guard { return g }

func (g *Guard) enterStopping() {
	g.stopping = true
	for _, t := range g.timers {
		t.Stop()
	}
}

type guarded interface{ guard() *Guard }

// Middleware is the receiver middleware form of [Policy.Receive]: it recovers panics
// in lifecycle handlers, runs the stopping guard, and leaves panics in other messages to
// the stop-only supervisor. kind names the actor in logs.
//
// A middleware makes protoactor allocate an envelope per message and the context's
// extras (~0.4 KiB) per actor; actors kept by the tens of thousands call
// [Policy.Receive] from their own Receive instead.
func Middleware(kind string, log *zap.Logger, hooks Hooks) actor.ReceiverMiddleware {
	p := &Policy{Kind: kind, Log: log, Hooks: hooks}
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(ctx actor.ReceiverContext, env *actor.MessageEnvelope) {
			var g *Guard
			if a, ok := ctx.Actor().(guarded); ok {
				g = a.guard()
			}
			stop := func() {
				if c, ok := ctx.(actor.Context); ok {
					c.Stop(ctx.Self())
				}
			}
			p.handle(env.Message, g, ctx.Self(), stop, func() { next(ctx, env) })
		}
	}
}

// Policy is what [Policy.Receive] and [Middleware] need to know: the actor kind for
// logs and counters, the logger and the hooks. One value serves every actor of a kind.
type Policy struct {
	Kind  string
	Log   *zap.Logger
	Hooks Hooks
}

// Receive runs one message of the actor owning g through the guard and then calls
// receive: lifecycle panics are recovered and counted, user messages after Stopping are
// refused (except [AfterStopping] ones), timers stop on Stopping. Call it first thing in
// the actor's Receive:
//
//	func (a *myActor) Receive(ctx actor.Context) { policy.Receive(ctx, &a.Guard, a.receive) }
func (p *Policy) Receive(ctx actor.Context, g *Guard, receive func(actor.Context)) {
	p.handle(ctx.Message(), g, ctx.Self(), func() { ctx.Stop(ctx.Self()) }, func() { receive(ctx) })
}

func (p *Policy) handle(msg any, g *Guard, self *actor.PID, stop func(), call func()) {
	log := p.Log
	if log == nil {
		log = zap.NewNop()
	}
	switch msg.(type) {
	case *actor.Stopping:
		if g != nil {
			g.enterStopping()
		}
		recoverLifecycle(self, call, p.Kind, "stopping", log, p.Hooks)
	case *actor.Stopped:
		recoverLifecycle(self, call, p.Kind, "stopped", log, p.Hooks)
	case *actor.Restarting:
		recoverLifecycle(self, call, p.Kind, "restarting", log, p.Hooks)
	case *actor.Terminated:
		if recoverLifecycle(self, call, p.Kind, "terminated", log, p.Hooks) && (g == nil || !g.stopping) {
			// A panic while handling a child's death is this actor's own failure: it
			// stops, as any other panic would make it.
			stop()
		}
	case *actor.Started:
		call()
	default:
		if g != nil && g.stopping {
			if _, ok := msg.(AfterStopping); !ok {
				if p.Hooks != nil {
					p.Hooks.Refused(p.Kind)
				}
				if ce := log.Check(zap.DebugLevel, "message refused: actor is stopping"); ce != nil {
					ce.Write(zap.String("actor", p.Kind), zap.Stringer("pid", self),
						zap.String("message", fmt.Sprintf("%T", msg)))
				}
				return
			}
		}
		call()
	}
}

// recoverLifecycle runs call and reports whether it panicked.
func recoverLifecycle(self *actor.PID, call func(), kind, phase string, log *zap.Logger, hooks Hooks) (panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			panicked = true
			if hooks != nil {
				hooks.Panicked(kind, phase)
			}
			log.Error("panic in lifecycle handler recovered",
				zap.String("actor", kind), zap.Stringer("pid", self),
				zap.String("phase", phase), zap.Any("panic", r), zap.StackSkip("stack", 2))
		}
	}()
	call()
	return false
}
