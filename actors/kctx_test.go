package actors

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// The kernel call context keeps context.WithTimeout's contract: a deadline, Done closed
// when it passes or on cancel, Err saying which.
func TestKernelContextOnVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &tree{kernelTimeout: 5 * time.Second}
		ctx, cancel := tr.kctx()
		defer cancel()
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) != 5*time.Second {
			t.Fatalf("deadline %v %v, want in 5s", dl, ok)
		}
		if err := ctx.Err(); err != nil {
			t.Fatalf("fresh context: %v", err)
		}
		done := ctx.Done()
		time.Sleep(4 * time.Second)
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("done before the deadline")
		default:
		}
		time.Sleep(time.Second)
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("not done at the deadline")
		}
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("after the deadline: %v", ctx.Err())
		}

		// Cancelled before the deadline, with and without a Done channel made first.
		for _, early := range []bool{true, false} {
			ctx, cancel := tr.kctx()
			if early {
				ctx.Done()
			}
			cancel()
			cancel()
			select {
			case <-ctx.Done():
			default:
				t.Fatalf("early=%v: not done after cancel", early)
			}
			if !errors.Is(ctx.Err(), context.Canceled) {
				t.Fatalf("early=%v: after cancel: %v", early, ctx.Err())
			}
		}
		// Done asked for only after the deadline passed is closed at once.
		ctx2, cancel2 := tr.kctx()
		defer cancel2()
		time.Sleep(6 * time.Second)
		select {
		case <-ctx2.Done():
		default:
			t.Fatal("late Done not closed")
		}
	})
}
