package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/interop/pcap"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/netns"
)

// captureFilter keeps IKE and NAT-T traffic only.
const captureFilter = "udp port 500 or udp port 4500"

// Capture is a tcpdump running in a namespace, writing pcap to memory.
type Capture struct {
	ns     *netns.NS
	proc   *netns.Proc
	mu     sync.Mutex
	pcap   bytes.Buffer
	stderr bytes.Buffer
}

type guardedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w guardedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// StartCapture starts tcpdump on ns's veth (IKE and NAT-T only, full packets,
// delivered and flushed per packet, to a pipe: nothing is written to disk) and waits until it is capturing. It fails tb
// on error; the process is stopped by PID at cleanup.
func StartCapture(tb testing.TB, ns *netns.NS) *Capture {
	tb.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		tb.Fatalf("capture: tcpdump not installed (run .ci/deps.sh): %v", err)
	}
	c := &Capture{ns: ns}
	var err error
	c.proc, err = ns.Start(netns.Command{
		Path: "tcpdump",
		// --immediate-mode: without it libpcap hands packets over only when a ring
		// block fills or its one-second timeout expires, and a test would look at a
		// capture that lags the exchange.
		Args:   []string{"--immediate-mode", "-i", ns.Link, "-n", "-U", "-s", "0", "-w", "-", captureFilter},
		Stdout: guardedWriter{&c.mu, &c.pcap},
		Stderr: guardedWriter{&c.mu, &c.stderr},
	})
	if err != nil {
		tb.Fatalf("capture: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		ready := strings.Contains(c.stderr.String(), "listening on")
		msg := c.stderr.String()
		c.mu.Unlock()
		if ready {
			return c
		}
		if exited, err := c.proc.Exited(); exited {
			tb.Fatalf("capture: tcpdump exited: %v: %s", err, msg)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("capture: tcpdump not listening after 10s: %s", msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Packets decodes everything captured so far. A record still being written is
// left for the next call.
func (c *Capture) Packets() ([]pcap.Packet, error) {
	c.mu.Lock()
	b := bytes.Clone(c.pcap.Bytes())
	c.mu.Unlock()
	if len(b) == 0 {
		return nil, nil // tcpdump writes the file header with the first packet
	}
	ds, err := pcap.Read(b)
	if err != nil && !errors.Is(err, pcap.ErrTruncated) {
		return nil, fmt.Errorf("capture on %s: %w", c.ns.Name, err)
	}
	return pcap.Classify(ds), nil
}

// Raw returns the pcap bytes captured so far.
func (c *Capture) Raw() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.pcap.Bytes())
}

// WaitIKE waits until at least n IKE messages have been captured and returns all
// of them.
func (c *Capture) WaitIKE(ctx context.Context, n int) ([]pcap.Packet, error) {
	for {
		ps, err := c.Packets()
		if err != nil {
			return nil, err
		}
		ike := pcap.IKEMessages(ps)
		if len(ike) >= n {
			return ike, nil
		}
		select {
		case <-ctx.Done():
			return ike, fmt.Errorf("capture on %s: %d IKE messages, waiting for %d: %w\n%s",
				c.ns.Name, len(ike), n, ctx.Err(), FormatPackets(ike))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop stops tcpdump by its PID (it flushes on SIGTERM).
func (c *Capture) Stop() error { return c.proc.Stop() }

// FormatPackets renders packets one per line, for test messages.
func FormatPackets(ps []pcap.Packet) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  #%d %v -> %v %s", p.Frame, p.Src, p.Dst, p.Kind)
		switch p.Kind {
		case pcap.KindIKE:
			fmt.Fprintf(&b, " %s", p.Header)
		case pcap.KindESP:
			fmt.Fprintf(&b, " spi %08x", p.ESPSPI)
		}
		b.WriteString("\n")
	}
	return b.String()
}
