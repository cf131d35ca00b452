package actors

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/cygnet-ipsec/cygnet/actors/ike"
	"github.com/cygnet-ipsec/cygnet/kernel"
)

// Trap policies (swanctl start_action = trap): an outbound policy per child whose
// template has no SA, so that matching traffic makes the kernel send an acquire
// (kernel.EventAcquire) and the manager initiates the child. When the Child SA is
// installed, its outbound policy replaces the trap (same direction and selector, the
// Child SA's reqid); when the last Child SA of that lineage goes, the trap is put back.

// trapFamily owns the trap policies in the kernel's owner index.
const trapFamily kernel.FamilyID = 1 << 62

type trap struct {
	conn, child string
	policy      kernel.Policy // outbound
}

// policiesFor implements policyOwner: a trap has its outbound policy only.
func (t *trap) policiesFor(out kernel.Selector) []kernel.Policy {
	if out != t.policy.Selector {
		return nil
	}
	return []kernel.Policy{t.policy}
}

// trapTable is shared by the manager (acquire lookups), the child actors (replacing a
// trap and restoring it) and the API (installing traps).
type trapTable struct {
	t        *tree
	pt       *policyTable
	mu       sync.RWMutex
	byReqid  map[kernel.Reqid]*trap
	byPolicy map[kernel.PolicyID]*trap
}

func newTrapTable() *trapTable {
	return &trapTable{byReqid: map[kernel.Reqid]*trap{}, byPolicy: map[kernel.PolicyID]*trap{}}
}

// bind gives the table the tree whose policy table holds the traps.
func (tt *trapTable) bind(t *tree) { tt.t, tt.pt = t, t.policies }

func (tt *trapTable) lookup(r kernel.Reqid) (trap, bool) {
	tt.mu.RLock()
	defer tt.mu.RUnlock()
	t, ok := tt.byReqid[r]
	if !ok {
		return trap{}, false
	}
	return *t, true
}

// install puts the trap policies of every trap child of conns into the kernel.
func (tt *trapTable) install(conns []*ike.Connection) error {
	var errs []error
	for _, c := range conns {
		cd := c.WithDefaults()
		if len(cd.LocalAddrs) == 0 || len(cd.RemoteAddrs) == 0 {
			continue
		}
		local, remote := cd.LocalAddrs[0].Unmap(), cd.RemoteAddrs[0].Unmap()
		for _, ch := range cd.Children {
			if ch.StartAction != ike.ActionTrap {
				continue
			}
			if err := tt.installChild(cd.Name, &ch, local, remote); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (tt *trapTable) installChild(conn string, ch *ike.ChildConfig, local, remote netip.Addr) error {
	reqid, err := tt.t.kernel.AllocReqid()
	if err != nil {
		return fmt.Errorf("trap %s/%s: %w", conn, ch.Name, err)
	}
	lts, rts := ch.LocalTS, ch.RemoteTS
	if len(lts) == 0 {
		lts = []ike.TrafficSelector{ike.TSFromPrefix(netip.PrefixFrom(local, local.BitLen()))}
	}
	if len(rts) == 0 {
		rts = []ike.TrafficSelector{ike.TSFromPrefix(netip.PrefixFrom(remote, remote.BitLen()))}
	}
	mode := kernel.ModeTunnel
	if ch.Mode == ike.ModeTransport {
		mode = kernel.ModeTransport
	}
	for _, l := range lts {
		ls, err := tsSelectors(l)
		if err != nil {
			return fmt.Errorf("trap %s/%s: %w", conn, ch.Name, err)
		}
		for _, r := range rts {
			rs, err := tsSelectors(r)
			if err != nil {
				return fmt.Errorf("trap %s/%s: %w", conn, ch.Name, err)
			}
			for _, a := range ls {
				for _, b := range rs {
					if a.prefix.Addr().Is4() != b.prefix.Addr().Is4() {
						continue
					}
					proto := max(a.proto, b.proto)
					tmpl := kernel.Template{Mode: mode, Reqid: reqid}
					if mode == kernel.ModeTunnel {
						tmpl.Src, tmpl.Dst = local, remote
					}
					p := kernel.Policy{
						Dir:      kernel.DirOut,
						Selector: kernel.Selector{Src: a.prefix, Dst: b.prefix, Proto: proto, SrcPort: a.port, DstPort: b.port},
						// Traps lose against any Child SA policy of the same traffic.
						Priority: policyPriority(a.prefix, b.prefix, proto, a.port, b.port) + 0x10000,
						Template: tmpl,
						Owner:    kernel.Owner{Family: trapFamily},
					}
					t := &trap{conn: conn, child: ch.Name, policy: p}
					if err := tt.pt.hold(tt.t, t, p.Selector); err != nil {
						return fmt.Errorf("trap %s/%s: %w", conn, ch.Name, err)
					}
					tt.mu.Lock()
					tt.byReqid[reqid] = t
					tt.byPolicy[p.ID()] = t
					tt.mu.Unlock()
				}
			}
		}
	}
	return nil
}

// removeConn deletes the trap policies of connection conn (a Child SA holding the same
// policy keeps it).
func (tt *trapTable) removeConn(conn string) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	for id, t := range tt.byPolicy {
		if t.conn != conn {
			continue
		}
		_ = tt.pt.drop(tt.t, t, id.Selector)
		delete(tt.byPolicy, id)
		delete(tt.byReqid, t.policy.Template.Reqid)
	}
}

// remove deletes every trap policy (shutdown).
func (tt *trapTable) remove() {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	for id, t := range tt.byPolicy {
		_ = tt.pt.drop(tt.t, t, id.Selector)
		delete(tt.byPolicy, id)
	}
	clear(tt.byReqid)
}
