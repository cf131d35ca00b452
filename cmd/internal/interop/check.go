package interop

import (
	"fmt"
	"slices"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/charon"
)

// CheckAgree reports whether the initiator's and the responder's views agree on
// the single established IKE SA of connection conn and on its installed Child SAs
// (RFC 7296 §2.2 SPIs, §3.3 algorithms, §3.13 traffic selectors): same SPIs, one
// side the original initiator, same algorithms, each Child SA's inbound SPI the
// other's outbound, mirrored selectors, same encapsulation. It returns the two
// IKE SAs.
func CheckAgree(conn string, isas, rsas []charon.IKESA) (charon.IKESA, charon.IKESA, error) {
	i, err := onlyEstablished(conn, isas)
	if err != nil {
		return i, charon.IKESA{}, fmt.Errorf("initiator: %w", err)
	}
	r, err := onlyEstablished(conn, rsas)
	if err != nil {
		return i, r, fmt.Errorf("responder: %w", err)
	}
	if i.SPIi != r.SPIi || i.SPIr != r.SPIr {
		return i, r, fmt.Errorf("IKE SPIs differ: initiator %016x/%016x, responder %016x/%016x", i.SPIi, i.SPIr, r.SPIi, r.SPIr)
	}
	if i.SPIi == 0 || i.SPIr == 0 {
		return i, r, fmt.Errorf("zero IKE SPI %016x/%016x", i.SPIi, i.SPIr)
	}
	if i.Initiator == r.Initiator {
		return i, r, fmt.Errorf("both sides say initiator=%v", i.Initiator)
	}
	if a, b := algs(i), algs(r); a != b {
		return i, r, fmt.Errorf("IKE algorithms differ: %s vs %s", a, b)
	}
	ic, rc := installed(i), installed(r)
	if len(ic) != len(rc) {
		return i, r, fmt.Errorf("installed Child SAs: initiator %d, responder %d", len(ic), len(rc))
	}
	for _, c := range ic {
		idx := slices.IndexFunc(rc, func(o charon.ChildSA) bool { return o.SPIIn == c.SPIOut && o.SPIOut == c.SPIIn })
		if idx < 0 {
			return i, r, fmt.Errorf("child %s: no responder Child SA with SPIs %08x/%08x reversed", c, c.SPIIn, c.SPIOut)
		}
		o := rc[idx]
		if c.SPIIn == 0 || c.SPIOut == 0 {
			return i, r, fmt.Errorf("child %s: zero SPI", c)
		}
		if c.EncrAlg != o.EncrAlg || c.EncrKeysize != o.EncrKeysize || c.IntegAlg != o.IntegAlg || c.DHGroup != o.DHGroup {
			return i, r, fmt.Errorf("child algorithms differ: %s vs %s", c, o)
		}
		if !slices.Equal(c.LocalTS, o.RemoteTS) || !slices.Equal(c.RemoteTS, o.LocalTS) {
			return i, r, fmt.Errorf("traffic selectors not mirrored: %s vs %s", c, o)
		}
		if c.Encap != o.Encap || c.Mode != o.Mode || c.Protocol != o.Protocol {
			return i, r, fmt.Errorf("mode/protocol/encap differ: %s vs %s", c, o)
		}
	}
	return i, r, nil
}

func algs(s charon.IKESA) string {
	return fmt.Sprintf("%s-%d/%s/%s/%s", s.EncrAlg, s.EncrKeysize, s.IntegAlg, s.PRFAlg, s.DHGroup)
}

func installed(s charon.IKESA) []charon.ChildSA {
	var out []charon.ChildSA
	for _, c := range s.Children {
		if c.State == "INSTALLED" {
			out = append(out, c)
		}
	}
	return out
}

func onlyEstablished(conn string, sas []charon.IKESA) (charon.IKESA, error) {
	var found []charon.IKESA
	for _, s := range sas {
		if s.Conn == conn && s.State == "ESTABLISHED" {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		return charon.IKESA{}, fmt.Errorf("%d established IKE SAs of %s, want 1:\n%s", len(found), conn, charon.FormatSAs(sas))
	}
	return found[0], nil
}

// Settled is a WaitSAs condition: exactly one IKE SA of conn (IKE SAs not yet
// bound to a connection are ignored, and so are IKE SAs in state DELETING), ESTABLISHED, with
// exactly want Child SAs INSTALLED and none in transition (rekeying, deleting).
//
// A DELETING IKE SA is going: its DELETE is on the wire and nothing can bring it
// back. charon keeps the loser of an IKE rekey collision in DELETING for as long as
// it retransmits that DELETE, which on a loaded machine outlasts the wait (a flaky
// "2 IKE SAs of ab, want 1" in CI).
func Settled(conn string, want int) func([]charon.IKESA) error {
	return func(all []charon.IKESA) error {
		// Other connections' SAs (a half-open IKE SA a decoy made) do not count.
		var sas []charon.IKESA
		for _, s := range all {
			if s.Conn == conn && s.State != "DELETING" {
				sas = append(sas, s)
			}
		}
		if len(sas) != 1 {
			return fmt.Errorf("%d IKE SAs of %s, want 1", len(sas), conn)
		}
		s := sas[0]
		if s.Conn != conn || s.State != "ESTABLISHED" {
			return fmt.Errorf("IKE SA %s", s)
		}
		if n := len(installed(s)); n != want {
			return fmt.Errorf("%d Child SAs installed, want %d", n, want)
		}
		// Besides the installed ones, only Child SAs charon keeps for a few seconds
		// after a rekey (state DELETED, nothing left on the wire) may remain.
		for _, c := range s.Children {
			if c.State != "INSTALLED" && c.State != "DELETED" {
				return fmt.Errorf("child %s still in transition", c)
			}
		}
		return nil
	}
}

// NoSAs is a WaitSAs condition: the peer holds no IKE SA at all.
func NoSAs(sas []charon.IKESA) error {
	if len(sas) != 0 {
		return fmt.Errorf("%d IKE SAs, want none", len(sas))
	}
	return nil
}
