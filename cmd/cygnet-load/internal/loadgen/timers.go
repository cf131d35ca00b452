package loadgen

import (
	"container/heap"
	"time"
)

// timerHeap holds at most one deadline per family: the one its last ArmTimer effect
// asked for (the core arms a single timer per family, actors/ike timers.go). A family
// re-arming moves its entry; disarming removes it. So the heap never holds stale
// entries and its size is bounded by the number of live families.
type timerHeap []*fam

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].timerAt.Before(h[j].timerAt) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *timerHeap) Push(x any) {
	f := x.(*fam)
	f.heapIdx = len(*h)
	*h = append(*h, f)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	f := old[n-1]
	old[n-1] = nil
	f.heapIdx = -1
	*h = old[:n-1]
	return f
}

// arm sets (or, with a zero at, clears) fm's deadline.
func (h *timerHeap) arm(fm *fam, at time.Time, gen uint64) {
	fm.timerGen = gen
	fm.timerAt = at
	switch {
	case at.IsZero() && fm.heapIdx >= 0:
		heap.Remove(h, fm.heapIdx)
	case at.IsZero():
	case fm.heapIdx >= 0:
		heap.Fix(h, fm.heapIdx)
	default:
		heap.Push(h, fm)
	}
}

// remove drops fm's deadline, if any.
func (h *timerHeap) remove(fm *fam) {
	if fm.heapIdx >= 0 {
		heap.Remove(h, fm.heapIdx)
	}
	fm.timerAt = time.Time{}
}

// popDue removes and returns the earliest family whose deadline is not after now.
func (h *timerHeap) popDue(now time.Time) *fam {
	if len(*h) == 0 || (*h)[0].timerAt.After(now) {
		return nil
	}
	fm := heap.Pop(h).(*fam)
	fm.timerAt = time.Time{}
	return fm
}

// next is the earliest deadline (zero when empty).
func (h timerHeap) next() time.Time {
	if len(h) == 0 {
		return time.Time{}
	}
	return h[0].timerAt
}
