package config

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	"go.yaml.in/yaml/v3"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/logging"
)

// Options tune Load and Parse. The zero value is what cygnetd uses.
type Options struct {
	// SecretOwner is the uid that must own every secret_file (0, root, by default).
	SecretOwner int
}

// Load reads and checks the configuration file at path. On error the result is nil and
// the error is an Errors listing every problem found (or a single *Error when the file
// cannot be read).
func Load(path string, opts Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read the configuration: %v", errText(err))}}
	}
	cfg, err := parse(path, data, opts)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o044 != 0 {
		for _, s := range cfg.Secrets {
			if s.File == "" {
				cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("%s: holds inline secrets but is readable by group or others (mode %04o); chmod 600 it or move the secrets to secret_file", path, fi.Mode().Perm()))
				break
			}
		}
	}
	return cfg, nil
}

// errText is err without the "open <path>:" prefix the caller already printed.
func errText(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse checks a configuration held in memory; file names it in errors and is the base
// for relative secret_file paths.
func Parse(file string, data []byte, opts Options) (*Config, error) {
	return parse(file, data, opts)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func parse(file string, data []byte, opts Options) (*Config, error) {
	d := &decoder{file: file, lines: map[string]int{}, badID: map[string]bool{}}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err.Error() == "EOF" {
			doc = yaml.Node{}
		} else {
			msg := strings.TrimPrefix(err.Error(), "yaml: ")
			line := 0
			if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
				line, _ = strconv.Atoi(m[1])
				msg = m[2]
			}
			return nil, Errors{{File: file, Line: line, Msg: "not valid YAML: " + msg}}
		}
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, Errors{{File: file, Line: more.Line, Msg: "expected one YAML document, found a second one (---)"}}
	}

	cfg := &Config{File: file, Daemon: defaultDaemon()}
	var root *yaml.Node
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	d.fields(root, "", map[string]field{
		"daemon":      func(v *yaml.Node, p string) { d.daemon(v, p, &cfg.Daemon) },
		"connections": func(v *yaml.Node, p string) { cfg.Connections = d.connections(v, p) },
		"secrets":     func(v *yaml.Node, p string) { cfg.Secrets = d.secrets(v, p, filepath.Dir(file), opts) },
	}, map[string]string{
		"pools":       "virtual IP pools are not supported by cygnet",
		"authorities": "certificate authorities are not supported by cygnet (PSK only)",
		"include":     "include is not supported: put the whole configuration in one file",
	})
	d.check(cfg)
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, d.errs
	}
	cfg.Warnings = append(cfg.Warnings, d.warns...)
	return cfg, nil
}

func defaultDaemon() Daemon {
	return Daemon{
		Port:            DefaultPort,
		PortNATT:        DefaultPortNATT,
		MetricsAddress:  DefaultMetricsAddress,
		ControlSocket:   DefaultControlSocket,
		Log:             Log{Format: logging.FormatJSON, Level: zapcore.InfoLevel},
		CookieThreshold: DefaultCookieThreshold,
		BlockThreshold:  DefaultBlockThreshold,
	}
}

