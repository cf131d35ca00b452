package telemetry

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Tally is an in-memory Recorder for tests: it counts every event under a key such as
// `exchange IKE_AUTH initiator ok` or `ike_sas_established ab` and renders the whole
// table as sorted text, so a test compares everything that was recorded, not one field.
// Durations are not recorded (only counted), so the text is deterministic.
// The zero value is ready to use.
type Tally struct {
	mu     sync.Mutex
	counts map[string]int
}

var _ Recorder = (*Tally)(nil)

func (t *Tally) add(delta int, format string, args ...any) {
	key := fmt.Sprintf(format, args...)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = make(map[string]int)
	}
	t.counts[key] += delta
	if t.counts[key] == 0 {
		delete(t.counts, key)
	}
}

// Get returns the value recorded under key (0 if none).
func (t *Tally) Get(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[key]
}

// String renders every non-zero key and its value, one per line, sorted by key.
func (t *Tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.counts))
	for k := range t.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %d\n", k, t.counts[k])
	}
	return b.String()
}

func (t *Tally) IKESAEstablished(conn string) { t.add(1, "ike_sas_established %s", conn) }
func (t *Tally) IKESAClosed(conn string)      { t.add(-1, "ike_sas_established %s", conn) }
func (t *Tally) HalfOpenChanged(delta int)    { t.add(delta, "ike_sas_half_open") }
func (t *Tally) ChildSAInstalled(conn string) { t.add(1, "child_sas_installed %s", conn) }
func (t *Tally) ChildSARemoved(conn string)   { t.add(-1, "child_sas_installed %s", conn) }
func (t *Tally) ExchangeDone(e Exchange, r Role, o Outcome) {
	t.add(1, "exchange %s %s %s", e, r, o)
}
func (t *Tally) NotifySent(n string)     { t.add(1, "notify_sent %s", n) }
func (t *Tally) NotifyReceived(n string) { t.add(1, "notify_received %s", n) }
func (t *Tally) ChildFailed(conn, reason string) {
	t.add(1, "child_failed %s %s", conn, reason)
}
func (t *Tally) FamilyTeardown(reason string)    { t.add(1, "family_teardown %s", reason) }
func (t *Tally) Retransmitted(e Exchange)        { t.add(1, "retransmission %s", e) }
func (t *Tally) PacketDropped(reason DropReason) { t.add(1, "dropped %s", reason) }
func (t *Tally) CookieSent()                     { t.add(1, "cookie_sent") }
func (t *Tally) ActorStopped(k ActorKind, r StopReason) {
	t.add(1, "actor_stopped %s %s", k, r)
}
func (t *Tally) KernelOp(op KernelOp, r Result, _ time.Duration) {
	t.add(1, "kernel_op %s %s", op, r)
}
func (t *Tally) HandshakeDone(r Role, _ time.Duration) { t.add(1, "handshake %s", r) }
