// The scenarios with cygnetd as A (our side) and charon as B.
//
// How cygnetd runs here (docs/interop.md):
//   - the binary is built by the test with the running Go toolchain into a temporary
//     directory (or $CYGNETD, when set, is used as is), started as
//     `cygnetd --config FILE --chaos`, logging to stderr;
//   - its YAML configuration is cmd/internal/config's (swanctl vocabulary), with
//     daemon.kernel: memory (no ESP in this kernel) and daemon.control_socket;
//   - connections are added by rewriting the file and sending `reload`;
//   - list-sas (cmd/internal/control) reports proposals as charon prints them
//     ("AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519");
//   - chaos mode gives the test the in-memory kernel's keys (debug-kernel-sas,
//     scenario 10) and its fault injection (debug-kernel-fail, scenario 6c from our
//     side).

package interop

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/charon"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/netns"
)

func TestCygnetCharon(t *testing.T) {
	runScenarios(t, NewCygnetPeer, NewCharonPeer, scenarioTable())
}

// CygnetPeer is a Peer backed by a cygnetd driven through its control socket
// (the client cygnetctl uses).
type CygnetPeer struct {
	label string
	ns    *netns.NS
	dir   string
	opts  PeerOptions
	proc  *netns.Proc
	ctl   *control.Client
	mu    sync.Mutex
	conns []charon.Conn
	log   bytes.Buffer
	tb    testing.TB
}

var _ Peer = (*CygnetPeer)(nil)

// cygnetd is built once per test binary, on first use.
var cygnetd struct {
	once sync.Once
	dir  string // removed by TestMain
	path string
	err  error
}

