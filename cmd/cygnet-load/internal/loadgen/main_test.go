package loadgen

import (
	"testing"

	"go.uber.org/goleak"
)

// Every event loop, socket reader and worker must be gone when a run or a responder
// ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
