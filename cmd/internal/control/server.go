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
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Handler is what the daemon implements; the Server calls it once per request, from the
// connection's goroutine, with a context that ends when the client hangs up or the
// server closes. Returned errors of type *Error reach the client with their code; any
// other error becomes CodeInternal.
//
// Streaming methods call emit once per item; emit returns an error when the client is
// gone (stop then and return it). emit may block while the client reads slowly, so
// handlers must not hold locks that the daemon's actors need while calling it.
type Handler interface {
	// ListConns emits every configured connection, in file order.
	ListConns(ctx context.Context, emit func(*Conn) error) error
	// ListSAs emits every IKE SA matching filter, with its Child SAs.
	ListSAs(ctx context.Context, filter SAFilter, emit func(*IKESA) error) error
	// Initiate starts the target (a connection's IKE SA, or a child and, if needed, its
	// IKE SA) and returns when it is established or has failed.
	Initiate(ctx context.Context, t Target) (Done, error)
	// Terminate deletes the targeted SAs (RFC 7296 §1.4.1) and returns how many.
	Terminate(ctx context.Context, t Target) (Done, error)
	// Rekey rekeys the targeted SAs (RFC 7296 §1.3.2, §1.3.3) and returns how many.
	Rekey(ctx context.Context, t Target) (Done, error)
	// Reload re-reads the configuration; on error the running configuration stays.
	Reload(ctx context.Context) (*ReloadResult, error)
	// Stats returns the daemon's counters.
	Stats(ctx context.Context) (*Stats, error)
	// Watch emits SA events until ctx ends; it returns nil then.
	Watch(ctx context.Context, emit func(*Event) error) error
}

// Killer is implemented by handlers that support debug-kill (chaos testing): stop the
// named actor as if it had crashed. The command exists only when the Server's
// Options.Chaos is set AND the handler implements Killer.
type Killer interface {
	DebugKill(ctx context.Context, actor string) error
}

// KernelDebugger is implemented by handlers whose kernel can be inspected and told to
// fail (the in-memory kernel). Its commands exist only when Options.Chaos is set AND
// the handler implements it; a handler returns CodeUnknownCommand when its kernel
// cannot (XFRM).
type KernelDebugger interface {
	// DebugKernelSAs emits every SA of the kernel's SAD, keys included.
	DebugKernelSAs(ctx context.Context, emit func(*KernelSA) error) error
	// DebugKernelFail makes the next installs installs fail (0 clears the faults).
	DebugKernelFail(ctx context.Context, installs int) error
}

// Options configure a Server.
type Options struct {
	// Chaos enables debug-kill.
	Chaos bool
	// Authorize decides whether a peer may talk to the daemon; the default allows uid 0
	// only. It sees the peer's credentials from SO_PEERCRED.
	Authorize func(*unix.Ucred) error
	// MaxConns bounds concurrent clients (default 64); more wait in the accept queue.
	MaxConns int
	// Log receives one line per refused peer and per internal error; default none.
	Log *zap.Logger
}

// RootOnly is the default Authorize: only uid 0 may use the socket.
func RootOnly(c *unix.Ucred) error {
	if c.Uid != 0 {
		return Errorf(CodePermissionDenied, "permission denied: uid %d is not root", c.Uid)
	}
	return nil
}

// Server serves the control socket.
type Server struct {
	h    Handler
	opts Options
	ln   *net.UnixListener
	path string
	log  *zap.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{}
}

// maxRequest bounds a request line.
const maxRequest = 64 << 10

