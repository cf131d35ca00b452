//go:build concentrator

package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/cmd/cygnet-load/internal/loadgen"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/charon"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/netns"
)

// The benchmark's fixed choices.
const (
	ikeProposal = "aes256gcm16-prfsha256-x25519"
	espProposal = "aes256gcm16"
	responderID = "responder.cygnet.test"
	psk         = "cygnet concentrator benchmark key"
	tsPool      = "10.128.0.0/9" // the Child SAs' TSi hosts (negotiated only: no traffic)
	firstSource = 10             // load sources are 192.0.2.10, .11, …
)

// spoofPrefix is where the half-open flood claims to come from; the responder's
// namespace routes it back to the load namespace, which drops it.
var spoofPrefix = netip.MustParsePrefix("198.51.100.128/25")

// Binaries built once by TestMain.
var bins struct{ cygnetd, cygnetctl, load string }

// env is the namespace pair: A runs cygnet-load, B the responder.
type env struct {
	t     *testing.T
	p     *netns.Pair
	srcs  []netip.Addr
	pskF  string
	resp  netip.Addr
	clkTk float64 // clock ticks per second (/proc/PID/stat)
}

func newEnv(t *testing.T, sources int) *env {
	p := netns.NewPair(t)
	e := &env{t: t, p: p, resp: p.B.Outer.Addr(), clkTk: 100}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Source addresses on A's veth, in one ip -batch.
	var batch strings.Builder
	for i := range sources {
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(firstSource + i)})
		e.srcs = append(e.srcs, a)
		fmt.Fprintf(&batch, "addr add %s/24 dev %s\n", a, p.A.Link)
	}
	bf := filepath.Join(t.TempDir(), "addrs.batch")
	if err := os.WriteFile(bf, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := p.A.Run(ctx, "ip", "-batch", bf); err != nil {
		t.Fatalf("source addresses: %v\n%s", err, out)
	}
	if out, err := p.B.Run(ctx, "ip", "route", "add", spoofPrefix.String(), "via", p.A.Outer.Addr().String()); err != nil {
		t.Fatalf("route for the spoofed prefix: %v\n%s", err, out)
	}
	e.pskF = filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(e.pskF, []byte(psk), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			e.clkTk = v
		}
	}
	return e
}

// cpuTime is a process's user+system CPU time so far (all threads).
func (e *env) cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces: fields follow the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseFloat(f[11], 64) // field 14 of stat
	st, _ := strconv.ParseFloat(f[12], 64) // field 15
	return time.Duration((ut + st) / e.clkTk * float64(time.Second)), nil
}

