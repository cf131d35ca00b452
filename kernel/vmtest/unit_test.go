//go:build !cygnet_vm

package vmtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"
)

// newcEntry is one entry of a newc archive as readNewc parses it.
type newcEntry struct {
	Name        string
	Mode        uint32
	Nlink       uint32
	RdevMajor   uint32
	RdevMinor   uint32
	Data        string
	HeaderAlign int64 // header offset % 4, must be 0
}

// readNewc is an independent newc reader for the tests: it parses every field, checks
// the magic, the padding and the trailer, and returns the entries before the trailer
// and the offset just after the trailer's padding.
func readNewc(b []byte) ([]newcEntry, int, error) {
	var out []newcEntry
	off := 0
	for {
		if off+cpioHeaderLen > len(b) {
			return nil, 0, fmt.Errorf("offset %d: truncated header", off)
		}
		h := b[off : off+cpioHeaderLen]
		if string(h[:6]) != "070701" {
			return nil, 0, fmt.Errorf("offset %d: bad magic %q", off, h[:6])
		}
		var f [13]uint32
		for i := range f {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				return nil, 0, fmt.Errorf("offset %d field %d: %w", off, i, err)
			}
			f[i] = uint32(v)
		}
		e := newcEntry{Mode: f[1], Nlink: f[4], RdevMajor: f[9], RdevMinor: f[10], HeaderAlign: int64(off % 4)}
		if f[2] != 0 || f[3] != 0 || f[5] != 0 {
			return nil, 0, fmt.Errorf("offset %d: uid/gid/mtime not zero", off)
		}
		namesize, filesize := int(f[11]), int(f[6])
		nameStart := off + cpioHeaderLen
		if namesize < 1 || nameStart+namesize > len(b) || b[nameStart+namesize-1] != 0 {
			return nil, 0, fmt.Errorf("offset %d: bad name size %d", off, namesize)
		}
		e.Name = string(b[nameStart : nameStart+namesize-1])
		dataStart := (nameStart + namesize + 3) &^ 3
		if !allZero(b[nameStart+namesize : min(dataStart, len(b))]) {
			return nil, 0, fmt.Errorf("%s: name padding not zero", e.Name)
		}
		if dataStart+filesize > len(b) {
			return nil, 0, fmt.Errorf("%s: truncated data", e.Name)
		}
		e.Data = string(b[dataStart : dataStart+filesize])
		next := (dataStart + filesize + 3) &^ 3
		if next > len(b) || !allZero(b[dataStart+filesize:next]) {
			return nil, 0, fmt.Errorf("%s: data padding missing or not zero", e.Name)
		}
		off = next
		if e.Name == cpioTrailerName {
			return out, off, nil
		}
		out = append(out, e)
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func TestCpioRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 12).Draw(t, "entries")
		var want []newcEntry
		var buf bytes.Buffer
		cw := newCpioWriter(&buf)
		for i := range n {
			name := fmt.Sprintf("d%d/%s", i, rapid.StringMatching(`[a-z0-9._-]{1,13}`).Draw(t, "name"))
			var err error
			var e newcEntry
			switch rapid.IntRange(0, 3).Draw(t, "kind") {
			case 0:
				perm := uint32(rapid.IntRange(0, 0o7777).Draw(t, "perm"))
				err = cw.Dir(name, perm)
				e = newcEntry{Name: name, Mode: cpioModeDir | perm, Nlink: 2}
			case 1:
				perm := uint32(rapid.IntRange(0, 0o7777).Draw(t, "perm"))
				data := rapid.SliceOfN(rapid.Byte(), 0, 70).Draw(t, "data")
				err = cw.File(name, perm, data)
				e = newcEntry{Name: name, Mode: cpioModeRegular | perm, Nlink: 1, Data: string(data)}
			case 2:
				target := rapid.StringMatching(`[a-z/.]{1,20}`).Draw(t, "target")
				err = cw.Symlink(name, target)
				e = newcEntry{Name: name, Mode: cpioModeSymlink | 0o777, Nlink: 1, Data: target}
			case 3:
				maj, mnr := uint32(rapid.IntRange(0, 255).Draw(t, "major")), uint32(rapid.IntRange(0, 255).Draw(t, "minor"))
				err = cw.CharDev(name, 0o600, maj, mnr)
				e = newcEntry{Name: name, Mode: cpioModeCharDev | 0o600, Nlink: 1, RdevMajor: maj, RdevMinor: mnr}
			}
			if err != nil {
				t.Fatalf("write %s: %v", name, err)
			}
			want = append(want, e)
		}
		if err := cw.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		got, end, err := readNewc(buf.Bytes())
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		if end != buf.Len() || end%4 != 0 {
			t.Fatalf("archive is %d bytes, trailer ends at %d; want equal and a multiple of 4", buf.Len(), end)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("entries differ (-want +got):\n%s", diff)
		}
	})
}

