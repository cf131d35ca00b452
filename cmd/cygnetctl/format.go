package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
)

func (c *cli) listConns(ctx context.Context, asJSON bool) error {
	w := bufio.NewWriter(c.out)
	defer w.Flush()
	return c.client.ListConns(ctx, func(conn *control.Conn) error {
		if asJSON {
			b, err := json.Marshal(conn)
			if err != nil {
				return err
			}
			w.Write(append(b, '\n'))
			return nil
		}
		writeConn(w, conn)
		return nil
	})
}

// writeConn prints a connection as swanctl --list-conns does.
func writeConn(w *bufio.Writer, c *control.Conn) {
	rekey := "rekeying disabled"
	if c.RekeyTime > 0 {
		rekey = fmt.Sprintf("rekeying every %ds", c.RekeyTime)
	}
	fmt.Fprintf(w, "%s: IKEv2, no reauthentication, %s", c.Name, rekey)
	if c.DPDDelay > 0 {
		fmt.Fprintf(w, ", dpd delay %ds", c.DPDDelay)
	}
	w.WriteString("\n")
	fmt.Fprintf(w, "  local:  %s\n", hostsPort(c.LocalAddrs, c.LocalPort))
	fmt.Fprintf(w, "  remote: %s\n", hostsPort(c.RemoteAddrs, c.RemotePort))
	fmt.Fprintf(w, "  proposals: %s\n", strings.Join(c.Proposals, ", "))
	fmt.Fprintf(w, "  local %s authentication:\n    id: %s\n", authName(c.LocalAuth), c.LocalID)
	fmt.Fprintf(w, "  remote %s authentication:\n    id: %s\n", authName(c.RemoteAuth), c.RemoteID)
	for _, ch := range c.Children {
		fmt.Fprintf(w, "  %s: %s, rekeying every %ds, lifetime %ds, start %s\n", ch.Name, strings.ToUpper(ch.Mode), ch.RekeyTime, ch.LifeTime, ch.StartAction)
		fmt.Fprintf(w, "    esp proposals: %s\n", strings.Join(ch.ESPProposals, ", "))
		fmt.Fprintf(w, "    local:  %s\n", strings.Join(ch.LocalTS, " "))
		fmt.Fprintf(w, "    remote: %s\n", strings.Join(ch.RemoteTS, " "))
	}
}

func hostsPort(hosts []string, port uint16) string {
	s := strings.Join(hosts, ", ")
	if port != 0 && port != 500 {
		s += fmt.Sprintf(" port %d", port)
	}
	return s
}

func authName(a string) string {
	if a == "psk" {
		return "pre-shared key"
	}
	return a
}

func (c *cli) listSAs(ctx context.Context, filter control.SAFilter, asJSON bool) error {
	w := bufio.NewWriterSize(c.out, 256<<10)
	defer w.Flush()
	if asJSON {
		// The daemon's records are copied as they are: one JSON object per line.
		_, err := c.client.ListSAsRaw(ctx, filter, func(raw []byte) error {
			w.Write(raw)
			return w.WriteByte('\n')
		})
		return err
	}
	now := c.now().Unix()
	var buf []byte
	return c.client.ListSAs(ctx, filter, func(sa *control.IKESA) error {
		buf = appendSA(buf[:0], sa, now)
		_, err := w.Write(buf)
		return err
	})
}

