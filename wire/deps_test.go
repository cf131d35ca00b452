package wire

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies enforces the layering rule of DESIGN.md: package wire and every
// package under wire/ — with everything they import, transitively — stay free of
// protoactor, netlink, zap, prometheus and the net package (net/netip is fine). It asks
// `go list -deps -json ./...` from this directory and prints the import chain of any
// violation.
func TestDependencies(t *testing.T) {
	// The go command that runs this test puts its own bin directory first in PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goTool, "list", "-deps", "-json", "./...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list -deps failed: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("cannot run %s (needed to check wire's dependencies): %v", goTool, err)
	}
	type pkg struct {
		ImportPath string
		Imports    []string
		Standard   bool
	}
	pkgs := map[string]pkg{}
	var roots []string
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
		if strings.HasPrefix(p.ImportPath, "github.com/cygnet-ipsec/cygnet/wire") {
			roots = append(roots, p.ImportPath)
		}
	}
	if len(roots) == 0 || pkgs["github.com/cygnet-ipsec/cygnet/wire"].ImportPath == "" {
		t.Fatalf("go list did not report package wire (%d packages listed)", len(pkgs))
	}
	forbidden := func(path string) bool {
		for _, f := range []string{
			"github.com/asynkron/protoactor-go", "github.com/vishvananda/netlink",
			"github.com/vishvananda/netns", "go.uber.org/zap", "github.com/prometheus/",
		} {
			if strings.HasPrefix(path, f) {
				return true
			}
		}
		return path == "net"
	}
	// Breadth-first from each package under wire/, remembering how each was reached.
	for _, root := range roots {
		from := map[string]string{root: ""}
		queue := []string{root}
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			if forbidden(cur) {
				chain := []string{cur}
				for p := from[cur]; p != ""; p = from[p] {
					chain = append([]string{p}, chain...)
				}
				t.Errorf("%s must not depend on %s: %s", root, cur, strings.Join(chain, " -> "))
				continue
			}
			for _, imp := range pkgs[cur].Imports {
				if _, seen := from[imp]; !seen {
					from[imp] = cur
					queue = append(queue, imp)
				}
			}
		}
		if len(from) < 2 {
			t.Errorf("%s: no imports found; go list output not understood", root)
		}
	}
}