func (d *decoder) daemon(n *yaml.Node, path string, dm *Daemon) {
	d.fields(n, path, map[string]field{
		"listen_addrs": func(v *yaml.Node, p string) {
			if rv := resolve(v); rv != nil && rv.Kind == yaml.ScalarNode && rv.Value == "%any" {
				dm.ListenAddrs = nil
				return
			}
			dm.ListenAddrs, _ = eachOf(d, v, p, "IP addresses", parseAddr)
		},
		"port":       func(v *yaml.Node, p string) { d.uintRange(v, p, 1, 65535, func(x uint64) { dm.Port = uint16(x) }) },
		"port_nat_t": func(v *yaml.Node, p string) { d.uintRange(v, p, 1, 65535, func(x uint64) { dm.PortNATT = uint16(x) }) },
		"metrics_address": func(v *yaml.Node, p string) {
			if isNull(v) {
				dm.MetricsAddress = ""
				return
			}
			with(d, v, p, "host:port", parseListenAddress, &dm.MetricsAddress)
		},
		"control_socket": func(v *yaml.Node, p string) {
			with(d, v, p, "an absolute path", func(s string) (string, error) {
				if !filepath.IsAbs(s) {
					return "", fmt.Errorf("expected an absolute path, got %q", s)
				}
				return filepath.Clean(s), nil
			}, &dm.ControlSocket)
		},
		"log": func(v *yaml.Node, p string) { d.log(v, p, &dm.Log) },
		"cookie_threshold": func(v *yaml.Node, p string) {
			d.uintRange(v, p, 0, 1<<20, func(x uint64) { dm.CookieThreshold = int(x) })
		},
		"block_threshold": func(v *yaml.Node, p string) {
			d.uintRange(v, p, 0, 1<<20, func(x uint64) { dm.BlockThreshold = int(x) })
		},
		"kernel": func(v *yaml.Node, p string) {
			if i, ok := d.choice(v, p, []string{"auto", "xfrm", "memory"}); ok {
				dm.Kernel = KernelBackend(i)
			}
		},
		"chaos":      func(v *yaml.Node, p string) { d.boolean(v, p, &dm.Chaos) },
		"retransmit": func(v *yaml.Node, p string) { d.retransmit(v, p, &dm.Retransmit) },
		"fragment_size": func(v *yaml.Node, p string) {
			// RFC 7383 §2.5.1: at least the IPv4 minimum datagram size.
			d.uintRange(v, p, 576, 65535, func(x uint64) { dm.FragmentSize = int(x) })
		},
		"debug_address": func(v *yaml.Node, p string) {
			if isNull(v) {
				dm.DebugAddress = ""
				return
			}
			with(d, v, p, "host:port", parseListenAddress, &dm.DebugAddress)
		},
		"gc_percent":   func(v *yaml.Node, p string) { with(d, v, p, "a percentage or off", parseGCPercent, &dm.GCPercent) },
		"memory_limit": func(v *yaml.Node, p string) { with(d, v, p, "a size", parseMemoryLimit, &dm.MemoryLimit) },
	}, nil)
	if dm.Port == dm.PortNATT {
		if _, given := d.lines[join(path, "port_nat_t")]; given {
			d.errAt(join(path, "port_nat_t"), "must differ from port (%d)", dm.Port)
		} else {
			d.errAt(join(path, "port"), "must differ from port_nat_t (%d)", dm.PortNATT)
		}
	}
}

// retransmit reads daemon.retransmit: {timeout, base, tries}.
func (d *decoder) retransmit(n *yaml.Node, path string, r *Retransmit) {
	d.fields(n, path, map[string]field{
		"timeout": func(v *yaml.Node, p string) {
			with(d, v, p, "a number of seconds", parseSeconds, &r.Timeout)
		},
		"base": func(v *yaml.Node, p string) {
			with(d, v, p, "a number from 1 to 10", func(s string) (float64, error) {
				f, err := strconv.ParseFloat(s, 64)
				if err != nil || !(f >= 1 && f <= 10) {
					return 0, fmt.Errorf("expected a number from 1 to 10, got %q", s)
				}
				return f, nil
			}, &r.Base)
		},
		"tries": func(v *yaml.Node, p string) { d.uintRange(v, p, 1, 100, func(x uint64) { r.Tries = int(x) }) },
	}, nil)
}

