// Package controltest provides a fake control.Handler for tests of the control socket
// and of cygnetctl: it sits exactly at the Handler seam, so the server, the protocol and
// the client all run for real.
package controltest

import (
	"context"
	"fmt"
	"sync"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
)

// Fake is a scripted daemon. Set the fields before serving; Calls records every call
// as "<cmd> <target>" in order.
type Fake struct {
	Conns []control.Conn
	// SAs is returned by ListSAs (filtered by connection name or ID); when SAFunc is set
	// it generates n SAs instead, without holding them all in memory.
	SAs     []control.IKESA
	SAFunc  func(i int, sa *control.IKESA)
	SACount int

	// Events are emitted by Watch in order; then Watch waits for its context to end.
	Events   []control.Event
	Reloaded *control.ReloadResult
	// ReloadErr, when set, is returned by Reload.
	ReloadErr  error
	StatsValue control.Stats
	// Actors are the names DebugKill accepts.
	Actors []string
	// KernelSAs are what DebugKernelSAs emits; FailedInstalls is the last count
	// DebugKernelFail was given.
	KernelSAs      []control.KernelSA
	FailedInstalls int

	mu    sync.Mutex
	calls []string
	// Watching is closed when Watch has emitted Events and waits; WatchEnded when its
	// context ended.
	Watching, WatchEnded chan struct{}
}

var (
	_ control.Handler        = (*Fake)(nil)
	_ control.Killer         = (*Fake)(nil)
	_ control.KernelDebugger = (*Fake)(nil)
)

// NewFake returns a Fake with its channels made.
func NewFake() *Fake {
	return &Fake{Watching: make(chan struct{}), WatchEnded: make(chan struct{})}
}

func (f *Fake) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// Calls returns the calls made so far.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *Fake) knownConn(name string) bool {
	for _, c := range f.Conns {
		if c.Name == name {
			return true
		}
	}
	return false
}

func (f *Fake) knownChild(name string) bool {
	for _, c := range f.Conns {
		for _, ch := range c.Children {
			if ch.Name == name {
				return true
			}
		}
	}
	return false
}

func (f *Fake) check(t control.Target) error {
	if t.IKE != "" && !f.knownConn(t.IKE) {
		return control.Errorf(control.CodeUnknownConnection, "no connection named %q", t.IKE)
	}
	if t.Child != "" && !f.knownChild(t.Child) {
		return control.Errorf(control.CodeUnknownChild, "no child named %q", t.Child)
	}
	return nil
}

func (f *Fake) ListConns(ctx context.Context, emit func(*control.Conn) error) error {
	f.record("list-conns")
	for i := range f.Conns {
		if err := emit(&f.Conns[i]); err != nil {
			return err
		}
	}
	return nil
}

func (f *Fake) ListSAs(ctx context.Context, filter control.SAFilter, emit func(*control.IKESA) error) error {
	f.record("list-sas %s", control.Target{IKE: filter.IKE, IKEID: filter.IKEID})
	if filter.IKE != "" && !f.knownConn(filter.IKE) {
		return control.Errorf(control.CodeUnknownConnection, "no connection named %q", filter.IKE)
	}
	if f.SAFunc != nil {
		var sa control.IKESA
		for i := range f.SACount {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			f.SAFunc(i, &sa)
			if err := emit(&sa); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range f.SAs {
		sa := &f.SAs[i]
		if (filter.IKE != "" && sa.Conn != filter.IKE) || (filter.IKEID != 0 && sa.UniqueID != filter.IKEID) {
			continue
		}
		if err := emit(sa); err != nil {
			return err
		}
	}
	return nil
}

func (f *Fake) Initiate(ctx context.Context, t control.Target) (control.Done, error) {
	f.record("initiate %s", t)
	if err := f.check(t); err != nil {
		return control.Done{}, err
	}
	return control.Done{Count: 1}, nil
}

func (f *Fake) Terminate(ctx context.Context, t control.Target) (control.Done, error) {
	f.record("terminate %s", t)
	if err := f.check(t); err != nil {
		return control.Done{}, err
	}
	return control.Done{Count: 2}, nil
}

func (f *Fake) Rekey(ctx context.Context, t control.Target) (control.Done, error) {
	f.record("rekey %s", t)
	if err := f.check(t); err != nil {
		return control.Done{}, err
	}
	return control.Done{Count: 1}, nil
}

func (f *Fake) Reload(ctx context.Context) (*control.ReloadResult, error) {
	f.record("reload")
	if f.ReloadErr != nil {
		return nil, f.ReloadErr
	}
	if f.Reloaded != nil {
		return f.Reloaded, nil
	}
	return &control.ReloadResult{}, nil
}

func (f *Fake) Stats(ctx context.Context) (*control.Stats, error) {
	f.record("stats")
	s := f.StatsValue
	return &s, nil
}

func (f *Fake) Watch(ctx context.Context, emit func(*control.Event) error) error {
	f.record("watch")
	for i := range f.Events {
		if err := emit(&f.Events[i]); err != nil {
			return err
		}
	}
	if f.Watching != nil {
		close(f.Watching)
	}
	<-ctx.Done()
	if f.WatchEnded != nil {
		close(f.WatchEnded)
	}
	return nil
}

func (f *Fake) DebugKill(ctx context.Context, actor string) error {
	f.record("debug-kill %s", actor)
	for _, a := range f.Actors {
		if a == actor {
			return nil
		}
	}
	return control.Errorf(control.CodeUnknownActor, "no actor named %q", actor)
}

func (f *Fake) DebugKernelSAs(ctx context.Context, emit func(*control.KernelSA) error) error {
	f.record("debug-kernel-sas")
	for i := range f.KernelSAs {
		if err := emit(&f.KernelSAs[i]); err != nil {
			return err
		}
	}
	return nil
}

func (f *Fake) DebugKernelFail(ctx context.Context, installs int) error {
	f.record("debug-kernel-fail %d", installs)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.FailedInstalls = installs
	return nil
}
