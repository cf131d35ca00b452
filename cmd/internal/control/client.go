package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// DefaultSocket is where cygnetd listens unless configured otherwise.
const DefaultSocket = "/run/cygnet/cygnet.sock"

// ErrNotRunning is returned (wrapped, with the socket path) when no daemon answers.
var ErrNotRunning = errors.New("cygnetd is not running")

// Client talks to cygnetd over its control socket: one connection per request. A
// request's context cancels it (the connection is closed; the daemon cancels the
// handler).
type Client struct {
	path string
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client { return &Client{path: path} }

// Path is the socket path.
func (c *Client) Path() string { return c.path }

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err == nil {
		return conn, nil
	}
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ENOENT):
		return nil, fmt.Errorf("%w (no socket at %s)", ErrNotRunning, c.path)
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("%w (stale socket at %s)", ErrNotRunning, c.path)
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EACCES):
		return nil, &Error{Code: CodePermissionDenied, Message: fmt.Sprintf("permission denied on %s: run cygnetctl as root", c.path)}
	}
	return nil, fmt.Errorf("connect to cygnetd at %s: %w", c.path, err)
}

// stream is one request in flight.
type stream struct {
	conn net.Conn
	r    *bufio.Reader
	stop func() bool
}

func (c *Client) start(ctx context.Context, req Request) (*stream, error) {
	req.V = Version
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	line, err := json.Marshal(req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("encode request: %w", err)
	}
	s := &stream{conn: conn, r: bufio.NewReaderSize(conn, 256<<10)}
	if _, err := conn.Write(append(line, '\n')); err != nil {
		// The daemon may have answered and closed already (a refused peer): its answer
		// says more than the write error.
		if answer, rerr := s.r.ReadSlice('\n'); rerr == nil {
			conn.Close()
			if terr := terminal(answer, nil); terr != nil {
				return nil, terr
			}
		}
		conn.Close()
		return nil, fmt.Errorf("send request to cygnetd: %w", err)
	}
	s.stop = context.AfterFunc(ctx, func() { conn.Close() })
	return s, nil
}

func (s *stream) close() {
	s.stop()
	s.conn.Close()
}

// terminal decodes a terminal line into result (or the error it carries).
func terminal(line []byte, result any) error {
	var t struct {
		V     int             `json:"v"`
		OK    json.RawMessage `json:"ok"`
		Error *Error          `json:"error"`
	}
	if err := json.Unmarshal(line, &t); err != nil {
		return fmt.Errorf("bad answer from cygnetd: %v", err)
	}
	if t.Error != nil {
		return t.Error
	}
	if t.V != Version {
		return fmt.Errorf("cygnetd speaks protocol version %d, cygnetctl %d", t.V, Version)
	}
	if t.OK == nil {
		return fmt.Errorf("bad answer from cygnetd: neither ok nor error: %.200s", line)
	}
	if result != nil {
		if err := json.Unmarshal(t.OK, result); err != nil {
			return fmt.Errorf("bad result from cygnetd: %v", err)
		}
	}
	return nil
}

// run sends req, passes each item line's value (the raw JSON after {"<kind>":) to
// onItem, and decodes the terminal result.
func (c *Client) run(ctx context.Context, req Request, kind string, onItem func(raw []byte) error, result any) error {
	return c.runReady(ctx, req, nil, kind, onItem, result)
}

// runReady is run with ready called when the daemon says a watch is in place.
func (c *Client) runReady(ctx context.Context, req Request, ready func(), kind string, onItem func(raw []byte) error, result any) error {
	s, err := c.start(ctx, req)
	if err != nil {
		return err
	}
	defer s.close()
	prefix := []byte(`{"` + kind + `":`)
	for {
		line, err := s.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			var long []byte
			long = append(long, line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = s.r.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return errors.New("cygnetd closed the connection before answering")
			}
			return fmt.Errorf("read from cygnetd: %w", err)
		}
		if kind != "" && bytes.HasPrefix(line, prefix) {
			raw := bytes.TrimSuffix(bytes.TrimSuffix(line[len(prefix):], []byte("\n")), []byte("}"))
			if err := onItem(raw); err != nil {
				return err
			}
			continue
		}
		if bytes.HasPrefix(line, []byte(`{"watching":`)) {
			if ready != nil {
				ready()
			}
			continue
		}
		return terminal(line, result)
	}
}

