package interop

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/charon"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/netns"
)

// CharonPeer is a Peer backed by a charon (package charon).
type CharonPeer struct {
	*charon.Charon
	label string
	opts  PeerOptions
}

var _ Peer = (*CharonPeer)(nil)

// NewCharonPeer is the Factory for charon: it maps PeerOptions onto
// strongswan.conf (RefuseChildSA → kernel-netlink only).
func NewCharonPeer(tb testing.TB, label string, ns *netns.NS, o PeerOptions) Peer {
	tb.Helper()
	backend := charon.LibIPsec
	if o.RefuseChildSA {
		backend = charon.NetlinkOnly
	}
	c := charon.Start(tb, label, ns, charon.Options{
		Backend:           backend,
		RetransmitTries:   o.RetransmitTries,
		RetransmitTimeout: o.RetransmitTimeout,
		RetransmitBase:    o.RetransmitBase,
		FragmentSize:      o.FragmentSize,
		CookieThreshold:   o.CookieThreshold,
		LogKeys:           o.LogKeys,
	})
	return &CharonPeer{Charon: c, label: "charon-" + label, opts: o}
}

func (p *CharonPeer) Label() string   { return p.label }
func (p *CharonPeer) Impl() string    { return "charon" }
func (p *CharonPeer) NS() *netns.NS   { return p.Charon.NS }
func (p *CharonPeer) DataPlane() bool { return !p.opts.RefuseChildSA }

func (p *CharonPeer) LoadConn(ctx context.Context, c charon.Conn) error {
	return p.Charon.LoadConn(ctx, c)
}

func (p *CharonPeer) LogContains(s string) bool { return strings.Contains(p.Log(), s) }

var _ KeySource = (*CharonPeer)(nil)

// ESPKeys returns both keys charon logged for the Child SA with spi: its log names
// them by exchange role, not by SPI.
func (p *CharonPeer) ESPKeys(spi uint32) ([][]byte, error) {
	if !p.opts.LogKeys {
		return nil, fmt.Errorf("%s: started without LogKeys, its log has no keys", p.label)
	}
	for _, c := range charon.ParseChildKeys(p.Log()) {
		if c.SPIIn == spi || c.SPIOut == spi {
			return [][]byte{c.EncrI, c.EncrR}, nil
		}
	}
	return nil, fmt.Errorf("%s: no Child SA with SPI %08x in the log", p.label, spi)
}
