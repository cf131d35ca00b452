package netns

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
const stopGrace = 10 * time.Second

// Command describes a long-running process to start inside a namespace.
type Command struct {
	// Path and Args are the program and its arguments (Args without argv[0]).
	Path string
	Args []string
	// Env is added to the test process's environment.
	Env []string
	// PrivateRun, if set, is a directory bind-mounted on /run in the process's own
	// mount namespace (which `ip netns exec` creates) before the program starts:
	// programs that hard-code /run paths (charon's pid file) then never meet
	// another instance.
	PrivateRun string
	// Stdout and Stderr receive the process's output; nil discards it.
	Stdout, Stderr io.Writer
}

// Proc is a process started in a namespace, known by its PID.
type Proc struct {
	// Pid is the process's ID; `ip netns exec` and the PrivateRun shell both exec
	// into the program, so it is the program's own PID.
	Pid  int
	Name string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid after done is closed
}

// Start starts cmd inside the namespace. The process is stopped by its PID at test
// cleanup if it is still running then.
func (ns *NS) Start(c Command) (*Proc, error) {
	args := []string{"netns", "exec", ns.Name}
	if c.PrivateRun != "" {
		// $0 is the directory, "$@" the program and its arguments.
		args = append(args, "sh", "-c", `mount --bind "$0" /run && exec "$@"`, c.PrivateRun)
	}
	args = append(args, c.Path)
	args = append(args, c.Args...)
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdout, cmd.Stderr = c.Stdout, c.Stderr
	// Own process group, so a terminal's signals meant for `go test` do not reach
	// it before cleanup does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("netns %s: start %s: %w", ns.Name, c.Path, err)
	}
	p := &Proc{Pid: cmd.Process.Pid, Name: c.Path, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	ns.mu.Lock()
	ns.procs = append(ns.procs, p)
	ns.mu.Unlock()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and if so how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the process by its PID, waits up to a grace period, then
// sends SIGKILL. It returns once the process has been reaped. Stopping an exited
// process is a no-op. The exit status of a process that ended on our signal is not
// an error.
func (p *Proc) Stop() error {
	if exited, _ := p.Exited(); exited {
		return nil
	}
	if err := syscall.Kill(p.Pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s (pid %d): SIGTERM: %w", p.Name, p.Pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopGrace):
	}
	if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s (pid %d): SIGKILL: %w", p.Name, p.Pid, err)
	}
	<-p.done
	return fmt.Errorf("stop %s (pid %d): %w after %v", p.Name, p.Pid, ErrKilled, stopGrace)
}

// ErrKilled says a process ignored SIGTERM for the grace period and was killed
// with SIGKILL: worth a log line, not a test failure (a loaded machine is slow).
var ErrKilled = errors.New("no exit on SIGTERM, killed")

// stopAll stops every process started in the namespace, reporting failures to tb.
func (ns *NS) stopAll() {
	ns.mu.Lock()
	procs := ns.procs
	ns.procs = nil
	ns.mu.Unlock()
	var errs []string
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].Stop(); errors.Is(err, ErrKilled) {
			ns.tb.Logf("netns %s: %v", ns.Name, err)
		} else if err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		ns.tb.Errorf("netns %s: %s", ns.Name, strings.Join(errs, "; "))
	}
}
