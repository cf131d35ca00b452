package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/netns"
)

// Binaries built once by TestMain.
var (
	cygnetdBin   string
	cygnetctlBin string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if err := netns.CheckPrereqs(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "cygnet-e2e-bin")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := build(dir); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	cygnetdBin, cygnetctlBin = filepath.Join(dir, "cygnetd"), filepath.Join(dir, "cygnetctl")
	return m.Run()
}

// build compiles cygnetd and cygnetctl into dir with the Go toolchain running the test.
func build(dir string) error {
	// go test puts its toolchain's bin directory first on the PATH.
	gobin, err := exec.LookPath("go")
	if err != nil {
		return errors.New("no Go toolchain to build cygnetd with: put /usr/local/go/bin on the PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", dir+"/",
		"github.com/cygnet-ipsec/cygnet/cmd/cygnetd", "github.com/cygnet-ipsec/cygnet/cmd/cygnetctl")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build cygnetd cygnetctl: %v\n%s", err, out)
	}
	return nil
}

// syncBuffer is a bytes.Buffer safe for a process writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// daemon is one cygnetd process in a namespace.
type daemon struct {
	t      *testing.T
	name   string
	ns     *netns.NS
	dir    string
	config string
	socket string
	args   []string
	proc   *netns.Proc
	log    *syncBuffer
}

// newDaemon prepares a daemon in ns with its own directory (configuration, control
// socket); start runs it.
func newDaemon(t *testing.T, name string, ns *netns.NS, args ...string) *daemon {
	dir := t.TempDir()
	return &daemon{t: t, name: name, ns: ns, dir: dir, config: filepath.Join(dir, "cygnet.yaml"),
		socket: filepath.Join(dir, "cygnet.sock"), args: args}
}

// writeConfig replaces the daemon's configuration file.
func (d *daemon) writeConfig(yaml string) {
	d.t.Helper()
	if err := os.WriteFile(d.config, []byte(yaml), 0o600); err != nil {
		d.t.Fatal(err)
	}
}

