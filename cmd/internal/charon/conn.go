package charon

import (
	"context"
	"fmt"
	"time"

	"github.com/strongswan/govici/vici"
)

// Never, as a lifetime or rekey interval, disables it (charon's "0").
const Never time.Duration = -1

// Conn describes one IKE connection, in swanctl.conf's terms
// (connections.<name>). Zero fields are left out, so charon's defaults apply.
type Conn struct {
	Name        string
	LocalAddrs  []string
	RemoteAddrs []string
	// Proposals are IKE proposals in strongSwan syntax
	// ("aes256gcm16-prfsha256-x25519"); the first keyword group's DH group is the
	// one charon guesses in its KE payload.
	Proposals []string
	// LocalID and RemoteID are the IKE identities (RFC 7296 §3.5); both sides
	// authenticate with PSK.
	LocalID, RemoteID string
	// PSK, if set, is loaded with the connection as the IKE shared secret of
	// LocalID and RemoteID.
	PSK string
	// RekeyTime, ReauthTime and OverTime: zero keeps charon's default, Never
	// disables. Charon's granularity is one second.
	RekeyTime, ReauthTime, OverTime time.Duration
	// DPDDelay is the liveness check interval (RFC 7296 §2.4); zero disables.
	DPDDelay time.Duration
	// Fragmentation is "yes", "accept", "force" or "no" (RFC 7383); empty keeps the
	// default (yes).
	Fragmentation string
	// Mobike enables MOBIKE (RFC 4555); off unless set, because namespaces'
	// address changes would otherwise trigger updates.
	Mobike bool
	// KeyingTries is how often charon tries to establish (0 = default, 1).
	KeyingTries int
	Children    []Child
}

// Child describes one Child SA configuration (connections.<name>.children.<name>).
type Child struct {
	Name string
	// LocalTS and RemoteTS are traffic selectors in strongSwan syntax (CIDR,
	// optionally [proto/port]).
	LocalTS, RemoteTS []string
	// ESPProposals in strongSwan syntax; a DH group in them means PFS on
	// CREATE_CHILD_SA (charon strips it inside IKE_AUTH).
	ESPProposals []string
	// Mode is "tunnel" (default) or "transport".
	Mode string
	// StartAction is "none" (default), "trap" or "start"; DPDAction and
	// CloseAction are "clear" (default), "trap", "restart".
	StartAction, DPDAction, CloseAction string
	// RekeyTime and LifeTime: zero keeps charon's default, Never disables.
	RekeyTime, LifeTime time.Duration
}

func durationString(d time.Duration) string {
	if d == Never {
		return "0"
	}
	return fmt.Sprintf("%ds", int64(d/time.Second))
}

func setDuration(m *vici.Message, key string, d time.Duration) error {
	if d == 0 {
		return nil
	}
	if d != Never && d < time.Second {
		return fmt.Errorf("%s %v: charon's granularity is one second", key, d)
	}
	return m.Set(key, durationString(d))
}

// setAll sets each key/value pair in order, stopping at the first error.
func setAll(m *vici.Message, kv ...any) error {
	for i := 0; i+1 < len(kv); i += 2 {
		key := kv[i].(string)
		switch v := kv[i+1].(type) {
		case string:
			if v == "" {
				continue
			}
		case []string:
			if len(v) == 0 {
				continue
			}
		}
		if err := m.Set(key, kv[i+1]); err != nil {
			return fmt.Errorf("set %s: %w", key, err)
		}
	}
	return nil
}

