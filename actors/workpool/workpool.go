// Package workpool is the bounded worker pool that runs CPU-heavy work (key-exchange
// math, key derivation) outside actor turns. DESIGN.md: "Slow work leaves the actor's
// turn"; shared/notes/protoactor.md measured 200 actors doing modular exponentiation
// inside Receive pushing an unrelated actor's p99 to ~1 s, and ~64 µs through a pool.
//
// Contract:
//   - [Pool.TrySubmit] never blocks. It queues the job or, when the queue is full or the
//     pool is closed, refuses it and returns false; the caller decides what to do (a
//     family retries later, the manager stops admitting new IKE_SA_INIT requests).
//   - A job posts its own result (typically as a message to the actor that submitted
//     it); the pool knows nothing of actors.
//   - [Pool.Busy] is the back-pressure signal: the queue is filled past its high-water
//     mark. The manager drops new IKE_SA_INIT requests while it is true (the initiator
//     retransmits) so that established families keep their share of the pool.
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
	// Queue is the number of jobs that may wait; default 1024 per worker.
	Queue int
	// HighWater is the queue length from which Busy reports true; default 3/4 of Queue.
	HighWater int
	// OnPanic, if set, is called with the recovered value of a job that panicked.
	OnPanic func(recovered any)
}

// Pool is a fixed set of workers over a bounded queue. It is safe for concurrent use.
type Pool struct {
	jobs      chan func()
	highWater int
	onPanic   func(any)

	mu     sync.RWMutex // held for reading while submitting; for writing by Close
	closed bool
	wg     sync.WaitGroup

	submitted atomic.Uint64
	refused   atomic.Uint64
	panics    atomic.Uint64
}

// New starts a pool.
func New(c Config) *Pool {
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Queue <= 0 {
		c.Queue = 1024 * c.Workers
	}
	if c.HighWater <= 0 || c.HighWater > c.Queue {
		c.HighWater = c.Queue * 3 / 4
		if c.HighWater == 0 {
			c.HighWater = 1
		}
	}
	p := &Pool{jobs: make(chan func(), c.Queue), highWater: c.HighWater, onPanic: c.OnPanic}
	p.wg.Add(c.Workers)
	for range c.Workers {
		go p.work()
	}
	return p
}

func (p *Pool) work() {
	defer p.wg.Done()
	for job := range p.jobs {
		p.run(job)
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
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		p.refused.Add(1)
		return false
	}
	select {
	case p.jobs <- job:
		p.submitted.Add(1)
		return true
	default:
		p.refused.Add(1)
		return false
	}
}

// Busy reports whether the queue is at or above its high-water mark.
func (p *Pool) Busy() bool { return len(p.jobs) >= p.highWater }

// Stats is a snapshot of the pool's counters.
type Stats struct {
	Submitted, Refused, Panics uint64
	Queued                     int
}

// Stats returns the counters since New.
func (p *Pool) Stats() Stats {
	return Stats{Submitted: p.submitted.Load(), Refused: p.refused.Load(), Panics: p.panics.Load(), Queued: len(p.jobs)}
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
	// Drop what is queued: its submitters are being stopped too.
drain:
	for {
		select {
		case <-p.jobs:
		default:
			break drain
		}
	}
	close(p.jobs)
	p.mu.Unlock()
	p.wg.Wait()
}
