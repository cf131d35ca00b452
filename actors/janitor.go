package actors

import (
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// janitor removes the kernel state still tagged with a family after the family
// terminated (kernel.DeleteOwned), off the manager's turn: the manager makes no kernel
// call. Its queue is unbounded but holds only family IDs; close drains it.
type janitor struct {
	t *tree

	mu      sync.Mutex
	queue   []kernel.FamilyID
	wake    chan struct{}
	closing bool
	done    chan struct{}
	idle    *sync.Cond // signalled when the queue is empty and nothing is running
	busy    bool
}

func newJanitor(t *tree) *janitor {
	j := &janitor{t: t, wake: make(chan struct{}, 1), done: make(chan struct{})}
	j.idle = sync.NewCond(&j.mu)
	go j.run()
	return j
}

func (j *janitor) deleteOwned(id kernel.FamilyID) {
	j.mu.Lock()
	j.queue = append(j.queue, id)
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

func (j *janitor) run() {
	defer close(j.done)
	for {
		j.mu.Lock()
		for len(j.queue) == 0 {
			j.busy = false
			j.idle.Broadcast()
			if j.closing {
				j.mu.Unlock()
				return
			}
			j.mu.Unlock()
			<-j.wake
			j.mu.Lock()
		}
		batch := j.queue
		j.queue = nil
		j.busy = true
		j.mu.Unlock()
		for _, id := range batch {
			ctx, cancel := j.t.kctx()
			start := time.Now()
			err := j.t.kernel.DeleteOwned(ctx, id)
			cancel()
			j.t.kernelOp(telemetry.KernelFlush, start, err)
			if err != nil {
				j.t.log.Error("removing a dead family's kernel state failed", zap.Uint64("family", uint64(id)), zap.Error(err))
			}
		}
	}
}

// wait blocks until every queued removal is done.
func (j *janitor) wait() {
	j.mu.Lock()
	for len(j.queue) > 0 || j.busy {
		j.idle.Wait()
	}
	j.mu.Unlock()
}

// close drains the queue and stops the janitor.
func (j *janitor) close() {
	j.mu.Lock()
	j.closing = true
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
	<-j.done
}
