package ike

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies enforces the core's contract (DESIGN.md "The pure core"): nothing it
// imports, directly or not, may be protoactor, netlink, zap, prometheus or the net
// package (net/netip is fine).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{"github.com/asynkron/protoactor-go", "github.com/vishvananda/netlink",
		"go.uber.org/zap", "github.com/prometheus/"}
	n := 0
	for _, dep := range strings.Fields(string(out)) {
		n++
		if dep == "net" {
			t.Errorf("the core depends on %q", dep)
		}
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("the core depends on %q", dep)
			}
		}
	}
	if n < 5 {
		t.Fatalf("go list -deps listed only %d packages; the check saw nothing", n)
	}
}
