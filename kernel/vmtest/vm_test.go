//go:build !cygnet_vm

package vmtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// insideTests are the tests of inside_vm_test.go that must pass in the VM.
var insideTests = []string{
	"TestInsideEnvironment",
	"TestInsideESPModulesLoaded",
	"TestInsideESPStateInstalls",
	"TestInsideESPStateInstalls/aes-gcm-16",
	"TestInsideESPStateInstalls/chacha20-poly1305",
	"TestInsideESPStateInstalls/aes-cbc-hmac-sha256",
	"TestInsideESPStateInstalls/aes-cbc-hmac-sha512-esn",
	"TestInsideESPStateInstalls/aes-gcm-16-udp-encap",
	"TestInsideESPStateInstalls/aes-gcm-16-ipv6",
	"TestInsideXfrmInterface",
	"TestInsideESPTraffic",
}

// TestVM boots the VM once with this package's in-VM tests and two busybox runs, and
// checks the tests' results, the exit statuses, and that arguments and output cross the
// VM boundary byte for byte.
func TestVM(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	inside := filepath.Join(dir, "vmtest.test")
	if err := BuildTestBinary(ctx, ".", inside, "cygnet_vm"); err != nil {
		t.Fatal(err)
	}
	busybox := hostStaticBusybox(t)
	res, err := Run(ctx, Config{Binaries: []Binary{
		{Name: "vmtest.test", Path: inside, Args: []string{"-test.v", "-test.run", "^TestInside"}},
		// Arguments with quotes, spaces, an empty one and shell syntax arrive intact;
		// output without a final newline and a non-zero exit status come back exactly.
		// busybox picks its applet from the binary's name: "sh" and "ash" are shells.
		{Name: "sh", Path: busybox, Args: []string{"-c", `printf '<%s>' "$@"; echo $CYGNET_VM; printf 'no newline'; exit 7`, "sh", "a b", "it's", "", "$(reboot)", "`x`"}},
		{Name: "ash", Path: busybox, Args: []string{"-c", "kill -9 $$"}},
	}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("VM boot %v, total %v", res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond))
	for _, r := range res.Runs {
		t.Logf("  %s ran %v", r.Name, r.Elapsed.Round(time.Millisecond))
	}
	if len(res.Runs) != 3 {
		t.Fatalf("got %d runs, want 3: %+v", len(res.Runs), res.Runs)
	}

	r := res.Runs[0]
	if r.Name != "vmtest.test" || r.ExitCode != 0 {
		t.Errorf("in-VM tests: %s exit %d, want 0; output:\n%s\nconsole:\n%s", r.Name, r.ExitCode, r.Output, res.Console)
	}
	got := make(map[string]TestResult)
	for _, tr := range ParseGoTestOutput(r.Output) {
		got[tr.Name] = tr
		if tr.Status != TestPassed {
			t.Errorf("in VM: %s %v:\n%s", tr.Name, tr.Status, tr.Output)
		}
	}
	for _, name := range insideTests {
		if _, ok := got[name]; !ok {
			t.Errorf("in VM: %s did not run", name)
		}
	}
	if len(got) != len(insideTests) {
		t.Errorf("in VM: %d tests ran, want %d (update insideTests)", len(got), len(insideTests))
	}

	if r := res.Runs[1]; r.Output != "<a b><it's><><$(reboot)><`x`>1\nno newline" || r.ExitCode != 7 {
		t.Errorf("sh: exit %d, output %q; want exit 7, output %q", r.ExitCode, r.Output, "<a b><it's><><$(reboot)><`x`>1\nno newline")
	}
	if r := res.Runs[2]; r.ExitCode != 128+9 || r.Output != "" {
		t.Errorf("ash: exit %d, output %q; want 137 and no output", r.ExitCode, r.Output)
	}
	if strings.Contains(res.Console, "vmtest: insmod") {
		t.Errorf("a module failed to load:\n%s", res.Console)
	}
	if !strings.Contains(res.Console, "Linux version") && !strings.Contains(res.Console, "reboot: Power down") {
		t.Errorf("console does not look like a kernel log:\n%s", res.Console)
	}
}

// TestVMStopsEarly: a binary that powers the VM off before the others run yields an
// error and the partial result, not a hang.
func TestVMStopsEarly(t *testing.T) {
	t.Parallel()
	busybox := hostStaticBusybox(t)
	res, err := Run(context.Background(), Config{Binaries: []Binary{
		{Name: "echo", Path: busybox, Args: []string{"first ran"}},
		{Name: "sh", Path: busybox, Args: []string{"-c", "echo going down; poweroff -f"}},
		{Name: "true", Path: busybox},
	}})
	if err == nil {
		t.Fatalf("Run returned no error although the VM powered off mid-run: %+v", res)
	}
	if !strings.Contains(err.Error(), "binary sh did not finish") {
		t.Errorf("error does not name the unfinished binary: %v", err)
	}
	if res == nil || len(res.Runs) != 2 {
		t.Fatalf("want the partial result with 2 runs, got %+v", res)
	}
	if r := res.Runs[0]; r.ExitCode != 0 || r.Output != "first ran\n" {
		t.Errorf("echo: exit %d output %q", r.ExitCode, r.Output)
	}
	if r := res.Runs[1]; r.ExitCode != -1 || r.Output != "going down\n" {
		t.Errorf("sh: exit %d output %q, want -1 and its partial output", r.ExitCode, r.Output)
	}
}

// TestVMTimeout: a binary that never ends is stopped by the timeout; Run returns (qemu
// was killed) with an error saying so.
func TestVMTimeout(t *testing.T) {
	t.Parallel()
	busybox := hostStaticBusybox(t)
	const timeout = 15 * time.Second
	res, err := Run(context.Background(), Config{Timeout: timeout, Binaries: []Binary{
		{Name: "sh", Path: busybox, Args: []string{"-c", "echo sleeping; exec sleep 100000"}},
	}})
	if err == nil {
		t.Fatalf("Run returned no error for a binary that never ends: %+v", res)
	}
	if !strings.Contains(err.Error(), "did not finish within "+timeout.String()) {
		t.Errorf("error does not report the timeout: %v", err)
	}
	// If the VM booted within the timeout (it does here, in ~5 s), the partial output is kept.
	if res != nil && len(res.Runs) == 1 {
		if r := res.Runs[0]; r.ExitCode != -1 || r.Output != "sleeping\n" {
			t.Errorf("sh: exit %d output %q", r.ExitCode, r.Output)
		}
	}
}

// hostStaticBusybox returns the host's static busybox (package busybox-static), used as
// a ready-made static binary to run in the VM.
func hostStaticBusybox(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if b, err := os.ReadFile(p); err == nil && checkStaticX8664(b) == nil {
			return p
		}
	}
	t.Fatal("no statically linked busybox on the host: install the Debian package busybox-static (or run .ci/deps.sh)")
	return ""
}

// BenchmarkBoot boots the VM with one trivial binary per iteration and reports the boot
// time (qemu start to ready, modules loaded) and the whole Run, in seconds.
func BenchmarkBoot(b *testing.B) {
	busybox := hostStaticBusybox(b)
	var boot, total time.Duration
	for b.Loop() {
		res, err := Run(context.Background(), Config{Binaries: []Binary{{Name: "true", Path: busybox}}})
		if err != nil {
			b.Fatal(err)
		}
		boot += res.Boot
		total += res.Total
	}
	b.ReportMetric(boot.Seconds()/float64(b.N), "boot-s/op")
	b.ReportMetric(total.Seconds()/float64(b.N), "run-s/op")
}
