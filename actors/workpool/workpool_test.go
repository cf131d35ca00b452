package workpool

import (
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunsJobsAndPostsResults(t *testing.T) {
	p := New(Config{Workers: 2, MaxQueue: 64})
	defer p.Close()
	results := make(chan int, 64)
	for i := range 64 {
		if !p.TrySubmit(func() { results <- i * i }) {
			t.Fatalf("job %d refused with an empty pool", i)
		}
	}
	sum := 0
	for range 64 {
		sum += <-results
	}
	if want := 63 * 64 * 127 / 6; sum != want {
		t.Fatalf("sum of results %d, want %d", sum, want)
	}
}

func TestFullQueueRefusesWithoutBlocking(t *testing.T) {
	p := New(Config{Workers: 1, MaxQueue: 4, HighWater: 3})
	defer p.Close()
	block := make(chan struct{})
	running := make(chan struct{})
	p.TrySubmit(func() { close(running); <-block })
	<-running // the worker holds this job; the queue is empty
	for i := range 4 {
		if !p.TrySubmit(func() {}) {
			t.Fatalf("job %d refused below capacity", i)
		}
		if busy, want := p.Busy(), i+1 >= 3; busy != want {
			t.Fatalf("after %d queued Busy()=%v, want %v", i+1, busy, want)
		}
	}
	if p.TrySubmit(func() {}) {
		t.Fatal("a job was accepted beyond the queue's capacity")
	}
	if s := p.Stats(); s.Refused != 1 || s.Queued != 4 {
		t.Fatalf("stats %v", s)
	}
	close(block)
}

func TestPanickingJobIsContained(t *testing.T) {
	var got atomic.Value
	p := New(Config{Workers: 1, MaxQueue: 4, OnPanic: func(r any) { got.Store(r) }})
	defer p.Close()
	done := make(chan struct{})
	p.TrySubmit(func() { panic("kex bug") })
	p.TrySubmit(func() { close(done) })
	<-done // the worker survived the panic
	if got.Load() != "kex bug" || p.Stats().Panics != 1 {
		t.Fatalf("panic not reported: %v %v", got.Load(), p.Stats())
	}
}

func TestCloseDropsQueuedRefusesNewAndWaitsForRunning(t *testing.T) {
	p := New(Config{Workers: 1, MaxQueue: 8})
	block := make(chan struct{})
	running := make(chan struct{})
	var ran atomic.Int32
	var finished atomic.Bool
	p.TrySubmit(func() { close(running); <-block; finished.Store(true) })
	<-running
	for range 5 {
		p.TrySubmit(func() { ran.Add(1) })
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.Close() }()
	close(block)
	wg.Wait()
	if !finished.Load() {
		t.Fatal("Close returned before the running job finished")
	}
	if p.TrySubmit(func() {}) {
		t.Fatal("a closed pool accepted a job")
	}
	p.Close() // idempotent
	// Queued jobs may have run before Close took the lock; none after.
	if ran.Load() > 5 {
		t.Fatal("impossible count")
	}
}

func TestFIFO(t *testing.T) {
	p := New(Config{Workers: 1})
	defer p.Close()
	var got []int
	done := make(chan struct{})
	for i := range 10000 {
		p.TrySubmit(func() {
			got = append(got, i)
			if i == 9999 {
				close(done)
			}
		})
	}
	<-done
	for i, v := range got {
		if v != i {
			t.Fatalf("job %d ran as %d", v, i)
		}
	}
}

func BenchmarkSubmitAndRun(b *testing.B) {
	p := New(Config{})
	defer p.Close()
	var wg sync.WaitGroup
	b.ReportAllocs()
	for b.Loop() {
		wg.Add(1)
		for !p.TrySubmit(wg.Done) {
		}
	}
	wg.Wait()
}