// TestCpioExtractsWithGNUcpio has GNU cpio, an independent implementation, unpack an
// archive and checks the files, modes and symlinks it made.
func TestCpioExtractsWithGNUcpio(t *testing.T) {
	cpioTool, err := exec.LookPath("cpio")
	if err != nil {
		t.Fatalf("cpio is missing; install the Debian package cpio (or run .ci/deps.sh): %v", err)
	}
	var buf bytes.Buffer
	cw := newCpioWriter(&buf)
	errs := []error{
		cw.Dir("a", 0o755),
		cw.Dir("a/b", 0o700),
		cw.File("a/b/exe", 0o755, []byte("#!/bin/sh\necho hi\n")),
		cw.File("/a/odd", 0o640, []byte("12345")), // leading slash is dropped
		cw.File("a/empty", 0o600, nil),
		cw.Symlink("a/link", "b/exe"),
		cw.Close(),
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(cpioTool, "-i", "-d", "--quiet", "--no-absolute-filenames")
	cmd.Dir = dir
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
		data string
	}{
		{"a", os.ModeDir | 0o755, ""},
		{"a/b", os.ModeDir | 0o700, ""},
		{"a/b/exe", 0o755, "#!/bin/sh\necho hi\n"},
		{"a/odd", 0o640, "12345"},
		{"a/empty", 0o600, ""},
	} {
		fi, err := os.Lstat(filepath.Join(dir, c.path))
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if fi.Mode() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode(), c.mode)
		}
		if !fi.IsDir() {
			if b, _ := os.ReadFile(filepath.Join(dir, c.path)); string(b) != c.data {
				t.Errorf("%s: contents %q, want %q", c.path, b, c.data)
			}
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "a/link")); err != nil || target != "b/exe" {
		t.Errorf("a/link → %q (%v), want b/exe", target, err)
	}
}

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("disk full")
	}
	w.after--
	return len(p), nil
}

