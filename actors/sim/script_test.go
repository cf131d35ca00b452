package sim

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the scripts in testdata")

// scriptCase is one command of a script and the output expected of it.
type scriptCase struct {
	comment []string // lines before the command (comments, blank lines)
	cmd     string
	want    string
	line    int
}

// parseScript reads a script: each case is a command line, "----", the expected output
// and a blank line. Lines starting with # are comments.
func parseScript(t *testing.T, path string) []scriptCase {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var cases []scriptCase
	var pre []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
			pre = append(pre, l)
			continue
		}
		c := scriptCase{comment: pre, cmd: l, line: i + 1}
		pre = nil
		if i+1 < len(lines) && lines[i+1] == "----" {
			i += 2
			var out []string
			for ; i < len(lines) && lines[i] != ""; i++ {
				out = append(out, lines[i])
			}
			c.want = strings.Join(out, "\n")
		}
		cases = append(cases, c)
	}
	return cases
}

func formatScript(cases []scriptCase) string {
	var b strings.Builder
	for _, c := range cases {
		for _, l := range c.comment {
			b.WriteString(l + "\n")
		}
		b.WriteString(c.cmd + "\n----\n" + c.want + "\n")
		if !strings.HasSuffix(c.want, "\n\n") {
			b.WriteString("\n")
		}
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// TestScripts runs every script in testdata: the core's scripted test suite. Each
// starts from an empty world with seed 1. Run with -rewrite to regenerate the expected
// output (then read the diff!).
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scripts in testdata")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			cases := parseScript(t, path)
			w := New(1)
			changed := false
			for i := range cases {
				c := &cases[i]
				got, err := w.Exec(c.cmd)
				if err != nil {
					got = strings.TrimSpace(got + "\nerror: " + err.Error())
				}
				if got != c.want {
					if *rewrite {
						c.want = got
						changed = true
						continue
					}
					t.Errorf("%s:%d: %s\n--- got\n%s\n--- want\n%s", path, c.line, c.cmd, got, c.want)
				}
			}
			if *rewrite && changed {
				if err := os.WriteFile(path, []byte(formatScript(cases)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if v := w.Check(); len(v) > 0 {
				t.Errorf("%s: invariants violated at the end:\n%s", path, strings.Join(v, "\n"))
			}
		})
	}
}
