package actorkit

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// Dispatcher runs mailbox turns on a fixed set of long-lived worker goroutines.
//
// protoactor's default dispatcher starts a goroutine for every turn (`go fn()`): each
// turn begins on a fresh, small stack and grows it again, and the goroutine is created
// and destroyed each time. A daemon whose families each take a turn per datagram pays
// that on every packet. Here the workers' stacks stay grown, and a turn costs a channel
// hand-off.
//
// Contract:
//   - Schedule never blocks the sender: when the run queue is full, or the dispatcher is
//     closed, the turn runs on a goroutine of its own, as with the default dispatcher.
//   - Fairness: a mailbox made by [Mailbox] handles at most Throughput messages per turn,
//     then goes to the back of the run queue, so one busy actor cannot hold a worker
//     while others wait. (protoactor's own mailbox only yields the goroutine with
//     runtime.Gosched and keeps the worker.)
//   - A turn that blocks (a kernel call) holds its worker: workers are several per CPU
//     so that a few blocked turns do not stall the rest, and a full queue spills to
//     goroutines.
//   - The run queue is short on purpose: when every worker is busy, further turns spill
//     to goroutines and the Go scheduler's preemption shares the CPU among them. A long
//     FIFO of CPU-heavy turns made an unrelated family wait behind all of them
//     (BenchmarkPacketLatencyUnderLoad/inline, 10,000 families computing in their turns:
//     p99 773 ms with a queue of 4,096, 130 ms with 256; 148 ms on goroutines alone).
//   - Close stops the workers; turns queued at that moment and every later one run on
//     goroutines of their own, so nothing is lost.
type Dispatcher struct {
	queue      chan runner
	quit       chan struct{}
	throughput int

	mu     sync.RWMutex // read: a Schedule's check-and-enqueue; write: Close
	closed bool

	spilled atomic.Uint64 // turns that ran on a goroutine of their own
}

var _ actor.Dispatcher = (*Dispatcher)(nil)

// runner is one scheduled turn: a mailbox of this package, or a function handed to
// Schedule by any other mailbox.
type runner interface{ run() }

type funcRunner func()

func (f funcRunner) run() { f() }

// DispatcherConfig configures [NewDispatcher]; zero fields take the defaults.
type DispatcherConfig struct {
	// Workers is the number of worker goroutines (default 4 × GOMAXPROCS, at least 8).
	Workers int
	// Queue is the run queue's capacity (default 256).
	Queue int
	// Throughput is the number of messages a mailbox handles per turn (default 32).
	Throughput int
}

// NewDispatcher starts a dispatcher's workers. Close stops them.
func NewDispatcher(c DispatcherConfig) *Dispatcher {
	if c.Workers <= 0 {
		c.Workers = max(8, 4*runtime.GOMAXPROCS(0))
	}
	if c.Queue <= 0 {
		c.Queue = 256
	}
	if c.Throughput <= 0 {
		c.Throughput = 32
	}
	d := &Dispatcher{queue: make(chan runner, c.Queue), quit: make(chan struct{}), throughput: c.Throughput}
	for range c.Workers {
		go d.work()
	}
	return d
}

func (d *Dispatcher) work() {
	for {
		select {
		case r := <-d.queue:
			r.run()
		case <-d.quit:
			return
		}
	}
}

// Schedule implements actor.Dispatcher for mailboxes other than [Mailbox]'s.
func (d *Dispatcher) Schedule(fn func()) { d.submit(funcRunner(fn)) }

// Throughput implements actor.Dispatcher: messages per mailbox turn.
func (d *Dispatcher) Throughput() int { return d.throughput }

// Spilled returns how many turns ran on goroutines of their own (queue full or closed).
func (d *Dispatcher) Spilled() uint64 { return d.spilled.Load() }

func (d *Dispatcher) submit(r runner) {
	d.mu.RLock()
	if !d.closed {
		select {
		case d.queue <- r:
			d.mu.RUnlock()
			return
		default:
		}
	}
	d.mu.RUnlock()
	d.spilled.Add(1)
	go r.run()
}

// Close tells the workers to end after their current turns, without waiting for them
// (it may be called from a turn). Queued turns run on workers or on goroutines of their
// own, as do turns scheduled later. Close is idempotent.
func (d *Dispatcher) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	d.mu.Unlock()
	close(d.quit)
	for {
		select {
		case r := <-d.queue:
			d.spilled.Add(1)
			go r.run()
		default:
			return
		}
	}
}

