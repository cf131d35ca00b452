package charon

import (
	"context"
	"fmt"
	"strings"

	"github.com/strongswan/govici/vici"
)

// Target selects SAs for terminate and rekey: by config name (IKE, Child) or by
// charon's unique ID (IKEID, ChildID). Set exactly one.
type Target struct {
	IKE, Child     string
	IKEID, ChildID uint32
}

func (t Target) String() string {
	switch {
	case t.Child != "":
		return "child " + t.Child
	case t.ChildID != 0:
		return fmt.Sprintf("child-id %d", t.ChildID)
	case t.IKE != "":
		return "ike " + t.IKE
	case t.IKEID != 0:
		return fmt.Sprintf("ike-id %d", t.IKEID)
	}
	return "(no target)"
}

func (t Target) set(m *vici.Message) error {
	n := 0
	for _, set := range []bool{t.IKE != "", t.Child != "", t.IKEID != 0, t.ChildID != 0} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("target %+v: set exactly one of IKE, Child, IKEID, ChildID", t)
	}
	kv := []any{"ike", t.IKE, "child", t.Child}
	if t.IKEID != 0 {
		kv = append(kv, "ike-id", fmt.Sprint(t.IKEID))
	}
	if t.ChildID != 0 {
		kv = append(kv, "child-id", fmt.Sprint(t.ChildID))
	}
	return setAll(m, kv...)
}

// streamControl runs a command that streams control-log events and returns the
// log lines with any error, so a failure says what charon did.
func (c *Charon) streamControl(ctx context.Context, cmd string, in *vici.Message) ([]string, error) {
	evs, _, err := c.collect(ctx, cmd, "control-log", in)
	var lines []string
	for _, m := range evs {
		if msg := str(m, "msg"); msg != "" {
			lines = append(lines, msg)
		}
	}
	if err != nil {
		return lines, fmt.Errorf("%w\ncontrol log:\n  %s", err, strings.Join(lines, "\n  "))
	}
	return lines, nil
}

// collect runs command cmd and returns the events named event that charon
// streamed while it ran, and the command's response.
//
// It does not use govici's CallStreaming: in v0.8.0 that selects at random
// between buffered events and the final response, so it can end before reading
// every event (a list-sas that misses IKE SAs) and leave the rest to break the
// session's next request ("unexpected response type: 7"). Here the events go to
// a subscriber channel, which govici's single reader fills, in order, before it
// reads the response; once Call returns, every event is in the channel.
func (c *Charon) collect(ctx context.Context, cmd, event string, in *vici.Message) ([]*vici.Message, *vici.Message, error) {
	sess, err := c.session()
	if err != nil {
		return nil, nil, err
	}
	defer sess.Close()
	ch := make(chan vici.Event, collectBuffer)
	sess.NotifyEvents(ch)
	if err := sess.Subscribe(event); err != nil {
		return nil, nil, fmt.Errorf("charon %s: %s: subscribe %s: %w", c.Name, cmd, event, err)
	}
	resp, callErr := sess.Call(ctx, cmd, in)
	var evs []*vici.Message
	for drained := false; !drained; {
		select {
		case ev, ok := <-ch:
			if !ok {
				drained = true
			} else if ev.Name == event {
				evs = append(evs, ev.Message)
			}
		default:
			drained = true
		}
	}
	if len(evs) == collectBuffer {
		return evs, resp, fmt.Errorf("charon %s: %s: %d %s events fill the buffer; some may be lost", c.Name, cmd, len(evs), event)
	}
	if callErr != nil {
		return evs, resp, fmt.Errorf("charon %s: %s: %w", c.Name, cmd, callErr)
	}
	return evs, resp, nil
}

// collectBuffer bounds the events one command may stream (govici drops events
// that do not fit; collect reports a full buffer as an error).
const collectBuffer = 4096

// Initiate establishes the named Child SA of connection ike (and the IKE SA if
// needed) and waits until charon reports the outcome. With child empty, only the
// IKE SA is initiated.
func (c *Charon) Initiate(ctx context.Context, ike, child string) error {
	in := vici.NewMessage()
	if err := setAll(in, "ike", ike, "child", child, "init-limits", "no"); err != nil {
		return err
	}
	_, err := c.streamControl(ctx, "initiate", in)
	return err
}

// InitiateNoWait queues the initiation and returns at once (timeout -1): for
// collisions, where both sides must start before either finishes.
func (c *Charon) InitiateNoWait(ctx context.Context, ike, child string) error {
	in := vici.NewMessage()
	if err := setAll(in, "ike", ike, "child", child, "timeout", "-1", "init-limits", "no"); err != nil {
		return err
	}
	_, err := c.streamControl(ctx, "initiate", in)
	return err
}

// Terminate deletes the selected SA (an INFORMATIONAL with DELETE, RFC 7296
// §1.4.1) and waits for charon to finish.
func (c *Charon) Terminate(ctx context.Context, t Target) error {
	in := vici.NewMessage()
	if err := t.set(in); err != nil {
		return err
	}
	_, err := c.streamControl(ctx, "terminate", in)
	if err != nil {
		return fmt.Errorf("terminate %s: %w", t, err)
	}
	return nil
}

// Rekey starts a rekey of the selected SA (CREATE_CHILD_SA, RFC 7296 §1.3.2/§1.3.3)
// and returns at once: watch the events or list-sas for the result. It fails if
// nothing matched.
func (c *Charon) Rekey(ctx context.Context, t Target) error {
	in := vici.NewMessage()
	if err := t.set(in); err != nil {
		return err
	}
	resp, err := c.call(ctx, "rekey", in)
	if err != nil {
		return fmt.Errorf("rekey %s: %w", t, err)
	}
	if m := str(resp, "matches"); m == "0" {
		return fmt.Errorf("charon %s: rekey %s: no SA matched", c.Name, t)
	}
	return nil
}
