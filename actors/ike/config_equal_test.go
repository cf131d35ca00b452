package ike_test

import (
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/wire"
)

func TestConnectionEqualTable(t *testing.T) {
	base := func() *ike.Connection {
		return &ike.Connection{
			Name:        "site",
			RemoteAddrs: []netip.Addr{netip.MustParseAddr("198.51.100.1")},
			Proposals: []wire.Proposal{{Num: 1, Protocol: wire.ProtoIKE, Transforms: []wire.Transform{
				{Type: 1, ID: 12, KeyLength: 128}, {Type: 2, ID: 5}}}},
			Local:  ike.AuthConfig{ID: ike.Identity{Type: ike.IDFQDN, Data: []byte("a")}},
			Remote: ike.AuthConfig{ID: ike.Identity{Type: ike.IDFQDN, Data: []byte("b")}},
			PSK:    ike.Secret("k"),
			Children: []ike.ChildConfig{
				{Name: "c1", LocalTS: []ike.TrafficSelector{ike.TSFromPrefix(netip.MustParsePrefix("10.0.0.0/24"))}},
				{Name: "c2"},
			},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(c *ike.Connection)
		equal  bool
	}{
		{"same", func(*ike.Connection) {}, true},
		{"defaulted copy", func(c *ike.Connection) { *c = c.WithDefaults() }, true},
		{"defaulted twice", func(c *ike.Connection) { *c = c.WithDefaults().WithDefaults() }, true},
		{"explicit defaults", func(c *ike.Connection) {
			c.Version, c.LocalPort, c.RemotePort = 2, ike.DefaultIKEPort, ike.DefaultIKEPort
			c.RekeyTime, c.OverTime, c.RandTime = ike.DefaultIKERekeyTime, ike.DefaultIKERekeyTime/10, ike.DefaultIKERekeyTime/10
			c.Retransmit = ike.Retransmit{Timeout: ike.DefaultRetransmitTimeout, Base: ike.DefaultRetransmitBase,
				Tries: ike.DefaultRetransmitTries, Jitter: ike.DefaultRetransmitJitter}
			c.Children[1].RekeyTime, c.Children[1].ReplayWindow = ike.DefaultChildRekeyTime, ike.DefaultReplayWindow
		}, true},
		{"PSKFor set", func(c *ike.Connection) {
			c.PSKFor = func(_, _ ike.Identity) (ike.Secret, bool) { return nil, false }
		}, true},
		{"nil and empty slices", func(c *ike.Connection) {
			c.LocalAddrs = []netip.Addr{}
			c.Children[1].RemoteTS = []ike.TrafficSelector{}
		}, true},
		{"ReauthTime as RekeyTime", func(c *ike.Connection) { c.ReauthTime = time.Hour }, false},
		{"PSK", func(c *ike.Connection) { c.PSK = ike.Secret("other") }, false},
		{"children swapped", func(c *ike.Connection) { c.Children[0], c.Children[1] = c.Children[1], c.Children[0] }, false},
		{"child dropped", func(c *ike.Connection) { c.Children = c.Children[:1] }, false},
		{"transforms swapped", func(c *ike.Connection) {
			tr := c.Proposals[0].Transforms
			tr[0], tr[1] = tr[1], tr[0]
		}, false},
		{"key length", func(c *ike.Connection) { c.Proposals[0].Transforms[0].KeyLength = 256 }, false},
		{"remote identity", func(c *ike.Connection) { c.Remote.ID.Data = []byte("c") }, false},
		{"rekey never", func(c *ike.Connection) { c.RekeyTime = ike.Never }, false},
		{"child rekey never", func(c *ike.Connection) { c.Children[1].RekeyTime = ike.Never }, false},
		{"child TS", func(c *ike.Connection) {
			c.Children[0].LocalTS[0] = ike.TSFromPrefix(netip.MustParsePrefix("10.0.1.0/24"))
		}, false},
	} {
		a, b := base(), base()
		tc.change(b)
		if got := a.Equal(b); got != tc.equal {
			t.Errorf("%s: a.Equal(b) = %v, want %v", tc.name, got, tc.equal)
		}
		if got := b.Equal(a); got != tc.equal {
			t.Errorf("%s: b.Equal(a) = %v, want %v", tc.name, got, tc.equal)
		}
	}
	var nilConn *ike.Connection
	if !nilConn.Equal(nil) || nilConn.Equal(base()) || base().Equal(nil) {
		t.Error("nil connections: want nil == nil only")
	}
}

// connMutators change one field of a connection to a value that still differs after
// WithDefaults (never to zero, which would take the default again). Keyed by field name,
// so that TestConnectionEqualCoversEveryField notices a field added to Connection.
var connMutators = map[string]func(t *rapid.T, c *ike.Connection){
	"Name":        func(_ *rapid.T, c *ike.Connection) { c.Name += "x" },
	"Version":     func(_ *rapid.T, c *ike.Connection) { c.Version++ },
	"LocalAddrs":  func(t *rapid.T, c *ike.Connection) { c.LocalAddrs = append(c.LocalAddrs, genAddr(t)) },
	"RemoteAddrs": func(t *rapid.T, c *ike.Connection) { c.RemoteAddrs = append(c.RemoteAddrs, genAddr(t)) },
	"LocalPort":   func(_ *rapid.T, c *ike.Connection) { c.LocalPort = nonzero16(c.LocalPort) },
	"RemotePort":  func(_ *rapid.T, c *ike.Connection) { c.RemotePort = nonzero16(c.RemotePort) },
	"Proposals":   func(t *rapid.T, c *ike.Connection) { c.Proposals = mutateProposals(t, c.Proposals) },
	"Local":       func(t *rapid.T, c *ike.Connection) { mutateAuth(t, &c.Local) },
	"Remote":      func(t *rapid.T, c *ike.Connection) { mutateAuth(t, &c.Remote) },
	"PSK":         func(_ *rapid.T, c *ike.Connection) { c.PSK = append(c.PSK, 'x') },
	"Children": func(t *rapid.T, c *ike.Connection) {
		if len(c.Children) == 0 || rapid.Bool().Draw(t, "add child") {
			c.Children = append(c.Children, genChild(t))
			return
		}
		i := rapid.IntRange(0, len(c.Children)-1).Draw(t, "child")
		if rapid.Bool().Draw(t, "drop child") {
			c.Children = slices.Delete(c.Children, i, i+1)
			return
		}
		f := rapid.SampledFrom(sortedKeys(childMutators)).Draw(t, "child field")
		childMutators[f](t, &c.Children[i])
	},
	"DPDDelay":      func(t *rapid.T, c *ike.Connection) { c.DPDDelay = otherDuration(t, c.DPDDelay, false) },
	"RekeyTime":     func(t *rapid.T, c *ike.Connection) { c.RekeyTime = otherDuration(t, c.RekeyTime, true) },
	"OverTime":      func(t *rapid.T, c *ike.Connection) { c.OverTime = otherDuration(t, c.OverTime, false) },
	"RandTime":      func(t *rapid.T, c *ike.Connection) { c.RandTime = otherDuration(t, c.RandTime, false) },
	"ReauthTime":    func(t *rapid.T, c *ike.Connection) { c.ReauthTime = otherDuration(t, c.ReauthTime, false) },
	"Fragmentation": func(_ *rapid.T, c *ike.Connection) { c.Fragmentation ^= 1 },
	"FragmentSize":  func(_ *rapid.T, c *ike.Connection) { c.FragmentSize++ },
	"Encap":         func(_ *rapid.T, c *ike.Connection) { c.Encap = !c.Encap },
	"Childless":     func(_ *rapid.T, c *ike.Connection) { c.Childless = (c.Childless + 1) % 3 },
	"Retransmit": func(t *rapid.T, c *ike.Connection) {
		switch rapid.IntRange(0, 3).Draw(t, "retransmit field") {
		case 0:
			c.Retransmit.Timeout = otherDuration(t, c.Retransmit.Timeout, false)
		case 1:
			c.Retransmit.Base += 0.5
		case 2:
			c.Retransmit.Tries++
			if c.Retransmit.Tries == 0 {
				c.Retransmit.Tries++
			}
		case 3:
			c.Retransmit.Jitter++
			if c.Retransmit.Jitter == 0 {
				c.Retransmit.Jitter++
			}
		}
	},
	"InitGrace":       func(t *rapid.T, c *ike.Connection) { c.InitGrace = otherDuration(t, c.InitGrace, false) },
	"HalfOpenTimeout": func(t *rapid.T, c *ike.Connection) { c.HalfOpenTimeout = otherDuration(t, c.HalfOpenTimeout, false) },
}

var childMutators = map[string]func(t *rapid.T, c *ike.ChildConfig){
	"Name":         func(_ *rapid.T, c *ike.ChildConfig) { c.Name += "x" },
	"LocalTS":      func(t *rapid.T, c *ike.ChildConfig) { c.LocalTS = append(c.LocalTS, genTS(t)) },
	"RemoteTS":     func(t *rapid.T, c *ike.ChildConfig) { c.RemoteTS = append(c.RemoteTS, genTS(t)) },
	"ESPProposals": func(t *rapid.T, c *ike.ChildConfig) { c.ESPProposals = mutateProposals(t, c.ESPProposals) },
	"Mode":         func(_ *rapid.T, c *ike.ChildConfig) { c.Mode ^= 1 },
	"StartAction":  func(_ *rapid.T, c *ike.ChildConfig) { c.StartAction = (c.StartAction + 1) % 3 },
	"DPDAction":    func(_ *rapid.T, c *ike.ChildConfig) { c.DPDAction = (c.DPDAction + 1) % 3 },
	"CloseAction":  func(_ *rapid.T, c *ike.ChildConfig) { c.CloseAction = (c.CloseAction + 1) % 3 },
	"RekeyTime":    func(t *rapid.T, c *ike.ChildConfig) { c.RekeyTime = otherDuration(t, c.RekeyTime, true) },
	"LifeTime":     func(t *rapid.T, c *ike.ChildConfig) { c.LifeTime = otherDuration(t, c.LifeTime, false) },
	"RandTime":     func(t *rapid.T, c *ike.ChildConfig) { c.RandTime = otherDuration(t, c.RandTime, false) },
	"RekeyBytes":   func(_ *rapid.T, c *ike.ChildConfig) { c.RekeyBytes++ },
	"LifeBytes":    func(_ *rapid.T, c *ike.ChildConfig) { c.LifeBytes++ },
	"RandBytes":    func(_ *rapid.T, c *ike.ChildConfig) { c.RandBytes++ },
	"RekeyPackets": func(_ *rapid.T, c *ike.ChildConfig) { c.RekeyPackets++ },
	"LifePackets":  func(_ *rapid.T, c *ike.ChildConfig) { c.LifePackets++ },
	"RandPackets":  func(_ *rapid.T, c *ike.ChildConfig) { c.RandPackets++ },
	"ReplayWindow": func(_ *rapid.T, c *ike.ChildConfig) { c.ReplayWindow++ },
}

// TestConnectionEqualCoversEveryField fails when a field is added to Connection or
// ChildConfig without a mutator here (and, most likely, without a line in Equal).
func TestConnectionEqualCoversEveryField(t *testing.T) {
	check := func(typ reflect.Type, have []string, skip ...string) {
		var want []string
		for f := range typ.Fields() {
			if f.IsExported() && !slices.Contains(skip, f.Name) {
				want = append(want, f.Name)
			}
		}
		sort.Strings(want)
		if !slices.Equal(want, have) {
			t.Errorf("%v: fields %v, mutators %v: compare the new field in Equal and add a mutator", typ, want, have)
		}
	}
	check(reflect.TypeFor[ike.Connection](), sortedKeys(connMutators), "PSKFor")
	check(reflect.TypeFor[ike.ChildConfig](), sortedKeys(childMutators))
}

// TestConnectionEqualProperty: a connection equals its WithDefaults (and a copy of
// either with another PSKFor), and differs from any single-field change of it.
func TestConnectionEqualProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genConnection(t)
		d := c.WithDefaults()
		if !c.Equal(&d) || !d.Equal(c) {
			t.Fatalf("connection differs from its WithDefaults:\n%+v\n%+v", *c, d)
		}
		e := cloneConnection(c)
		e.PSKFor = func(_, _ ike.Identity) (ike.Secret, bool) { return ike.Secret("x"), true }
		if !c.Equal(e) || !e.Equal(&d) {
			t.Fatal("PSKFor changed equality")
		}
		// Mutate the raw or the defaulted form: both must differ from c.
		from := c
		if rapid.Bool().Draw(t, "mutate defaulted") {
			from = &d
		}
		m := cloneConnection(from)
		field := rapid.SampledFrom(sortedKeys(connMutators)).Draw(t, "field")
		connMutators[field](t, m)
		if c.Equal(m) || m.Equal(c) || d.Equal(m) {
			t.Fatalf("change of %s not seen:\n%+v\n%+v", field, *from, *m)
		}
	})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// otherDuration is a duration different from d that is not 0 (which WithDefaults would
