package interop

import "testing"

// TestCharonCharon proves the harness and every scenario's assertions with charon
// on both sides, in both directions. When cygnetd exists, the same table runs with
// A = cygnetd (cygnet_test.go, build tag interop_cygnet).
func TestCharonCharon(t *testing.T) {
	runScenarios(t, NewCharonPeer, NewCharonPeer, scenarioTable())
}
