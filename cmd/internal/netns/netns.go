// Package netns creates throw-away Linux network namespaces for tests and runs
// processes inside them.
//
// Contract:
//
//   - NewPair makes two fresh namespaces, A and B, with unique names (so tests may
//     run in parallel and never meet another test's namespaces), joined by a veth
//     pair: A has 192.0.2.1/24 on its veth and 198.51.100.1/32 on lo, B has
//     192.0.2.2/24 and 203.0.113.1/32. IPv6 is disabled in both (no link-local
//     addresses, so no MOBIKE address updates) and there are no default routes:
//     traffic never leaves the pair.
//   - Every process started with [NS.Start] is tracked by its PID and, at test
//     cleanup, stopped by that PID (SIGTERM, then SIGKILL); after that the
//     namespaces are deleted. Nothing is ever killed by name.
//   - All setup uses iproute2 (`ip`, `ip netns exec`) and needs root. A missing
//     prerequisite fails the test with a clear message; it never skips.
//
// The addresses are the RFC 5737 documentation prefixes, so nothing here can reach
// a real network.
package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Addresses of the pair. The outer addresses carry IKE and ESP; the inner ones are
// the traffic selectors' hosts (one /32 per side, on lo).
var (
	OuterA = netip.MustParsePrefix("192.0.2.1/24")
	OuterB = netip.MustParsePrefix("192.0.2.2/24")
	InnerA = netip.MustParseAddr("198.51.100.1")
	InnerB = netip.MustParseAddr("203.0.113.1")
)

// setupTimeout bounds every iproute2 call made while building or removing a pair.
const setupTimeout = 20 * time.Second

// NS is one network namespace of a pair.
type NS struct {
	// Name is the namespace's name under /run/netns (for `ip netns exec`).
	Name string
	// Link is the name of the veth interface inside the namespace.
	Link string
	// Outer is the veth address with its prefix; Inner the /32 on lo.
	Outer netip.Prefix
	Inner netip.Addr

	tb    testing.TB
	mu    sync.Mutex
	procs []*Proc
}

// Pair is two namespaces joined by a veth pair.
type Pair struct {
	A, B *NS
}

// Peer returns the other namespace of the pair.
func (p *Pair) Peer(ns *NS) *NS {
	if ns == p.A {
		return p.B
	}
	return p.A
}

var seq atomic.Uint64

// uniquePrefix returns a short name prefix unique to this process and call:
// "cg" + pid (base 36) + counter + random, at most 12 characters, so interface
// names derived from it stay under IFNAMSIZ.
func uniquePrefix() string {
	var r [2]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("cg%s%s%s",
		formatBase36(uint64(os.Getpid())), formatBase36(seq.Add(1)), hex.EncodeToString(r[:]))
}

func formatBase36(v uint64) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	if v == 0 {
		return "0"
	}
	var b []byte
	for v > 0 {
		b = append([]byte{digits[v%36]}, b...)
		v /= 36
	}
	return string(b)
}

// CheckPrereqs reports what is missing to build namespaces here: root, iproute2,
// sysctl.
func CheckPrereqs() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)")
	}
	for _, bin := range []string{"ip", "sysctl", "mount"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin+" (run .ci/deps.sh)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("netns: missing prerequisites: %s", strings.Join(missing, "; "))
	}
	return nil
}

