package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultTimeout  = 3 * time.Minute
	DefaultMemoryMB = 256
	// MinMemoryMB is the least memory Debian's kernel boots in with the initramfs.
	MinMemoryMB = 128
)

// Config describes one VM boot.
type Config struct {
	// Binaries run one after the other, in this order, in one boot. Each must be a
	// statically linked x86-64 executable (see BuildTestBinary).
	Binaries []Binary
	// Timeout bounds the whole run, preparation included; 0 means DefaultTimeout. The
	// context's deadline applies as well.
	Timeout time.Duration
	// MemoryMB is the VM's memory; 0 means DefaultMemoryMB. The initramfs, and so every
	// binary, lives in this memory.
	MemoryMB int
}

// Binary is an executable to run inside the VM as /cygnet/bin/<Name> with Args, as root,
// in /tmp (a tmpfs), with CYGNET_VM=1 in its environment.
type Binary struct {
	Name string // [A-Za-z0-9][A-Za-z0-9._-]*, unique within a Config
	Path string // on the host
	Args []string
}

// Result is what a boot produced.
type Result struct {
	// Runs has one entry per Config.Binaries entry that started, in order.
	Runs []BinaryResult
	// Boot is the time from starting qemu until the VM was ready to run the first
	// binary (kernel booted, modules loaded, file systems mounted).
	Boot time.Duration
	// Total is the wall time of the whole Run call.
	Total time.Duration
	// Console is the VM's console (kernel messages and /init's own diagnostics).
	Console string
}

// BinaryResult is one binary's combined stdout and stderr and its exit status (as the
// shell reports it: 128+n when killed by signal n; -1 if it never finished).
type BinaryResult struct {
	Name     string
	Output   string
	ExitCode int
	// Elapsed is the host's wall time from the binary's start marker to its end
	// marker: the binary's run time under emulation, for reports, not for assertions.
	Elapsed time.Duration
}

var binaryNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Run boots Debian's kernel under qemu with the given statically linked test binaries in
// the initramfs, runs each with its args as root (CYGNET_VM=1 in the environment), and
// returns each binary's output and exit status.
//
// A binary that exits non-zero is a result, not an error. Run returns an error when the
// VM could not be prepared or booted (a missing prerequisite is named with the Debian
// package that provides it), or when it did not run every binary to the end (timeout,
// kernel panic); in that case the partial Result is returned with the error, and the
// error quotes the end of the console.
//
// Run prepares the cached assets on first use (see Prepare). qemu runs in software
// emulation (TCG) unless AccelEnv asks for KVM.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	start := time.Now()
	res := &Result{}
	defer func() { res.Total = time.Since(start) }()

	if err := cfg.validate(); err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, fmt.Errorf("vmtest: qemu-system-x86_64 is missing; install the Debian package qemu-system-x86 (apt-get install qemu-system-x86, or run .ci/deps.sh): %w", err)
	}
	assets, err := prepare(ctx, nil, true)
	if err != nil {
		return nil, err
	}

	dir, err := os.MkdirTemp("", "cygnet-vm-run-")
	if err != nil {
		return nil, fmt.Errorf("vmtest: %w", err)
	}
	defer os.RemoveAll(dir)

	token, err := newToken()
	if err != nil {
		return nil, err
	}
	initrd := filepath.Join(dir, "initrd")
	if err := writeRunInitrd(initrd, assets.BaseInitrd, token, cfg.Binaries); err != nil {
		return nil, err
	}

	console := filepath.Join(dir, "console.log")
	mem := cfg.MemoryMB
	if mem == 0 {
		mem = DefaultMemoryMB
	}
	args := qemuArgs(assets.Vmlinux, initrd, console, mem, useKVM())
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.Stdin = nil // /dev/null
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("vmtest: %w", err)
	}
	qemuStart := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("vmtest: start qemu: %w", err)
	}
	p := newMarkerParser(token, len(cfg.Binaries))
	readErr := p.readFrom(stdout, time.Now)
	if !p.readyAt.IsZero() {
		res.Boot = p.readyAt.Sub(qemuStart)
	}
	waitErr := cmd.Wait()

	consoleLog, _ := os.ReadFile(console)
	res.Console = string(consoleLog)
	res.Runs = p.results(cfg.Binaries)

	switch {
	case ctx.Err() != nil && !p.done:
		return res, fmt.Errorf("vmtest: VM did not finish within %v (%v); %s%s", timeout, ctx.Err(), p.progress(cfg.Binaries), consoleTail(res.Console))
	case waitErr != nil && !p.done:
		return res, fmt.Errorf("vmtest: qemu: %w: %s; %s%s", waitErr, strings.TrimSpace(stderr.String()), p.progress(cfg.Binaries), consoleTail(res.Console))
	case readErr != nil && !p.done:
		return res, fmt.Errorf("vmtest: reading the VM's output: %w", readErr)
	case !p.done:
		return res, fmt.Errorf("vmtest: VM stopped before running every binary; %s%s", p.progress(cfg.Binaries), consoleTail(res.Console))
	}
	return res, nil
}

