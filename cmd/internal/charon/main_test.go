package charon

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine (a vici listener, an event reader,
// a process waiter) outlives the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