// Listen creates the socket at path (mode 0600) and returns a Server ready to Serve. A
// stale socket left by a dead daemon is replaced; a live one is an error, so two daemons
// never share a socket. The directory is created (mode 0700) if missing.
func Listen(path string, h Handler, opts Options) (*Server, error) {
	if opts.Authorize == nil {
		opts.Authorize = RootOnly
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 64
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control: create socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control: another cygnetd is listening on %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control: remove stale socket: %w", err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: chmod socket: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{h: h, opts: opts, ln: ln, path: path, log: opts.Log, ctx: ctx, cancel: cancel,
		sem: make(chan struct{}, opts.MaxConns)}, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Serve accepts clients until ctx ends or Close is called, then cancels the requests in
// progress (watchers see the end of their stream), waits for them and removes the socket.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	for {
		select {
		case s.sem <- struct{}{}:
		case <-s.ctx.Done():
			s.wg.Wait()
			return nil
		}
		c, err := s.ln.AcceptUnix()
		if err != nil {
			<-s.sem
			if s.ctx.Err() != nil {
				s.wg.Wait()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.Close()
			s.wg.Wait()
			return fmt.Errorf("control: accept: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			s.serveConn(c)
		}()
	}
}

// Close stops accepting, cancels requests in progress and removes the socket. Serve
// returns after the requests have finished.
func (s *Server) Close() error {
	s.cancel()
	return s.ln.Close()
}

// conn is one client connection.
type conn struct {
	c   *net.UnixConn
	w   *bufio.Writer
	buf []byte
	err error // first write error; the client is gone
}

func (cn *conn) write(b []byte) error {
	if cn.err != nil {
		return cn.err
	}
	if cn.w.Available() < len(b) {
		cn.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	}
	if _, err := cn.w.Write(b); err != nil {
		cn.err = err
	}
	return cn.err
}

func (cn *conn) flush() error {
	if cn.err != nil {
		return cn.err
	}
	cn.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := cn.w.Flush(); err != nil {
		cn.err = err
	}
	return cn.err
}

// item writes one {"<kind>":<json>} line.
func (cn *conn) item(kind string, v any) error {
	cn.buf = append(cn.buf[:0], `{"`...)
	cn.buf = append(cn.buf, kind...)
	cn.buf = append(cn.buf, `":`...)
	var err error
	if sa, ok := v.(*IKESA); ok {
		cn.buf = sa.AppendJSON(cn.buf)
	} else {
		var j []byte
		j, err = json.Marshal(v)
		cn.buf = append(cn.buf, j...)
	}
	if err != nil {
		return fmt.Errorf("encode %s: %w", kind, err)
	}
	cn.buf = append(cn.buf, '}', '\n')
	return cn.write(cn.buf)
}

func (cn *conn) finish(result any, err error) {
	var line []byte
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Code: CodeInternal, Message: err.Error()}
		}
		line, _ = json.Marshal(struct {
			V     int    `json:"v"`
			Error *Error `json:"error"`
		}{Version, e})
	} else {
		if result == nil {
			result = struct{}{}
		}
		var merr error
		line, merr = json.Marshal(struct {
			V  int `json:"v"`
			OK any `json:"ok"`
		}{Version, result})
		if merr != nil {
			cn.finish(nil, fmt.Errorf("encode result: %w", merr))
			return
		}
	}
	_ = cn.write(append(line, '\n'))
	_ = cn.flush()
}

func (s *Server) serveConn(c *net.UnixConn) {
	defer c.Close()
	cn := &conn{c: c, w: bufio.NewWriterSize(c, 64<<10)}

	cred, err := peerCred(c)
	if err == nil {
		err = s.opts.Authorize(cred)
	}
	if err != nil {
		s.log.Warn("control: refused a client", zap.Error(err))
		if !IsCode(err, CodePermissionDenied) {
			err = Errorf(CodePermissionDenied, "permission denied: %v", err)
		}
		cn.finish(nil, err)
		return
	}

	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := readLine(bufio.NewReader(c), maxRequest)
	if err != nil {
		if len(line) > 0 || errors.Is(err, errTooLong) {
			cn.finish(nil, Errorf(CodeBadRequest, "bad request: %v", err))
		}
		return
	}
	c.SetReadDeadline(time.Time{})

	var req Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		cn.finish(nil, Errorf(CodeBadRequest, "bad request: %v", err))
		return
	}
	if req.V != Version {
		cn.finish(nil, Errorf(CodeUnsupportedVersion, "protocol version %d is not supported (this cygnetd speaks %d)", req.V, Version))
		return
	}

	// The request's context ends when the server closes or the client hangs up (a read
	// returns: clients send nothing after their request).
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	go func() {
		var one [1]byte
		_, _ = c.Read(one[:])
		cancel()
	}()

	result, err := s.dispatch(ctx, cn, &req)
	if err == nil && cn.err != nil {
		return // the client went away mid-stream
	}
	if (err != nil || req.Cmd == CmdWatch) && s.ctx.Err() != nil {
		err = Errorf(CodeShuttingDown, "cygnetd is shutting down")
	}
	if err != nil && !isClientError(err) {
		s.log.Warn("control: request failed", zap.String("cmd", string(req.Cmd)), zap.Error(err))
	}
	cn.finish(result, err)
}

