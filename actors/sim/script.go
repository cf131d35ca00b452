package sim

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/proposal"
)

// Script commands (one per line; the test files put the expected output after "----"):
//
//	seed N                       use seed N (first command only)
//	pair [ipv6] [key=value…]     nodes A (192.0.2.1) and B (192.0.2.2) with connection "ab"
//	                             and child "net" (198.51.100.1/32 <=> 203.0.113.1/32), or
//	                             2001:db8::1/2 with 2001:db8:a::/64 <=> 2001:db8:b::/64; keys:
//	                             ike esp dpd rekey overtime randtime child-rekey child-life
//	                             child-rand mode childless frag fragsize encap psk start
//	                             jitter tries timeout grace
//	conn NODE key=value…         change NODE's connection "ab" (same keys, plus id, remote-id,
//	                             psk-for=ID/KEY,… for one key per peer identity)
//	child NODE NAME local=CIDR remote=CIDR [esp= mode= start= rekey= life=]
//	                             add a child definition to NODE's "ab"
//	link SRC DST [loss= dup= reorder= delay= mtu=]
//	initiate NODE [CHILD]        Initiate (or InitiateChild) on NODE's current family,
//	                             creating an initiator family if it has none
//	initiate-new NODE [CHILD]    the same, always in a new initiator family
//	acquire NODE CHILD           a kernel acquire for CHILD
//	deliver [N|all]              deliver N datagrams in flight (default: until quiet)
//	drop [N]  dup  swap  tamper  lose, duplicate, reorder, corrupt the first in flight
//	tamper OCTET MASK            XOR octet OCTET of the first datagram in flight with MASK
//	hold  release                set the first datagram in flight aside / put it back first
//	advance DURATION             move the clock (timers, kernel lifetimes, auto delivery)
//	auto on|off                  automatic delivery by the network's schedule
//	defer-work on|off  run-work  hold Work effects / run them
//	run-work I…                  run pending works I… (1-based, show work order) in that
//	                             order; the others stay pending
//	show work                    the pending works, as FAMILY#TOKEN
//	fail-next-install NODE [N]   the next N Child SA installs on NODE fail
//	kill-child NODE CHILD        the child actor of NODE's installed CHILD dies
//	kill-family NODE             NODE's current family actor dies
//	rekey-child NODE CHILD  rekey-ike NODE  delete-child NODE CHILD  terminate NODE
//	cookies NODE on              NODE demands COOKIEs for new IKE SAs
//	show sas|kernel|wire|timers  both ends' SAs, kernel tables, datagrams in flight, and
//	                             each family's armed timer (relative to now)
//	check                        invariants (kernel vs Child SAs, message IDs, agreement)

// Exec runs one script command and returns its output ("ok" when it printed nothing).
func (w *World) Exec(line string) (string, error) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return "", nil
	}
	cmd, args := fields[0], fields[1:]
	var extra string
	err := w.exec(cmd, args, &extra)
	out := w.Output() + extra
	if err != nil {
		return strings.TrimRight(out, "\n"), err
	}
	out = strings.TrimRight(out, "\n")
	if out == "" {
		out = "ok"
	}
	return out, nil
}

