// Package interop is the interoperability harness: IKEv2 peers in network
// namespaces, driven through their own control planes, with packet captures of
// what crossed the wire.
//
// Contract:
//
//   - A [Peer] is one IKEv2 endpoint in one namespace of a [netns.Pair]: strongSwan's
//     charon driven over vici ([NewCharonPeer]) or cygnetd driven through its control
//     socket (NewCygnetPeer, in the tests). Scenarios are written against Peer only,
//     so each one runs charon↔charon and cygnet↔charon (docs/interop.md).
//   - Connections are described once, in swanctl.conf's vocabulary ([charon.Conn]);
//     [DefaultConn] builds the mirrored pair of scenario 1.
//   - SAs are compared through [charon.IKESA] values: every Peer reports its SAs in
//     that shape, and [CheckAgree] says whether two peers see the same IKE SA and
//     Child SAs (SPIs, algorithms, traffic selectors, encapsulation).
//   - A [Capture] runs tcpdump inside a namespace (tracked by PID) and hands back the
//     IKE messages and ESP packets seen so far, decoded by package pcap.
//
// Everything here needs root, iproute2, tcpdump and strongSwan (.ci/deps.sh); a
// missing prerequisite fails the test, it never skips.
package interop

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/charon"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/netns"
)

// PSK is the pre-shared key every scenario uses (the vectors' key).
const PSK = "interop-test-psk-0123456789abcdef"

// Peer is one IKEv2 endpoint under test.
type Peer interface {
	// Label names the peer in messages ("charon-A", "cygnet-A").
	Label() string
	// Impl is "charon" or "cygnet".
	Impl() string
	NS() *netns.NS
	LoadConn(ctx context.Context, c charon.Conn) error
	// Initiate establishes Child SA child of connection ike (the IKE SA first if
	// needed) and returns when it is up or has failed.
	Initiate(ctx context.Context, ike, child string) error
	// InitiateNoWait starts it and returns at once.
	InitiateNoWait(ctx context.Context, ike, child string) error
	// Rekey starts a rekey and returns at once.
	Rekey(ctx context.Context, t charon.Target) error
	// Terminate deletes an SA and returns when done.
	Terminate(ctx context.Context, t charon.Target) error
	ListSAs(ctx context.Context) ([]charon.IKESA, error)
	// DataPlane reports whether traffic between the inner addresses actually flows
	// through this peer's Child SAs (true for kernel-libipsec charon; false where
	// the kernel has no ESP).
	DataPlane() bool
	// LogContains reports whether the peer's log has a line containing s.
	LogContains(s string) bool
	DumpLog()
}

// PeerOptions are the per-scenario settings a Peer is started with, in neutral
// terms; each implementation maps them to its own configuration.
type PeerOptions struct {
	// RefuseChildSA makes the peer's kernel side refuse every Child SA (charon:
	// kernel-netlink only, on a kernel without ESP; cygnet: in-memory kernel told
	// to fail).
	RefuseChildSA bool
	// FragmentSize is the largest IKE fragment the peer sends (0 = default).
	FragmentSize int
	// RetransmitTries and RetransmitTimeout (seconds) shorten the retransmission
	// schedule for liveness scenarios (0 = default).
	RetransmitTries   int
	RetransmitTimeout float64
	RetransmitBase    float64
	// CookieThreshold is the half-open count at which the peer demands COOKIEs
	// (charon cannot go below 1; cygnet's 0 means always).
	CookieThreshold int
	// LogKeys asks for key material in the log.
	LogKeys bool
}

// Factory starts a Peer in ns; it fails t on error and stops the peer at cleanup.
type Factory func(tb testing.TB, label string, ns *netns.NS, o PeerOptions) Peer

// Settle bounds how long scenarios wait for an asynchronous outcome (rekey,
// delete, liveness) before they fail.
const Settle = 20 * time.Second

// DefaultConn is scenario 1's connection "ab" from local's point of view: PSK,
// IKE aes256gcm16-prfsha256-x25519, one tunnel-mode child "net" with ESP
// aes256gcm16 between the two inner /32s, no MOBIKE, no automatic rekeying.
func DefaultConn(local, remote *netns.NS) charon.Conn {
	return charon.Conn{
		Name:        "ab",
		LocalAddrs:  []string{local.Outer.Addr().String()},
		RemoteAddrs: []string{remote.Outer.Addr().String()},
		Proposals:   []string{"aes256gcm16-prfsha256-x25519"},
		LocalID:     local.Outer.Addr().String(),
		RemoteID:    remote.Outer.Addr().String(),
		PSK:         PSK,
		RekeyTime:   charon.Never,
		Children:    []charon.Child{NetChild(local.Inner, remote.Inner, "aes256gcm16")},
	}
}

// NetChild is a tunnel-mode child "net" between two /32s.
func NetChild(local, remote netip.Addr, esp ...string) charon.Child {
	return charon.Child{
		Name:         "net",
		LocalTS:      []string{netip.PrefixFrom(local, 32).String()},
		RemoteTS:     []string{netip.PrefixFrom(remote, 32).String()},
		ESPProposals: esp,
		Mode:         "tunnel",
		StartAction:  "none",
		RekeyTime:    charon.Never,
		LifeTime:     charon.Never,
	}
}

// WaitSAs polls p's SAs until cond holds (cond returns nil) or ctx ends; the
// error then says what was last seen.
func WaitSAs(ctx context.Context, p Peer, what string, cond func([]charon.IKESA) error) ([]charon.IKESA, error) {
	var last []charon.IKESA
	var lastErr error
	for {
		sas, err := p.ListSAs(ctx)
		if err == nil {
			last = sas
			if lastErr = cond(sas); lastErr == nil {
				return sas, nil
			}
		} else if ctx.Err() == nil || lastErr == nil {
			lastErr = err // the deadline cutting the last listing short says nothing new
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("%s: waiting for %s: %v\nlast seen:\n%s", p.Label(), what, lastErr, charon.FormatSAs(last))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// KeySource is a Peer that can say which keys protect a Child SA (scenario 10):
// charon from its level-4 log (PeerOptions.LogKeys), cygnet from its in-memory
// kernel.
type KeySource interface {
	// ESPKeys returns the candidate encryption keys (AEAD: key || salt) of the
	// Child SA that has spi as one of its SPIs. Exactly one of them must open a
	// packet sent with that SPI.
	ESPKeys(spi uint32) ([][]byte, error)
}