// Mailbox returns a mailbox producer for protoactor props (actor.WithMailbox): an
// unbounded mailbox that holds no queue memory while empty and takes turns on a
// [Dispatcher] with the fairness described there. With any other dispatcher (tests use
// protoactor's synchronized one) it behaves as protoactor's default mailbox: system
// messages first, user messages unless suspended, runtime.Gosched every Throughput
// messages.
//
// It does not unpack actor.MessageBatch (cygnet sends none).
func Mailbox() actor.MailboxProducer {
	return func() actor.Mailbox { return &mailbox{} }
}

const (
	mailboxIdle int32 = iota
	mailboxScheduled
)

type mailbox struct {
	mu   sync.Mutex
	sys  *[]any // system messages, in order (rare: a pointer keeps the struct at 96 B)
	user []any  // user messages from user[head] on
	head int32

	state     atomic.Int32 // mailboxIdle or mailboxScheduled
	suspended atomic.Bool  // set and cleared by system messages, in turns

	invoker    actor.MessageInvoker
	dispatcher actor.Dispatcher
}

var _ actor.Mailbox = (*mailbox)(nil)

func (m *mailbox) PostUserMessage(msg any) {
	m.mu.Lock()
	m.user = append(m.user, msg)
	m.mu.Unlock()
	m.schedule()
}

func (m *mailbox) PostSystemMessage(msg any) {
	m.mu.Lock()
	if m.sys == nil {
		m.sys = &[]any{msg}
	} else {
		*m.sys = append(*m.sys, msg)
	}
	m.mu.Unlock()
	m.schedule()
}

func (m *mailbox) RegisterHandlers(invoker actor.MessageInvoker, dispatcher actor.Dispatcher) {
	m.invoker, m.dispatcher = invoker, dispatcher
}

func (m *mailbox) Start() {}

func (m *mailbox) UserMessageCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.user) - int(m.head)
}

func (m *mailbox) schedule() {
	if m.state.CompareAndSwap(mailboxIdle, mailboxScheduled) {
		m.enqueue()
	}
}

func (m *mailbox) enqueue() {
	if d, ok := m.dispatcher.(*Dispatcher); ok {
		d.submit(m)
		return
	}
	m.dispatcher.Schedule(m.run)
}

// run is one turn.
func (m *mailbox) run() {
	for {
		if m.turn() {
			m.enqueue() // more to do: to the back of the run queue, still scheduled
			return
		}
		m.state.Store(mailboxIdle)
		if !m.hasWork() || !m.state.CompareAndSwap(mailboxIdle, mailboxScheduled) {
			return
		}
		// A message came in after the turn ended and nobody else scheduled us.
		if _, ok := m.dispatcher.(*Dispatcher); ok {
			m.enqueue()
			return
		}
	}
}

func (m *mailbox) hasWork() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sys != nil || (!m.suspended.Load() && int(m.head) < len(m.user))
}

// turn handles messages until the mailbox is empty (false) or, on a [Dispatcher],
// until Throughput messages were handled and more wait (true). A panic escalates to
// the actor's supervisor, as in protoactor's mailbox.
func (m *mailbox) turn() (more bool) {
	var msg any
	defer func() {
		if r := recover(); r != nil {
			m.invoker.EscalateFailure(r, msg)
			more = false
		}
	}()
	_, pooled := m.dispatcher.(*Dispatcher)
	t := m.dispatcher.Throughput()
	for i := 0; ; i++ {
		if i >= t {
			if pooled {
				return m.hasWork()
			}
			i = 0
			runtime.Gosched()
		}
		m.mu.Lock()
		if m.sys != nil {
			q := *m.sys
			msg = q[0]
			q[0] = nil
			if len(q) == 1 {
				m.sys = nil
			} else {
				*m.sys = q[1:]
			}
			m.mu.Unlock()
			switch msg.(type) {
			case *actor.SuspendMailbox:
				m.suspended.Store(true)
			case *actor.ResumeMailbox:
				m.suspended.Store(false)
			default:
				m.invoker.InvokeSystemMessage(msg)
			}
			continue
		}
		if m.suspended.Load() || int(m.head) == len(m.user) {
			m.mu.Unlock()
			return false
		}
		msg = m.user[m.head]
		m.user[m.head] = nil
		m.head++
		switch {
		case int(m.head) == len(m.user):
			// Drained: an idle actor keeps no queue memory.
			m.user, m.head = nil, 0
		case m.head >= 64 && int(m.head)*2 >= len(m.user):
			// A mailbox that never drains: drop the handled prefix.
			n := copy(m.user, m.user[m.head:])
			clear(m.user[n:])
			m.user, m.head = m.user[:n], 0
		}
		m.mu.Unlock()
		m.invoker.InvokeUserMessage(msg)
	}
}