// parseSeconds reads a positive number of seconds, possibly fractional ("0.5", "4",
// "2.5s"), as strongSwan's charon.retransmit_timeout is written.
func parseSeconds(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "s"), 64)
	if err != nil || !(f >= 0.01 && f <= 3600) {
		return 0, fmt.Errorf("expected a number of seconds from 0.01 to 3600 (like 4 or 0.5), got %q", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// parseGCPercent reads daemon.gc_percent: 1 to 100000 (GOGC's percentage) or off.
func parseGCPercent(s string) (int, error) {
	if s == "off" {
		return GCPercentOff, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 100000 {
		return 0, fmt.Errorf("expected a percentage from 1 to 100000 (like 100, Go's default) or off, got %q", s)
	}
	return n, nil
}

// parseMemoryLimit reads daemon.memory_limit: a size with an optional k, m or g suffix
// (binary), at least 64m: below that the runtime would collect without pause.
func parseMemoryLimit(s string) (int64, error) {
	n, err := parseVolume(s)
	if err != nil {
		return 0, err
	}
	if n < 64<<20 || n > math.MaxInt64 {
		return 0, fmt.Errorf("expected a size from 64m up (like 4g), got %q", s)
	}
	return int64(n), nil
}

// parseListenAddress reads host:port (an empty string disables the endpoint).
func parseListenAddress(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("expected host:port like 127.0.0.1:9917 or [::1]:9917, got %q", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", fmt.Errorf("expected host:port with a port from 1 to 65535, got %q", s)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
			return "", fmt.Errorf("expected host:port with an IP address as host, got %q", s)
		}
	}
	return s, nil
}

func (d *decoder) log(n *yaml.Node, path string, l *Log) {
	d.fields(n, path, map[string]field{
		"format": func(v *yaml.Node, p string) { with(d, v, p, "json or console", logging.ParseFormat, &l.Format) },
		"level": func(v *yaml.Node, p string) {
			with(d, v, p, "debug, info, warn or error", logging.ParseLevel, &l.Level)
		},
		"subsystems": func(v *yaml.Node, p string) {
			es, _ := d.entries(v, p)
			for _, e := range es {
				sp := join(p, e.key)
				d.lines[sp] = e.line
				sub, err := logging.ParseSubsystem(e.key)
				if err != nil {
					d.errorf(e.line, sp, "%v", err)
					continue
				}
				var lvl zapcore.Level
				if with(d, e.val, sp, "debug, info, warn or error", logging.ParseLevel, &lvl) {
					if l.Subsystems == nil {
						l.Subsystems = map[logging.Subsystem]zapcore.Level{}
					}
					l.Subsystems[sub] = lvl
				}
			}
		},
	}, nil)
}

// swanctl.conf connection keys that cygnet does not implement, with the reason.
var unsupportedConnKeys = map[string]string{
	"pools":          "virtual IP pools are not supported by cygnet",
	"vips":           "virtual IPs are not supported by cygnet",
	"aggressive":     "aggressive mode is IKEv1; cygnet speaks IKEv2 only",
	"pull":           "mode config (IKEv1) is not supported",
	"send_cert":      "certificates are not supported by cygnet (PSK only)",
	"send_certreq":   "certificates are not supported by cygnet (PSK only)",
	"ppk_id":         "post-quantum preshared keys (RFC 8784) are not supported",
	"ppk_required":   "post-quantum preshared keys (RFC 8784) are not supported",
	"keyingtries":    "keyingtries is not supported: cygnet retries per its retransmission schedule",
	"unique":         "unique is not supported",
	"dscp":           "dscp is not supported",
	"if_id_in":       "XFRM interface IDs are not supported",
	"if_id_out":      "XFRM interface IDs are not supported",
	"mediation":      "mediation is not supported",
	"mediated_by":    "mediation is not supported",
	"mediation_peer": "mediation is not supported",
	"dpd_timeout":    "dpd_timeout is IKEv1 only; IKEv2 liveness ends after the retransmission schedule",
	"ocsp":           "certificates are not supported by cygnet (PSK only)",
	"local_port_nat": "not a swanctl key; the NAT-T port is daemon.port_nat_t",
}

var unsupportedChildKeys = map[string]string{
	"ah_proposals": "AH is not supported: use esp_proposals",
	"updown":       "updown scripts are not supported",
	"hostaccess":   "hostaccess is not supported",
	"policies":     "policies is not supported: cygnet always installs policies",
	"ipcomp":       "IPComp is not supported",
	"inactivity":   "inactivity is not supported",
	"reqid":        "fixed reqids are not supported",
	"priority":     "policy priority is not supported",
	"interface":    "interface is not supported",
	"mark_in":      "marks are not supported",
	"mark_out":     "marks are not supported",
	"set_mark_in":  "marks are not supported",
	"set_mark_out": "marks are not supported",
	"if_id_in":     "XFRM interface IDs are not supported",
	"if_id_out":    "XFRM interface IDs are not supported",
	"label":        "security labels are not supported",
	"hw_offload":   "hardware offload is not supported",
	"copy_df":      "copy_df is not supported",
	"copy_ecn":     "copy_ecn is not supported",
	"copy_dscp":    "copy_dscp is not supported",
	"sha256_96":    "sha256_96 is not supported",
	"tfc_padding":  "TFC padding is not supported",
}

func (d *decoder) connections(n *yaml.Node, path string) []*Connection {
	es, ok := d.entries(n, path)
	if !ok {
		return nil
	}
	var out []*Connection
	for _, e := range es {
		p := join(path, e.key)
		d.lines[p] = e.line
		if !validName(e.key) {
			d.errorf(e.line, p, "connection names are letters, digits, '-', '_' and '.', got %q", e.key)
			continue
		}
		out = append(out, d.connection(e.key, e.val, p))
	}
	return out
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func validName(s string) bool { return nameRE.MatchString(s) }

// set records which keys were given, for defaults derived from other keys.
type set map[string]bool

func (d *decoder) connection(name string, n *yaml.Node, path string) *Connection {
	c := &Connection{
		Name:          name,
		Version:       0,
		LocalPort:     DefaultPort,
		RemotePort:    DefaultPort,
		Proposals:     []string{"default"},
		Remote:        Auth{ID: AnyID},
		RekeyTime:     DefaultIKERekeyTime,
		Fragmentation: true,
	}
	given := set{}
	dur := func(dst *time.Duration, key string) field {
		return func(v *yaml.Node, p string) {
			if with(d, v, p, "a duration", parseDuration, dst) {
				given[key] = true
			}
		}
	}
	localIDGiven := false
	d.fields(n, path, map[string]field{
		"version": func(v *yaml.Node, p string) {
			s, ok := d.scalar(v, p, "2")
			switch {
			case !ok:
			case s == "2" || s == "0":
				c.Version, _ = strconv.Atoi(s)
			case s == "1":
				d.errorf(resolve(v).Line, p, "IKEv1 is not supported: cygnet speaks IKEv2 only (expected 2)")
			default:
				d.errorf(resolve(v).Line, p, "expected 2 (or 0 for any), got %q", s)
			}
		},
		"local_addrs":  func(v *yaml.Node, p string) { c.LocalAddrs = d.addrs(v, p) },
		"remote_addrs": func(v *yaml.Node, p string) { c.RemoteAddrs = d.addrs(v, p) },
		"local_port":   func(v *yaml.Node, p string) { d.uintRange(v, p, 1, 65535, func(x uint64) { c.LocalPort = uint16(x) }) },
		"remote_port":  func(v *yaml.Node, p string) { d.uintRange(v, p, 1, 65535, func(x uint64) { c.RemotePort = uint16(x) }) },
		"proposals":    func(v *yaml.Node, p string) { c.Proposals = d.proposals(v, p, ikeProposal) },
		"local": func(v *yaml.Node, p string) {
			localIDGiven = d.auth(v, p, &c.Local)
		},
		"remote":      func(v *yaml.Node, p string) { d.auth(v, p, &c.Remote) },
		"children":    func(v *yaml.Node, p string) { c.Children = d.children(v, p) },
		"dpd_delay":   dur(&c.DPDDelay, "dpd_delay"),
		"rekey_time":  dur(&c.RekeyTime, "rekey_time"),
		"over_time":   dur(&c.OverTime, "over_time"),
		"rand_time":   dur(&c.RandTime, "rand_time"),
		"reauth_time": dur(&c.ReauthTime, "reauth_time"),
		"fragmentation": func(v *yaml.Node, p string) {
			s, ok := d.scalar(v, p, "yes or no")
			switch {
			case !ok:
			case s == "accept" || s == "force":
				d.errorf(resolve(v).Line, p, "expected yes or no, got %q: cygnet offers RFC 7383 fragmentation (yes) or not (no)", s)
			default:
				d.boolean(v, p, &c.Fragmentation)
			}
		},
		"encap": func(v *yaml.Node, p string) { d.boolean(v, p, &c.Encap) },
		"mobike": func(v *yaml.Node, p string) {
			var on bool
			d.boolean(v, p, &on)
			if on {
				d.warnf(resolve(v).Line, p, "MOBIKE (RFC 4555) is not implemented; the setting is ignored")
			}
		},
		"childless": func(v *yaml.Node, p string) {
			if i, ok := d.choice(v, p, []string{"allow", "force", "never"}); ok {
				c.Childless = Childless(i)
			}
		},
	}, unsupportedConnKeys)

	// Derived defaults, as swanctl.conf(5): reauth_time stands in for rekey_time (cygnet
	// rekeys instead of re-authenticating); over_time is 10% of the rekey time,
	// rand_time defaults to over_time.
	if given["reauth_time"] && !given["rekey_time"] {
		c.RekeyTime = c.ReauthTime
	}
	if !given["over_time"] {
		c.OverTime = c.RekeyTime / 10
	}
	if !given["rand_time"] {
		c.RandTime = c.OverTime
		if c.RekeyTime > 0 && c.RandTime >= c.RekeyTime {
			c.RandTime = c.RekeyTime / 10 // a derived default never makes the file invalid
		}
	}
	if c.RekeyTime > 0 && c.RandTime >= c.RekeyTime {
		d.errAt(join(path, "rand_time"), "must be less than rekey_time (%v), got %v", fmtDur(c.RekeyTime), fmtDur(c.RandTime))
	}
	if !localIDGiven && len(c.LocalAddrs) > 0 {
		c.Local.ID = IdentityFromAddr(c.LocalAddrs[0])
	}
	if !localIDGiven && len(c.LocalAddrs) == 0 {
		d.errAt(path, "local.id is required when local_addrs is %%any (the identity is not guessed from the address)")
		d.badID[join(path, "local")] = true
	}
	return c
}

// fmtDur prints a duration in the config's own syntax.
func fmtDur(t time.Duration) string {
	switch {
	case t == 0:
		return "0s"
	case t%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", t/(24*time.Hour))
	case t%time.Hour == 0:
		return fmt.Sprintf("%dh", t/time.Hour)
	case t%time.Minute == 0:
		return fmt.Sprintf("%dm", t/time.Minute)
	}
	return fmt.Sprintf("%ds", t/time.Second)
}

func (d *decoder) addrs(v *yaml.Node, p string) []netip.Addr {
	items, ok := d.list(v, p, "IP addresses or %any")
	if !ok {
		return nil
	}
	var out []netip.Addr
	for _, it := range items {
		if it.s == "%any" || it.s == "%any4" || it.s == "%any6" {
			if len(items) > 1 {
				d.errorf(it.line, p, "%%any cannot be combined with addresses")
			}
			return nil
		}
		a, err := parseAddr(it.s)
		if err != nil {
			d.errorf(it.line, p, "%v", err)
			continue
		}
		out = append(out, a)
	}
	return out
}

func (d *decoder) proposals(v *yaml.Node, p string, kind proposalKind) []string {
	items, ok := d.list(v, p, kind.String()+" proposals")
	if !ok {
		return []string{"default"}
	}
	var out []string
	for _, it := range items {
		s, err := checkProposal(kind, it.s)
		if err != nil {
			d.errorf(it.line, p, "%v", err)
			continue
		}
		out = append(out, s)
	}
	return out
}

// auth decodes local{} or remote{}; it reports whether an id was given.
func (d *decoder) auth(n *yaml.Node, path string, a *Auth) bool {
	idGiven := false
	d.fields(n, path, map[string]field{
		"auth": func(v *yaml.Node, p string) {
			s, ok := d.scalar(v, p, "psk")
			switch {
			case !ok:
			case s == "psk":
				a.Method = AuthPSK
			case s == "pubkey" || strings.HasPrefix(s, "eap") || s == "xauth" || strings.HasPrefix(s, "rsa") || strings.HasPrefix(s, "ecdsa"):
				d.errorf(resolve(v).Line, p, "expected psk, got %q: only pre-shared keys are supported", s)
			default:
				d.errorf(resolve(v).Line, p, "expected psk, got %q", s)
			}
		},
		"id": func(v *yaml.Node, p string) {
			idGiven = true
			if !with(d, v, p, "an identity", ParseIdentity, &a.ID) {
				d.badID[strings.TrimSuffix(p, ".id")] = true
			}
		},
	}, map[string]string{
		"certs":   "certificates are not supported by cygnet (PSK only)",
		"cert":    "certificates are not supported by cygnet (PSK only)",
		"pubkeys": "raw public keys are not supported by cygnet (PSK only)",
		"cacerts": "certificates are not supported by cygnet (PSK only)",
		"eap_id":  "EAP is not supported by cygnet (PSK only)",
		"round":   "multiple authentication rounds are not supported",
	})
	return idGiven
}

func (d *decoder) children(n *yaml.Node, path string) []*Child {
	es, ok := d.entries(n, path)
	if !ok {
		return nil
	}
	var out []*Child
	for _, e := range es {
		p := join(path, e.key)
		d.lines[p] = e.line
		if !validName(e.key) {
			d.errorf(e.line, p, "child names are letters, digits, '-', '_' and '.', got %q", e.key)
			continue
		}
		out = append(out, d.child(e.key, e.val, p))
	}
	return out
}

func (d *decoder) child(name string, n *yaml.Node, path string) *Child {
	c := &Child{
		Name:         name,
		LocalTS:      []TrafficSelector{{Dynamic: true, EndPort: 0xffff}},
		RemoteTS:     []TrafficSelector{{Dynamic: true, EndPort: 0xffff}},
		ESPProposals: []string{"default"},
		RekeyTime:    DefaultChildRekeyTime,
		ReplayWindow: DefaultReplayWindow,
	}
	given := set{}
	dur := func(dst *time.Duration, key string) field {
		return func(v *yaml.Node, p string) {
			if with(d, v, p, "a duration", parseDuration, dst) {
				given[key] = true
			}
		}
	}
	vol := func(dst *uint64, key string) field {
		return func(v *yaml.Node, p string) {
			if with(d, v, p, "a number", parseVolume, dst) {
				given[key] = true
			}
		}
	}
	action := func(dst *Action, names map[string]Action, expect []string) field {
		return func(v *yaml.Node, p string) {
			if i, ok := d.choice(v, p, expect); ok {
				*dst = names[expect[i]]
			}
		}
	}
	peerActions := map[string]Action{"none": ActionNone, "clear": ActionNone, "trap": ActionTrap, "restart": ActionStart, "start": ActionStart}
	d.fields(n, path, map[string]field{
		"local_ts": func(v *yaml.Node, p string) {
			if ts, ok := eachOf(d, v, p, "traffic selectors", parseTS); ok {
				c.LocalTS = ts
			}
		},
		"remote_ts": func(v *yaml.Node, p string) {
			if ts, ok := eachOf(d, v, p, "traffic selectors", parseTS); ok {
				c.RemoteTS = ts
			}
		},
		"esp_proposals": func(v *yaml.Node, p string) { c.ESPProposals = d.proposals(v, p, espProposal) },
		"mode": func(v *yaml.Node, p string) {
			s, ok := d.scalar(v, p, "tunnel or transport")
			switch {
			case !ok:
			case s == "tunnel":
				c.Mode = ModeTunnel
			case s == "transport":
				c.Mode = ModeTransport
			case s == "pass" || s == "drop" || s == "beet":
				d.errorf(resolve(v).Line, p, "expected tunnel or transport, got %q: %s mode is not supported", s, s)
			default:
				d.errorf(resolve(v).Line, p, "expected tunnel or transport, got %q", s)
			}
		},
		"start_action":  action(&c.StartAction, map[string]Action{"none": ActionNone, "start": ActionStart, "trap": ActionTrap}, []string{"none", "start", "trap"}),
		"dpd_action":    action(&c.DPDAction, peerActions, []string{"none", "clear", "trap", "restart"}),
		"close_action":  action(&c.CloseAction, peerActions, []string{"none", "clear", "trap", "restart"}),
		"rekey_time":    dur(&c.RekeyTime, "rekey_time"),
		"life_time":     dur(&c.LifeTime, "life_time"),
		"rand_time":     dur(&c.RandTime, "rand_time"),
		"rekey_bytes":   vol(&c.RekeyBytes, "rekey_bytes"),
		"life_bytes":    vol(&c.LifeBytes, "life_bytes"),
		"rand_bytes":    vol(&c.RandBytes, "rand_bytes"),
		"rekey_packets": vol(&c.RekeyPackets, "rekey_packets"),
		"life_packets":  vol(&c.LifePackets, "life_packets"),
		"rand_packets":  vol(&c.RandPackets, "rand_packets"),
		"replay_window": func(v *yaml.Node, p string) {
			d.uintRange(v, p, 0, 1<<20, func(x uint64) { c.ReplayWindow = uint32(x) })
		},
	}, unsupportedChildKeys)

	// Derived defaults, as swanctl.conf(5): life_time is rekey_time + 10%, rand_time
	// the difference; the byte and packet limits alike.
	if !given["life_time"] {
		c.LifeTime = c.RekeyTime + c.RekeyTime/10
	}
	if !given["rand_time"] && c.LifeTime > c.RekeyTime {
		c.RandTime = c.LifeTime - c.RekeyTime
		if c.RandTime >= c.RekeyTime {
			c.RandTime = c.RekeyTime / 10 // a derived default never makes the file invalid
		}
	}
	if c.RekeyTime > 0 && c.LifeTime <= c.RekeyTime {
		d.errAt(join(path, "life_time"), "must be greater than rekey_time (%v), got %v", fmtDur(c.RekeyTime), fmtDur(c.LifeTime))
	} else if c.RekeyTime > 0 && c.RandTime >= c.RekeyTime {
		d.errAt(join(path, "rand_time"), "must be less than rekey_time (%v), got %v", fmtDur(c.RekeyTime), fmtDur(c.RandTime))
	}
	volumes := func(rekey, life, rand *uint64, kind string) {
		if !given["life_"+kind] && *rekey != 0 {
			*life = *rekey + *rekey/10
		}
		if !given["rand_"+kind] && *life > *rekey && *rekey != 0 {
			*rand = *life - *rekey
		}
		if *rekey != 0 && *life != 0 && *life <= *rekey {
			d.errAt(join(path, "life_"+kind), "must be greater than rekey_%s (%d), got %d", kind, *rekey, *life)
		}
	}
	volumes(&c.RekeyBytes, &c.LifeBytes, &c.RandBytes, "bytes")
	volumes(&c.RekeyPackets, &c.LifePackets, &c.RandPackets, "packets")
	return c
}

// secrets decodes the secrets: section. Only ike<suffix> sections exist in cygnet.
func (d *decoder) secrets(n *yaml.Node, path, dir string, opts Options) []*Secret {
	es, ok := d.entries(n, path)
	if !ok {
		return nil
	}
	var out []*Secret
	before := len(d.errs)
	defer func() {
		if len(d.errs) > before {
			d.badSecrets = true
		}
	}()
	for _, e := range es {
		p := join(path, e.key)
		d.lines[p] = e.line
		if !strings.HasPrefix(e.key, "ike") {
			kind := e.key
			for _, k := range []string{"eap", "xauth", "ntlm", "rsa", "ecdsa", "pkcs8", "pkcs12", "private", "token", "ppk"} {
				if strings.HasPrefix(e.key, k) {
					kind = k
				}
			}
			d.errorf(e.line, p, "expected an ike<suffix> section holding a pre-shared key (like ike-ab), got %q: %s secrets are not supported", e.key, kind)
			continue
		}
		if s := d.secret(e.key, e.val, p, e.line, dir, opts); s != nil {
			out = append(out, s)
		}
	}
	return out
}

func (d *decoder) secret(name string, n *yaml.Node, path string, line int, dir string, opts Options) *Secret {
	s := &Secret{Name: name}
	var inline, file string
	var hasInline, hasFile bool
	es, ok := d.entries(n, path)
	if !ok {
		return nil
	}
	for _, e := range es {
		p := join(path, e.key)
		d.lines[p] = e.line
		switch {
		case e.key == "secret":
			// Never echo the value: scalar() only describes non-scalars.
			if v, ok := d.scalar(e.val, p, "the pre-shared key (a string, 0x<hex> or 0s<base64>)"); ok {
				inline, hasInline = v, true
			}
		case e.key == "secret_file":
			if v, ok := d.scalar(e.val, p, "a file path"); ok {
				file, hasFile = v, true
			}
		case strings.HasPrefix(e.key, "id"):
			ids, _ := eachOf(d, e.val, p, "identities", ParseIdentity)
			s.IDs = append(s.IDs, ids...)
		default:
			d.errorf(e.line, p, "unknown key (expected secret, secret_file or id<suffix>)")
		}
	}
	switch {
	case hasInline && hasFile:
		d.errorf(line, path, "give either secret or secret_file, not both")
		return nil
	case hasInline:
		key, err := parsePSK(inline)
		if err != nil {
			d.errorf(d.lines[join(path, "secret")], join(path, "secret"), "%v", err)
			return nil
		}
		s.PSK = logging.NewSecret(key)
	case hasFile:
		fp := join(path, "secret_file")
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		key, err := readSecretFile(file, opts.SecretOwner)
		if err != nil {
			d.errorf(d.lines[fp], fp, "%v", err)
			return nil
		}
		s.PSK, s.File = logging.NewSecret(key), file
	default:
		d.errorf(line, path, "expected secret or secret_file, got neither")
		return nil
	}
	return s
}

// readSecretFile reads a PSK from a file that only its owner (owner, normally root) can
// read or write. Trailing newlines are ignored; the content may use 0x/0s like secret.
func readSecretFile(path string, owner int) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %s", path, errText(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s is accessible by group or others (mode %04o): chmod 600 %s", path, perm, path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != owner {
		return nil, fmt.Errorf("%s is owned by uid %d, expected uid %d (root): chown it", path, st.Uid, owner)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %s", path, errText(err))
	}
	key, err := parsePSK(strings.TrimRight(string(data), "\r\n"))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return key, nil
}

// Defaults for connections and children, as strongSwan 5.9 (swanctl.conf(5)).
const (
	DefaultIKERekeyTime   = 4 * time.Hour
	DefaultChildRekeyTime = time.Hour
	DefaultReplayWindow   = 32
)
