package actorkit

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
)

// countingHooks records Hooks calls.
type countingHooks struct {
	mu       sync.Mutex
	panicked map[string]int
	refused  map[string]int
}

func newHooks() *countingHooks {
	return &countingHooks{panicked: map[string]int{}, refused: map[string]int{}}
}

func (h *countingHooks) Panicked(kind, phase string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.panicked[kind+"/"+phase]++
}

func (h *countingHooks) Refused(kind string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refused[kind]++
}

func (h *countingHooks) count(m map[string]int, k string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return m[k]
}

// probe is a configurable test actor.
type probe struct {
	Guard
	onMessage func(c actor.Context)
	inline    *Policy // when set, the actor runs the guard itself (Options.Inline)
}

func (p *probe) Receive(c actor.Context) {
	if p.inline != nil {
		p.inline.Receive(c, &p.Guard, p.handle)
		return
	}
	p.handle(c)
}

func (p *probe) handle(c actor.Context) {
	if p.onMessage != nil {
		p.onMessage(c)
	}
}

var sync300 = actor.NewSynchronizedDispatcher(300)

// watcher spawns a root actor that records the Terminated it gets for each PID it is
// told to watch.
func watcher(t *testing.T, sys *actor.ActorSystem) (*actor.PID, <-chan string) {
	t.Helper()
	done := make(chan string, 16)
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *actor.PID:
			c.Watch(m)
		case *actor.Terminated:
			done <- m.Who.Id
		}
	}))
	return pid, done
}