// NewPair creates the two namespaces and the veth between them, and registers
// their removal (after every process started in them is stopped) with tb.Cleanup.
// It fails tb on any error.
func NewPair(tb testing.TB) *Pair {
	tb.Helper()
	if err := CheckPrereqs(); err != nil {
		tb.Fatal(err)
	}
	prefix := uniquePrefix()
	p := &Pair{
		A: &NS{Name: prefix + "-a", Link: prefix + "a", Outer: OuterA, Inner: InnerA, tb: tb},
		B: &NS{Name: prefix + "-b", Link: prefix + "b", Outer: OuterB, Inner: InnerB, tb: tb},
	}
	var created []*NS
	tb.Cleanup(func() {
		// Processes first (LIFO among our own cleanups is not enough: a test may have
		// started processes after NewPair returned).
		for _, ns := range created {
			ns.stopAll()
		}
		for _, ns := range created {
			if out, err := ipCmd("netns", "delete", ns.Name); err != nil {
				tb.Errorf("netns: delete %s: %v: %s", ns.Name, err, out)
			}
		}
	})
	for _, ns := range []*NS{p.A, p.B} {
		if out, err := ipCmd("netns", "add", ns.Name); err != nil {
			tb.Fatalf("netns: add %s: %v: %s", ns.Name, err, out)
		}
		created = append(created, ns)
		// Disable IPv6 before the veth appears so it never gets a link-local address.
		if out, err := ipCmd("netns", "exec", ns.Name, "sysctl", "-q", "-w",
			"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
			tb.Fatalf("netns: disable IPv6 in %s: %v: %s", ns.Name, err, out)
		}
	}
	// Create the veth ends directly inside their namespaces: nothing appears in the
	// caller's namespace, so no name can collide there.
	if out, err := ipCmd("link", "add", "name", p.A.Link, "netns", p.A.Name, "type", "veth",
		"peer", "name", p.B.Link, "netns", p.B.Name); err != nil {
		tb.Fatalf("netns: veth %s<->%s: %v: %s", p.A.Link, p.B.Link, err, out)
	}
	for _, ns := range []*NS{p.A, p.B} {
		for _, args := range [][]string{
			{"-n", ns.Name, "link", "set", "lo", "up"},
			{"-n", ns.Name, "addr", "add", netip.PrefixFrom(ns.Inner, 32).String(), "dev", "lo"},
			{"-n", ns.Name, "addr", "add", ns.Outer.String(), "dev", ns.Link},
			{"-n", ns.Name, "link", "set", ns.Link, "up"},
		} {
			if out, err := ipCmd(args...); err != nil {
				tb.Fatalf("netns: ip %s: %v: %s", strings.Join(args, " "), err, out)
			}
		}
	}
	return p
}

func ipCmd(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	return exec.CommandContext(ctx, "ip", args...).CombinedOutput()
}

// SetLinkUp sets the namespace's veth up or down. Down makes the peer silent: what
// either side sends is lost (the liveness scenario).
func (ns *NS) SetLinkUp(up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	if out, err := ipCmd("-n", ns.Name, "link", "set", ns.Link, state); err != nil {
		return fmt.Errorf("netns %s: link %s %s: %w: %s", ns.Name, ns.Link, state, err, out)
	}
	return nil
}

// Run runs a command to completion inside the namespace and returns its combined
// output.
func (ns *NS) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("netns %s: %s %s: %w", ns.Name, name, strings.Join(args, " "), err)
	}
	return out, nil
}

// Ping sends count ICMP echo requests from src to dst inside the namespace and
// returns an error unless every one was answered within count+4 seconds.
func (ns *NS) Ping(ctx context.Context, src, dst netip.Addr, count int) error {
	// -w (a deadline for all replies), not -W: once one reply is in, iputils'
	// -W waits only two round trips for the rest, which a userspace ESP on a busy
	// machine can miss.
	out, err := ns.Run(ctx, "ping", "-n", "-q", "-c", fmt.Sprint(count), "-w", fmt.Sprint(count+4),
		"-i", "0.2", "-I", src.String(), dst.String())
	if err != nil {
		return fmt.Errorf("ping %s -> %s: %w\n%s", src, dst, err, out)
	}
	// With -w, ping keeps sending until count replies are in, so it may send more.
	m := pingStats.FindSubmatch(out)
	if m == nil {
		return fmt.Errorf("ping %s -> %s: no statistics in:\n%s", src, dst, out)
	}
	if received, _ := strconv.Atoi(string(m[2])); received < count {
		return fmt.Errorf("ping %s -> %s: %s replies, want %d:\n%s", src, dst, m[2], count, out)
	}
	return nil
}

var pingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// Do runs fn on a locked OS thread that has joined the namespace (setns), then
// returns the thread to its original namespace. fn must not start goroutines that
// expect to be in the namespace: only its own thread is.
func (ns *NS) Do(fn func() error) error {
	target, err := unix.Open("/run/netns/"+ns.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns %s: open: %w", ns.Name, err)
	}
	defer unix.Close(target)
	runtime.LockOSThread()
	orig, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns %s: open own namespace: %w", ns.Name, err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns %s: setns: %w", ns.Name, err)
	}
	fnErr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: the runtime discards a locked thread when its
		// goroutine exits, so it never serves anyone else from the wrong namespace.
		return errors.Join(fnErr, fmt.Errorf("netns %s: restore namespace: %w", ns.Name, err))
	}
	runtime.UnlockOSThread()
	return fnErr
}
