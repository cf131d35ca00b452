package interop

import "testing"

// TestCharonCharon proves the harness and every scenario's assertions with charon
// on both sides, in both directions. TestCygnetCharon (cygnet_test.go) runs the same
// table with A = cygnetd.
func TestCharonCharon(t *testing.T) {
	runScenarios(t, NewCharonPeer, NewCharonPeer, scenarioTable())
}