// message renders the connection as the body of vici's load-conn command.
func (c Conn) message() (*vici.Message, error) {
	if c.Name == "" {
		return nil, fmt.Errorf("connection without a name")
	}
	body := vici.NewMessage()
	mobike := "no"
	if c.Mobike {
		mobike = "yes"
	}
	if err := setAll(body,
		"version", "2",
		"local_addrs", c.LocalAddrs,
		"remote_addrs", c.RemoteAddrs,
		"proposals", c.Proposals,
		"mobike", mobike,
		"fragmentation", c.Fragmentation,
	); err != nil {
		return nil, err
	}
	if c.KeyingTries > 0 {
		if err := body.Set("keyingtries", c.KeyingTries); err != nil {
			return nil, err
		}
	}
	for _, d := range []struct {
		key string
		val time.Duration
	}{{"rekey_time", c.RekeyTime}, {"reauth_time", c.ReauthTime}, {"over_time", c.OverTime}, {"dpd_delay", c.DPDDelay}} {
		if err := setDuration(body, d.key, d.val); err != nil {
			return nil, fmt.Errorf("conn %s: %w", c.Name, err)
		}
	}
	local, remote := vici.NewMessage(), vici.NewMessage()
	if err := setAll(local, "auth", "psk", "id", c.LocalID); err != nil {
		return nil, err
	}
	if err := setAll(remote, "auth", "psk", "id", c.RemoteID); err != nil {
		return nil, err
	}
	if err := setAll(body, "local", local, "remote", remote); err != nil {
		return nil, err
	}
	if len(c.Children) > 0 {
		children := vici.NewMessage()
		for _, ch := range c.Children {
			m, err := ch.message()
			if err != nil {
				return nil, fmt.Errorf("conn %s: %w", c.Name, err)
			}
			if err := children.Set(ch.Name, m); err != nil {
				return nil, err
			}
		}
		if err := body.Set("children", children); err != nil {
			return nil, err
		}
	}
	msg := vici.NewMessage()
	if err := msg.Set(c.Name, body); err != nil {
		return nil, err
	}
	return msg, nil
}

func (ch Child) message() (*vici.Message, error) {
	if ch.Name == "" {
		return nil, fmt.Errorf("child without a name")
	}
	m := vici.NewMessage()
	if err := setAll(m,
		"local_ts", ch.LocalTS,
		"remote_ts", ch.RemoteTS,
		"esp_proposals", ch.ESPProposals,
		"mode", ch.Mode,
		"start_action", ch.StartAction,
		"dpd_action", ch.DPDAction,
		"close_action", ch.CloseAction,
	); err != nil {
		return nil, fmt.Errorf("child %s: %w", ch.Name, err)
	}
	for _, d := range []struct {
		key string
		val time.Duration
	}{{"rekey_time", ch.RekeyTime}, {"life_time", ch.LifeTime}} {
		if err := setDuration(m, d.key, d.val); err != nil {
			return nil, fmt.Errorf("child %s: %w", ch.Name, err)
		}
	}
	return m, nil
}

// call runs one vici command; a response with success=no is an error carrying
// charon's errmsg.
func (c *Charon) call(ctx context.Context, cmd string, in *vici.Message) (*vici.Message, error) {
	sess, err := c.session()
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	resp, err := sess.Call(ctx, cmd, in)
	if err != nil {
		return resp, fmt.Errorf("charon %s: vici %s: %w", c.Name, cmd, err)
	}
	return resp, nil
}

// LoadConn loads (or replaces) a connection, and its PSK if it has one.
func (c *Charon) LoadConn(ctx context.Context, conn Conn) error {
	msg, err := conn.message()
	if err != nil {
		return fmt.Errorf("charon %s: load-conn: %w", c.Name, err)
	}
	if _, err := c.call(ctx, "load-conn", msg); err != nil {
		return err
	}
	if conn.PSK == "" {
		return nil
	}
	owners := []string{}
	for _, id := range []string{conn.LocalID, conn.RemoteID} {
		if id != "" {
			owners = append(owners, id)
		}
	}
	return c.LoadSharedIKE(ctx, "psk-"+conn.Name, conn.PSK, owners...)
}

// LoadSharedIKE loads an IKE pre-shared key under a unique key id for the given
// identities (an empty owner list makes it the fallback secret).
func (c *Charon) LoadSharedIKE(ctx context.Context, id, secret string, owners ...string) error {
	m := vici.NewMessage()
	if err := setAll(m, "id", id, "type", "IKE", "data", secret, "owners", owners); err != nil {
		return err
	}
	_, err := c.call(ctx, "load-shared", m)
	return err
}

// UnloadConn removes a connection (its SAs stay up).
func (c *Charon) UnloadConn(ctx context.Context, name string) error {
	m := vici.NewMessage()
	if err := m.Set("name", name); err != nil {
		return err
	}
	_, err := c.call(ctx, "unload-conn", m)
	return err
}
