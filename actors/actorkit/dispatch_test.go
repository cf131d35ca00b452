package actorkit

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

// funcActor runs f for each user message (lifecycle messages are ignored).
type funcActor struct {
	Guard
	f func(c actor.Context)
}

func (a *funcActor) Receive(c actor.Context) {
	switch c.Message().(type) {
	case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
		return
	}
	a.f(c)
}

func spawnFunc(sys *actor.ActorSystem, d actor.Dispatcher, f func(c actor.Context)) *actor.PID {
	return sys.Root.Spawn(Props(func() actor.Actor { return &funcActor{f: f} }, nil,
		Options{Kind: "test", Root: true, Dispatcher: d}))
}

func waitChan(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// A flooded actor yields its worker after Throughput messages: another actor's message,
// posted behind the flood, is handled before the flood is.
func TestDispatcherTurnsAreFair(t *testing.T) {
	d := NewDispatcher(DispatcherConfig{Workers: 1, Throughput: 4})
	defer d.Close()
	sys := NewSystem(zap.NewNop())
	const flood = 1000
	var floodDone atomic.Int32
	bPosted := make(chan struct{})
	var atB atomic.Int32
	bDone := make(chan struct{})
	a := spawnFunc(sys, d, func(c actor.Context) {
		if floodDone.Add(1) == 1 {
			<-bPosted // hold the only worker until the flood and B's message are queued
		}
	})
	b := spawnFunc(sys, d, func(c actor.Context) {
		atB.Store(floodDone.Load())
		close(bDone)
	})
	for i := range flood {
		sys.Root.Send(a, i)
	}
	sys.Root.Send(b, "b")
	close(bPosted)
	waitChan(t, bDone, "B's message")
	if n := atB.Load(); n > 4 {
		t.Fatalf("B handled after %d of A's %d messages, want at most one turn (4)", n, flood)
	}
}

// Messages to one actor are handled in the order one sender posted them, across turns.
func TestMailboxKeepsOrderAcrossTurns(t *testing.T) {
	d := NewDispatcher(DispatcherConfig{Workers: 3, Throughput: 3})
	defer d.Close()
	sys := NewSystem(zap.NewNop())
	const n = 5000
	var got []int
	done := make(chan struct{})
	a := spawnFunc(sys, d, func(c actor.Context) {
		got = append(got, c.Message().(int))
		if len(got) == n {
			close(done)
		}
	})
	for i := range n {
		sys.Root.Send(a, i)
	}
	waitChan(t, done, "all messages")
	for i, v := range got {
		if v != i {
			t.Fatalf("message %d handled as the %dth", v, i)
		}
	}
}

// A full run queue does not block the sender: the turn runs on a goroutine of its own.
func TestDispatcherSpillsWhenFull(t *testing.T) {
	d := NewDispatcher(DispatcherConfig{Workers: 1, Queue: 1})
	defer d.Close()
	sys := NewSystem(zap.NewNop())
	release := make(chan struct{})
	holding := make(chan struct{})
	blocker := spawnFunc(sys, d, func(c actor.Context) {
		close(holding)
		<-release
	})
	sys.Root.Send(blocker, "hold the worker")
	waitChan(t, holding, "the worker to be held")
	var wg sync.WaitGroup
	const others = 10
	wg.Add(others)
	for range others {
		pid := spawnFunc(sys, d, func(c actor.Context) { wg.Done() })
		sys.Root.Send(pid, "x") // must not block although the queue holds one turn
	}
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	// All but the one queued behind the held worker ran on goroutines of their own.
	deadline := time.Now().Add(20 * time.Second)
	for d.Spilled() < others-1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s := d.Spilled(); s < others-1 {
		t.Fatalf("spilled %d turns, want at least %d", s, others-1)
	}
	close(release)
	waitChan(t, all, "every actor's message")
}

// After Close the workers are gone and turns still run.
func TestDispatcherCloseLosesNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
	d := NewDispatcher(DispatcherConfig{Workers: 2})
	sys := NewSystem(zap.NewNop())
	var handled atomic.Int32
	pid := spawnFunc(sys, d, func(c actor.Context) { handled.Add(1) })
	for range 100 {
		sys.Root.Send(pid, "before")
	}
	d.Close()
	d.Close()
	for range 100 {
		sys.Root.Send(pid, "after")
	}
	deadline := time.Now().Add(20 * time.Second)
	for handled.Load() < 200 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := handled.Load(); n != 200 {
		t.Fatalf("handled %d messages, want 200", n)
	}
	sys.Root.StopFuture(pid).Wait()
	sys.Shutdown()
}