// rss is a process's resident set size in bytes.
func rss(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// responder is one IKEv2 responder under test, running in namespace B.
type responder interface {
	Name() string
	Pid() int
	// IKESAs is the number of established IKE SAs it reports (-1: it cannot say).
	IKESAs(ctx context.Context) (int, error)
	// ListSAs times its operator listing of every SA (cygnetctl list-sas --json,
	// swanctl --list-sas) and returns how many IKE SAs it listed.
	ListSAs(ctx context.Context) (time.Duration, int, error)
	// HalfOpen is the number of half-open IKE SAs it reports.
	HalfOpen(ctx context.Context) (int, error)
	// Scrape times one /metrics scrape (zero when it has none).
	Scrape(ctx context.Context) (time.Duration, int, error)
	Stop()
}

// respOpts are the responder settings a step asks for.
type respOpts struct {
	cookieThreshold int           // 0: never demand cookies (setup and scale steps)
	blockThreshold  int           // half-open per peer address; 0: unlimited
	dpd             time.Duration // liveness checks of the peer; 0: none
	charonNetlink   bool          // charon with kernel-netlink alone (no ESP here: Child SAs refused)
}

// listTimeout bounds one listing: a responder that cannot list its SAs in this long
// has failed the measurement.
const listTimeout = 3 * time.Minute

// ---- cygnetd ----

type cygnetd struct {
	e       *env
	dir     string
	proc    *netns.Proc
	ctl     *control.Client
	log     *syncBuffer
	metrics string
}

func startCygnetd(t *testing.T, e *env, o respOpts) *cygnetd {
	t.Helper()
	dir, err := os.MkdirTemp("", "cgbench")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &cygnetd{e: e, dir: dir, log: &syncBuffer{}, metrics: netip.AddrPortFrom(e.resp, 9917).String()}
	cookie, block := o.cookieThreshold, o.blockThreshold
	if cookie == 0 {
		cookie = 1000000
	}
	if block == 0 {
		block = 1000000
	}
	dpd := ""
	if o.dpd > 0 {
		dpd = fmt.Sprintf("    dpd_delay: %ds\n", int(o.dpd.Seconds()))
	}
	extra := ""
	if *flagDaemonExtra != "" {
		for _, kv := range strings.Split(*flagDaemonExtra, ",") {
			extra += "  " + strings.TrimSpace(kv) + "\n"
		}
	}
	cfg := fmt.Sprintf(`daemon:
  listen_addrs: [%[1]s]
  metrics_address: "%[2]s"
  control_socket: %[3]s
  log: {format: json, level: warn}
  cookie_threshold: %[4]d
  block_threshold: %[5]d
  kernel: memory
connections:
  load:
    local_addrs: %[1]s
    remote_addrs: "%%any"
    proposals: [%[6]s]
    local: {auth: psk, id: %[7]s}
    remote: {auth: psk, id: "%%any"}
%[8]s    children:
      load:
        remote_ts: %[9]s
        esp_proposals: [%[10]s]
secrets:
  ike-load:
    secret: "%[11]s"
`, e.resp, d.metrics, filepath.Join(dir, "cygnet.sock"), cookie, block, ikeProposal, responderID, dpd, tsPool, espProposal, psk)
	cfg = strings.Replace(cfg, "daemon:\n", "daemon:\n"+extra, 1)
	if err := os.WriteFile(filepath.Join(dir, "cygnet.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d.proc, err = e.p.B.Start(netns.Command{Path: bins.cygnetd, Args: []string{"--config", filepath.Join(dir, "cygnet.yaml")},
		Stdout: d.log, Stderr: d.log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- cygnetd log (last 4 KiB) ---\n%s", tail(d.log.String(), 4096))
		}
	})
	t.Cleanup(d.Stop)
	d.ctl = control.NewClient(filepath.Join(dir, "cygnet.sock"))
	deadline := time.Now().Add(20 * time.Second)
	for {
		if exited, err := d.proc.Exited(); exited {
			t.Fatalf("cygnetd exited at start: %v\n%s", err, d.log.String())
		}
		if c, err := net.Dial("unix", d.ctl.Path()); err == nil {
			c.Close()
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("cygnetd: control socket not ready after 20 s\n%s", d.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *cygnetd) Name() string { return "cygnetd" }
func (d *cygnetd) Pid() int     { return d.proc.Pid }

func (d *cygnetd) IKESAs(ctx context.Context) (int, error) {
	st, err := d.ctl.Stats(ctx)
	if err != nil {
		return -1, err
	}
	return st.IKESAs, nil
}

func (d *cygnetd) HalfOpen(ctx context.Context) (int, error) {
	st, err := d.ctl.Stats(ctx)
	if err != nil {
		return 0, err
	}
	return st.HalfOpen, nil
}

func (d *cygnetd) ListSAs(ctx context.Context) (time.Duration, int, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.cygnetctl, "--socket", d.ctl.Path(), "list-sas", "--json")
	var out countingWriter
	cmd.Stdout = &out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	el := time.Since(start)
	if err != nil {
		return el, 0, fmt.Errorf("cygnetctl list-sas --json: %v: %s", err, stderr.String())
	}
	return el, out.lines, nil
}

func (d *cygnetd) Scrape(ctx context.Context) (time.Duration, int, error) {
	return scrapeIn(ctx, d.e.p.B, "http://"+d.metrics+"/metrics")
}

func (d *cygnetd) Stop() {
	if d.proc != nil {
		_ = d.proc.Stop() // SIGTERM: it deletes its IKE SAs within a bounded time
	}
}

// scrapeIn GETs url from inside ns (the socket is made there) and times the whole
// response.
func scrapeIn(ctx context.Context, ns *netns.NS, url string) (time.Duration, int, error) {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
		if nsErr := ns.Do(func() error {
			conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		}); nsErr != nil {
			return nil, nsErr
		}
		return conn, err
	}, DisableKeepAlives: true}
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return time.Since(start), 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	el := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		return el, int(n), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return el, int(n), err
}