// replace): Never (only for a RekeyTime: Never means nothing elsewhere, and an OverTime
// of Never makes the default RandTime Never too), or a positive value other than d. The odd nanosecond keeps it apart
// from every default, which are all multiples of a millisecond here (a field that was
// zero and is now set must not happen to equal the default it had).
func otherDuration(t *rapid.T, d time.Duration, never bool) time.Duration {
	if never && d >= 0 && rapid.Bool().Draw(t, "never") {
		return ike.Never
	}
	n := time.Duration(rapid.IntRange(1, 1000).Draw(t, "seconds"))*time.Second + time.Nanosecond
	if d > 0 {
		return d + n
	}
	return n
}

func nonzero16(v uint16) uint16 {
	if v == 0xffff {
		return 1
	}
	return v + 1
}

func genAddr(t *rapid.T) netip.Addr {
	return netip.AddrFrom4([4]byte{203, 0, 113, rapid.Byte().Draw(t, "addr")})
}

func genTS(t *rapid.T) ike.TrafficSelector {
	bits := rapid.IntRange(8, 32).Draw(t, "ts bits")
	return ike.TSFromPrefix(netip.PrefixFrom(genAddr(t), bits))
}

func genProposal(t *rapid.T, proto wire.ProtocolID) wire.Proposal {
	n := rapid.IntRange(1, 4).Draw(t, "transforms")
	p := wire.Proposal{Num: 1, Protocol: proto}
	for range n {
		p.Transforms = append(p.Transforms, wire.Transform{
			Type:      wire.TransformType(rapid.IntRange(1, 5).Draw(t, "transform type")),
			ID:        wire.TransformID(rapid.IntRange(1, 40).Draw(t, "transform id")),
			KeyLength: uint16(rapid.SampledFrom([]int{0, 128, 256}).Draw(t, "key length")),
		})
	}
	return p
}

