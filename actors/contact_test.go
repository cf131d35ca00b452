package actors

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
)

// TestPairInitialContact: a restarted initiator's INITIAL_CONTACT (RFC 7296 §2.4) ends
// the responder's older IKE family of the same identities at once — its Child SAs leave
// the kernel — while a family of other identities is untouched; a second family of the
// same connection started by the new initiator carries no INITIAL_CONTACT, so both stay.
func TestPairInitialContact(t *testing.T) {
	o := pairOptions{conns: 2}
	a, b := newPair(t, o)
	defer b.shutdown(t)
	ctx := context.Background()
	for i := range o.conns {
		if err := a.m.Initiate(ctx, connName(i), ""); err != nil {
			t.Fatal(err)
		}
	}
	waitState(t, "both up", time.Minute, func(s state) bool { return s.established == 2 && s.children == 4 }, a, b)
	before := snapshotListing(b)

	// a restarts: gone without a word, then back on a new port with the same definitions.
	a.m.Kill()
	a2 := newNode(t, "a", netip.MustParseAddr("127.0.0.1"), 0xa8000001, o)
	defer a2.shutdown(t)
	var conns []*ike.Connection
	for i := range o.conns {
		conns = append(conns, pairConn(i, a2, b, o))
	}
	if err := a2.m.SetConnections(ctx, conns); err != nil {
		t.Fatal(err)
	}
	if err := a2.m.Initiate(ctx, connName(0), ""); err != nil {
		t.Fatal(err)
	}
	waitState(t, "a2 up", time.Minute, func(s state) bool { return s.established == 1 && s.children == 2 }, a2)
	// b: the old family of conn 0 ended (not left to liveness checks), conn 1's untouched.
	waitState(t, "b's stale family of the restarted peer gone", time.Minute, func(s state) bool { return s.families == 2 }, b)
	after := b.state()
	if after.established != 2 || after.children != 4 {
		t.Fatalf("b after INITIAL_CONTACT: %d IKE SAs, %d Child SAs; want 2 and 4", after.established, after.children)
	}
	tb, err := b.k.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(tb.SAs), 8; got != want {
		t.Errorf("b's kernel holds %d SAs; want %d (two families, two Child SAs each, both directions)", got, want)
	}
	// conn 1's family at b is the same as before; conn 0's is a new one.
	if got, want := childSPIsByPeer(b, "@a-0001"), childSPIsByPeer(before, "@a-0001"); got != want || got == "" {
		t.Errorf("b's Child SAs of a's untouched connection 1: %q, before the restart %q", got, want)
	}
	if got, old := childSPIsByPeer(b, "@a-0000"), childSPIsByPeer(before, "@a-0000"); got == old {
		t.Errorf("b's Child SAs of a's restarted connection 0 did not change: %q", got)
	}

	// A second family of conn 0 while the first is up: no INITIAL_CONTACT, both live.
	if err := a2.m.Initiate(ctx, connName(0), ""); err != nil {
		t.Fatal(err)
	}
	waitState(t, "second family of conn 0", time.Minute, func(s state) bool { return s.established == 2 && s.children == 4 }, a2)
	time.Sleep(200 * time.Millisecond) // b would end the first one right after the second's IKE_AUTH
	if s := b.state(); s.established != 3 || s.children != 6 {
		t.Errorf("b after a second family of the same connection: %d IKE SAs, %d Child SAs; want 3 and 6", s.established, s.children)
	}
}

// listing is a node's ListSAs at one moment.
type listing struct{ sas []SA }

func snapshotListing(n *node) *listing { return &listing{n.m.ListSAs()} }

type lister interface{ list() []SA }

func (l *listing) list() []SA { return l.sas }
func (n *node) list() []SA    { return n.m.ListSAs() }

// childSPIsByPeer lists the inbound SPIs of the Child SAs held with one remote identity.
func childSPIsByPeer(l lister, remoteID string) string {
	id := mustID(remoteID)
	var out []string
	for _, sa := range l.list() {
		if len(sa.IKE) == 0 || !sa.IKE[0].RemoteID.Equal(id) {
			continue
		}
		for _, c := range sa.Children {
			out = append(out, fmt.Sprintf("%#x", c.SPIIn))
		}
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}