func TestCpioErrors(t *testing.T) {
	cw := newCpioWriter(discardWriter{})
	for _, name := range []string{"", "/", "a\x00b"} {
		if err := cw.File(name, 0o644, nil); err == nil {
			t.Errorf("File(%q) accepted an invalid name", name)
		}
	}
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cw.File("late", 0o644, nil); !errors.Is(err, errCpioClosed) {
		t.Errorf("File after Close: %v, want errCpioClosed", err)
	}
	if err := cw.Close(); !errors.Is(err, errCpioClosed) {
		t.Errorf("second Close: %v, want errCpioClosed", err)
	}

	fw := newCpioWriter(&failingWriter{after: 1})
	if err := fw.File("a", 0o644, []byte("data")); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("write error not reported: %v", err)
	}
	if err := fw.Dir("b", 0o755); err == nil {
		t.Errorf("error not sticky")
	}
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// feedAll runs the marker parser over a stream, as Run does.
func feedAll(t *testing.T, token string, n int, stream string) *markerParser {
	t.Helper()
	p := newMarkerParser(token, n)
	tick := time.Unix(0, 0)
	now := func() time.Time { tick = tick.Add(time.Second); return tick }
	if err := p.readFrom(strings.NewReader(stream), now); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMarkerParser(t *testing.T) {
	const tok = "abc123"
	m := func(s string) string { return "@@CYGNET-" + tok + " " + s + "\n" }
	bins := []Binary{{Name: "one"}, {Name: "two"}, {Name: "three"}, {Name: "four"}}
	stream := "boot noise before ready\n" + m("READY") +
		m("BEGIN 0") + "line 1\nline 2\n" + "\n" + m("END 0 0") +
		m("BEGIN 1") + "no newline at end" + "\n" + m("END 1 3") +
		m("BEGIN 2") + "" + "\n" + m("END 2 137") +
		// Output that looks like markers but carries another token, blank lines, a
		// CRLF line, and a marker for the wrong index all stay output.
		m("BEGIN 3") + "@@CYGNET-forged END 3 0\n\n\ncrlf\r\n" + "@@CYGNET-" + tok + " END 9 0\n" + "\n" + m("END 3 1") +
		m("DONE")
	p := feedAll(t, tok, 4, stream)
	if !p.done {
		t.Fatalf("parser not done after DONE; progress: %s", p.progress(bins))
	}
	got := p.results(bins)
	want := []BinaryResult{
		{Name: "one", Output: "line 1\nline 2\n", ExitCode: 0},
		{Name: "two", Output: "no newline at end", ExitCode: 3},
		{Name: "three", Output: "", ExitCode: 137},
		{Name: "four", Output: "@@CYGNET-forged END 3 0\n\n\ncrlf\n@@CYGNET-" + tok + " END 9 0\n", ExitCode: 1},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(BinaryResult{}, "Elapsed")); diff != "" {
		t.Errorf("results differ (-want +got):\n%s", diff)
	}
	if !p.readyAt.Equal(time.Unix(2, 0)) {
		t.Errorf("ready at %v, want the second line's time", p.readyAt)
	}
}

func TestMarkerParserUnfinished(t *testing.T) {
	const tok = "t0"
	m := func(s string) string { return "@@CYGNET-" + tok + " " + s + "\n" }
	bins := []Binary{{Name: "a"}, {Name: "b"}, {Name: "c"}}

	p := feedAll(t, tok, 3, m("READY")+m("BEGIN 0")+"\n"+m("END 0 0")+m("BEGIN 1")+"partial\nlast line cut")
	if p.done {
		t.Error("done without DONE")
	}
	// One line per clock tick: READY, BEGIN, the newline, END: 2 s from BEGIN to END.
	want := []BinaryResult{{Name: "a", ExitCode: 0, Elapsed: 2 * time.Second}, {Name: "b", Output: "partial\nlast line cut", ExitCode: -1}}
	if diff := cmp.Diff(want, p.results(bins)); diff != "" {
		t.Errorf("results differ (-want +got):\n%s", diff)
	}
	if got := p.progress(bins); got != "binary b did not finish" {
		t.Errorf("progress %q", got)
	}

	// DONE before every binary ended (a truncated run.sh) is not done.
	p = feedAll(t, tok, 2, m("READY")+m("BEGIN 0")+"\n"+m("END 0 0")+m("DONE"))
	if p.done {
		t.Error("done although binary 1 never ran")
	}
	if got := p.progress(bins); got != "1 of 2 binaries finished" {
		t.Errorf("progress %q", got)
	}

	p = feedAll(t, tok, 1, "kernel panic\n")
	if p.ready || p.done || len(p.results(bins)) != 0 {
		t.Errorf("parser moved without markers: %+v", p)
	}
	if got := p.progress(bins); !strings.Contains(got, "never became ready") {
		t.Errorf("progress %q", got)
	}
}

// TestRunScriptQuoting runs the generated run.sh in the host's shell with stub marker
// functions and checks each binary receives exactly its arguments.
func TestRunScriptQuoting(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	bins := []Binary{
		{Name: "a", Args: []string{"plain", "with space", "it's", `"dq"`, "", "$(touch /tmp/pwned)", "`id`", "new\nline", `back\slash`, "*", "$HOME"}},
		{Name: "b.test"},
	}
	script := filepath.Join(t.TempDir(), "run.sh")
	if err := os.WriteFile(script, runScript("tok", bins), 0o644); err != nil {
		t.Fatal(err)
	}
	driver := `cygnet_mark() { printf 'mark %s\0' "$*"; }
cygnet_run() { printf 'run %s\0' "$1"; shift; for a in "$@"; do printf '%s\0' "$a"; done; }
. "$1"`
	out, err := exec.Command(sh, "-c", driver, "sh", script).Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	want := []string{"mark READY", "run 0", "/cygnet/bin/a"}
	want = append(want, bins[0].Args...)
	want = append(want, "run 1", "/cygnet/bin/b.test", "mark DONE")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("arguments differ (-want +got):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Binary{Name: "x.test", Path: "/x"}
	cases := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{"valid", Config{Binaries: []Binary{ok}}, ""},
		{"valid memory", Config{Binaries: []Binary{ok}, MemoryMB: MinMemoryMB}, ""},
		{"no binaries", Config{}, "Binaries is empty"},
		{"little memory", Config{Binaries: []Binary{ok}, MemoryMB: 64}, "below"},
		{"negative timeout", Config{Binaries: []Binary{ok}, Timeout: -time.Second}, "negative Timeout"},
		{"slash in name", Config{Binaries: []Binary{{Name: "a/b"}}}, "binary name"},
		{"dot name", Config{Binaries: []Binary{{Name: ".."}}}, "binary name"},
		{"space in name", Config{Binaries: []Binary{{Name: "a b"}}}, "binary name"},
		{"duplicate", Config{Binaries: []Binary{ok, ok}}, "used twice"},
	}
	for _, c := range cases {
		err := c.cfg.validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestRunRejectsDynamicBinary(t *testing.T) {
	// /bin/sh is dash, dynamically linked, on Debian.
	dynamic, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dynamic)
	if err != nil {
		t.Fatal(err)
	}
	err = checkStaticX8664(b)
	if err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Fatalf("checkStaticX8664(%s) = %v, want an error naming CGO_ENABLED=0", dynamic, err)
	}
	err = writeRunInitrd(filepath.Join(t.TempDir(), "initrd"), "/dev/null", "tok", []Binary{{Name: "sh", Path: dynamic}})
	if err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("writeRunInitrd accepted a dynamic binary: %v", err)
	}
	if err := checkStaticX8664([]byte("#!/bin/sh\n")); err == nil {
		t.Errorf("a shell script passed as an ELF executable")
	}
}