// ListConns calls fn for each configured connection.
func (c *Client) ListConns(ctx context.Context, fn func(*Conn) error) error {
	return c.run(ctx, Request{Cmd: CmdListConns}, "conn", func(raw []byte) error {
		var conn Conn
		if err := json.Unmarshal(raw, &conn); err != nil {
			return fmt.Errorf("bad connection record from cygnetd: %v", err)
		}
		return fn(&conn)
	}, nil)
}

// ListSAs calls fn for each IKE SA matching filter; fn may keep the *IKESA.
func (c *Client) ListSAs(ctx context.Context, filter SAFilter, fn func(*IKESA) error) error {
	return c.run(ctx, Request{Cmd: CmdListSAs, IKE: filter.IKE, IKEID: filter.IKEID}, "sa", func(raw []byte) error {
		sa := new(IKESA)
		if err := DecodeIKESA(raw, sa); err != nil {
			return fmt.Errorf("bad SA record from cygnetd: %v", err)
		}
		return fn(sa)
	}, nil)
}

// ListSAsRaw calls fn with each IKE SA's JSON object as the daemon encoded it (valid
// until fn returns); cygnetctl list-sas --json copies these without decoding.
func (c *Client) ListSAsRaw(ctx context.Context, filter SAFilter, fn func(raw []byte) error) (int, error) {
	var done Done
	err := c.run(ctx, Request{Cmd: CmdListSAs, IKE: filter.IKE, IKEID: filter.IKEID}, "sa", fn, &done)
	return done.Count, err
}

// Initiate asks the daemon to initiate t and waits for the outcome.
func (c *Client) Initiate(ctx context.Context, t Target) (Done, error) {
	return c.act(ctx, CmdInitiate, t)
}

// Terminate asks the daemon to delete the SAs of t.
func (c *Client) Terminate(ctx context.Context, t Target) (Done, error) {
	return c.act(ctx, CmdTerminate, t)
}

// Rekey asks the daemon to rekey the SAs of t.
func (c *Client) Rekey(ctx context.Context, t Target) (Done, error) {
	return c.act(ctx, CmdRekey, t)
}

func (c *Client) act(ctx context.Context, cmd Command, t Target) (Done, error) {
	var done Done
	err := c.run(ctx, Request{Cmd: cmd, IKE: t.IKE, Child: t.Child, IKEID: t.IKEID, ChildID: t.ChildID}, "", nil, &done)
	return done, err
}

// Reload asks the daemon to reload its configuration.
func (c *Client) Reload(ctx context.Context) (*ReloadResult, error) {
	var r ReloadResult
	if err := c.run(ctx, Request{Cmd: CmdReload}, "", nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Stats returns the daemon's counters.
func (c *Client) Stats(ctx context.Context) (*Stats, error) {
	var s Stats
	if err := c.run(ctx, Request{Cmd: CmdStats}, "", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Watch calls fn for each SA event until ctx ends (then it returns ctx.Err()), fn
// returns an error, or the daemon ends the stream.
func (c *Client) Watch(ctx context.Context, fn func(*Event) error) error {
	return c.WatchReady(ctx, nil, fn)
}

// WatchReady is Watch with ready called once the daemon's watch is in place (every
// event from then on is delivered), before the first event.
func (c *Client) WatchReady(ctx context.Context, ready func(), fn func(*Event) error) error {
	return c.runReady(ctx, Request{Cmd: CmdWatch}, ready, "event", func(raw []byte) error {
		var e Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("bad event from cygnetd: %v", err)
		}
		return fn(&e)
	}, nil)
}

// DebugKill asks a chaos-enabled daemon to kill an actor.
func (c *Client) DebugKill(ctx context.Context, actor string) error {
	return c.run(ctx, Request{Cmd: CmdDebugKill, Actor: actor}, "", nil, nil)
}

// DebugKernelSAs calls fn for every SA of a chaos-enabled daemon's in-memory kernel,
// keys included.
func (c *Client) DebugKernelSAs(ctx context.Context, fn func(*KernelSA) error) error {
	return c.run(ctx, Request{Cmd: CmdDebugKernelSAs}, "kernel_sa", func(raw []byte) error {
		var sa KernelSA
		if err := json.Unmarshal(raw, &sa); err != nil {
			return fmt.Errorf("bad kernel SA record from cygnetd: %v", err)
		}
		return fn(&sa)
	}, nil)
}

// DebugKernelFail makes a chaos-enabled daemon's in-memory kernel refuse its next
// installs installs (0 clears the injected faults).
func (c *Client) DebugKernelFail(ctx context.Context, installs int) error {
	return c.run(ctx, Request{Cmd: CmdDebugKernelFail, Installs: installs}, "", nil, nil)
}