func isClientError(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code != CodeInternal
}

func (s *Server) dispatch(ctx context.Context, cn *conn, req *Request) (any, error) {
	target := Target{IKE: req.IKE, Child: req.Child, IKEID: req.IKEID, ChildID: req.ChildID}
	needTarget := func() error {
		if target == (Target{}) {
			return Errorf(CodeBadRequest, "%s needs an ike or child name (or an SA id)", req.Cmd)
		}
		return nil
	}
	switch req.Cmd {
	case CmdListConns:
		n := 0
		err := s.h.ListConns(ctx, func(c *Conn) error { n++; return cn.item("conn", c) })
		return Done{Count: n}, err
	case CmdListSAs:
		n := 0
		err := s.h.ListSAs(ctx, SAFilter{IKE: req.IKE, IKEID: req.IKEID}, func(sa *IKESA) error { n++; return cn.item("sa", sa) })
		return Done{Count: n}, err
	case CmdInitiate:
		if err := needTarget(); err != nil {
			return nil, err
		}
		return s.h.Initiate(ctx, target)
	case CmdTerminate:
		if err := needTarget(); err != nil {
			return nil, err
		}
		return s.h.Terminate(ctx, target)
	case CmdRekey:
		if err := needTarget(); err != nil {
			return nil, err
		}
		return s.h.Rekey(ctx, target)
	case CmdReload:
		return s.h.Reload(ctx)
	case CmdStats:
		return s.h.Stats(ctx)
	case CmdWatch:
		// Tell the client the watch is in place before the first event.
		if err := cn.write([]byte(`{"watching":true}` + "\n")); err != nil {
			return nil, err
		}
		if err := cn.flush(); err != nil {
			return nil, err
		}
		err := s.h.Watch(ctx, func(e *Event) error {
			if err := cn.item("event", e); err != nil {
				return err
			}
			return cn.flush()
		})
		return nil, err
	case CmdDebugKill:
		k, ok := s.h.(Killer)
		if !s.opts.Chaos || !ok {
			break
		}
		if req.Actor == "" {
			return nil, Errorf(CodeBadRequest, "debug-kill needs an actor")
		}
		return nil, k.DebugKill(ctx, req.Actor)
	case CmdDebugKernelSAs:
		k, ok := s.h.(KernelDebugger)
		if !s.opts.Chaos || !ok {
			break
		}
		n := 0
		err := k.DebugKernelSAs(ctx, func(sa *KernelSA) error { n++; return cn.item("kernel_sa", sa) })
		return Done{Count: n}, err
	case CmdDebugKernelFail:
		k, ok := s.h.(KernelDebugger)
		if !s.opts.Chaos || !ok {
			break
		}
		if req.Installs < 0 {
			return nil, Errorf(CodeBadRequest, "debug-kernel-fail: installs must be 0 or more, got %d", req.Installs)
		}
		return nil, k.DebugKernelFail(ctx, req.Installs)
	}
	return nil, Errorf(CodeUnknownCommand, "unknown command %q", req.Cmd)
}

// peerCred reads the connecting process's credentials (SO_PEERCRED, unix(7)).
func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, fmt.Errorf("peer credentials: %w", err)
	}
	if cerr != nil {
		return nil, fmt.Errorf("peer credentials: %w", cerr)
	}
	return cred, nil
}

var errTooLong = fmt.Errorf("request line longer than %d bytes", maxRequest)

// readLine reads up to and including '\n', at most limit bytes.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		part, err := r.ReadSlice('\n')
		line = append(line, part...)
		if len(line) > limit {
			return line, errTooLong
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, errors.New("request line missing its newline")
		default:
			return line, err
		}
	}
}