// ---- the bare core: cygnet-load respond ----

type coreResponder struct {
	proc *netns.Proc
	log  *syncBuffer
}

func startCore(t *testing.T, e *env) *coreResponder {
	t.Helper()
	c := &coreResponder{log: &syncBuffer{}}
	var err error
	c.proc, err = e.p.B.Start(netns.Command{Path: bins.load, Args: []string{"respond",
		"-listen", netip.AddrPortFrom(e.resp, 500).String(), "-natt-port", "4500",
		"-psk-file", e.pskF, "-id", responderID, "-remote-ts", tsPool,
		"-ike", ikeProposal, "-esp", espProposal, "-stats-every", "0"}, Stdout: c.log, Stderr: c.log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.log.String(), "responding on") {
		if exited, err := c.proc.Exited(); exited || time.Now().After(deadline) {
			t.Fatalf("cygnet-load respond did not start (%v):\n%s", err, c.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c
}

func (c *coreResponder) Name() string                            { return "core" }
func (c *coreResponder) Pid() int                                { return c.proc.Pid }
func (c *coreResponder) IKESAs(ctx context.Context) (int, error) { return -1, nil }
func (c *coreResponder) ListSAs(ctx context.Context) (time.Duration, int, error) {
	return 0, 0, errors.New("the bare core has no listing")
}
func (c *coreResponder) HalfOpen(ctx context.Context) (int, error) {
	return 0, errors.New("the bare core reports nothing while it runs")
}
func (c *coreResponder) Scrape(ctx context.Context) (time.Duration, int, error) { return 0, 0, nil }
func (c *coreResponder) Stop()                                                  { _ = c.proc.Stop() }

// ---- charon ----

type charonResponder struct {
	c *charon.Charon
}

// charonTuning is what strongSwan's documentation recommends for many IKE SAs
// (strongswan.conf(5); the wiki's "IKE SA table" and job-processing notes): a large
// hashed IKE SA table with many segments, and more worker threads than the default 16.
// block/cookie thresholds are the step's; routes are off (kernel-libipsec would route
// every TSi host into its TUN device).
func charonTuning(o respOpts) string {
	block := o.blockThreshold
	if block == 0 {
		block = 1000000
	}
	cookieIP := 1000000 // cookie_threshold_ip (5.9.8, default 3 per address): only where cookies are wanted
	if o.cookieThreshold > 0 {
		cookieIP = 3
	}
	return fmt.Sprintf("  ikesa_table_size = 65536\n  ikesa_table_segments = 64\n  threads = "+strconv.Itoa(*flagCharonThreads)+"\n"+
		"  block_threshold = %d\n  cookie_threshold_ip = %d\n  install_routes = no\n  init_limit_half_open = 0", block, cookieIP)
}

func startCharon(t *testing.T, e *env, o respOpts) *charonResponder {
	t.Helper()
	cookie := o.cookieThreshold
	if cookie == 0 {
		cookie = 1000000
	}
	backend := charon.LibIPsec
	if o.charonNetlink {
		backend = charon.NetlinkOnly
	}
	c := charon.Start(t, "responder", e.p.B, charon.Options{Backend: backend, Quiet: true,
		CookieThreshold: cookie, Extra: charonTuning(o)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.LoadConn(ctx, charon.Conn{Name: "load", LocalAddrs: []string{e.resp.String()},
		Proposals: []string{ikeProposal}, LocalID: responderID, RemoteID: "%any", DPDDelay: o.dpd,
		Children: []charon.Child{{Name: "load", RemoteTS: []string{tsPool}, ESPProposals: []string{espProposal}}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.LoadSharedIKE(ctx, "load", psk); err != nil {
		t.Fatal(err)
	}
	r := &charonResponder{c: c}
	t.Cleanup(r.Stop) // before the harness's own stop (cleanups run last-in first-out)
	return r
}

func (c *charonResponder) Name() string { return "charon" }
func (c *charonResponder) Pid() int     { return c.c.Pid() }

// IKESAs counts through swanctl --list-sas --raw (one line per IKE SA with --raw? no:
// one vici message per IKE SA); it is the listing itself, so it is slow at scale.
func (c *charonResponder) IKESAs(ctx context.Context) (int, error) {
	_, n, err := c.ListSAs(ctx)
	return n, err
}

var swanctlIKELine = regexp.MustCompile(`(?m)^load: #\d+, ESTABLISHED`)

func (c *charonResponder) ListSAs(ctx context.Context) (time.Duration, int, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	start := time.Now()
	out, err := c.c.Swanctl(ctx, "--list-sas")
	el := time.Since(start)
	if err != nil {
		return el, 0, err
	}
	return el, len(swanctlIKELine.FindAllIndex(out, -1)), nil
}

var swanctlHalfOpen = regexp.MustCompile(`IKE_SAs: \d+ total, (\d+) half-open`)

// HalfOpen reads swanctl --stats ("IKE_SAs: N total, M half-open").
func (c *charonResponder) HalfOpen(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := c.c.Swanctl(ctx, "--stats")
	if err != nil {
		return 0, err
	}
	m := swanctlHalfOpen.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("swanctl --stats: no half-open count in %q", firstLines(string(out), 5))
	}
	return strconv.Atoi(string(m[1]))
}

func (c *charonResponder) Scrape(ctx context.Context) (time.Duration, int, error) { return 0, 0, nil }

// Stop kills charon outright: with thousands of IKE SAs its orderly shutdown (a DELETE
// to every peer) outlasts the harness's grace period, and nothing is measured then.
func (c *charonResponder) Stop() {
	_ = syscall.Kill(c.c.Pid(), syscall.SIGKILL)
	_ = c.c.Stop()
}

// ---- cygnet-load runs ----

// loadArgs are one cygnet-load run's settings beyond the fixed ones.
type loadArgs struct {
	count, inflight int
	rate            float64
	hold            time.Duration
	childRekey      time.Duration
	ikeRekey        time.Duration
	del             bool
	duration        time.Duration
	setupTimeout    time.Duration
	drain           time.Duration
}

// loadRun is a cygnet-load process in namespace A.
type loadRun struct {
	proc      *netns.Proc
	stdout    *syncBuffer
	progress  *progressTracker
	setupFile string
}

func startLoad(t *testing.T, e *env, a loadArgs) *loadRun {
	t.Helper()
	if a.duration == 0 {
		a.duration = 2 * time.Hour
	}
	if a.drain == 0 {
		a.drain = 2 * time.Minute
	}
	if a.inflight == 0 {
		a.inflight = 512
	}
	l := &loadRun{stdout: &syncBuffer{}, progress: &progressTracker{prefix: "    load: "},
		setupFile: filepath.Join(t.TempDir(), "setup.json")}
	args := []string{
		"-target", netip.AddrPortFrom(e.resp, 500).String(),
		"-src", fmt.Sprintf("%s-%s", e.srcs[0], e.srcs[len(e.srcs)-1]), "-base-port", "500",
		"-psk-file", e.pskF, "-remote-id", responderID, "-ts-pool", tsPool,
		"-ike", ikeProposal, "-esp", espProposal, "-children", "1",
		"-count", fmt.Sprint(a.count), "-inflight", fmt.Sprint(a.inflight), "-rate", fmt.Sprint(a.rate),
		"-hold", a.hold.String(), "-delete=" + strconv.FormatBool(a.del),
		"-duration", a.duration.String(), "-drain", a.drain.String(),
		"-setup-json", l.setupFile, "-json", "-",
	}
	if a.setupTimeout > 0 {
		args = append(args, "-setup-timeout", a.setupTimeout.String())
	}
	if a.childRekey > 0 {
		args = append(args, "-child-rekey", a.childRekey.String(), "-child-life-time", (3 * a.childRekey).String())
	}
	if a.ikeRekey > 0 {
		args = append(args, "-ike-rekey", a.ikeRekey.String(), "-ike-over-time", a.ikeRekey.String())
	}
	var err error
	l.proc, err = e.p.A.Start(netns.Command{Path: bins.load, Args: args, Stdout: l.stdout, Stderr: l.progress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.proc.Stop() })
	return l
}

// waitSetup waits for the setup phase's interim report.
func (l *loadRun) waitSetup(ctx context.Context) (*loadgen.Report, error) {
	for {
		if b, err := os.ReadFile(l.setupFile); err == nil && json.Valid(b) {
			var r loadgen.Report
			if err := json.Unmarshal(b, &r); err != nil {
				return nil, err
			}
			return &r, nil
		}
		if exited, err := l.proc.Exited(); exited {
			return nil, fmt.Errorf("cygnet-load exited before its setup phase ended: %v\n%s", err, l.progress.last())
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("setup phase not over: %w (last progress: %s)", ctx.Err(), l.progress.last())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// wait waits for the process to end (it stops by itself) and reads its report.
func (l *loadRun) wait(ctx context.Context) (*loadgen.Report, error) {
	select {
	case <-l.proc.Done():
	case <-ctx.Done():
		return nil, fmt.Errorf("cygnet-load still running: %w", ctx.Err())
	}
	var r loadgen.Report
	if err := json.Unmarshal([]byte(l.stdout.String()), &r); err != nil {
		return nil, fmt.Errorf("cygnet-load report: %v\n%s", err, tail(l.stdout.String(), 2048))
	}
	return &r, nil
}

// interrupt ends the hold phase (SIGINT): the run deletes its IKE SAs if it was told to,
// then reports.
func (l *loadRun) interrupt() { _ = syscall.Kill(l.proc.Pid, syscall.SIGINT) }

// progressTracker keeps cygnet-load's last progress line and echoes one in ten.
type progressTracker struct {
	prefix string
	mu     sync.Mutex
	line   string
	n      int
	buf    []byte
}

func (p *progressTracker) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.line = string(p.buf[:i])
		p.buf = p.buf[i+1:]
		if p.n%10 == 0 {
			fmt.Fprintf(os.Stderr, "%s%s\n", p.prefix, p.line)
		}
		p.n++
	}
	return len(b), nil
}

func (p *progressTracker) last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.line
}

var rekeyField = regexp.MustCompile(`rekeys=(\d+)/(\d+)`)

// rekeys parses "rekeys=IKE/Child" from the last progress line.
func (p *progressTracker) rekeys() (ikeN, childN uint64) {
	m := rekeyField.FindStringSubmatch(p.last())
	if m == nil {
		return 0, 0
	}
	ikeN, _ = strconv.ParseUint(m[1], 10, 64)
	childN, _ = strconv.ParseUint(m[2], 10, 64)
	return ikeN, childN
}

// ---- small helpers ----

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

// countingWriter counts lines and discards them (list-sas output at 100k SAs).
type countingWriter struct{ lines int }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.lines += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// firstLines returns up to n lines of s.
func firstLines(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var b strings.Builder
	for i := 0; i < n && sc.Scan(); i++ {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return b.String()
}
