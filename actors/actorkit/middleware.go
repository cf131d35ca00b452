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

// Middleware is the receiver middleware of every cygnet actor (see the package doc):
// it recovers panics in lifecycle handlers, runs the stopping guard, and leaves panics
// in other messages to the stop-only supervisor. kind names the actor in logs.
func Middleware(kind string, log *zap.Logger, hooks Hooks) actor.ReceiverMiddleware {
	if log == nil {
		log = zap.NewNop()
	}
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(ctx actor.ReceiverContext, env *actor.MessageEnvelope) {
			var g *Guard
			if a, ok := ctx.Actor().(guarded); ok {
				g = a.guard()
			}
			switch msg := env.Message.(type) {
			case *actor.Stopping:
				if g != nil {
					g.enterStopping()
				}
				recoverLifecycle(ctx, env, next, kind, "stopping", log, hooks)
			case *actor.Stopped:
				recoverLifecycle(ctx, env, next, kind, "stopped", log, hooks)
			case *actor.Restarting:
				recoverLifecycle(ctx, env, next, kind, "restarting", log, hooks)
			case *actor.Terminated:
				if recoverLifecycle(ctx, env, next, kind, "terminated", log, hooks) && (g == nil || !g.stopping) {
					// A panic while handling a child's death is this actor's own
					// failure: it stops, as any other panic would make it.
					if c, ok := ctx.(actor.Context); ok {
						c.Stop(ctx.Self())
					}
				}
			case *actor.Started:
				next(ctx, env)
			default:
				if g != nil && g.stopping {
					if _, ok := msg.(AfterStopping); !ok {
						if hooks != nil {
							hooks.Refused(kind)
						}
						if ce := log.Check(zap.DebugLevel, "message refused: actor is stopping"); ce != nil {
							ce.Write(zap.String("actor", kind), zap.Stringer("pid", ctx.Self()),
								zap.String("message", fmt.Sprintf("%T", msg)))
						}
						return
					}
				}
				next(ctx, env)
			}
		}
	}
}

// recoverLifecycle runs next and reports whether it panicked.
func recoverLifecycle(ctx actor.ReceiverContext, env *actor.MessageEnvelope, next actor.ReceiverFunc,
	kind, phase string, log *zap.Logger, hooks Hooks) (panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			panicked = true
			if hooks != nil {
				hooks.Panicked(kind, phase)
			}
			log.Error("panic in lifecycle handler recovered",
				zap.String("actor", kind), zap.Stringer("pid", ctx.Self()),
				zap.String("phase", phase), zap.Any("panic", r), zap.StackSkip("stack", 2))
		}
	}()
	next(ctx, env)
	return false
}
