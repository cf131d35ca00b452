//go:build linux

package xfrm_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind (a Kernel's event
// reader must end with Close).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
