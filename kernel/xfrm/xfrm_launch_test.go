//go:build linux && !vm

package xfrm_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/kernel/vmtest"
)

// vmTests are the top-level tests of xfrm_vm_test.go; each must run and pass in the VM.
var vmTests = []string{"TestVMContract", "TestVMTunnelTraffic", "TestVMCrashCleanup"}

// runInVM compiles this package's tests with -tags vm and runs them in the test VM with
// args; a VM that cannot be had is a failure, with the harness's explanation.
func runInVM(t testing.TB, memoryMB int, timeout time.Duration, args ...string) (string, *vmtest.Result) {
	t.Helper()
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "xfrm.test")
	if err := vmtest.BuildTestBinary(ctx, ".", bin, "vm"); err != nil {
		t.Fatalf("build the in-VM tests: %v", err)
	}
	res, err := vmtest.Run(ctx, vmtest.Config{
		Binaries: []vmtest.Binary{{Name: "xfrm.test", Path: bin, Args: args}},
		Timeout:  timeout,
		MemoryMB: memoryMB,
	})
	if err != nil {
		out := ""
		if res != nil && len(res.Runs) > 0 {
			out = res.Runs[0].Output
		}
		t.Fatalf("the ESP tests need the test VM (qemu with Debian's kernel), which failed: %v\noutput so far:\n%s", err, out)
	}
	if len(res.Runs) != 1 {
		t.Fatalf("VM ran %d binaries, want 1", len(res.Runs))
	}
	return res.Runs[0].Output, res
}

// TestInVM runs the tests that need ESP (xfrm_vm_test.go) in the test VM and fails
// unless every one of them passed.
func TestInVM(t *testing.T) {
	out, res := runInVM(t, 0, 3*time.Minute, "-test.v", "-test.count=1", "-test.run", "^TestVM")
	results := vmtest.ParseGoTestOutput(out)
	seen := make(map[string]bool)
	failed := 0
	for _, r := range results {
		seen[r.Name] = true
		t.Logf("in VM: %-60s %-10v %v", r.Name, r.Status, r.Elapsed)
		if r.Status != vmtest.TestPassed {
			failed++
			t.Errorf("in VM: %s %v:\n%s", r.Name, r.Status, r.Output)
		}
	}
	for _, name := range vmTests {
		if !seen[name] {
			t.Errorf("in VM: %s did not run", name)
		}
	}
	if res.Runs[0].ExitCode != 0 && failed == 0 {
		t.Errorf("in VM: test binary exited %d:\n%s", res.Runs[0].ExitCode, out)
	}
	t.Logf("VM: %d tests (%d failed), boot %v, total %v", len(results), failed,
		res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond))
}

// BenchmarkInVM runs BenchmarkVMChildSAInstallDelete in the test VM (ESP needs it) at
// 200 iterations and prints its results. CYGNET_VM_BENCH and CYGNET_VM_BENCHTIME, if
// set, replace the -test.bench pattern and -test.benchtime: BenchmarkVMListSACounters
// runs with CYGNET_VM_BENCH=^BenchmarkVMListSACounters CYGNET_VM_BENCHTIME=10x (about a
// minute to install its SAs, then 0.7 to 1.2 s per listing under emulation). It boots
// the VM once, whatever b.N is.
func BenchmarkInVM(b *testing.B) {
	pattern, benchtime := "^BenchmarkVMChildSAInstallDelete$", "200x"
	if p := os.Getenv("CYGNET_VM_BENCH"); p != "" {
		pattern = p
	}
	if bt := os.Getenv("CYGNET_VM_BENCHTIME"); bt != "" {
		benchtime = bt
	}
	out, res := runInVM(b, 1024, 40*time.Minute,
		"-test.run", "^$", "-test.bench", pattern, "-test.benchtime", benchtime, "-test.v", "-test.timeout", "40m")
	// Printed rather than logged: go test keeps only the first lines of a benchmark's log.
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, "Benchmark") || strings.Contains(line, "Child SAs") || strings.HasPrefix(line, "FAIL") || strings.Contains(line, "--- FAIL") {
			fmt.Println("in VM:", strings.TrimSpace(line))
		}
	}
	if res.Runs[0].ExitCode != 0 {
		b.Fatalf("in-VM benchmark failed (exit %d):\n%s", res.Runs[0].ExitCode, out)
	}
	fmt.Printf("in VM: boot %v, total %v\n", res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond))
	for b.Loop() {
	}
}