func mutateProposals(t *rapid.T, ps []wire.Proposal) []wire.Proposal {
	if len(ps) == 0 || rapid.Bool().Draw(t, "add proposal") {
		return append(ps, genProposal(t, wire.ProtoESP))
	}
	i := rapid.IntRange(0, len(ps)-1).Draw(t, "proposal")
	p := &ps[i]
	switch rapid.IntRange(0, 3).Draw(t, "proposal field") {
	case 0:
		p.Num++
	case 1:
		p.Protocol++
	case 2:
		p.SPI = append(p.SPI, 1)
	case 3:
		if len(p.Transforms) == 0 {
			p.Transforms = append(p.Transforms, wire.Transform{Type: 1, ID: 1})
		} else {
			p.Transforms[rapid.IntRange(0, len(p.Transforms)-1).Draw(t, "transform")].KeyLength++
		}
	}
	return ps
}

func mutateAuth(t *rapid.T, a *ike.AuthConfig) {
	switch rapid.IntRange(0, 2).Draw(t, "auth field") {
	case 0:
		a.ID.Type++
	case 1:
		a.ID.Data = append(a.ID.Data, 'x')
	case 2:
		a.Auth++
	}
}

// genDuration is often zero (take the default), sometimes Never (if never), else a
// positive value.
func genDuration(t *rapid.T, label string, never bool) time.Duration {
	switch rapid.IntRange(0, 3).Draw(t, label) {
	case 0, 1:
		return 0
	case 2:
		if never {
			return ike.Never
		}
	}
	return time.Duration(rapid.IntRange(1, 100000).Draw(t, label+" s")) * time.Second
}