func TestRunWithoutQemuNamesThePackage(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Run(context.Background(), Config{Binaries: []Binary{{Name: "x", Path: "/bin/busybox"}}})
	if err == nil || !strings.Contains(err.Error(), "install the Debian package qemu-system-x86") {
		t.Fatalf("Run without qemu on PATH: %v, want an error naming qemu-system-x86", err)
	}
}

func TestModuleOrder(t *testing.T) {
	// A small fake module graph: file paths map to dependency lists.
	deps := map[string][]string{
		"/m/esp4.ko":          {"xfrm_algo"},
		"/m/xfrm_algo.ko":     nil,
		"/m/xfrm_user.ko":     {"xfrm_algo"},
		"/m/aesni-intel.ko":   {"crypto_simd", "cryptd"},
		"/m/crypto_simd.ko":   {"cryptd"},
		"/m/cryptd.ko":        nil,
		"/m/uses_builtin.ko":  {"aes_generic"},
		"/m/cycle_a.ko":       {"cycle_b"},
		"/m/cycle_b.ko":       {"cycle_a"},
		"/m/needs_missing.ko": {"nowhere"},
	}
	idx := make(map[string]string)
	for p := range deps {
		idx[modName(strings.TrimSuffix(filepath.Base(p), ".ko"))] = p
	}
	load := func(p string) ([]byte, []string, error) {
		d, ok := deps[p]
		if !ok {
			return nil, nil, fmt.Errorf("no file %s", p)
		}
		return []byte("ko:" + p), d, nil
	}
	builtin := map[string]bool{"aes_generic": true}

	order, blobs, err := moduleOrder([]string{"esp4", "aesni_intel", "xfrm-user", "uses_builtin", "cryptd"}, idx, builtin, load)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"xfrm_algo", "esp4", "cryptd", "crypto_simd", "aesni_intel", "xfrm_user", "uses_builtin"}
	if diff := cmp.Diff(want, order); diff != "" {
		t.Errorf("order differs (-want +got):\n%s", diff)
	}
	if string(blobs["aesni_intel"]) != "ko:/m/aesni-intel.ko" || len(blobs) != len(want) {
		t.Errorf("blobs: %q", blobs)
	}

	if _, _, err := moduleOrder([]string{"cycle_a"}, idx, builtin, load); err == nil || !strings.Contains(err.Error(), "cycle_a → cycle_b → cycle_a") {
		t.Errorf("cycle: %v", err)
	}
	if _, _, err := moduleOrder([]string{"needs_missing"}, idx, builtin, load); err == nil || !strings.Contains(err.Error(), "needs_missing → nowhere") {
		t.Errorf("missing dependency: %v", err)
	}
}

