package config

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var errLine = regexp.MustCompile(`^fuzz\.yaml(:(\d+))?: `)

// FuzzParse feeds arbitrary files to the parser: it must never panic, and every error it
// reports must name the file and a line inside it.
func FuzzParse(f *testing.F) {
	f.Add(siteA)
	f.Add(diffBase)
	for _, c := range badFiles {
		f.Add(c.src)
	}
	f.Add("a: &x [*x]\n")
	f.Add("connections: {c: {<<: {<<: {}}}}\n")
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := Parse("fuzz.yaml", []byte(src), Options{})
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without error")
			}
			for _, c := range cfg.Connections {
				_ = c.String()
			}
			return
		}
		lines := strings.Count(src, "\n") + strings.Count(src, "\r") + 2 // YAML breaks lines at CR too
		for _, msg := range strings.Split(err.Error(), "\n") {
			m := errLine.FindStringSubmatch(msg)
			if m == nil {
				t.Fatalf("error line without file: %q", msg)
			}
			if m[2] != "" {
				if n, _ := strconv.Atoi(m[2]); n < 1 || n > lines {
					t.Fatalf("error names line %d of a %d-line file: %q", n, lines, msg)
				}
			}
		}
	})
}

// Files that reference themselves or expand exponentially through << merges end with an
// error, not a stack overflow or an hour of work.
func TestHostileMerges(t *testing.T) {
	var laughs strings.Builder
	laughs.WriteString("x-0: &a0 {rekey_time: 1h}\n")
	for i := 1; i < 30; i++ {
		p := "*a" + strconv.Itoa(i-1)
		laughs.WriteString("x-" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " {<<: [" + p + ", " + p + ", " + p + ", " + p + "]}\n")
	}
	laughs.WriteString("connections: {c: {<<: *a29, local: {id: a}}}\nsecrets: {ike: {secret: k}}\n")
	var wide strings.Builder
	wide.WriteString("x-0: &a0 {rekey_time: 1h}\n")
	for i := 1; i < 7; i++ {
		p := "*a" + strconv.Itoa(i-1)
		wide.WriteString("x-" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " {<<: [" + strings.Repeat(p+", ", 60) + p + "]}\n")
	}
	wide.WriteString("connections: {c: {<<: *a6, local: {id: a}}}\n")
	for name, c := range map[string]struct{ src, want string }{
		"wide laughs":    {wide.String(), "<< merges expand to more than 100000 keys"},
		"self merge":     {"connections:\n  c: &a\n    <<: *a\n    local: {id: a}\n", "<< merges nest more than 8 deep"},
		"billion laughs": {laughs.String(), "<< merges nest more than 8 deep"},
	} {
		_, err := Parse("t.yaml", []byte(c.src), Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
	}
}
