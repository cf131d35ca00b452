package netns

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a process waiter outlives the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
