// Command cygnetd is cygnet's IKEv2 keying daemon (RFC 7296): it reads one YAML
// configuration file (swanctl.conf's vocabulary, cmd/internal/config), runs the actor
// tree (package actors) over the kernel's IPsec tables, and serves a control socket
// (cmd/internal/control, used by cygnetctl) and Prometheus /metrics.
//
//	cygnetd [--config FILE] [--kernel auto|xfrm|memory] [--chaos]
//	        [--log-level LEVEL] [--log-format json|console] [--check]
//
// Contract:
//   - A configuration that does not load at start ends cygnetd with exit status 1 and
//     every problem on stderr as "file:line: key.path: message". --check loads and
//     checks the file, prints the result and exits (0 when it is good).
//   - The kernel backend is XFRM when the kernel can install an ESP state (probed in a
//     throw-away network namespace) and the in-memory kernel otherwise; one log line says
//     which and why. --kernel (or daemon.kernel) overrides the choice.
//   - At start, kernel state a previous run left (tagged SAs and policies) is removed
//     before anything is installed; connections with start_action start are initiated,
//     those with trap get their trap policies.
//   - SIGHUP re-reads the configuration (as `cygnetctl reload` does): a file that does
//     not load changes nothing and the log says why; added, removed and changed
//     connections take effect; SAs of unchanged connections are not touched.
//   - SIGTERM or SIGINT stops gracefully: every IKE SA is deleted with its peer and its
//     Child SAs leave the kernel, within a bounded time (about 10 s). A second signal
//     exits at once.
//   - --chaos (or daemon.chaos) enables the control API's debug-kill.
//   - Pre-shared keys are looked up by the IKE SA's identities at IKE_AUTH (keys.go):
//     a connection with remote id %any serves each peer with that peer's own secret.
//     A reload that changes only secrets does not touch established SAs.
//   - Every log line follows its subsystem's level (daemon.log.subsystems), the actor
//     tree's included (logging.Tree).
//   - daemon.debug_address (off by default) serves Go's profiler on its own listener;
//     daemon.gc_percent and daemon.memory_limit set the garbage collector at start and
//     at every reload (goruntime.go), Go's own settings when unset.
//
// Exit status: 0 after a graceful stop, 1 on an error (bad configuration at start, a
// socket that cannot be bound, a stop that was cut short), 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"go.uber.org/zap"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/config"
	"github.com/cygnet-ipsec/cygnet/cmd/internal/logging"
)

// defaultConfig is where cygnetd looks without --config.
const defaultConfig = "/etc/cygnet/cygnet.yaml"

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// buildVersion is set with -ldflags "-X main.buildVersion=…"; otherwise the module
// version from the build info is used.
var buildVersion string

func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cygnetd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		path  string
		o     overrides
		check bool
		ver   bool
	)
	fs.StringVar(&path, "config", defaultConfig, "configuration `file` (YAML, swanctl.conf vocabulary)")
	fs.StringVar(&o.kernel, "kernel", "", "kernel `backend`: auto, xfrm or memory (default: daemon.kernel, else auto)")
	fs.BoolVar(&o.chaos, "chaos", false, "enable debug-kill on the control socket (chaos testing)")
	fs.StringVar(&o.logLevel, "log-level", "", "log `level` for every subsystem: debug, info, warn or error (default: daemon.log)")
	fs.StringVar(&o.logFormat, "log-format", "", "log `format`: json or console (default: daemon.log.format)")
	fs.BoolVar(&check, "check", false, "check the configuration file and exit")
	fs.BoolVar(&ver, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cygnetd: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	if ver {
		fmt.Fprintln(stdout, "cygnetd", version())
		return exitOK
	}
	if err := o.apply(&config.Config{}); err != nil {
		fmt.Fprintf(stderr, "cygnetd: %v\n", err)
		return exitUsage
	}

	goBase := currentGoRuntime() // before anything changes the GC settings
	keys := &keyring{}
	cfg, conns, err := loadConfig(path, o, keys)
	if err != nil {
		fmt.Fprintf(stderr, "cygnetd: the configuration does not load:\n%v\n", err)
		return exitError
	}
	if check {
		fmt.Fprintf(stdout, "%s: configuration OK (%d connections)\n", path, len(cfg.Connections))
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
		return exitOK
	}

	opts := cfg.Daemon.Log.Options()
	opts.Output = stderr
	logs, err := logging.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "cygnetd: %v\n", err)
		return exitError
	}
	defer func() { _ = logs.Sync() }()

	// Signals are caught before anything starts, so that an early SIGTERM is not lost.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	d, err := start(path, o, logs, cfg, conns, keys, goBase)
	if err != nil {
		logs.Daemon().Error("cygnetd could not start", zap.Error(err))
		return exitError
	}
	return d.serve(sigs)
}

// serve runs until a stop signal or the actor tree's death, and returns the exit status.
func (d *daemon) serve(sigs <-chan os.Signal) int {
	for {
		select {
		case <-d.m.Done():
			d.log.Error("the actor tree stopped unexpectedly; exiting")
			d.cancel()
			d.bg.Wait()
			_ = d.backend.k.Close()
			return exitError
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				d.log.Info("SIGHUP: reloading the configuration")
				if _, err := d.reload(context.Background()); err != nil {
					d.log.Warn("reload refused; the running configuration stays in place")
				}
				continue
			}
			d.log.Info("stop requested", zap.String("signal", sig.String()))
			again := make(chan struct{})
			go func() {
				for s := range sigs {
					if s != syscall.SIGHUP {
						close(again)
						return
					}
				}
			}()
			return d.shutdown(again)
		}
	}
}