func waitTerminated(t *testing.T, done <-chan string, id string) {
	t.Helper()
	select {
	case got := <-done:
		if got != id {
			t.Fatalf("terminated %q, want %q", got, id)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never terminated", id)
	}
}

func TestPanickingRootActorStopsNotRestarts(t *testing.T) {
	sys := NewSystem(zap.NewNop())
	var incarnations atomic.Int32
	props := Props(func() actor.Actor {
		incarnations.Add(1)
		return &probe{onMessage: func(c actor.Context) {
			if _, ok := c.Message().(string); ok {
				panic("boom")
			}
		}}
	}, nil, Options{Kind: "test", Root: true})
	pid := sys.Root.Spawn(props)
	w, done := watcher(t, sys)
	sys.Root.Send(w, pid)
	sys.Root.Send(pid, "panic please")
	waitTerminated(t, done, pid.Id)
	if n := incarnations.Load(); n != 1 {
		t.Fatalf("actor incarnated %d times; stop-only supervision must never restart", n)
	}
}

func TestPanickingChildStopsAloneAndParentLearns(t *testing.T) {
	sys := NewSystem(zap.NewNop())
	var incarnations atomic.Int32
	childProps := Props(func() actor.Actor {
		incarnations.Add(1)
		return &probe{onMessage: func(c actor.Context) {
			if _, ok := c.Message().(string); ok {
				panic(errors.New("child failure"))
			}
		}}
	}, nil, Options{Kind: "child"})

	terminated := make(chan string, 4)
	var kids []*actor.PID
	ready := make(chan struct{})
	parent := sys.Root.Spawn(Props(func() actor.Actor {
		return &probe{onMessage: func(c actor.Context) {
			switch m := c.Message().(type) {
			case *actor.Started:
				kids = append(kids, c.Spawn(childProps), c.Spawn(childProps))
				close(ready)
			case *actor.Terminated:
				terminated <- m.Who.Id
			}
		}}
	}, nil, Options{Kind: "parent", Root: true}))
	<-ready
	sys.Root.Send(kids[0], "fail")
	select {
	case id := <-terminated:
		if id != kids[0].Id {
			t.Fatalf("terminated %s, want %s", id, kids[0].Id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("parent never learnt of the child's death")
	}
	// The sibling and the parent are alive: a request still gets its answer.
	for _, pid := range []*actor.PID{kids[1], parent} {
		if _, err := sys.Root.RequestFuture(pid, &actor.Touch{}, 5*time.Second).Result(); err != nil {
			t.Fatalf("%s after sibling failure: %v", pid.Id, err)
		}
	}
	if n := incarnations.Load(); n != 2 {
		t.Fatalf("children incarnated %d times, want 2 (no restart)", n)
	}
}

func TestPanicInStoppingStillStopsTheActorAndItsChildren(t *testing.T) {
	for _, tc := range []struct {
		phase  string
		inline bool
	}{{"stopping", false}, {"stopped", false}, {"stopping", true}, {"stopped", true}} {
		phase := tc.phase
		name := phase
		if tc.inline {
			name += "/inline"
		}
		t.Run(name, func(t *testing.T) {
			sys := NewSystem(zap.NewNop())
			hooks := newHooks()
			var policy *Policy
			if tc.inline {
				policy = &Policy{Kind: "family", Hooks: hooks}
			}
			var child *actor.PID
			parentProps := Props(func() actor.Actor {
				return &probe{inline: policy, onMessage: func(c actor.Context) {
					switch c.Message().(type) {
					case *actor.Started:
						child = c.Spawn(Props(func() actor.Actor { return &probe{} }, nil,
							Options{Kind: "child", Dispatcher: sync300}))
					case *actor.Stopping:
						if phase == "stopping" {
							panic("stopping handler bug")
						}
					case *actor.Stopped:
						if phase == "stopped" {
							panic("stopped handler bug")
						}
					}
				}}
			}, nil, Options{Kind: "family", Root: true, Dispatcher: sync300, Hooks: hooks, Inline: tc.inline})
			parent := sys.Root.Spawn(parentProps)
			w, done := watcher(t, sys)
			sys.Root.Send(w, parent)
			sys.Root.Send(w, child)
			sys.Root.Stop(parent)
			got := map[string]bool{}
			for range 2 {
				select {
				case id := <-done:
					got[id] = true
				case <-time.After(10 * time.Second):
					t.Fatalf("stop wedged; terminated so far: %v", got)
				}
			}
			if !got[parent.Id] || !got[child.Id] {
				t.Fatalf("terminated %v, want parent and child", got)
			}
			if n := hooks.count(hooks.panicked, "family/"+phase); n != 1 {
				t.Fatalf("panics counted %d, want 1", n)
			}
		})
	}
}

func TestPanicHandlingTerminatedStopsTheActor(t *testing.T) {
	sys := NewSystem(zap.NewNop())
	hooks := newHooks()
	var child *actor.PID
	parent := sys.Root.Spawn(Props(func() actor.Actor {
		return &probe{onMessage: func(c actor.Context) {
			switch c.Message().(type) {
			case *actor.Started:
				child = c.Spawn(Props(func() actor.Actor { return &probe{} }, nil, Options{Kind: "child", Dispatcher: sync300}))
			case *actor.Terminated:
				panic("terminated handler bug")
			}
		}}
	}, nil, Options{Kind: "family", Root: true, Dispatcher: sync300, Hooks: hooks}))
	w, done := watcher(t, sys)
	sys.Root.Send(w, parent)
	sys.Root.Stop(child)
	waitTerminated(t, done, parent.Id)
	if n := hooks.count(hooks.panicked, "family/terminated"); n != 1 {
		t.Fatalf("panics counted %d, want 1", n)
	}
}

type lateReply struct{}

func (lateReply) AfterStopping() {}

func TestStoppingGuardRefusesNewWork(t *testing.T) {
	sys := NewSystem(zap.NewNop())
	hooks := newHooks()
	release := make(chan struct{})
	var handled []string
	var mu sync.Mutex
	stopping := make(chan struct{})
	var child *actor.PID
	started := make(chan struct{})
	parent := sys.Root.Spawn(Props(func() actor.Actor {
		return &probe{onMessage: func(c actor.Context) {
			switch m := c.Message().(type) {
			case *actor.Started:
				// A child whose stop takes a while keeps the parent in its stop window.
				child = c.Spawn(Props(func() actor.Actor {
					return &probe{onMessage: func(c actor.Context) {
						if _, ok := c.Message().(*actor.Stopping); ok {
							close(stopping)
							<-release
						}
					}}
				}, nil, Options{Kind: "child"}))
				close(started)
			case string, lateReply:
				mu.Lock()
				handled = append(handled, typeName(m))
				mu.Unlock()
			}
		}}
	}, nil, Options{Kind: "family", Root: true, Hooks: hooks}))
	<-started
	w, done := watcher(t, sys)
	sys.Root.Send(w, parent)
	handledCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(handled)
	}
	waitFor := func(what string, cond func() bool) {
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	sys.Root.Send(parent, "before stop")
	waitFor("the first message", func() bool { return handledCount() == 1 })
	sys.Root.Stop(parent)
	<-stopping
	sys.Root.Send(parent, "new work in the stop window")
	sys.Root.Send(parent, lateReply{})
	waitFor("the late reply", func() bool { return handledCount() == 2 })
	close(release)
	waitTerminated(t, done, parent.Id)
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 2 || handled[0] != "string" || handled[1] != "lateReply" {
		t.Fatalf("handled %v, want [string lateReply]", handled)
	}
	if n := hooks.count(hooks.refused, "family"); n != 1 {
		t.Fatalf("refused %d, want 1", n)
	}
	_ = child
}

func typeName(m any) string {
	switch m.(type) {
	case string:
		return "string"
	case lateReply:
		return "lateReply"
	}
	return "?"
}

type tick struct{ gen uint64 }

// timerActor arms its timer on "arm:<d>" strings and records current ticks.
type timerActor struct {
	Guard
	t     *Timer
	fired chan uint64
	stale chan uint64
}

func (a *timerActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		a.t = a.NewTimer()
	case time.Duration:
		a.t.Arm(c.ActorSystem(), c.Self(), m, func(gen uint64) any { return tick{gen} })
	case tick:
		if a.t.Fire(m.gen) {
			a.fired <- m.gen
		} else {
			a.stale <- m.gen
		}
	case string:
		a.t.Stop()
	}
}

func TestTimerGenerationsOnVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := NewSystem(zap.NewNop())
		a := &timerActor{fired: make(chan uint64, 8), stale: make(chan uint64, 8)}
		pid := sys.Root.Spawn(Props(func() actor.Actor { return a }, nil, Options{Kind: "t", Root: true, Dispatcher: sync300}))

		sys.Root.Send(pid, 10*time.Second)
		time.Sleep(9 * time.Second)
		synctest.Wait()
		if len(a.fired) != 0 {
			t.Fatal("fired before its deadline")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if g := <-a.fired; g != 1 {
			t.Fatalf("fired gen %d, want 1", g)
		}

		// Re-arming supersedes: only the new deadline fires.
		sys.Root.Send(pid, 5*time.Second)
		sys.Root.Send(pid, 20*time.Second)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if len(a.fired) != 1 || <-a.fired != 3 {
			t.Fatal("re-armed timer did not fire exactly once with the new generation")
		}

		// A tick delivered after Stop is stale.
		sys.Root.Send(pid, tick{gen: 3})
		if g := <-a.stale; g != 3 {
			t.Fatalf("stale gen %d", g)
		}

		// Stopping the actor cancels its timer: nothing fires afterwards.
		sys.Root.Send(pid, 10*time.Second)
		sys.Root.Stop(pid)
		time.Sleep(time.Minute)
		synctest.Wait()
		if len(a.fired) != 0 || len(a.stale) != 0 {
			t.Fatal("a timer outlived its actor")
		}
		if a.t.Armed() {
			t.Fatal("timer still armed after Stopping")
		}
	})
}
