package actorkit

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Timer is a one-shot, generation-tagged timer owned by one actor. It is not safe for
// concurrent use: only its actor calls it, from its own turn.
//
// A tick is a message that carries the generation it was armed with. Cancelling a
// time.Timer cannot recall a tick that is already queued in the mailbox, so the actor
// asks [Timer.Fire] whether a tick is current before acting on it: a tick from a
// superseded or stopped arming is stale and must be ignored.
type Timer struct {
	gen uint64
	t   *time.Timer
}

// Arm (re)arms the timer: any earlier arming becomes stale, and after d the message
// tick(gen) is sent to self through the system's root context. It returns gen.
func (t *Timer) Arm(sys *actor.ActorSystem, self *actor.PID, d time.Duration, tick func(gen uint64) any) uint64 {
	t.cancel()
	t.gen++
	msg := tick(t.gen)
	root := sys.Root
	t.t = time.AfterFunc(d, func() { root.Send(self, msg) })
	return t.gen
}

// Fire reports whether a tick carrying gen is the current one, and if so disarms the
// timer (a tick is acted on once).
func (t *Timer) Fire(gen uint64) bool {
	if t.t == nil || gen != t.gen {
		return false
	}
	t.t = nil
	return true
}

// Armed reports whether a current tick is pending.
func (t *Timer) Armed() bool { return t.t != nil }

// Stop cancels the timer; a tick already in flight becomes stale.
func (t *Timer) Stop() {
	t.cancel()
	t.gen++
}

func (t *Timer) cancel() {
	if t.t != nil {
		t.t.Stop()
		t.t = nil
	}
}
