package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// BuildTestBinary runs `go test -c -tags <tags> -o <out>` for pkg with CGO_ENABLED=0.
// The binary is built for linux/amd64, the VM's platform, whatever the host's GOOS and
// GOARCH say. pkg is an import path or a directory pattern relative to the current
// directory (under `go test`, the package's own directory).
func BuildTestBinary(ctx context.Context, pkg, out string, tags ...string) error {
	goTool, err := goCommand()
	if err != nil {
		return err
	}
	args := []string{"test", "-c", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	args = append(args, pkg)
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	var outb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &outb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("vmtest: go %s: %w\n%s", strings.Join(args, " "), err, outb.String())
	}
	if _, err := os.Stat(out); err != nil {
		// go test -c writes nothing for a package without test files.
		return fmt.Errorf("vmtest: go %s produced no binary (does %s have test files for tags %q?): %w", strings.Join(args, " "), pkg, tags, err)
	}
	return nil
}

// goCommand finds the go tool: go on PATH (`go test` puts its own GOROOT/bin first), else
// $GOROOT/bin/go.
func goCommand() (string, error) {
	p, err := exec.LookPath("go")
	if err == nil {
		return p, nil
	}
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("vmtest: the go tool is not on PATH: %w", err)
}

// TestStatus is the outcome of one Go test as reported by -test.v.
type TestStatus int

const (
	// TestUnfinished: the test started (=== RUN) but no result line followed — the
	// binary crashed, timed out or the VM died.
	TestUnfinished TestStatus = iota
	TestPassed
	TestFailed
	TestSkipped
)

func (s TestStatus) String() string {
	switch s {
	case TestUnfinished:
		return "UNFINISHED"
	case TestPassed:
		return "PASS"
	case TestFailed:
		return "FAIL"
	case TestSkipped:
		return "SKIP"
	}
	return "TestStatus(" + strconv.Itoa(int(s)) + ")"
}

// TestResult is one test's (or subtest's, Name "TestX/sub") result.
type TestResult struct {
	Name    string
	Status  TestStatus
	Elapsed time.Duration
	// Output holds the lines attributed to this test: those printed while it was the
	// running test (after === RUN, === CONT or === NAME) and the indented lines under
	// its result line.
	Output string
}

// ParseGoTestOutput extracts per-test results (=== RUN / --- PASS / --- FAIL lines of
// -test.v output), in the order the tests started. Tests that started and have no
// result line are TestUnfinished. Lines that are not test framing (including
// benchmark lines) are attributed to the current test, if any.
func ParseGoTestOutput(out string) []TestResult {
	var results []TestResult
	index := make(map[string]int)
	cur := -1 // test receiving free-form lines
	get := func(name string) int {
		if i, ok := index[name]; ok {
			return i
		}
		index[name] = len(results)
		results = append(results, TestResult{Name: name})
		return len(results) - 1
	}
	var outputs []strings.Builder
	appendLine := func(i int, line string) {
		for len(outputs) <= i {
			outputs = append(outputs, strings.Builder{})
		}
		outputs[i].WriteString(line)
		outputs[i].WriteString("\n")
	}
	for line := range strings.SplitSeq(out, "\n") {
		// -test.v=test2json marks framing lines with a leading SYN (0x16).
		line = strings.TrimPrefix(strings.TrimSuffix(line, "\r"), "\x16")
		if name, ok := framing(line, "=== RUN"); ok {
			cur = get(name)
			continue
		}
		if name, ok := framing(line, "=== CONT"); ok {
			cur = get(name)
			continue
		}
		if name, ok := framing(line, "=== NAME"); ok {
			cur = get(name)
			continue
		}
		if _, ok := framing(line, "=== PAUSE"); ok {
			continue
		}
		if name, status, elapsed, ok := resultLine(line); ok {
			i := get(name)
			results[i].Status = status
			results[i].Elapsed = elapsed
			cur = i
			continue
		}
		if cur >= 0 && line != "" && !summaryLine(line) {
			appendLine(cur, line)
		}
	}
	for i := range results {
		if i < len(outputs) {
			results[i].Output = outputs[i].String()
		}
	}
	return results
}

// summaryLine reports the binary's closing lines: PASS, FAIL, and go test's "ok" and
// "FAIL" package lines.
func summaryLine(line string) bool {
	return line == "PASS" || line == "FAIL" || strings.HasPrefix(line, "ok  \t") || strings.HasPrefix(line, "FAIL\t")
}

// framing parses "=== RUN   TestName" style lines.
func framing(line, word string) (string, bool) {
	rest, ok := strings.CutPrefix(line, word)
	if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return "", false
	}
	name := strings.TrimSpace(rest)
	if name == "" || strings.ContainsAny(name, " \t") {
		return "", false
	}
	return name, true
}

// resultLine parses "--- PASS: TestName (0.12s)", possibly indented (subtests).
func resultLine(line string) (string, TestStatus, time.Duration, bool) {
	s := strings.TrimLeft(line, " \t")
	rest, ok := strings.CutPrefix(s, "--- ")
	if !ok {
		return "", 0, 0, false
	}
	var status TestStatus
	switch {
	case strings.HasPrefix(rest, "PASS: "):
		status = TestPassed
	case strings.HasPrefix(rest, "FAIL: "):
		status = TestFailed
	case strings.HasPrefix(rest, "SKIP: "):
		status = TestSkipped
	default:
		return "", 0, 0, false
	}
	rest = rest[len("PASS: "):]
	name, tail, _ := strings.Cut(rest, " ")
	if name == "" {
		return "", 0, 0, false
	}
	var elapsed time.Duration
	if t, ok := strings.CutPrefix(strings.TrimSpace(tail), "("); ok {
		if t, ok := strings.CutSuffix(t, ")"); ok {
			if d, err := time.ParseDuration(t); err == nil {
				elapsed = d
			}
		}
	}
	return name, status, elapsed, true
}