func (cfg *Config) validate() error {
	if len(cfg.Binaries) == 0 {
		return errors.New("vmtest: Config.Binaries is empty")
	}
	if cfg.MemoryMB != 0 && cfg.MemoryMB < MinMemoryMB {
		return fmt.Errorf("vmtest: MemoryMB %d is below the %d MiB the kernel needs", cfg.MemoryMB, MinMemoryMB)
	}
	if cfg.Timeout < 0 {
		return fmt.Errorf("vmtest: negative Timeout %v", cfg.Timeout)
	}
	seen := make(map[string]bool)
	for _, b := range cfg.Binaries {
		if !binaryNameRE.MatchString(b.Name) {
			return fmt.Errorf("vmtest: binary name %q: want [A-Za-z0-9][A-Za-z0-9._-]*", b.Name)
		}
		if seen[b.Name] {
			return fmt.Errorf("vmtest: binary name %q used twice", b.Name)
		}
		seen[b.Name] = true
	}
	return nil
}

// kernelCmdline: the console on ttyS0; panic=-1 reboots at once on a panic, which
// -no-reboot turns into qemu exiting. cryptomgr.notests skips the crypto self-tests and
// mitigations=off the CPU-bug workarounds: together ~0.7 s of emulated boot, and
// neither matters in a throwaway test VM (the in-VM tests exercise the transforms).
const kernelCmdline = "console=ttyS0 quiet panic=-1 rdinit=/init cryptomgr.notests=1 mitigations=off"

// qemuArgs builds qemu's command line. The first serial port (ttyS0) is the kernel
// console, written to a file; the second (ttyS1) is qemu's stdout and carries only
// markers and the binaries' output, so kernel messages never interleave with it.
func qemuArgs(vmlinux, initrd, console string, memMB int, kvm bool) []string {
	accel := []string{"-accel", "tcg", "-cpu", "max"}
	if kvm {
		accel = []string{"-accel", "kvm", "-cpu", "host"}
	}
	return append(accel,
		"-m", strconv.Itoa(memMB),
		"-smp", "1",
		"-nodefaults", "-no-user-config", "-nographic",
		"-nic", "none",
		"-no-reboot",
		"-kernel", vmlinux,
		"-initrd", initrd,
		"-append", kernelCmdline,
		"-serial", "file:"+console,
		"-serial", "stdio",
	)
}

// AccelEnv names the environment variable that selects qemu's accelerator: "tcg"
// (the default) or "kvm". KVM is opt-in because a /dev/kvm that accepts KVM_CREATE_VM
// can still fail to run a guest (seen here: qemu aborts setting MSR 0x10a, or hangs
// after the BIOS), and a probe that boots a guest would cost as much as it saves.
const AccelEnv = "CYGNET_VM_ACCEL"

func useKVM() bool { return os.Getenv(AccelEnv) == "kvm" }

func newToken() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("vmtest: token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// writeRunInitrd writes base followed by an uncompressed cpio archive with the binaries
// and /cygnet/run.sh. The kernel unpacks concatenated archives in order (a later file of
// the same name wins); it finds an uncompressed archive only at a 4-byte aligned offset,
// and skips zero padding between archives. Leaving the per-run part uncompressed spares
// gunzip under emulation.
func writeRunInitrd(path, base, token string, bins []Binary) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	defer f.Close()
	bf, err := os.Open(base)
	if err != nil {
		return fmt.Errorf("vmtest: base initramfs: %w", err)
	}
	n, err := io.Copy(f, bf)
	bf.Close()
	if err != nil {
		return fmt.Errorf("vmtest: copy base initramfs: %w", err)
	}
	if n%4 != 0 {
		if _, err := f.Write(make([]byte, 4-n%4)); err != nil {
			return fmt.Errorf("vmtest: %w", err)
		}
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	cw := newCpioWriter(bw)
	for _, b := range bins {
		exe, err := os.ReadFile(b.Path)
		if err != nil {
			return fmt.Errorf("vmtest: binary %s: %w", b.Name, err)
		}
		if err := checkStaticX8664(exe); err != nil {
			return fmt.Errorf("vmtest: binary %s (%s): %w", b.Name, b.Path, err)
		}
		if err := cw.File("cygnet/bin/"+b.Name, 0o755, exe); err != nil {
			return fmt.Errorf("vmtest: %w", err)
		}
	}
	if err := cw.File("cygnet/run.sh", 0o644, runScript(token, bins)); err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	if err := cw.Close(); err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("vmtest: write initramfs: %w", err)
	}
	return f.Close()
}