// cygnetdPath returns $CYGNETD, or a cygnetd built from this tree.
func cygnetdPath() (string, error) {
	if p := os.Getenv("CYGNETD"); p != "" {
		return p, nil
	}
	cygnetd.once.Do(func() {
		// go test puts its toolchain's bin directory first on the PATH.
		gobin, err := exec.LookPath("go")
		if err != nil {
			cygnetd.err = errors.New("no Go toolchain to build cygnetd with: put /usr/local/go/bin on the PATH (or set CYGNETD)")
			return
		}
		if cygnetd.dir, err = os.MkdirTemp("", "cygnet-interop-bin"); err != nil {
			cygnetd.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cygnetd.path = filepath.Join(cygnetd.dir, "cygnetd")
		out, err := exec.CommandContext(ctx, gobin, "build", "-o", cygnetd.path, "github.com/cygnet-ipsec/cygnet/cmd/cygnetd").CombinedOutput()
		if err != nil {
			cygnetd.err = fmt.Errorf("go build cygnetd: %v\n%s", err, out)
		}
	})
	return cygnetd.path, cygnetd.err
}

// removeCygnetd removes the built binary (TestMain, after the tests).
func removeCygnetd() {
	if cygnetd.dir != "" {
		os.RemoveAll(cygnetd.dir)
	}
}

// NewCygnetPeer is the Factory for cygnetd.
func NewCygnetPeer(tb testing.TB, label string, ns *netns.NS, o PeerOptions) Peer {
	tb.Helper()
	bin, err := cygnetdPath()
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		tb.Fatalf("cygnetd: %v", err)
	}
	dir, err := os.MkdirTemp("", "cgcy")
	if err != nil {
		tb.Fatal(err)
	}
	p := &CygnetPeer{label: "cygnet-" + label, ns: ns, dir: dir, opts: o, tb: tb}
	p.ctl = control.NewClient(filepath.Join(dir, "cygnet.sock"))
	tb.Cleanup(func() {
		if p.proc != nil {
			if err := p.proc.Stop(); err != nil {
				tb.Errorf("%s: %v", p.label, err)
			}
		}
		if tb.Failed() {
			p.DumpLog()
		}
		os.RemoveAll(dir)
	})
	if err := p.writeConfig(); err != nil {
		tb.Fatal(err)
	}
	out := guardedWriter{&p.mu, &p.log}
	p.proc, err = ns.Start(netns.Command{Path: bin, Args: []string{"--config", p.configPath(), "--chaos"}, Stdout: out, Stderr: out})
	if err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if exited, err := p.proc.Exited(); exited {
			p.DumpLog()
			tb.Fatalf("%s exited: %v", p.label, err)
		}
		// Started means answering on the control socket, not only accepting.
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := p.ctl.Stats(sctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			p.DumpLog()
			tb.Fatalf("%s: control socket not ready after 20s", p.label)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if o.RefuseChildSA {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.ctl.DebugKernelFail(ctx, 1<<30); err != nil {
			tb.Fatalf("%s: debug-kernel-fail: %v", p.label, err)
		}
	}
	return p
}

func (p *CygnetPeer) configPath() string { return filepath.Join(p.dir, "cygnet.yaml") }

// writeConfig renders the daemon section and every loaded connection.
func (p *CygnetPeer) writeConfig() error {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("daemon:")
	w("  listen_addrs: [%s]", p.ns.Outer.Addr())
	w("  control_socket: %s", filepath.Join(p.dir, "cygnet.sock"))
	w("  log: {format: console, level: debug}")
	w("  kernel: memory")
	w("  metrics_address: ~")
	if p.opts.CookieThreshold > 0 {
		w("  cookie_threshold: 0 # issue 7 scenario 9: demand a COOKIE always")
	}
	if o := p.opts; o.RetransmitTries > 0 || o.RetransmitTimeout > 0 || o.RetransmitBase > 0 {
		w("  retransmit:")
		if o.RetransmitTimeout > 0 {
			w("    timeout: %g", o.RetransmitTimeout)
		}
		if o.RetransmitBase > 0 {
			w("    base: %g", o.RetransmitBase)
		}
		if o.RetransmitTries > 0 {
			w("    tries: %d", o.RetransmitTries)
		}
	}
	if p.opts.FragmentSize > 0 {
		w("  fragment_size: %d", p.opts.FragmentSize)
	}
	w("connections:")
	for _, c := range p.conns {
		w("  %s:", c.Name)
		w("    version: 2")
		w("    local_addrs: [%s]", strings.Join(c.LocalAddrs, ", "))
		w("    remote_addrs: [%s]", strings.Join(c.RemoteAddrs, ", "))
		if len(c.Proposals) > 0 {
			w("    proposals: [%s]", strings.Join(c.Proposals, ", "))
		}
		w("    local: {auth: psk, id: %q}", c.LocalID)
		w("    remote: {auth: psk, id: %q}", c.RemoteID)
		for _, d := range []struct {
			k string
			v time.Duration
		}{{"rekey_time", c.RekeyTime}, {"reauth_time", c.ReauthTime}, {"over_time", c.OverTime}, {"dpd_delay", c.DPDDelay}} {
			if d.v != 0 {
				w("    %s: %s", d.k, durationYAML(d.v))
			}
		}
		if c.Fragmentation != "" {
			w("    fragmentation: %s", c.Fragmentation)
		}
		w("    children:")
		for _, ch := range c.Children {
			w("      %s:", ch.Name)
			w("        local_ts: [%s]", quoteAll(ch.LocalTS))
			w("        remote_ts: [%s]", quoteAll(ch.RemoteTS))
			if len(ch.ESPProposals) > 0 {
				w("        esp_proposals: [%s]", strings.Join(ch.ESPProposals, ", "))
			}
			if ch.Mode != "" {
				w("        mode: %s", ch.Mode)
			}
			if ch.StartAction != "" {
				w("        start_action: %s", ch.StartAction)
			}
			for _, d := range []struct {
				k string
				v time.Duration
			}{{"rekey_time", ch.RekeyTime}, {"life_time", ch.LifeTime}} {
				if d.v != 0 {
					w("        %s: %s", d.k, durationYAML(d.v))
				}
			}
		}
	}
	w("secrets:")
	for _, c := range p.conns {
		if c.PSK != "" {
			w("  ike-%s: {id-a: %q, id-b: %q, secret: %q}", c.Name, c.LocalID, c.RemoteID, c.PSK)
		}
	}
	return os.WriteFile(p.configPath(), []byte(b.String()), 0o600)
}

func durationYAML(d time.Duration) string {
	if d == charon.Never {
		return "0"
	}
	return fmt.Sprintf("%ds", int64(d/time.Second))
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func (p *CygnetPeer) Label() string   { return p.label }
func (p *CygnetPeer) Impl() string    { return "cygnet" }
func (p *CygnetPeer) NS() *netns.NS   { return p.ns }
func (p *CygnetPeer) DataPlane() bool { return false } // kernel: memory

func (p *CygnetPeer) LoadConn(ctx context.Context, c charon.Conn) error {
	p.conns = append(p.conns, c)
	if err := p.writeConfig(); err != nil {
		return err
	}
	r, err := p.ctl.Reload(ctx)
	if err != nil {
		return fmt.Errorf("%s: reload: %w", p.label, err)
	}
	if len(r.Warnings) > 0 {
		p.tb.Logf("%s: reload warnings: %v", p.label, r.Warnings)
	}
	return nil
}

func target(t charon.Target) control.Target {
	return control.Target{IKE: t.IKE, Child: t.Child, IKEID: uint64(t.IKEID), ChildID: uint64(t.ChildID)}
}

func (p *CygnetPeer) Initiate(ctx context.Context, ike, child string) error {
	_, err := p.ctl.Initiate(ctx, control.Target{IKE: ike, Child: child})
	return err
}

func (p *CygnetPeer) InitiateNoWait(ctx context.Context, ike, child string) error {
	go func() { _, _ = p.ctl.Initiate(context.WithoutCancel(ctx), control.Target{IKE: ike, Child: child}) }()
	return nil
}

func (p *CygnetPeer) Rekey(ctx context.Context, t charon.Target) error {
	_, err := p.ctl.Rekey(ctx, target(t))
	return err
}

func (p *CygnetPeer) Terminate(ctx context.Context, t charon.Target) error {
	_, err := p.ctl.Terminate(ctx, target(t))
	return err
}

func (p *CygnetPeer) ListSAs(ctx context.Context) ([]charon.IKESA, error) {
	var out []charon.IKESA
	err := p.ctl.ListSAs(ctx, control.SAFilter{}, func(sa *control.IKESA) error {
		s := charon.IKESA{
			Conn: sa.Conn, UniqueID: uint32(sa.UniqueID), State: sa.State, Initiator: sa.Initiator,
			SPIi: uint64(sa.SPIi), SPIr: uint64(sa.SPIr),
			LocalHost: sa.LocalHost, RemoteHost: sa.RemoteHost, LocalPort: sa.LocalPort, RemotePort: sa.RemotePort,
			LocalID: sa.LocalID, RemoteID: sa.RemoteID,
			NATLocal: sa.NATLocal, NATRemote: sa.NATRemote, NATAny: sa.NATLocal || sa.NATRemote,
		}
		s.EncrAlg, s.EncrKeysize, s.IntegAlg, s.PRFAlg, s.DHGroup = splitProposal(sa.Proposal)
		for _, c := range sa.Children {
			cs := charon.ChildSA{
				Name: c.Name, UniqueID: uint32(c.UniqueID), ReqID: c.ReqID, State: c.State, Mode: c.Mode,
				Protocol: c.Protocol, Encap: c.Encap, SPIIn: uint32(c.SPIIn), SPIOut: uint32(c.SPIOut),
				LocalTS: c.LocalTS, RemoteTS: c.RemoteTS,
				BytesIn: c.BytesIn, BytesOut: c.BytesOut, PacketsIn: c.PacketsIn, PacketsOut: c.PacketsOut,
			}
			cs.EncrAlg, cs.EncrKeysize, cs.IntegAlg, _, cs.DHGroup = splitProposal(c.Proposal)
			s.Children = append(s.Children, cs)
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

// splitProposal turns "AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"
// into charon's list-sas fields.
func splitProposal(p string) (encr string, keysize int, integ, prf, dh string) {
	for i, tok := range strings.Split(p, "/") {
		switch {
		case i == 0:
			encr = tok
			if j := strings.LastIndexByte(tok, '_'); j > 0 {
				if n, err := strconv.Atoi(tok[j+1:]); err == nil && (n == 128 || n == 192 || n == 256) {
					encr, keysize = tok[:j], n
				}
			}
		case strings.HasPrefix(tok, "PRF_"):
			prf = tok
		case strings.HasPrefix(tok, "MODP_") || strings.HasPrefix(tok, "ECP_") || strings.HasPrefix(tok, "CURVE_"):
			dh = tok
		case strings.HasSuffix(tok, "EXT_SEQ"):
		default:
			integ = tok
		}
	}
	return
}

func (p *CygnetPeer) LogContains(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Contains(p.log.String(), s)
}

func (p *CygnetPeer) DumpLog() {
	p.mu.Lock()
	defer p.mu.Unlock()
	cfg, _ := os.ReadFile(p.configPath())
	p.tb.Logf("==== %s (ns %s) config ====\n%s\n==== log ====\n%s", p.label, p.ns.Name, cfg, p.log.String())
}

var _ KeySource = (*CygnetPeer)(nil)

// ESPKeys reads the keys of the SA with spi from cygnetd's in-memory kernel
// (debug-kernel-sas, chaos only).
func (p *CygnetPeer) ESPKeys(spi uint32) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var keys [][]byte
	err := p.ctl.DebugKernelSAs(ctx, func(sa *control.KernelSA) error {
		if sa.SPI != spi {
			return nil
		}
		k, err := hex.DecodeString(sa.EncrKey)
		if err != nil {
			return fmt.Errorf("SA %08x: key %q: %v", spi, sa.EncrKey, err)
		}
		keys = append(keys, k)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: debug-kernel-sas: %w", p.label, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no SA with SPI %08x in the in-memory kernel", p.label, spi)
	}
	return keys, nil
}