func TestHasNote(t *testing.T) {
	note := func(name string, typ uint32, desc []byte) []byte {
		var b []byte
		b = binary.LittleEndian.AppendUint32(b, uint32(len(name)+1))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
		b = binary.LittleEndian.AppendUint32(b, typ)
		b = append(b, name...)
		b = append(b, 0)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		b = append(b, desc...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	le := binary.LittleEndian
	seg := slices.Concat(note("GNU", 3, []byte("build-id-bytes")), note("Xen", 5, []byte("x")), note("Xen", xenElfnotePhys32Entry, []byte{1, 2, 3, 4}))
	if !hasNote(seg, le, "Xen", xenElfnotePhys32Entry) {
		t.Error("PVH note not found")
	}
	if hasNote(seg[:len(seg)-4], le, "Xen", xenElfnotePhys32Entry) {
		t.Error("found a note in a truncated segment")
	}
	if hasNote(note("Xen", 5, nil), le, "Xen", xenElfnotePhys32Entry) {
		t.Error("matched the wrong note type")
	}
	// Malformed segments never panic.
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(t, "segment")
		hasNote(b, le, "Xen", xenElfnotePhys32Entry)
		hasNote(slices.Concat(seg[:12], b), le, "Xen", xenElfnotePhys32Entry)
	})
}

func TestExtractVmlinuxRejectsJunk(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("MZ not a kernel"), slices.Concat([]byte("junk"), xzMagic, []byte("not really xz"))} {
		if _, err := extractVmlinux(in); err == nil {
			t.Errorf("extractVmlinux(%q) succeeded", in)
		}
	}
}