func (w *World) exec(cmd string, args []string, extra *string) error {
	node := func() (*Node, error) {
		if len(args) == 0 {
			return nil, fmt.Errorf("%s: which node?", cmd)
		}
		n := w.Node(args[0])
		if n == nil {
			return nil, fmt.Errorf("%s: no node %q", cmd, args[0])
		}
		return n, nil
	}
	current := func() (*Node, *Family, error) {
		n, err := node()
		if err != nil {
			return nil, nil, err
		}
		live := n.Live()
		if len(live) == 0 {
			return n, nil, fmt.Errorf("%s: node %s has no live family", cmd, n.Name)
		}
		return n, live[len(live)-1], nil
	}
	childRef := func(fh *Family, name string) (ike.ChildRef, error) {
		for _, c := range fh.F.Snapshot().Children {
			if c.Name == name && c.State == ike.ChildStateUp {
				return c.Ref, nil
			}
		}
		return 0, fmt.Errorf("%s: %s has no installed child %q", cmd, fh.Name(), name)
	}
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	switch cmd {
	case "seed":
		// seed N: start over with another seed (nonces, SPIs, jitter all change). Only
		// before the first node exists.
		if len(w.Nodes) > 0 {
			return fmt.Errorf("seed: only before pair")
		}
		v, err := strconv.ParseUint(arg(0), 10, 64)
		if err != nil {
			return err
		}
		*w = *New(v)
		return nil
	case "pair":
		return w.setupPair(args)
	case "conn":
		n, err := node()
		if err != nil {
			return err
		}
		return applyConnOptions(n.Conns[0], args[1:])
	case "child":
		n, err := node()
		if err != nil || len(args) < 2 {
			return fmt.Errorf("child NODE NAME local=… remote=…: %v", err)
		}
		cc := ike.ChildConfig{Name: args[1], ESPProposals: n.Conns[0].Children[0].ESPProposals}
		if err := applyChildOptions(&cc, args[2:]); err != nil {
			return err
		}
		n.Conns[0].Children = append(n.Conns[0].Children, cc)
		return nil
	case "link":
		if len(args) < 2 {
			return fmt.Errorf("link SRC DST key=value…")
		}
		l := w.Net.link(args[0], args[1])
		for _, kv := range args[2:] {
			k, v, _ := strings.Cut(kv, "=")
			var err error
			switch k {
			case "loss":
				l.Loss, err = strconv.ParseFloat(v, 64)
			case "dup":
				l.Dup, err = strconv.ParseFloat(v, 64)
			case "reorder":
				l.Reorder, err = strconv.ParseFloat(v, 64)
			case "delay":
				l.Delay, err = time.ParseDuration(v)
			case "mtu":
				l.MTU, err = strconv.Atoi(v)
			default:
				err = fmt.Errorf("unknown link key %q", k)
			}
			if err != nil {
				return err
			}
		}
		w.Net.SetLink(args[0], args[1], l)
		return nil
	case "initiate", "acquire", "initiate-new":
		n, err := node()
		if err != nil {
			return err
		}
		var ev ike.Event = ike.Initiate{}
		if c := arg(1); c != "" {
			ev = ike.InitiateChild{Name: c}
			if cmd == "acquire" {
				ev = ike.Acquire{Name: c}
			}
		}
		if live := n.Live(); len(live) > 0 && cmd != "initiate-new" {
			live[len(live)-1].Feed(ev)
			return nil
		}
		_, err = n.Initiate(n.Conns[0].Name, ev)
		return err
	case "deliver":
		count := -1
		if a := arg(0); a != "" && a != "all" {
			c, err := strconv.Atoi(a)
			if err != nil {
				return fmt.Errorf("deliver: %v", err)
			}
			count = c
		}
		w.Deliver(count)
		return nil
	case "drop":
		count := 1
		if a := arg(0); a != "" {
			c, err := strconv.Atoi(a)
			if err != nil {
				return fmt.Errorf("drop: %v", err)
			}
			count = c
		}
		w.Drop(count)
		return nil
	case "dup":
		w.Dup()
		return nil
	case "hold":
		w.Hold()
		return nil
	case "release":
		w.Release()
		return nil
	case "swap":
		w.Swap()
		return nil
	case "tamper":
		if arg(0) == "" {
			w.Tamper()
			return nil
		}
		octet, err := strconv.Atoi(arg(0))
		if err != nil {
			return fmt.Errorf("tamper: %v", err)
		}
		mask, err := strconv.ParseUint(arg(1), 0, 8)
		if err != nil || mask == 0 {
			return fmt.Errorf("tamper OCTET MASK: mask %q must be 1..255", arg(1))
		}
		return w.TamperOctet(octet, byte(mask))
	case "advance":
		d, err := time.ParseDuration(arg(0))
		if err != nil {
			return fmt.Errorf("advance: %v", err)
		}
		w.Advance(d)
		return nil
	case "auto":
		w.AutoDeliver = arg(0) == "on"
		return nil
	case "defer-work":
		w.DeferWork = arg(0) == "on"
		return nil
	case "run-work":
		if len(args) == 0 {
			*extra = fmt.Sprintf("ran %d\n", w.RunWork())
			return nil
		}
		// run-work I…: the listed pending works (1-based, "show work" order), in
		// the order given; the others stay pending.
		names := w.PendingWork()
		var picked []string
		for _, a := range args {
			i, err := strconv.Atoi(a)
			if err != nil || i < 1 || i > len(names) || slices.Contains(picked, names[i-1]) {
				return fmt.Errorf("run-work: %q is not one of %d pending works", a, len(names))
			}
			picked = append(picked, names[i-1])
		}
		for _, name := range picked {
			w.RunWorkAt(slices.Index(w.PendingWork(), name))
		}
		*extra = fmt.Sprintf("ran %s\n", strings.Join(picked, " "))
		return nil
	case "fail-next-install":
		n, err := node()
		if err != nil {
			return err
		}
		count := 1
		if a := arg(1); a != "" {
			if count, err = strconv.Atoi(a); err != nil {
				return err
			}
		}
		n.failNext += count
		return nil
	case "kill-child", "rekey-child", "delete-child":
		_, fh, err := current()
		if err != nil {
			return err
		}
		ref, err := childRef(fh, arg(1))
		if err != nil {
			return err
		}
		switch cmd {
		case "kill-child":
			fh.Feed(ike.ChildDied{Ref: ref})
		case "rekey-child":
			fh.Feed(ike.RekeyChild{Ref: ref})
		default:
			fh.Feed(ike.DeleteChild{Ref: ref})
		}
		return nil
	case "kill-family":
		_, fh, err := current()
		if err != nil {
			return err
		}
		fh.Kill()
		return nil
	case "rekey-ike", "terminate":
		_, fh, err := current()
		if err != nil {
			return err
		}
		if cmd == "terminate" {
			fh.Feed(ike.Terminate{})
		} else {
			fh.Feed(ike.RekeyIKE{})
		}
		return nil
	case "answer-with":
		// answer-with NODE NOTIFY [N]: NODE's current family answers the next N requests
		// with the error notify alone (ike.Family.AnswerRequestsWith).
		_, fh, err := current()
		if err != nil {
			return err
		}
		t, ok := notifyByName(arg(1))
		if !ok {
			return fmt.Errorf("answer-with: unknown notify %q", arg(1))
		}
		count := 1
		if a := arg(2); a != "" {
			if count, err = strconv.Atoi(a); err != nil {
				return err
			}
		}
		fh.F.AnswerRequestsWith(t, count)
		return nil
	case "forge-init-notify":
		n, fh, err := current()
		if err != nil {
			return err
		}
		t, ok := notifyByName(arg(1))
		if !ok {
			return fmt.Errorf("forge-init-notify: unknown notify %q", arg(1))
		}
		return w.forgeInitNotify(n, fh, t)
	case "cookies":
		n, err := node()
		if err != nil {
			return err
		}
		n.Cookies = nil
		if arg(1) == "on" {
			n.Cookies = ike.NewCookies([]byte("sim cookie secret 0123456789abcdef"))
		}
		return nil
	case "show":
		switch arg(0) {
		case "sas":
			*extra = w.ShowSAs()
		case "kernel":
			*extra = w.ShowKernel()
		case "wire":
			*extra = w.ShowWire()
		case "timers":
			*extra = w.ShowTimers()
		case "work":
			*extra = "pending work: " + strings.Join(w.PendingWork(), " ") + "\n"
		default:
			return fmt.Errorf("show sas|kernel|wire|timers|work")
		}
		return nil
	case "check":
		if v := w.Check(); len(v) > 0 {
			*extra = "VIOLATIONS:\n" + strings.Join(v, "\n") + "\n"
		} else {
			*extra = "invariants hold\n"
		}
		return nil
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// notifyByName finds a notify type by its RFC name.
func notifyByName(name string) (wire.NotifyType, bool) {
	for t := wire.NotifyType(1); t < 50000; t++ {
		if t.String() == name {
			return t, true
		}
	}
	return 0, false
}

// forgeInitNotify puts an unprotected IKE_SA_INIT response carrying only the notify t
// at the head of the datagrams in flight, as an off-path attacker (or a real peer's
// refusal) would send it to n's half-open IKE SA.
func (w *World) forgeInitNotify(n *Node, fh *Family, t wire.NotifyType) error {
	s := fh.F.Snapshot()
	if len(s.IKE) == 0 {
		return fmt.Errorf("forge-init-notify: %s has no IKE SA", fh.Name())
	}
	sa := s.IKE[0]
	var data []byte
	if t == wire.NotifyInvalidKEPayload {
		data = []byte{0, byte(wire.KEECP256)}
	}
	if t == wire.NotifyCookie {
		data = []byte("forged cookie 0123")
	}
	msg := &wire.Message{
		Header:   wire.Header{SPIi: uint64(sa.SPIi), Exchange: wire.ExchangeIKESAInit, Flags: wire.FlagResponse},
		Payloads: []wire.Payload{wire.NewNotify(t, data)},
	}
	b, err := msg.AppendTo(nil)
	if err != nil {
		return err
	}
	peer := w.nodeByAddr(sa.Remote.Addr())
	if peer == nil {
		return fmt.Errorf("forge-init-notify: no node at %v", sa.Remote.Addr())
	}
	w.Net.nextID++
	d := &Datagram{ID: w.Net.nextID, From: sa.Remote, To: sa.Local, Data: b, Src: peer.Name + "(forged)", Dst: n.Name,
		Summary: fmt.Sprintf("#%d IKE_SA_INIT response 0 [ N(%v) ]", w.Net.nextID, t), DeliverAt: w.Now}
	w.Net.InFlight = slices.Insert(w.Net.InFlight, 0, d)
	return nil
}

// ShowWire lists the datagrams in flight.
func (w *World) ShowWire() string {
	if len(w.Net.InFlight) == 0 {
		return "nothing in flight\n"
	}
	var b strings.Builder
	for i, d := range w.Net.InFlight {
		fmt.Fprintf(&b, "%d: %s→%s %s\n", i+1, d.Src, d.Dst, d.Summary)
	}
	return b.String()
}

// Default addresses of the pair.
var (
	AddrA  = netip.MustParseAddr("192.0.2.1")
	AddrB  = netip.MustParseAddr("192.0.2.2")
	InnerA = netip.MustParsePrefix("198.51.100.1/32")
	InnerB = netip.MustParsePrefix("203.0.113.1/32")
)

// DefaultPSK is the pair's pre-shared key.
const DefaultPSK = "sim-psk-0123456789abcdef"

// NewPair returns a world with nodes A and B configured for each other (connection
// "ab", child "net"), as the "pair" command makes them.
func NewPair(seed uint64) *World {
	w := New(seed)
	if err := w.setupPair(nil); err != nil {
		panic(err)
	}
	return w
}

func (w *World) setupPair(args []string) error {
	addrA, addrB, innerA, innerB := AddrA, AddrB, InnerA, InnerB
	if len(args) > 0 && args[0] == "ipv6" {
		args = args[1:]
		addrA, addrB = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
		innerA, innerB = netip.MustParsePrefix("2001:db8:a::/64"), netip.MustParsePrefix("2001:db8:b::/64")
	}
	a, b := w.AddNode("A", addrA), w.AddNode("B", addrB)
	mk := func(local, remote netip.Addr, lnet, rnet netip.Prefix) *ike.Connection {
		return &ike.Connection{
			Name: "ab", LocalAddrs: []netip.Addr{local}, RemoteAddrs: []netip.Addr{remote},
			Proposals: mustParse(wire.ProtoIKE, "aes256gcm16-prfsha256-x25519"),
			Local:     ike.AuthConfig{ID: ike.IdentityFromAddr(local)},
			Remote:    ike.AuthConfig{ID: ike.IdentityFromAddr(remote)},
			PSK:       ike.Secret(DefaultPSK),
			Children: []ike.ChildConfig{{
				Name: "net", LocalTS: []ike.TrafficSelector{ike.TSFromPrefix(lnet)}, RemoteTS: []ike.TrafficSelector{ike.TSFromPrefix(rnet)},
				ESPProposals: mustParse(wire.ProtoESP, "aes256gcm16"),
			}},
		}
	}
	a.Conns = []*ike.Connection{mk(addrA, addrB, innerA, innerB)}
	b.Conns = []*ike.Connection{mk(addrB, addrA, innerB, innerA)}
	for _, n := range []*Node{a, b} {
		if err := applyConnOptions(n.Conns[0], args); err != nil {
			return err
		}
	}
	return nil
}

func mustParse(p wire.ProtocolID, s string) []wire.Proposal {
	props, err := proposal.Parse(p, s)
	if err != nil {
		panic(err)
	}
	return props
}

func applyConnOptions(c *ike.Connection, args []string) error {
	for _, kv := range args {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			v = "yes"
		}
		var err error
		dur := func(d *time.Duration) { *d, err = time.ParseDuration(v) }
		num := func(n *int) { *n, err = strconv.Atoi(v) }
		eachChild := func(f func(*ike.ChildConfig)) {
			for i := range c.Children {
				f(&c.Children[i])
			}
		}
		switch k {
		case "ike":
			c.Proposals, err = proposal.Parse(wire.ProtoIKE, v)
		case "esp":
			var props []wire.Proposal
			props, err = proposal.Parse(wire.ProtoESP, v)
			eachChild(func(cc *ike.ChildConfig) { cc.ESPProposals = props })
		case "dpd":
			dur(&c.DPDDelay)
		case "rekey":
			dur(&c.RekeyTime)
		case "overtime":
			dur(&c.OverTime)
		case "randtime":
			dur(&c.RandTime)
		case "grace":
			dur(&c.InitGrace)
		case "timeout":
			dur(&c.Retransmit.Timeout)
		case "tries":
			num(&c.Retransmit.Tries)
		case "jitter":
			num(&c.Retransmit.Jitter)
		case "fragsize":
			num(&c.FragmentSize)
		case "frag":
			c.Fragmentation = ike.FragmentationYes
			if v == "no" {
				c.Fragmentation = ike.FragmentationNo
			}
		case "encap":
			c.Encap = v == "yes"
		case "psk":
			c.PSK = ike.Secret(v)
		case "psk-for":
			// psk-for=ID/KEY,ID/KEY: one key per peer identity (Connection.PSKFor).
			keys := map[string]ike.Secret{}
			for _, e := range strings.Split(v, ",") {
				id, key, ok := strings.Cut(e, "/")
				var pid ike.Identity
				if pid, err = ike.ParseIdentity(id); err != nil || !ok {
					err = fmt.Errorf("psk-for entry %q: want ID/KEY (%v)", e, err)
					break
				}
				keys[pid.String()] = ike.Secret(key)
			}
			c.PSK = nil
			c.PSKFor = func(_, remote ike.Identity) (ike.Secret, bool) {
				k, ok := keys[remote.String()]
				return k, ok
			}
		case "local-addrs":
			c.LocalAddrs = nil
			if v != "none" {
				var a netip.Addr
				a, err = netip.ParseAddr(v)
				c.LocalAddrs = []netip.Addr{a}
			}
		case "id":
			c.Local.ID, err = ike.ParseIdentity(v)
		case "remote-id":
			c.Remote.ID, err = ike.ParseIdentity(v)
		case "childless":
			switch v {
			case "allow":
				c.Childless = ike.ChildlessAllow
			case "force":
				c.Childless = ike.ChildlessForce
			case "never":
				c.Childless = ike.ChildlessNever
			default:
				err = fmt.Errorf("childless=%s", v)
			}
		case "child-rekey", "child-life", "child-rand", "mode", "start":
			eachChild(func(cc *ike.ChildConfig) {
				if e := applyChildOptions(cc, []string{strings.TrimPrefix(kv, "child-")}); e != nil {
					err = e
				}
			})
		default:
			err = fmt.Errorf("unknown connection key %q", k)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", kv, err)
		}
	}
	return nil
}

func applyChildOptions(cc *ike.ChildConfig, args []string) error {
	for _, kv := range args {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		parseTS := func() []ike.TrafficSelector {
			var out []ike.TrafficSelector
			for _, s := range strings.Split(v, ",") {
				p, e := netip.ParsePrefix(s)
				if e != nil {
					err = e
					return nil
				}
				out = append(out, ike.TSFromPrefix(p))
			}
			return out
		}
		switch k {
		case "local":
			cc.LocalTS = parseTS()
		case "remote":
			cc.RemoteTS = parseTS()
		case "esp":
			cc.ESPProposals, err = proposal.Parse(wire.ProtoESP, v)
		case "mode":
			cc.Mode = ike.ModeTunnel
			if v == "transport" {
				cc.Mode = ike.ModeTransport
			}
		case "start":
			i := slices.Index([]string{"none", "start", "trap"}, v)
			if i < 0 {
				err = fmt.Errorf("start=%s", v)
			}
			cc.StartAction = ike.Action(i)
		case "rekey":
			cc.RekeyTime, err = time.ParseDuration(v)
		case "life":
			cc.LifeTime, err = time.ParseDuration(v)
		case "rand":
			cc.RandTime, err = time.ParseDuration(v)
		default:
			err = fmt.Errorf("unknown child key %q", k)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", kv, err)
		}
	}
	return nil
}