// appendSA prints an IKE SA as swanctl --list-sas does:
//
//	ab: #1, ESTABLISHED, IKEv2, 0123456789abcdef_i* fedcba9876543210_r
//	  local  '192.0.2.1' @ 192.0.2.1[500]
//	  remote '192.0.2.2' @ 192.0.2.2[500]
//	  AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519
//	  established 5s ago, rekeying in 14395s
//	  net: #1, reqid 1, INSTALLED, TUNNEL, ESP:AES_GCM_16_256
//	    installed 5s ago, rekeying in 3195s, expires in 3955s
//	    in  c1a2b3c4,      0 bytes,      0 packets
//	    out c5d6e7f8,      0 bytes,      0 packets
//	    local  10.1.0.0/16
//	    remote 10.2.0.0/16
func appendSA(b []byte, sa *control.IKESA, now int64) []byte {
	b = append(b, sa.Conn...)
	b = append(b, ": #"...)
	b = strconv.AppendUint(b, sa.UniqueID, 10)
	b = append(b, ", "...)
	b = append(b, sa.State...)
	b = append(b, ", IKEv2, "...)
	b = append(b, sa.SPIi.String()...)
	b = append(b, "_i"...)
	if sa.Initiator {
		b = append(b, '*')
	}
	b = append(b, ' ')
	b = append(b, sa.SPIr.String()...)
	b = append(b, "_r"...)
	if !sa.Initiator {
		b = append(b, '*')
	}
	b = append(b, "\n  local  '"...)
	b = append(b, sa.LocalID...)
	b = append(b, "' @ "...)
	b = appendHostPort(b, sa.LocalHost, sa.LocalPort)
	if sa.NATLocal {
		b = append(b, " [NAT]"...)
	}
	b = append(b, "\n  remote '"...)
	b = append(b, sa.RemoteID...)
	b = append(b, "' @ "...)
	b = appendHostPort(b, sa.RemoteHost, sa.RemotePort)
	if sa.NATRemote {
		b = append(b, " [NAT]"...)
	}
	b = append(b, '\n')
	if sa.Proposal != "" {
		b = append(b, "  "...)
		b = append(b, sa.Proposal...)
		b = append(b, '\n')
	}
	if sa.Established != 0 {
		b = append(b, "  established "...)
		b = appendAgo(b, now-sa.Established)
		if sa.RekeyAt != 0 {
			b = append(b, ", rekeying in "...)
			b = appendIn(b, sa.RekeyAt-now)
		}
		b = append(b, '\n')
	}
	for i := range sa.Children {
		b = appendChild(b, &sa.Children[i], now)
	}
	return b
}

func appendChild(b []byte, ch *control.ChildSA, now int64) []byte {
	b = append(b, "  "...)
	b = append(b, ch.Name...)
	b = append(b, ": #"...)
	b = strconv.AppendUint(b, ch.UniqueID, 10)
	b = append(b, ", reqid "...)
	b = strconv.AppendUint(b, uint64(ch.ReqID), 10)
	b = append(b, ", "...)
	b = append(b, ch.State...)
	b = append(b, ", "...)
	b = append(b, ch.Mode...)
	if ch.Encap {
		b = append(b, "-in-UDP"...)
	}
	b = append(b, ", "...)
	b = append(b, ch.Protocol...)
	b = append(b, ':')
	b = append(b, ch.Proposal...)
	b = append(b, "\n    "...)
	if ch.Installed != 0 {
		b = append(b, "installed "...)
		b = appendAgo(b, now-ch.Installed)
	}
	if ch.RekeyAt != 0 {
		b = append(b, ", rekeying in "...)
		b = appendIn(b, ch.RekeyAt-now)
	}
	if ch.ExpireAt != 0 {
		b = append(b, ", expires in "...)
		b = appendIn(b, ch.ExpireAt-now)
	}
	b = append(b, "\n    in  "...)
	b = append(b, ch.SPIIn.String()...)
	b = appendTraffic(b, ch.BytesIn, ch.PacketsIn)
	b = append(b, "\n    out "...)
	b = append(b, ch.SPIOut.String()...)
	b = appendTraffic(b, ch.BytesOut, ch.PacketsOut)
	b = append(b, "\n    local  "...)
	b = append(b, strings.Join(ch.LocalTS, " ")...)
	b = append(b, "\n    remote "...)
	b = append(b, strings.Join(ch.RemoteTS, " ")...)
	return append(b, '\n')
}

func appendHostPort(b []byte, host string, port uint16) []byte {
	if strings.Contains(host, ":") {
		b = append(b, '[')
		b = append(b, host...)
		b = append(b, ']')
	} else {
		b = append(b, host...)
	}
	b = append(b, '[')
	b = strconv.AppendUint(b, uint64(port), 10)
	return append(b, ']')
}

func appendTraffic(b []byte, bytes, packets uint64) []byte {
	b = append(b, ", "...)
	b = appendPadded(b, bytes, 10)
	b = append(b, " bytes, "...)
	b = appendPadded(b, packets, 8)
	return append(b, " packets"...)
}

func appendPadded(b []byte, v uint64, width int) []byte {
	var tmp [20]byte
	s := strconv.AppendUint(tmp[:0], v, 10)
	for i := len(s); i < width; i++ {
		b = append(b, ' ')
	}
	return append(b, s...)
}