func TestParseGoTestOutput(t *testing.T) {
	out := strings.Join([]string{
		"=== RUN   TestA",
		"    a_test.go:1: hello",
		"--- PASS: TestA (0.25s)",
		"=== RUN   TestB",
		"=== RUN   TestB/sub_1",
		"=== PAUSE TestB/sub_1",
		"=== RUN   TestB/sub_2",
		"    b_test.go:9: sub 2 says",
		"=== CONT  TestB/sub_1",
		"=== NAME  TestB/sub_2",
		"    b_test.go:10: more from sub 2",
		"--- FAIL: TestB (1.5s)",
		"    --- PASS: TestB/sub_1 (0.00s)",
		"    --- FAIL: TestB/sub_2 (1.00s)",
		"=== RUN   TestCrash",
		"panic: boom",
		"=== RUN   not a test name line",
		"--- BOGUS: TestX (0.00s)",
		"FAIL",
		"",
	}, "\n")
	got := ParseGoTestOutput(out)
	want := []TestResult{
		{Name: "TestA", Status: TestPassed, Elapsed: 250 * time.Millisecond, Output: "    a_test.go:1: hello\n"},
		{Name: "TestB", Status: TestFailed, Elapsed: 1500 * time.Millisecond},
		{Name: "TestB/sub_1", Status: TestPassed},
		{Name: "TestB/sub_2", Status: TestFailed, Elapsed: time.Second, Output: "    b_test.go:9: sub 2 says\n    b_test.go:10: more from sub 2\n"},
		{Name: "TestCrash", Status: TestUnfinished, Output: "panic: boom\n=== RUN   not a test name line\n--- BOGUS: TestX (0.00s)\n"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results differ (-want +got):\n%s", diff)
	}
	for s, w := range map[TestStatus]string{TestPassed: "PASS", TestFailed: "FAIL", TestSkipped: "SKIP", TestUnfinished: "UNFINISHED", TestStatus(9): "TestStatus(9)"} {
		if s.String() != w {
			t.Errorf("%d.String() = %q, want %q", int(s), s.String(), w)
		}
	}
	// -test.v=test2json framing.
	j := ParseGoTestOutput("\x16=== RUN   TestJ\n    j_test.go:1: log\n\x16--- PASS: TestJ (0.01s)\n")
	if diff := cmp.Diff([]TestResult{{Name: "TestJ", Status: TestPassed, Elapsed: 10 * time.Millisecond, Output: "    j_test.go:1: log\n"}}, j); diff != "" {
		t.Errorf("test2json framing (-want +got):\n%s", diff)
	}
	if got := ParseGoTestOutput(""); len(got) != 0 {
		t.Errorf("empty output parsed to %v", got)
	}
}

// TestParseRealGoTestOutput compiles testdata/gotestsample with BuildTestBinary, runs it
// on the host, and parses what the real testing package printed.
func TestParseRealGoTestOutput(t *testing.T) {
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "sample.test")
	if err := BuildTestBinary(ctx, "./testdata/gotestsample", bin); err != nil {
		t.Fatal(err)
	}
	run := func(pattern string) (string, int) {
		out, err := exec.Command(bin, "-test.v", "-test.run", pattern).CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("run sample: %v", err)
		}
		code := 0
		if ee != nil {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	statuses := func(rs []TestResult) map[string]TestStatus {
		m := make(map[string]TestStatus)
		for _, r := range rs {
			m[r.Name] = r.Status
		}
		return m
	}

	out, code := run("^Test(Pass|Fail|Skip|Sub|ParA|ParB)$")
	if code != 1 {
		t.Errorf("sample exit %d, want 1", code)
	}
	rs := ParseGoTestOutput(out)
	want := map[string]TestStatus{
		"TestPass": TestPassed, "TestFail": TestFailed, "TestSkip": TestSkipped,
		"TestSub": TestFailed, "TestSub/ok": TestPassed, "TestSub/bad": TestFailed,
		"TestParA": TestPassed, "TestParB": TestPassed,
	}
	if diff := cmp.Diff(want, statuses(rs)); diff != "" {
		t.Errorf("statuses differ (-want +got):\n%s\noutput:\n%s", diff, out)
	}
	for _, r := range rs {
		wantLog := map[string]string{"TestPass": "pass log line", "TestFail": "fail message", "TestSub/bad": "sub failure", "TestParA": "in A", "TestParB": "in B"}[r.Name]
		if wantLog != "" && !strings.Contains(r.Output, wantLog) {
			t.Errorf("%s output %q lacks %q", r.Name, r.Output, wantLog)
		}
		if r.Name == "TestParA" && strings.Contains(r.Output, "in B") {
			t.Errorf("TestParA got TestParB's output: %q", r.Output)
		}
	}

	out, code = run("^TestExit$")
	if code != 3 {
		t.Errorf("sample exit %d, want 3", code)
	}
	if diff := cmp.Diff(map[string]TestStatus{"TestExit": TestUnfinished}, statuses(ParseGoTestOutput(out))); diff != "" {
		t.Errorf("statuses differ (-want +got):\n%s", diff)
	}
}

func TestBuildTestBinaryWithoutTests(t *testing.T) {
	err := BuildTestBinary(context.Background(), "./cmd/vmprep", filepath.Join(t.TempDir(), "x.test"))
	if err == nil || !strings.Contains(err.Error(), "produced no binary") {
		t.Errorf("BuildTestBinary of a package without tests: %v", err)
	}
	err = BuildTestBinary(context.Background(), "./no/such/package", filepath.Join(t.TempDir(), "x.test"))
	if err == nil {
		t.Errorf("BuildTestBinary of a missing package succeeded")
	}
}

// TestPreparedAssets prepares (or reuses) the cached assets and inspects them: the
// kernel boots by PVH, and the base initramfs holds /init, busybox with its applets,
// and the modules in an order that respects every module's dependencies.
func TestPreparedAssets(t *testing.T) {
	a, err := Prepare(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	vmlinux, err := os.ReadFile(a.Vmlinux)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPVH(vmlinux); err != nil {
		t.Errorf("%s: %v", a.Vmlinux, err)
	}
	base, err := os.ReadFile(a.BaseInitrd)
	if err != nil {
		t.Fatal(err)
	}
	entries, end, err := readNewc(base)
	if err != nil {
		t.Fatalf("base initramfs: %v", err)
	}
	if end != len(base) {
		t.Errorf("base initramfs has %d bytes after its trailer", len(base)-end)
	}
	files := make(map[string]newcEntry)
	for _, e := range entries {
		files[e.Name] = e
	}
	if e := files["init"]; e.Data != string(initScript) || e.Mode != cpioModeRegular|0o755 {
		t.Errorf("init: mode %o, %d bytes; want 0755 and init.sh", e.Mode, len(e.Data))
	}
	if e := files["bin/sh"]; e.Mode&cpioModeTypes != cpioModeSymlink || e.Data != "busybox" {
		t.Errorf("bin/sh is not a symlink to busybox: %+v", e)
	}
	if e := files["dev/console"]; e.Mode&cpioModeTypes != cpioModeCharDev || e.RdevMajor != 5 || e.RdevMinor != 1 {
		t.Errorf("dev/console: %+v", e)
	}
	if got := strings.Fields(files["lib/modules/cygnet/order"].Data); !slices.Equal(got, a.Modules) {
		t.Errorf("order file %v, Assets.Modules %v", got, a.Modules)
	}
	pos := make(map[string]int)
	for i, m := range a.Modules {
		pos[m] = i
	}
	for _, w := range defaultModules {
		if _, ok := pos[modName(w)]; !ok {
			t.Errorf("wanted module %s is not in the initramfs order", w)
		}
	}
	for i, m := range a.Modules {
		ko, ok := files["lib/modules/cygnet/"+m+".ko"]
		if !ok {
			t.Errorf("module %s missing from the initramfs", m)
			continue
		}
		deps, err := moduleDepends([]byte(ko.Data))
		if err != nil {
			t.Errorf("module %s: %v", m, err)
		}
		for _, d := range deps {
			if j, ok := pos[d]; ok && j > i {
				t.Errorf("module %s loads before its dependency %s", m, d)
			}
		}
		if m == "esp4" && !slices.Equal(deps, []string{"xfrm_algo"}) {
			t.Errorf("esp4 depends on %v, want [xfrm_algo]", deps)
		}
	}
}

// TestPrepareOffline: without apt, a cache from an earlier run is used (even when its
// resolution is stale), and an empty cache fails naming what to install.
func TestPrepareOffline(t *testing.T) {
	cached, err := Prepare(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.Symlink(filepath.Dir(cached.Vmlinux), filepath.Join(root, cached.KernelVersion)); err != nil {
		t.Fatal(err)
	}
	resolved := filepath.Join(root, resolvedFile)
	if err := os.WriteFile(resolved, []byte(cached.KernelPackage+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stale := time.Now().Add(-2 * resolvedTTL)
	if err := os.Chtimes(resolved, stale, stale); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CYGNET_VM_CACHE", root)
	t.Setenv("PATH", t.TempDir()) // no apt-cache, apt-get, dpkg-deb
	resolveMu.Lock()
	saved := resolvedKernel
	resolvedKernel = ""
	resolveMu.Unlock()
	t.Cleanup(func() { resolveMu.Lock(); resolvedKernel = saved; resolveMu.Unlock() })

	got, err := Prepare(context.Background(), nil)
	if err != nil {
		t.Fatalf("Prepare offline with a cache: %v", err)
	}
	if got.KernelPackage != cached.KernelPackage || !slices.Equal(got.Modules, cached.Modules) {
		t.Errorf("offline Prepare = %+v, want the cached %+v", got, cached)
	}

	t.Setenv("CYGNET_VM_CACHE", t.TempDir())
	_, err = Prepare(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "apt-cache is missing; install the Debian package apt") {
		t.Errorf("Prepare with neither apt nor a cache: %v", err)
	}
}
