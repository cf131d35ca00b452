// Package control is cygnetd's control socket: a Unix stream socket (mode 0600, root
// only, the peer checked with SO_PEERCRED) carrying newline-delimited JSON, and the
// client cygnetctl uses.
//
// Protocol (version 1). The client connects, writes one request line and reads lines
// until a terminal line; then either side closes.
//
//	→ {"v":1,"cmd":"list-sas","ike":"ab"}
//	← {"sa":{…}}                              zero or more items (list-conns: "conn",
//	← {"sa":{…}}                              list-sas: "sa", watch: "event")
//	← {"v":1,"ok":{"count":2}}                terminal: success and its result, or
//	← {"v":1,"error":{"code":"unknown-connection","message":"no connection named \"x\""}}
//
// Commands: list-conns, list-sas, initiate, terminate, rekey, reload, stats, watch (a
// stream of SA events that ends when the client closes) and debug-kill (only when the
// daemon runs with chaos enabled; otherwise it is an unknown command), and with chaos
// and an in-memory kernel, debug-kernel-sas (the SAD with its keys, for tests that
// decrypt traffic) and debug-kernel-fail (make the kernel refuse installs). A request with
// another "v" is answered with the unsupported-version error.
//
// Contract: the daemon implements Handler; the Server owns the socket, the protocol,
// peer checks, cancellation (a client that hangs up cancels its request's context) and
// encoding. list-sas items are encoded by hand (AppendJSON) because a concentrator
// lists 100,000 IKE SAs at once.
package control

import (
	"errors"
	"fmt"
)

// Version is the protocol version this package speaks.
const Version = 1

// Command names a request.
type Command string

const (
	CmdListConns Command = "list-conns"
	CmdListSAs   Command = "list-sas"
	CmdInitiate  Command = "initiate"
	CmdTerminate Command = "terminate"
	CmdRekey     Command = "rekey"
	CmdReload    Command = "reload"
	CmdStats     Command = "stats"
	CmdWatch     Command = "watch"
	CmdDebugKill Command = "debug-kill"
	// CmdDebugKernelSAs and CmdDebugKernelFail exist only with chaos enabled and a
	// handler that implements KernelDebugger (cygnetd with the in-memory kernel).
	CmdDebugKernelSAs  Command = "debug-kernel-sas"
	CmdDebugKernelFail Command = "debug-kernel-fail"
)

func (c Command) String() string { return string(c) }

// Request is one request line. IKE and Child name a connection / child from the
// configuration; IKEID and ChildID name one SA by its unique ID (as list-sas prints it).
// Actor names an actor for debug-kill.
type Request struct {
	V       int     `json:"v"`
	Cmd     Command `json:"cmd"`
	IKE     string  `json:"ike,omitempty"`
	Child   string  `json:"child,omitempty"`
	IKEID   uint64  `json:"ike_id,omitempty"`
	ChildID uint64  `json:"child_id,omitempty"`
	Actor   string  `json:"actor,omitempty"`
	// Installs is debug-kernel-fail's count: the kernel's next Installs installs fail
	// (0 clears every injected fault).
	Installs int `json:"installs,omitempty"`
}

// KernelSA is one SAD entry of the in-memory kernel as debug-kernel-sas reports it,
// keys included (chaos testing only: a test decrypts captured ESP with them).
type KernelSA struct {
	SPI      uint32 `json:"spi"`
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	Reqid    uint32 `json:"reqid"`
	Encr     string `json:"encr"`
	EncrKey  string `json:"encr_key"` // hex, with the salt for AEAD transforms
	Integ    string `json:"integ,omitempty"`
	IntegKey string `json:"integ_key,omitempty"`
	Encap    bool   `json:"encap"`
}

// Target is what initiate, terminate and rekey act on: by name (IKE = connection,
// Child = child) or by unique SA ID.
type Target struct {
	IKE     string
	Child   string
	IKEID   uint64
	ChildID uint64
}

func (t Target) String() string {
	switch {
	case t.ChildID != 0:
		return fmt.Sprintf("child SA #%d", t.ChildID)
	case t.IKEID != 0:
		return fmt.Sprintf("IKE SA #%d", t.IKEID)
	case t.Child != "":
		return fmt.Sprintf("child %q", t.Child)
	case t.IKE != "":
		return fmt.Sprintf("connection %q", t.IKE)
	}
	return "nothing"
}

// SAFilter narrows list-sas: by connection name, or by IKE SA unique ID. The zero value
// lists every IKE SA.
type SAFilter struct {
	IKE   string
	IKEID uint64
}

// ErrorCode classifies an error answer; cygnetctl maps codes to messages and exit codes.
type ErrorCode string

const (
	CodeBadRequest         ErrorCode = "bad-request"
	CodeUnsupportedVersion ErrorCode = "unsupported-version"
	CodeUnknownCommand     ErrorCode = "unknown-command"
	CodeUnknownConnection  ErrorCode = "unknown-connection"
	CodeUnknownChild       ErrorCode = "unknown-child"
	CodeUnknownSA          ErrorCode = "unknown-sa"
	CodeUnknownActor       ErrorCode = "unknown-actor"
	CodeReloadFailed       ErrorCode = "reload-failed"
	CodePermissionDenied   ErrorCode = "permission-denied"
	CodeFailed             ErrorCode = "failed" // the operation ran and failed (initiate timed out, …)
	CodeShuttingDown       ErrorCode = "shutting-down"
	CodeInternal           ErrorCode = "internal" // anything else the handler returned
)

// Error is an error answer. Handlers return it (Errorf) to choose the code; any other
// error becomes CodeInternal with the error's text.
type Error struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Errorf builds an *Error.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// IsCode reports whether err is an *Error with the given code.
func IsCode(err error, code ErrorCode) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}