func genChild(t *rapid.T) ike.ChildConfig {
	c := ike.ChildConfig{
		Name:         rapid.StringMatching(`[a-z]{0,4}`).Draw(t, "child name"),
		Mode:         ike.Mode(rapid.IntRange(0, 1).Draw(t, "mode")),
		StartAction:  ike.Action(rapid.IntRange(0, 2).Draw(t, "start")),
		RekeyTime:    genDuration(t, "child rekey", true),
		LifeTime:     genDuration(t, "child life", false),
		RekeyBytes:   rapid.SampledFrom([]uint64{0, 0, 1 << 20}).Draw(t, "rekey bytes"),
		RekeyPackets: rapid.SampledFrom([]uint64{0, 0, 1000}).Draw(t, "rekey packets"),
		ReplayWindow: rapid.SampledFrom([]uint32{0, 0, 64}).Draw(t, "replay window"),
	}
	for range rapid.IntRange(0, 2).Draw(t, "local ts") {
		c.LocalTS = append(c.LocalTS, genTS(t))
	}
	for range rapid.IntRange(0, 2).Draw(t, "esp proposals") {
		c.ESPProposals = append(c.ESPProposals, genProposal(t, wire.ProtoESP))
	}
	return c
}

func genConnection(t *rapid.T) *ike.Connection {
	c := &ike.Connection{
		Name:       rapid.StringMatching(`[a-z]{0,6}`).Draw(t, "name"),
		Version:    rapid.SampledFrom([]int{0, 2}).Draw(t, "version"),
		LocalPort:  rapid.SampledFrom([]uint16{0, 500, 4500}).Draw(t, "local port"),
		RemotePort: rapid.SampledFrom([]uint16{0, 500, 4500}).Draw(t, "remote port"),
		Local:      ike.AuthConfig{ID: ike.Identity{Type: ike.IDFQDN, Data: []byte(rapid.StringMatching(`[a-z]{1,4}`).Draw(t, "local id"))}},
		Remote:     ike.AuthConfig{ID: ike.Identity{Type: ike.IDAny}},
		PSK:        ike.Secret(rapid.StringMatching(`[a-z]{0,4}`).Draw(t, "psk")),
		DPDDelay:   genDuration(t, "dpd", false),
		RekeyTime:  genDuration(t, "rekey", true),
		OverTime:   genDuration(t, "over", false),
		ReauthTime: genDuration(t, "reauth", false),
		Encap:      rapid.Bool().Draw(t, "encap"),
		Retransmit: ike.Retransmit{Tries: rapid.IntRange(0, 7).Draw(t, "tries"), Jitter: rapid.IntRange(-1, 20).Draw(t, "jitter")},
	}
	for range rapid.IntRange(0, 2).Draw(t, "remote addrs") {
		c.RemoteAddrs = append(c.RemoteAddrs, genAddr(t))
	}
	for range rapid.IntRange(0, 2).Draw(t, "proposals") {
		c.Proposals = append(c.Proposals, genProposal(t, wire.ProtoIKE))
	}
	for range rapid.IntRange(0, 3).Draw(t, "children") {
		c.Children = append(c.Children, genChild(t))
	}
	return c
}

// cloneConnection copies c deeply enough that a mutator changes only the copy.
func cloneConnection(c *ike.Connection) *ike.Connection {
	d := *c
	d.LocalAddrs = slices.Clone(c.LocalAddrs)
	d.RemoteAddrs = slices.Clone(c.RemoteAddrs)
	d.Proposals = cloneProposals(c.Proposals)
	d.Local.ID.Data = slices.Clone(c.Local.ID.Data)
	d.Remote.ID.Data = slices.Clone(c.Remote.ID.Data)
	d.PSK = slices.Clone(c.PSK)
	d.Children = slices.Clone(c.Children)
	for i := range d.Children {
		ch := &d.Children[i]
		ch.LocalTS = slices.Clone(ch.LocalTS)
		ch.RemoteTS = slices.Clone(ch.RemoteTS)
		ch.ESPProposals = cloneProposals(ch.ESPProposals)
	}
	return &d
}

func cloneProposals(ps []wire.Proposal) []wire.Proposal {
	ps = slices.Clone(ps)
	for i := range ps {
		ps[i].SPI = slices.Clone(ps[i].SPI)
		ps[i].Transforms = slices.Clone(ps[i].Transforms)
	}
	return ps
}