// start runs cygnetd and waits until it answers on its control socket. The daemon is stopped
// (SIGTERM, then checked for a clean exit) at cleanup, before the namespaces go.
func (d *daemon) start() {
	d.t.Helper()
	d.log = &syncBuffer{}
	args := append([]string{"--config", d.config}, d.args...)
	p, err := d.ns.Start(netns.Command{Path: cygnetdBin, Args: args, Stdout: d.log, Stderr: d.log})
	if err != nil {
		d.t.Fatal(err)
	}
	d.proc = p
	d.t.Cleanup(func() {
		if d.t.Failed() {
			d.t.Logf("--- cygnetd %s log ---\n%s", d.name, d.log.String())
		}
	})
	d.t.Cleanup(func() { d.stop() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if exited, err := p.Exited(); exited {
			d.t.Fatalf("cygnetd %s exited at start: %v\n%s", d.name, err, d.log.String())
		}
		// The socket is bound before the actor tree starts; the daemon is up when it
		// answers.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := control.NewClient(d.socket).Stats(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("cygnetd %s: control socket not ready after 20s\n%s", d.name, d.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and expects a graceful exit (status 0) within the daemon's bound.
func (d *daemon) stop() {
	d.t.Helper()
	if d.proc == nil {
		return
	}
	p := d.proc
	d.proc = nil
	if exited, _ := p.Exited(); exited {
		return
	}
	if err := syscall.Kill(p.Pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		d.t.Errorf("cygnetd %s: SIGTERM: %v", d.name, err)
	}
	select {
	case <-p.Done():
		if _, err := p.Exited(); err != nil {
			d.t.Errorf("cygnetd %s: graceful stop ended with %v", d.name, err)
		}
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(p.Pid, syscall.SIGKILL)
		<-p.Done()
		d.t.Errorf("cygnetd %s: no exit within 20s of SIGTERM", d.name)
	}
}

// kill ends the daemon with SIGKILL (no clean-up of any kind).
func (d *daemon) kill() {
	d.t.Helper()
	p := d.proc
	d.proc = nil
	if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil {
		d.t.Fatalf("cygnetd %s: SIGKILL: %v", d.name, err)
	}
	<-p.Done()
}

// signal sends sig to the running daemon.
func (d *daemon) signal(sig syscall.Signal) {
	d.t.Helper()
	if err := syscall.Kill(d.proc.Pid, sig); err != nil {
		d.t.Fatalf("cygnetd %s: %v: %v", d.name, sig, err)
	}
}

// ctlResult is one cygnetctl run.
type ctlResult struct {
	stdout, stderr string
	code           int
}

// ctl runs cygnetctl against the daemon.
func (d *daemon) ctl(args ...string) ctlResult {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cygnetctlBin, append([]string{"--socket", d.socket}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := ctlResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		d.t.Fatalf("cygnetctl %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// mustCtl runs cygnetctl and fails the test unless it succeeds.
func (d *daemon) mustCtl(args ...string) string {
	d.t.Helper()
	r := d.ctl(args...)
	if r.code != 0 {
		d.t.Fatalf("cygnetd %s: cygnetctl %s: exit %d\n%s%s", d.name, strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// sas lists the daemon's IKE SAs with cygnetctl list-sas --json.
func (d *daemon) sas() []control.IKESA {
	d.t.Helper()
	out := d.mustCtl("list-sas", "--json")
	var sas []control.IKESA
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var sa control.IKESA
		if err := json.Unmarshal(sc.Bytes(), &sa); err != nil {
			d.t.Fatalf("cygnetd %s: list-sas --json line %q: %v", d.name, sc.Text(), err)
		}
		sas = append(sas, sa)
	}
	return sas
}

// established returns the daemon's ESTABLISHED IKE SA of conn, if there is exactly one.
func established(sas []control.IKESA, conn string) (control.IKESA, bool) {
	var found []control.IKESA
	for _, sa := range sas {
		if sa.Conn == conn && sa.State == "ESTABLISHED" {
			found = append(found, sa)
		}
	}
	if len(found) != 1 {
		return control.IKESA{}, false
	}
	return found[0], true
}

// installed returns the INSTALLED Child SAs of sa named name.
func installed(sa control.IKESA, name string) []control.ChildSA {
	var out []control.ChildSA
	for _, c := range sa.Children {
		if c.Name == name && c.State == "INSTALLED" {
			out = append(out, c)
		}
	}
	return out
}

// eventually polls cond every 100 ms until it returns "" or timeout passes, then fails
// with the last reason it gave.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v: %s", what, timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tunnel is one connection as both daemons see it.
type tunnel struct {
	a, b control.IKESA
}

// pairState reads conn's IKE SA on both daemons and checks that they describe the same
// SAs: IKE SPIs equal, each Child SA's inbound SPI the other's outbound SPI, traffic
// selectors mirrored, and exactly the named children installed. It returns "" and the
// tunnel, or why not.
func pairState(a, b *daemon, conn string, children ...string) (tunnel, string) {
	sa, ok := established(a.sas(), conn)
	if !ok {
		return tunnel{}, fmt.Sprintf("%s: no single established IKE SA of %s", a.name, conn)
	}
	sb, ok := established(b.sas(), conn)
	if !ok {
		return tunnel{}, fmt.Sprintf("%s: no single established IKE SA of %s", b.name, conn)
	}
	if sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr {
		return tunnel{}, fmt.Sprintf("%s: IKE SPIs differ: %s %v_i %v_r, %s %v_i %v_r", conn, a.name, sa.SPIi, sa.SPIr, b.name, sb.SPIi, sb.SPIr)
	}
	if sa.Initiator == sb.Initiator {
		return tunnel{}, fmt.Sprintf("%s: both sides say initiator=%v", conn, sa.Initiator)
	}
	if n, m := countInstalled(sa), countInstalled(sb); n != len(children) || m != len(children) {
		return tunnel{}, fmt.Sprintf("%s: %d and %d Child SAs installed, want %d (%v)", conn, n, m, len(children), children)
	}
	for _, name := range children {
		ca, cb := installed(sa, name), installed(sb, name)
		if len(ca) != 1 || len(cb) != 1 {
			return tunnel{}, fmt.Sprintf("%s/%s: %d and %d installed, want one each", conn, name, len(ca), len(cb))
		}
		x, y := ca[0], cb[0]
		if x.SPIIn != y.SPIOut || x.SPIOut != y.SPIIn {
			return tunnel{}, fmt.Sprintf("%s/%s: SPIs do not pair: %s in %v out %v, %s in %v out %v", conn, name, a.name, x.SPIIn, x.SPIOut, b.name, y.SPIIn, y.SPIOut)
		}
		if !equal(x.LocalTS, y.RemoteTS) || !equal(x.RemoteTS, y.LocalTS) {
			return tunnel{}, fmt.Sprintf("%s/%s: traffic selectors do not mirror: %s %v=>%v, %s %v=>%v", conn, name, a.name, x.LocalTS, x.RemoteTS, b.name, y.LocalTS, y.RemoteTS)
		}
	}
	return tunnel{a: sa, b: sb}, ""
}

func countInstalled(sa control.IKESA) int {
	n := 0
	for _, c := range sa.Children {
		if c.State == "INSTALLED" {
			n++
		}
	}
	return n
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// waitTunnel waits until conn is established on both daemons with exactly the named
// children installed, and returns it.
func waitTunnel(t *testing.T, a, b *daemon, conn string, children ...string) tunnel {
	t.Helper()
	var tn tunnel
	eventually(t, 30*time.Second, conn+" established on both sides", func() string {
		var why string
		tn, why = pairState(a, b, conn, children...)
		return why
	})
	return tn
}

// child returns the Child SA named name of the tunnel's IKE SA on side a.
func (tn tunnel) child(name string) control.ChildSA {
	return installed(tn.a, name)[0]
}

// --- configuration -----------------------------------------------------------------

// connSpec is one connection of a test; side A's view. Both sides get the mirror
// image; A initiates children whose start is "start", B only responds.
type connSpec struct {
	name     string
	children []childSpec
}

type childSpec struct {
	name       string
	aTS, bTS   string // A's and B's subnets
	start      string // A's start_action: start, trap or none
	rekeyTime  string // optional
	espPropsA  string // optional, A's esp_proposals
	onlyOnSide string // "a" or "b": the child exists on that side only
}

// daemonOpts are the daemon: section's test values.
type daemonOpts struct {
	metrics string // metrics_address; "" disables it
	extra   string // more YAML lines inside daemon:, indented by two spaces
}

// render writes side ("a" or "b") of conns as cygnetd YAML. self and peer are the outer
// addresses.
func render(side string, ns, peer *netns.NS, socket string, do daemonOpts, conns ...connSpec) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	other := map[string]string{"a": "b", "b": "a"}[side]
	w("daemon:")
	w("  listen_addrs: [%s]", ns.Outer.Addr())
	w("  control_socket: %s", socket)
	if do.metrics != "" {
		w("  metrics_address: %q", do.metrics)
	} else {
		w("  metrics_address: ~")
	}
	w("  log: {format: json, level: debug}")
	if do.extra != "" {
		b.WriteString(do.extra)
		if !strings.HasSuffix(do.extra, "\n") {
			b.WriteString("\n")
		}
	}
	w("connections:")
	for _, c := range conns {
		w("  %s:", c.name)
		w("    local_addrs: [%s]", ns.Outer.Addr())
		w("    remote_addrs: [%s]", peer.Outer.Addr())
		w("    proposals: [aes128gcm16-prfsha256-x25519]")
		w("    local: {auth: psk, id: %s-%s.example}", side, c.name)
		w("    remote: {auth: psk, id: %s-%s.example}", other, c.name)
		w("    children:")
		for _, ch := range c.children {
			if ch.onlyOnSide != "" && ch.onlyOnSide != side {
				continue
			}
			local, remote := ch.aTS, ch.bTS
			start := ch.start
			props := "aes128gcm16, aes256gcm16"
			if side == "b" {
				local, remote, start = ch.bTS, ch.aTS, "none"
			} else if ch.espPropsA != "" {
				props = ch.espPropsA
			}
			if start == "" {
				start = "none"
			}
			w("      %s:", ch.name)
			w("        local_ts: [%s]", local)
			w("        remote_ts: [%s]", remote)
			w("        esp_proposals: [%s]", props)
			w("        start_action: %s", start)
			if ch.rekeyTime != "" {
				w("        rekey_time: %s", ch.rekeyTime)
			}
		}
	}
	w("secrets:")
	for _, c := range conns {
		w("  ike-%s:", c.name)
		w("    id-a: a-%s.example", c.name)
		w("    id-b: b-%s.example", c.name)
		w("    secret: %q", "e2e key of "+c.name+" 0123456789")
	}
	return b.String()
}

// pairOf starts side B (responder) then side A (initiator) of conns in a fresh
// namespace pair, and returns A and B.
func pairOf(t *testing.T, do daemonOpts, conns ...connSpec) (a, b *daemon) {
	t.Helper()
	p := netns.NewPair(t)
	a = newDaemon(t, "a", p.A)
	b = newDaemon(t, "b", p.B)
	b.writeConfig(render("b", p.B, p.A, b.socket, do, conns...))
	a.writeConfig(render("a", p.A, p.B, a.socket, do, conns...))
	b.start()
	a.start()
	return a, b
}

// watcher is a watch request on the daemon's control socket. It speaks the protocol
// itself rather than running cygnetctl watch, because the daemon's {"watching":true}
// line says when the watch is in place and cygnetctl does not print it: waiting for it
// is what makes "an event after this point is seen" certain.
type watcher struct {
	events chan control.Event
	seen   []control.Event
}

// watch starts a watch and returns once the daemon has it in place; the connection is
// closed at cleanup.
func (d *daemon) watch() *watcher {
	d.t.Helper()
	c, err := net.Dial("unix", d.socket)
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "{\"v\":%d,\"cmd\":\"watch\"}\n", control.Version); err != nil {
		d.t.Fatal(err)
	}
	r := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	first, err := r.ReadBytes('\n')
	if err != nil || !bytes.Contains(first, []byte(`"watching":true`)) {
		d.t.Fatalf("watch: first line %q, %v", first, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	w := &watcher{events: make(chan control.Event, 256)}
	go func() {
		defer close(w.events)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			var item struct {
				Event *control.Event `json:"event"`
			}
			if json.Unmarshal(line, &item) == nil && item.Event != nil {
				w.events <- *item.Event
			}
		}
	}()
	return w
}

// expect waits up to 20 s for an event matching ok.
func (w *watcher) expect(t *testing.T, ok func(control.Event) bool, what string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case e, open := <-w.events:
			if !open {
				t.Fatalf("%s: the watch ended; events seen: %+v", what, w.seen)
			}
			w.seen = append(w.seen, e)
			if ok(e) {
				return
			}
		case <-deadline:
			t.Fatalf("%s: not seen within 20s; events seen: %+v", what, w.seen)
		}
	}
}
