// Package charon runs strongSwan's charon (5.9.8, Debian's packages) as a real IKEv2
// peer inside a network namespace, for interoperability tests, and drives it over
// vici (github.com/strongswan/govici).
//
// Contract:
//
//   - [Start] launches /usr/lib/ipsec/charon inside a [netns.NS] with its own
//     strongswan.conf (STRONGSWAN_CONF), an explicit plugin list, a vici socket and a
//     filelog in a private temporary directory, and its own /run (so its pid file
//     never meets another charon's). It returns once the vici socket answers.
//   - The process is known by its PID and stopped by that PID at test cleanup (or by
//     [Charon.Stop]). If the test failed, charon's log is written to the test output.
//   - Connections and secrets are loaded from Go values ([Conn], [Child]);
//     initiate, terminate, rekey and list-sas are vici commands; ike-updown,
//     child-updown, ike-rekey and child-rekey events are recorded in order
//     ([Charon.Events]).
//   - [LibIPsec] (the default) loads kernel-libipsec before kernel-netlink: Child SAs
//     are installed in charon's userspace ESP behind a TUN device, which works on a
//     kernel without ESP; it fakes NAT detection, so IKE moves to port 4500 and ESP
//     is UDP-encapsulated. [NetlinkOnly] loads kernel-netlink alone: on a kernel
//     without ESP charon cannot install any Child SA ("unable to add SAD entry"),
//     which is how a test makes charon refuse a Child SA for its own reasons.
//
// charon is a test peer here, never a system service: nothing is written outside
// the temporary directory and the namespace.
package charon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strongswan/govici/vici"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/netns"
)

// Binary is the charon daemon started by Start.
const Binary = "/usr/lib/ipsec/charon"

// startTimeout bounds how long Start waits for the vici socket.
const startTimeout = 20 * time.Second

// Backend selects charon's kernel interface plugins.
type Backend int

const (
	// LibIPsec loads kernel-libipsec before kernel-netlink: userspace ESP over a TUN
	// device, UDP encapsulation forced by faked NAT detection.
	LibIPsec Backend = iota
	// NetlinkOnly loads kernel-netlink alone: Child SAs go to the kernel's XFRM,
	// which on a kernel without ESP refuses them.
	NetlinkOnly
)

func (b Backend) String() string {
	switch b {
	case LibIPsec:
		return "kernel-libipsec"
	case NetlinkOnly:
		return "kernel-netlink-only"
	}
	return fmt.Sprintf("Backend(%d)", int(b))
}

// Options are charon-wide settings (strongswan.conf). The zero value is a
// kernel-libipsec charon with charon's defaults and readable logs.
type Options struct {
	Backend Backend
	// RetransmitTries, RetransmitTimeout (seconds) and RetransmitBase set charon's
	// retransmission schedule; zero keeps charon's default (5, 4.0, 1.8).
	RetransmitTries   int
	RetransmitTimeout float64
	RetransmitBase    float64
	// FragmentSize is the largest IKE fragment charon sends (IP datagram size);
	// zero keeps the default (1280).
	FragmentSize int
	// CookieThreshold is the number of half-open IKE SAs at which charon demands a
	// COOKIE (RFC 7296 §2.6); zero keeps the default (30).
	CookieThreshold int
	// LogKeys raises the ike/chd/enc log levels so that charon logs every derived
	// key (level 4), for tests that decrypt what they captured.
	LogKeys bool
	// Quiet is for load tests, where a log line or a vici event per SA would cost
	// charon more than the work being measured: every log group at -1 (silent, the
	// filelog keeps only the other groups' level-0 lines) and no event subscription
	// (Events stays empty).
	Quiet bool
	// Extra is raw strongswan.conf text placed inside the charon section.
	Extra string
}

// Charon is one running charon.
type Charon struct {
	// Name labels this instance in logs and errors ("A", "B").
	Name string
	NS   *netns.NS
	// Dir holds strongswan.conf, charon.log, the vici socket and the private /run.
	Dir string

	tb      testing.TB
	proc    *netns.Proc
	evSess  *vici.Session
	evDone  chan struct{}
	events  *EventLog
	stopped bool
	quiet   bool         // Options.Quiet: no event session
	output  bytes.Buffer // charon's stdout/stderr (written by os/exec's copier)
	outMu   sync.Mutex
}

