package loadgen

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// Every microsecond value lands in a bucket whose upper edge is at least the value and
// at most 1/16 above it, and buckets never go backwards.
func TestBucketBounds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		us := rapid.Uint64Range(0, 1<<40).Draw(t, "us")
		b := bucketOf(us)
		up := bucketUpper(b)
		if b < histBuckets-1 && (up < us || float64(up-us) > float64(us)/16+1) {
			t.Fatalf("value %d: bucket %d upper %d", us, b, up)
		}
		if b > 0 && bucketUpper(b-1) >= us && b < histBuckets-1 {
			t.Fatalf("value %d fits in the previous bucket %d (upper %d)", us, b-1, bucketUpper(b-1))
		}
		if bucketOf(us+1) < b {
			t.Fatalf("bucketOf(%d)=%d < bucketOf(%d)=%d", us+1, bucketOf(us+1), us, b)
		}
	})
}

// Quantiles from the histogram agree with the exact ones within the bucket width.
func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	r := rand.New(rand.NewPCG(1, 2))
	var vals []time.Duration
	for range 20000 {
		d := time.Duration(r.ExpFloat64() * float64(30*time.Millisecond))
		vals = append(vals, d)
		h.Record(d)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/16+float64(time.Microsecond) {
			t.Errorf("q%.2f: histogram %v, exact %v", q, got, exact)
		}
	}
	if h.Max() != vals[len(vals)-1].Truncate(time.Microsecond) {
		t.Errorf("max %v, want %v", h.Max(), vals[len(vals)-1])
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Summary().Count != 0 {
		t.Error("empty histogram reports values")
	}
}
