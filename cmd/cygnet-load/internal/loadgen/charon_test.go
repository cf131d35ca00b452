package loadgen

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/charon"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/netns"
)

// TestAgainstCharon runs a small load against strongSwan's charon (kernel-libipsec, so
// IKE floats to NAT-T: charon fakes a NAT) in a namespace pair: every IKE SA comes up
// with two Child SAs (one in IKE_AUTH, one by CREATE_CHILD_SA), charon holds them all,
// Child SA and IKE SA rekeys run against it, and after the delete phase charon holds
// nothing.
func TestAgainstCharon(t *testing.T) {
	const count = 40
	p := netns.NewPair(t)
	ch := charon.Start(t, "responder", p.B, charon.Options{
		CookieThreshold: 10000,
		Extra:           "  block_threshold = 10000\n  install_routes = no",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const psk = "cygnet-load against charon"
	if err := ch.LoadConn(ctx, charon.Conn{
		Name: "load", LocalAddrs: []string{p.B.Outer.Addr().String()},
		Proposals: []string{"aes256gcm16-prfsha256-x25519"},
		LocalID:   "responder.cygnet.test", RemoteID: "%any",
		Children: []charon.Child{{Name: "load", RemoteTS: []string{"10.128.0.0/9"}, ESPProposals: []string{"aes256gcm16"}}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := ch.LoadSharedIKE(ctx, "load", psk); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Target:  netip.AddrPortFrom(p.B.Outer.Addr(), 500),
		Sources: []netip.Addr{p.A.Outer.Addr()}, PortsPerAddr: 2, BasePort: 500,
		IKEProposals: "aes256gcm16-prfsha256-x25519", ESPProposals: "aes256gcm16",
		PSK: []byte(psk), RemoteID: "responder.cygnet.test",
		Children: 2, LocalTSPool: netip.MustParsePrefix("10.128.0.0/9"),
		Count: count, MaxInFlight: 8, Hold: 5 * time.Second,
		ChildRekey: 2 * time.Second, ChildLifeTime: time.Minute,
		IKERekey: 3 * time.Second, IKEOverTime: time.Minute,
		Delete: true, Duration: 60 * time.Second, DrainTimeout: 20 * time.Second,
		ListenUDP: func(network string, laddr *net.UDPAddr) (conn *net.UDPConn, err error) {
			if nsErr := p.A.Do(func() error {
				conn, err = net.ListenUDP(network, laddr)
				return err
			}); nsErr != nil {
				return nil, nsErr
			}
			return conn, err
		},
	}
	type result struct {
		rep *Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := Run(ctx, cfg)
		done <- result{rep, err}
	}()

	// While the IKE SAs are held, charon must list every one with both Child SAs.
	var held []charon.IKESA
	for {
		sas, err := ch.ListSAs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = charon.Established(sas)
		if len(held) == count && len(charon.Installed(held)) >= 2*count {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("charon holds %d established IKE SAs, %d installed Child SAs; want %d and %d:\n%s",
				len(held), len(charon.Installed(held)), count, 2*count, charon.FormatSAs(sas))
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !held[0].NATRemote && !held[0].NATFake && !held[0].NATLocal {
		t.Logf("charon saw no NAT (kernel-libipsec usually fakes one): %v", held[0])
	}

	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	rep := res.rep
	t.Logf("established %d, latency %+v, rekeys IKE %d Child %d, retransmits %d, losses %v, child failures %v",
		rep.Established, rep.Latency, rep.IKERekeys, rep.ChildRekeys, rep.Retransmits, rep.Losses, rep.ChildFailures)
	if rep.Established != count || rep.Failed != 0 {
		t.Fatalf("established %d failed %d (%v); want %d, 0", rep.Established, rep.Failed, rep.Failures, count)
	}
	if rep.ChildRekeys == 0 || rep.IKERekeys == 0 {
		t.Errorf("no rekeys against charon: IKE %d, Child %d", rep.IKERekeys, rep.ChildRekeys)
	}
	if rep.Deleted != count || rep.LeftUp != 0 {
		t.Errorf("deleted %d, %d IKE SAs left up; want %d, 0 (losses %v)", rep.Deleted, rep.LeftUp, count, rep.Losses)
	}
	sas, err := ch.ListSAs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sas) != 0 {
		t.Errorf("charon still holds %d IKE SAs after the delete phase:\n%s", len(sas), charon.FormatSAs(sas))
	}
}
