package actorkit

import (
	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
)

// StopOnlyDecider returns actor.StopDirective for every failure: a failed actor is never
// restarted with a blank state; its replacement, if any, comes from the protocol.
func StopOnlyDecider(reason any) actor.Directive { return actor.StopDirective }

// stopOnly is a single value so that every root-spawned actor shares one guardian process
// (protoactor keeps one guardian per distinct strategy value, forever).
var stopOnly = actor.NewOneForOneStrategy(0, 0, StopOnlyDecider)

// StopOnly is the supervisor strategy for every cygnet actor, and the guardian strategy
// for the actors spawned from the root context.
func StopOnly() actor.SupervisorStrategy { return stopOnly }

// Options configures [Props].
type Options struct {
	// Kind names the actor kind in logs and counters ("family", "child", "manager").
	Kind string
	// Root is true for props spawned from the root context: they get the stop-only
	// guardian. Props for children must leave it false (protoactor panics otherwise).
	Root bool
	// Dispatcher, when non-nil, replaces the default goroutine dispatcher (tests use
	// actor.NewSynchronizedDispatcher).
	Dispatcher actor.Dispatcher
	// Hooks receives panics and refused messages; nil means only logging.
	Hooks Hooks
	// Inline leaves out the receiver middleware: the actor calls [Policy.Receive]
	// itself (saves an envelope per message and the context extras per actor).
	Inline bool
	// Mailbox replaces protoactor's default mailbox (a ring buffer that never shrinks);
	// nil means this package's [Mailbox] (no queue memory while empty, fair turns on a
	// [Dispatcher]).
	Mailbox actor.MailboxProducer
}

// Props builds the props of a cygnet actor: stop-only supervision of its children,
// the stop-only guardian when it is root-spawned, [Mailbox], and [Middleware]
// in front of its Receive unless o.Inline. The actor returned by producer should embed
// [Guard].
func Props(producer actor.Producer, log *zap.Logger, o Options) *actor.Props {
	mb := o.Mailbox
	if mb == nil {
		mb = Mailbox()
	}
	opts := []actor.PropsOption{actor.WithSupervisor(stopOnly), actor.WithMailbox(mb)}
	if !o.Inline {
		opts = append(opts, actor.WithReceiverMiddleware(Middleware(o.Kind, log, o.Hooks)))
	}
	if o.Root {
		opts = append(opts, actor.WithGuardian(stopOnly))
	}
	if o.Dispatcher != nil {
		opts = append(opts, actor.WithDispatcher(o.Dispatcher))
	}
	return actor.PropsFromProducer(producer, opts...)
}