// runScript is the per-run part of /init (see init.sh): it names the token and runs the
// binaries in order.
func runScript(token string, bins []Binary) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "CYGNET_TOKEN=%s\ncygnet_mark READY\n", token)
	for i, bin := range bins {
		fmt.Fprintf(&b, "cygnet_run %d %s", i, shellQuote("/cygnet/bin/"+bin.Name))
		for _, a := range bin.Args {
			b.WriteString(" ")
			b.WriteString(shellQuote(a))
		}
		b.WriteString("\n")
	}
	b.WriteString("cygnet_mark DONE\n")
	return []byte(b.String())
}

// shellQuote quotes s for a POSIX shell: s in single quotes, each quote inside it
// written as close-quote, backslash-quote, open-quote.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// markerParser follows the marker protocol on ttyS1 (see init.sh).
type markerParser struct {
	prefix  string
	n       int
	ready   bool
	done    bool
	cur     int             // index of the running binary, -1 if none
	out     strings.Builder // its output so far
	outputs map[int]string
	codes   map[int]int
	started map[int]bool
	readyAt time.Time
	begins  map[int]time.Time
	elapsed map[int]time.Duration
}

func newMarkerParser(token string, n int) *markerParser {
	return &markerParser{
		prefix:  "@@CYGNET-" + token + " ",
		n:       n,
		cur:     -1,
		outputs: make(map[int]string),
		codes:   make(map[int]int),
		started: make(map[int]bool),
		begins:  make(map[int]time.Time),
		elapsed: make(map[int]time.Duration),
	}
}

// readFrom feeds r line by line into the parser, stamping each line with now().
func (p *markerParser) readFrom(r io.Reader, now func() time.Time) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			p.feed(line, now())
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// feed handles one line, with its "\n" unless it is the last of the stream, received
// at time at. A "\r" before the "\n" is dropped, in case the tty was not raw.
func (p *markerParser) feed(line string, at time.Time) {
	if l, ok := strings.CutSuffix(line, "\r\n"); ok {
		line = l + "\n"
	}
	rest, ok := strings.CutPrefix(line, p.prefix)
	if !ok {
		if p.cur >= 0 {
			p.out.WriteString(line)
		}
		return
	}
	if !p.marker(strings.Fields(rest), at) && p.cur >= 0 {
		// Not a valid transition: keep the line as output rather than lose it.
		p.out.WriteString(line)
	}
}

// marker applies a marker line's fields; it reports whether they were a valid marker.
func (p *markerParser) marker(f []string, at time.Time) bool {
	switch {
	case len(f) == 1 && f[0] == "READY" && !p.ready:
		p.ready, p.readyAt = true, at
		return true
	case len(f) == 1 && f[0] == "DONE" && p.cur < 0:
		p.done = len(p.codes) == p.n
		return true
	case len(f) == 2 && f[0] == "BEGIN":
		i, err := strconv.Atoi(f[1])
		if err != nil || i < 0 || i >= p.n || p.started[i] {
			return false
		}
		p.flushUnfinished()
		p.cur = i
		p.out.Reset()
		p.started[i] = true
		p.begins[i] = at
		return true
	case len(f) == 3 && f[0] == "END":
		i, err1 := strconv.Atoi(f[1])
		code, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || i != p.cur {
			return false
		}
		// init.sh writes "\n" before END so that the marker starts a line
		// whatever the binary's output ended with; drop that one newline.
		p.outputs[i] = strings.TrimSuffix(p.out.String(), "\n")
		p.codes[i] = code
		p.elapsed[i] = at.Sub(p.begins[i])
		p.cur = -1
		p.out.Reset()
		return true
	}
	return false
}

// flushUnfinished keeps the output of a binary whose END marker never came.
func (p *markerParser) flushUnfinished() {
	if p.cur >= 0 {
		p.outputs[p.cur] = p.out.String()
	}
}

func (p *markerParser) results(bins []Binary) []BinaryResult {
	p.flushUnfinished()
	var rs []BinaryResult
	for i, b := range bins {
		if !p.started[i] {
			break
		}
		code, ok := p.codes[i]
		if !ok {
			code = -1
		}
		rs = append(rs, BinaryResult{Name: b.Name, Output: p.outputs[i], ExitCode: code, Elapsed: p.elapsed[i]})
	}
	return rs
}

// progress says how far the VM got, for error messages.
func (p *markerParser) progress(bins []Binary) string {
	switch {
	case !p.ready:
		return "it never became ready (boot or module loading failed)"
	case p.cur >= 0:
		return fmt.Sprintf("binary %s did not finish", bins[p.cur].Name)
	default:
		return fmt.Sprintf("%d of %d binaries finished", len(p.codes), p.n)
	}
}

// consoleTail quotes the last lines of the console for an error message.
func consoleTail(console string) string {
	const max = 40
	lines := strings.Split(strings.TrimRight(console, "\n"), "\n")
	if len(lines) > max {
		lines = lines[len(lines)-max:]
	}
	return "\n--- end of VM console ---\n" + strings.Join(lines, "\n")
}
