// Package workpool is the bounded worker pool that runs CPU-heavy work (key-exchange
// math, key derivation) outside actor turns. DESIGN.md: "Slow work leaves the actor's
// turn"; shared/notes/protoactor.md measured 200 actors doing modular exponentiation
// inside Receive pushing an unrelated actor's p99 to ~1 s, and ~64 µs through a pool.
//
// Contract:
//   - [Pool.TrySubmit] never blocks. It queues the job or, when the queue holds
//     Config.MaxQueue jobs or the pool is closed, refuses it and returns false; the caller
//     decides what to do (a family retries later).
//   - A job posts its own result (typically as a message to the actor that submitted
//     it); the pool knows nothing of actors.
//   - [Pool.Busy] is the back-pressure signal: the queue is past its high-water mark.
//     The manager drops new IKE_SA_INIT requests while it is true (the initiator
//     retransmits), so that the queue is bounded by the work of the families that exist
//     — each has at most a few key exchanges outstanding — and established families
//     keep their share. The hard bound (MaxQueue) is far above the high-water mark, so
//     that families never have to poll for room.
//   - Jobs run in submission order (FIFO), on a fixed set of workers.
//   - A job that panics is recovered, reported to OnPanic, and the worker goes on.
//   - [Pool.Close] refuses new jobs, drops the queued ones, and waits for the running
//     ones to return.
package workpool

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// Config sizes a pool. Zero values take the defaults.
type Config struct {
	// Workers is the number of goroutines; default runtime.GOMAXPROCS(0).
	Workers int
	// HighWater is the queue length from which Busy reports true; default 1024 per
	// worker.
	HighWater int
	// MaxQueue is the most jobs that may wait; default 1<<20 (a queued job is a small
	// closure).
	MaxQueue int
	// OnPanic, if set, is called with the recovered value of a job that panicked.
	OnPanic func(recovered any)
}

// Pool is a fixed set of workers over a FIFO queue. It is safe for concurrent use.
type Pool struct {
	highWater, maxQueue int
	onPanic             func(any)

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []func() // FIFO: jobs[head:]
	head   int
	closed bool
	wg     sync.WaitGroup

	queued    atomic.Int64
	submitted atomic.Uint64
	refused   atomic.Uint64
	panics    atomic.Uint64
}

// New starts a pool.
func New(c Config) *Pool {
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.HighWater <= 0 {
		c.HighWater = 1024 * c.Workers
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 1 << 20
	}
	if c.MaxQueue < c.HighWater {
		c.MaxQueue = c.HighWater
	}
	p := &Pool{highWater: c.HighWater, maxQueue: c.MaxQueue, onPanic: c.OnPanic}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(c.Workers)
	for range c.Workers {
		go p.work()
	}
	return p
}

func (p *Pool) work() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		for p.head == len(p.queue) && !p.closed {
			p.cond.Wait()
		}
		if p.closed {
			p.mu.Unlock()
			return
		}
		job := p.queue[p.head]
		p.queue[p.head] = nil
		p.head++
		if p.head == len(p.queue) {
			p.queue, p.head = p.queue[:0], 0
		} else if p.head > 4096 && p.head*2 > len(p.queue) {
			// Reclaim the consumed front.
			n := copy(p.queue, p.queue[p.head:])
			clear(p.queue[n:])
			p.queue, p.head = p.queue[:n], 0
		}
		p.queued.Add(-1)
		p.mu.Unlock()
		p.run(job)
		// Let the goroutines that became runnable during the job (actors handling
		// datagrams) have the processor before the next job: a pool as wide as
		// GOMAXPROCS would otherwise hold every P for up to a preemption tick (10 ms).
		runtime.Gosched()
	}
}

func (p *Pool) run(job func()) {
	defer func() {
		if r := recover(); r != nil {
			p.panics.Add(1)
			if p.onPanic != nil {
				p.onPanic(r)
			}
		}
	}()
	job()
}

// TrySubmit queues job without blocking. It returns false, and counts a refusal, when
// the queue is full or the pool is closed.
func (p *Pool) TrySubmit(job func()) bool {
	p.mu.Lock()
	if p.closed || len(p.queue)-p.head >= p.maxQueue {
		p.mu.Unlock()
		p.refused.Add(1)
		return false
	}
	p.queue = append(p.queue, job)
	p.queued.Add(1)
	p.mu.Unlock()
	p.cond.Signal()
	p.submitted.Add(1)
	return true
}

// Busy reports whether the queue is at or above its high-water mark.
func (p *Pool) Busy() bool { return p.queued.Load() >= int64(p.highWater) }

// Stats is a snapshot of the pool's counters.
type Stats struct {
	Submitted, Refused, Panics uint64
	Queued                     int
}

// Stats returns the counters since New.
func (p *Pool) Stats() Stats {
	return Stats{Submitted: p.submitted.Load(), Refused: p.refused.Load(), Panics: p.panics.Load(), Queued: int(p.queued.Load())}
}

func (s Stats) String() string {
	return fmt.Sprintf("submitted=%d refused=%d panics=%d queued=%d", s.Submitted, s.Refused, s.Panics, s.Queued)
}

// Close refuses new jobs, drops queued ones and waits for running jobs to return.
// It is idempotent.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.queued.Add(-int64(len(p.queue) - p.head))
	p.queue, p.head = nil, 0 // their submitters are being stopped too
	p.mu.Unlock()
	p.cond.Broadcast()
	p.wg.Wait()
}