func appendAgo(b []byte, secs int64) []byte {
	if secs < 0 {
		secs = 0
	}
	b = strconv.AppendInt(b, secs, 10)
	return append(b, "s ago"...)
}

func appendIn(b []byte, secs int64) []byte {
	if secs < 0 {
		secs = 0
	}
	b = strconv.AppendInt(b, secs, 10)
	return append(b, 's')
}

func (c *cli) reload(ctx context.Context) error {
	r, err := c.client.Reload(ctx)
	if err != nil {
		return err
	}
	part := func(n []string, what string) string {
		if len(n) == 0 {
			return fmt.Sprintf("0 %s", what)
		}
		return fmt.Sprintf("%d %s (%s)", len(n), what, strings.Join(n, ", "))
	}
	fmt.Fprintf(c.out, "configuration reloaded: %s, %s, %s, %d unchanged\n",
		part(r.Added, "added"), part(r.Removed, "removed"), part(r.Changed, "changed"), len(r.Unchanged))
	if len(r.SecretChanged) > 0 {
		fmt.Fprintf(c.out, "new pre-shared keys for %s (established SAs kept)\n", strings.Join(r.SecretChanged, ", "))
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(c.out, "warning: %s\n", w)
	}
	if len(r.Restart) > 0 {
		fmt.Fprintf(c.out, "restart cygnetd to apply: %s\n", strings.Join(r.Restart, ", "))
	}
	return nil
}

func (c *cli) stats(ctx context.Context, asJSON bool) error {
	s, err := c.client.Stats(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "%s\n", b)
		return nil
	}
	started := time.Unix(s.Started, 0).UTC()
	up := c.now().Sub(started).Truncate(time.Second)
	fmt.Fprintf(c.out, "cygnetd %s, running since %s (%s), kernel backend %s", s.Version, started.Format(time.RFC3339), up, s.Kernel)
	if s.Chaos {
		fmt.Fprint(c.out, ", chaos enabled")
	}
	fmt.Fprintf(c.out, "\n  connections: %d\n  IKE SAs: %d established, %d half-open\n  Child SAs: %d installed\n",
		s.Connections, s.IKESAs, s.HalfOpen, s.ChildSAs)
	fmt.Fprintf(c.out, "  retransmissions: %d, packets dropped: %d, Child SA failures: %d\n", s.Retransmits, s.Dropped, s.ChildFailures)
	fmt.Fprintf(c.out, "  goroutines: %d, heap: %.1f MiB\n", s.Goroutines, float64(s.HeapBytes)/(1<<20))
	return nil
}

func (c *cli) watch(ctx context.Context, asJSON bool) error {
	ready := func() { fmt.Fprintln(c.errw, "watching for SA events (interrupt to stop)") }
	return c.client.WatchReady(ctx, ready, func(e *control.Event) error {
		if asJSON {
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.out, "%s\n", b)
			return err
		}
		_, err := fmt.Fprintln(c.out, formatEvent(e))
		return err
	})
}

// formatEvent prints one event on a line:
//
//	2026-01-02T15:04:05.000Z ike-up ab #1 0123456789abcdef_i fedcba9876543210_r 192.0.2.2
//	2026-01-02T15:04:06.000Z child-failed ab/net: TS_UNACCEPTABLE
func formatEvent(e *control.Event) string {
	var b strings.Builder
	b.WriteString(time.Unix(0, e.Time).UTC().Format("2006-01-02T15:04:05.000Z"))
	b.WriteString(" ")
	b.WriteString(string(e.Type))
	b.WriteString(" ")
	b.WriteString(e.Conn)
	if e.Child != "" {
		b.WriteString("/" + e.Child)
	}
	if e.ChildID != 0 {
		fmt.Fprintf(&b, " #%d", e.ChildID)
	} else if e.IKEID != 0 {
		fmt.Fprintf(&b, " #%d", e.IKEID)
	}
	if e.SPIi != 0 || e.SPIr != 0 {
		fmt.Fprintf(&b, " %s_i %s_r", e.SPIi, e.SPIr)
	}
	if e.Remote != "" {
		b.WriteString(" " + e.Remote)
	}
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	return b.String()
}

func (c *cli) debugKill(ctx context.Context, actor string) error {
	if err := c.client.DebugKill(ctx, actor); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "killed %s\n", actor)
	return nil
}