// lockedWriter serialises the process's stdout and stderr copiers.
type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// CheckPrereqs reports whether charon and its plugins are installed.
func CheckPrereqs() error {
	var missing []string
	if _, err := os.Stat(Binary); err != nil {
		missing = append(missing, Binary+" (package strongswan-charon)")
	}
	for _, p := range []string{"kernel-libipsec", "vici", "curve25519", "openssl"} {
		if _, err := os.Stat("/usr/lib/ipsec/plugins/libstrongswan-" + p + ".so"); err != nil {
			missing = append(missing, "plugin "+p+" (packages libcharon-extra-plugins, libstrongswan-standard-plugins)")
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		missing = append(missing, "/dev/net/tun (kernel-libipsec needs TUN)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("charon: missing prerequisites: %s; run .ci/deps.sh", strings.Join(missing, "; "))
	}
	return nil
}

// Start starts a charon named name inside ns and waits for its vici socket. It
// fails tb on error and registers the charon's stop (and, if tb failed, a dump of
// its log) with tb.Cleanup.
func Start(tb testing.TB, name string, ns *netns.NS, opts Options) *Charon {
	tb.Helper()
	if err := CheckPrereqs(); err != nil {
		tb.Fatal(err)
	}
	// A short directory: a unix socket path must fit in 108 bytes, and t.TempDir's
	// names grow with the test's name.
	dir, err := os.MkdirTemp("", "cgch")
	if err != nil {
		tb.Fatalf("charon %s: %v", name, err)
	}
	c := &Charon{Name: name, NS: ns, Dir: dir, tb: tb, events: newEventLog(), quiet: opts.Quiet}
	tb.Cleanup(func() {
		if err := c.Stop(); errors.Is(err, netns.ErrKilled) {
			tb.Logf("charon %s: %v", name, err)
		} else if err != nil {
			tb.Errorf("charon %s: %v", name, err)
		}
		if tb.Failed() {
			c.DumpLog()
		}
		if err := os.RemoveAll(dir); err != nil {
			tb.Errorf("charon %s: remove %s: %v", name, dir, err)
		}
	})
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o755); err != nil {
		tb.Fatalf("charon %s: %v", name, err)
	}
	if err := os.WriteFile(c.confPath(), []byte(renderConf(dir, opts)), 0o644); err != nil {
		tb.Fatalf("charon %s: %v", name, err)
	}
	out := lockedWriter{&c.outMu, &c.output}
	c.proc, err = ns.Start(netns.Command{
		Path:       Binary,
		Env:        []string{"STRONGSWAN_CONF=" + c.confPath()},
		PrivateRun: filepath.Join(dir, "run"),
		Stdout:     out,
		Stderr:     out,
	})
	if err != nil {
		tb.Fatalf("charon %s: %v", name, err)
	}
	if err := c.connect(); err != nil {
		c.DumpLog()
		tb.Fatalf("charon %s: %v", name, err)
	}
	return c
}

// session opens a vici session for one command. A session per command, because
// govici v0.8.0 fails a session for good when an event of a finished streaming
// command (a late control-log) arrives while it waits for the next response.
func (c *Charon) session() (*vici.Session, error) {
	s, err := vici.NewSession(vici.WithSocketPath(c.socketPath()))
	if err != nil {
		return nil, fmt.Errorf("charon %s: vici session: %w", c.Name, err)
	}
	return s, nil
}

func (c *Charon) confPath() string   { return filepath.Join(c.Dir, "strongswan.conf") }
func (c *Charon) socketPath() string { return filepath.Join(c.Dir, "charon.vici") }

// LogPath is charon's filelog.
func (c *Charon) LogPath() string { return filepath.Join(c.Dir, "charon.log") }

// Pid is charon's process ID.
func (c *Charon) Pid() int { return c.proc.Pid }

// connect waits for the vici socket, then opens the event session subscribed to
// the up/down and rekey events. Commands use a session each (see session).
func (c *Charon) connect() error {
	deadline := time.Now().Add(startTimeout)
	for {
		if exited, err := c.proc.Exited(); exited {
			return fmt.Errorf("exited before its vici socket appeared: %v", err)
		}
		conn, err := net.Dial("unix", c.socketPath())
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vici socket %s not ready after %v: %w", c.socketPath(), startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var err error
	if c.quiet {
		return nil
	}
	if c.evSess, err = vici.NewSession(vici.WithSocketPath(c.socketPath())); err != nil {
		return fmt.Errorf("vici event session: %w", err)
	}
	ch := make(chan vici.Event, 1024)
	c.evSess.NotifyEvents(ch)
	if err := c.evSess.Subscribe(eventNames...); err != nil {
		return fmt.Errorf("vici subscribe: %w", err)
	}
	c.evDone = make(chan struct{})
	go func() {
		defer close(c.evDone)
		for ev := range ch {
			c.events.add(parseEvent(ev))
		}
	}()
	return nil
}

// Stop closes the vici event session and stops charon by its PID. It is idempotent.
func (c *Charon) Stop() error {
	if c.stopped {
		return nil
	}
	c.stopped = true
	var errs []error
	if c.evSess != nil {
		if err := c.evSess.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close vici event session: %w", err))
		}
		<-c.evDone
	}
	if c.proc != nil {
		if err := c.proc.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Log returns charon's filelog so far.
func (c *Charon) Log() string {
	b, err := os.ReadFile(c.LogPath())
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// DumpLog writes charon's log and output into the test output.
func (c *Charon) DumpLog() {
	c.outMu.Lock()
	out := c.output.String()
	c.outMu.Unlock()
	c.tb.Logf("==== charon %s (ns %s, pid %d) log %s ====\n%s", c.Name, c.NS.Name, c.Pid(), c.LogPath(), c.Log())
	if out != "" {
		c.tb.Logf("==== charon %s stdout/stderr ====\n%s", c.Name, out)
	}
}

// Swanctl runs swanctl against this charon's vici socket (for debugging and for
// checks that want swanctl's own rendering).
func (c *Charon) Swanctl(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "swanctl", args...)
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+c.confPath())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("charon %s: swanctl %s: %w", c.Name, strings.Join(args, " "), err)
	}
	return out, nil
}

// plugins is the explicit load list. Debian's default set has plugins (stroke,
// lookip, error-notify) that bind fixed sockets under /run; this one has none.
// kernel-libipsec must come before kernel-netlink.
func plugins(b Backend) string {
	kernel := "kernel-libipsec kernel-netlink"
	if b == NetlinkOnly {
		kernel = "kernel-netlink"
	}
	return "random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints kdf " +
		"aes sha1 sha2 hmac gcm gmp curve25519 chapoly " + kernel + " socket-default vici"
}

// renderConf returns strongswan.conf for a charon living in dir. strongswan 5.9.8
// wants nested sections, not dotted keys.
func renderConf(dir string, o Options) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("charon {")
	p("  load = %s", plugins(o.Backend))
	p("  install_routes = yes")
	p("  install_virtual_ip = no")
	if o.RetransmitTries > 0 {
		p("  retransmit_tries = %d", o.RetransmitTries)
	}
	if o.RetransmitTimeout > 0 {
		p("  retransmit_timeout = %g", o.RetransmitTimeout)
	}
	if o.RetransmitBase > 0 {
		p("  retransmit_base = %g", o.RetransmitBase)
	}
	if o.FragmentSize > 0 {
		p("  fragment_size = %d", o.FragmentSize)
	}
	if o.CookieThreshold > 0 {
		p("  cookie_threshold = %d", o.CookieThreshold)
	}
	if o.Extra != "" {
		p("%s", o.Extra)
	}
	p("  plugins {")
	p("    vici { socket = unix://%s }", filepath.Join(dir, "charon.vici"))
	if o.Backend == LibIPsec {
		p("    kernel-libipsec { allow_peer_ts = no }")
	}
	p("  }")
	ike, chd, enc := 2, 2, 1
	if o.LogKeys {
		ike, chd, enc = 4, 4, 3
	}
	other := 2 // cfg, knl, net
	if o.Quiet {
		ike, chd, enc, other = -1, -1, -1, -1
	}
	p("  filelog {")
	p("    main {")
	p("      path = %s", filepath.Join(dir, "charon.log"))
	p("      time_format = %%T")
	p("      time_add_ms = yes")
	p("      ike_name = yes")
	def := 1
	if o.Quiet {
		def = 0
	}
	p("      default = %d", def)
	p("      ike = %d", ike)
	p("      chd = %d", chd)
	p("      enc = %d", enc)
	p("      cfg = %d", other)
	p("      knl = %d", other)
	p("      net = %d", other)
	p("      flush_line = yes")
	p("      append = no")
	p("    }")
	p("  }")
	p("  syslog { daemon { default = -1 } }")
	p("}")
	p("swanctl { socket = unix://%s }", filepath.Join(dir, "charon.vici"))
	return b.String()
}
