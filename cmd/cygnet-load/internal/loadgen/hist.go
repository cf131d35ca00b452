package loadgen

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram counts durations in log-linear buckets: 16 sub-buckets per power of two of
// microseconds, so a percentile read from it is within about 6% of the exact value.
// It covers 1 µs to about 2^36 µs (19 hours); longer durations land in the last bucket.
// Record and the readers are safe for concurrent use (atomic counters only).
type Histogram struct {
	buckets [histBuckets]atomic.Uint64
	count   atomic.Uint64
	sumUS   atomic.Uint64
	maxUS   atomic.Uint64
}

const (
	histSubBits = 4 // 16 sub-buckets per octave
	histOctaves = 37
	histBuckets = histOctaves << histSubBits
)

// bucketOf maps a duration in microseconds to its bucket.
func bucketOf(us uint64) int {
	if us < 1<<histSubBits {
		return int(us)
	}
	exp := bits.Len64(us) - 1 - histSubBits // how far above the linear range
	idx := (exp+1)<<histSubBits + int(us>>uint(exp)) - 1<<histSubBits
	if idx >= histBuckets {
		return histBuckets - 1
	}
	return idx
}

// bucketUpper is the largest microsecond value that falls into bucket i.
func bucketUpper(i int) uint64 {
	if i < 1<<histSubBits {
		return uint64(i)
	}
	exp := i>>histSubBits - 1
	mant := uint64(i&(1<<histSubBits-1)) + 1<<histSubBits
	return (mant+1)<<uint(exp) - 1
}

// Record adds one duration (negative durations count as zero).
func (h *Histogram) Record(d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	h.buckets[bucketOf(us)].Add(1)
	h.count.Add(1)
	h.sumUS.Add(us)
	for {
		m := h.maxUS.Load()
		if us <= m || h.maxUS.CompareAndSwap(m, us) {
			break
		}
	}
}

// Count is the number of recorded durations.
func (h *Histogram) Count() uint64 { return h.count.Load() }

// Quantile returns the q-quantile (0 < q ≤ 1) as the upper edge of its bucket, capped
// by the largest value recorded; zero when nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= rank {
			return time.Duration(min(bucketUpper(i), h.maxUS.Load())) * time.Microsecond
		}
	}
	return time.Duration(h.maxUS.Load()) * time.Microsecond
}

// Mean is the average recorded duration.
func (h *Histogram) Mean() time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sumUS.Load()/n) * time.Microsecond
}

// Max is the largest recorded duration.
func (h *Histogram) Max() time.Duration {
	return time.Duration(h.maxUS.Load()) * time.Microsecond
}

// Latency is a histogram's summary in milliseconds, as the JSON report prints it.
type Latency struct {
	Count  uint64  `json:"count"`
	P50ms  float64 `json:"p50_ms"`
	P90ms  float64 `json:"p90_ms"`
	P99ms  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
	MeanMS float64 `json:"mean_ms"`
}

// Summary reads the histogram's percentiles.
func (h *Histogram) Summary() Latency {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	return Latency{Count: h.Count(), P50ms: ms(h.Quantile(0.50)), P90ms: ms(h.Quantile(0.90)),
		P99ms: ms(h.Quantile(0.99)), MaxMS: ms(h.Max()), MeanMS: ms(h.Mean())}
}