// A panic in a turn on the dispatcher stops that actor only (stop-only supervision
// through the mailbox's escalation); its sibling keeps answering.
func TestDispatcherPanicStopsOnlyThatActor(t *testing.T) {
	d := NewDispatcher(DispatcherConfig{})
	defer d.Close()
	sys := NewSystem(zap.NewNop())
	var incarnations atomic.Int32
	props := Props(func() actor.Actor {
		incarnations.Add(1)
		return &funcActor{f: func(c actor.Context) {
			if _, ok := c.Message().(string); ok {
				panic("boom")
			}
			if _, ok := c.Message().(*actor.Touch); ok {
				c.Respond(&actor.Touched{})
			}
		}}
	}, nil, Options{Kind: "test", Root: true, Dispatcher: d})
	victim, sibling := sys.Root.Spawn(props), sys.Root.Spawn(props)
	w, done := watcher(t, sys)
	sys.Root.Send(w, victim)
	sys.Root.Send(victim, "panic please")
	waitTerminated(t, done, victim.Id)
	if _, err := sys.Root.RequestFuture(sibling, &actor.Touch{}, 10*time.Second).Result(); err != nil {
		t.Fatalf("sibling after the panic: %v", err)
	}
	if n := incarnations.Load(); n != 2 {
		t.Fatalf("%d incarnations, want 2 (no restart)", n)
	}
}

// BenchmarkDispatcher measures an actor-to-actor ping-pong: protoactor's goroutine per
// turn against the worker dispatcher.
func BenchmarkDispatcher(b *testing.B) {
	for _, tc := range []struct {
		name string
		d    func() (actor.Dispatcher, func())
	}{
		{"goroutine", func() (actor.Dispatcher, func()) { return actor.NewDefaultDispatcher(32), func() {} }},
		{"workers", func() (actor.Dispatcher, func()) {
			d := NewDispatcher(DispatcherConfig{})
			return d, d.Close
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			d, closeD := tc.d()
			defer closeD()
			sys := NewSystem(zap.NewNop())
			done := make(chan struct{})
			var left int
			var pong *actor.PID
			ping := spawnFunc(sys, d, func(c actor.Context) {
				left--
				if left <= 0 {
					close(done)
					return
				}
				c.Send(pong, 0)
			})
			pong = spawnFunc(sys, d, func(c actor.Context) { c.Send(ping, 0) })
			b.ReportAllocs()
			left = b.N
			b.ResetTimer()
			sys.Root.Send(pong, 0)
			<-done
		})
	}
}

// recordingInvoker records what a mailbox hands it.
type recordingInvoker struct{ got []string }

func (r *recordingInvoker) InvokeSystemMessage(m any) { r.got = append(r.got, "sys:"+m.(string)) }
func (r *recordingInvoker) InvokeUserMessage(m any)   { r.got = append(r.got, "user:"+m.(string)) }
func (r *recordingInvoker) EscalateFailure(_, _ any)  {}

// System messages go first; an emptied mailbox keeps no queue memory (an idle actor
// among tens of thousands costs its struct only).
func TestMailboxOrderAndIdleMemory(t *testing.T) {
	mb := Mailbox()().(*mailbox)
	inv := &recordingInvoker{}
	// A dispatcher that runs nothing until told, so that both queues fill first.
	var pending []func()
	mb.RegisterHandlers(inv, deferredDispatcher{&pending})
	mb.PostUserMessage("u1")
	mb.PostSystemMessage("s1")
	mb.PostUserMessage("u2")
	mb.PostSystemMessage("s2")
	if n := mb.UserMessageCount(); n != 2 {
		t.Fatalf("UserMessageCount %d, want 2", n)
	}
	for len(pending) > 0 {
		f := pending[0]
		pending = pending[1:]
		f()
	}
	want := []string{"sys:s1", "sys:s2", "user:u1", "user:u2"}
	if !slices.Equal(inv.got, want) {
		t.Fatalf("handled %v, want %v", inv.got, want)
	}
	if mb.user != nil || mb.sys != nil {
		t.Fatalf("an empty mailbox holds queues: user %v sys %v", mb.user, mb.sys)
	}
}

type deferredDispatcher struct{ pending *[]func() }

func (d deferredDispatcher) Schedule(fn func()) { *d.pending = append(*d.pending, fn) }
func (d deferredDispatcher) Throughput() int    { return 300 }
