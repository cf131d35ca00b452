// Command cygnetctl controls a running cygnetd over its control socket, with swanctl's
// vocabulary: list-conns, list-sas, initiate, terminate, rekey, reload, stats, watch,
// and (when the daemon runs with chaos enabled) debug kill.
//
//	cygnetctl [--socket PATH] COMMAND [OPTIONS]
//
// Exit status: 0 on success, 1 when the daemon refused or the operation failed, 2 on a
// usage error, 3 when cygnetd is not running.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cygnet-ipsec/cygnet/cmd/internal/control"
)

// Exit codes.
const (
	exitOK         = 0
	exitFailed     = 1
	exitUsage      = 2
	exitNotRunning = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, time.Now))
}

const usage = `usage: cygnetctl [--socket PATH] COMMAND [OPTIONS]

commands:
  list-conns [--json]                      configured connections
  list-sas [--ike NAME | --ike-id N] [--json]
                                           IKE SAs and their Child SAs (--json: one
                                           JSON object per line)
  initiate --ike NAME | --child NAME       start an IKE SA / a Child SA
  terminate --ike NAME | --child NAME | --ike-id N | --child-id N
                                           delete SAs
  rekey --ike NAME | --child NAME | --ike-id N | --child-id N
                                           rekey SAs
  reload                                   re-read the configuration file
  stats [--json]                           daemon counters
  watch [--json]                           stream SA up/down events until interrupted
  debug kill ACTOR                         kill an actor (daemon.chaos: yes only)

The socket is --socket, else $CYGNET_SOCKET, else ` + control.DefaultSocket + `.
swanctl spellings (--list-sas, --initiate, …) are accepted too.
`

// cli holds one invocation's I/O.
type cli struct {
	out, errw io.Writer
	now       func() time.Time
	client    *control.Client
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) int {
	socket := os.Getenv("CYGNET_SOCKET")
	if socket == "" {
		socket = control.DefaultSocket
	}
	// Global options before the command.
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && !isCommand(args[0]) {
		switch a := args[0]; {
		case a == "-h" || a == "--help" || a == "-help":
			fmt.Fprint(stdout, usage)
			return exitOK
		case a == "--socket" || a == "-socket" || a == "-s":
			if len(args) < 2 {
				fmt.Fprintf(stderr, "cygnetctl: %s needs a path\n", a)
				return exitUsage
			}
			socket, args = args[1], args[2:]
		case strings.HasPrefix(a, "--socket="):
			socket, args = strings.TrimPrefix(a, "--socket="), args[1:]
		default:
			fmt.Fprintf(stderr, "cygnetctl: unknown option %s\n\n%s", a, usage)
			return exitUsage
		}
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd := normalize(args[0])
	c := &cli{out: stdout, errw: stderr, now: now}
	fs := flag.NewFlagSet("cygnetctl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&socket, "socket", socket, "control socket `path`")
	var (
		asJSON         bool
		ike, child     string
		ikeID, childID uint64
	)
	jsonFlag := func() { fs.BoolVar(&asJSON, "json", false, "print JSON") }
	targetFlags := func() {
		fs.StringVar(&ike, "ike", "", "connection `name`")
		fs.StringVar(&child, "child", "", "child `name`")
		fs.Uint64Var(&ikeID, "ike-id", 0, "IKE SA unique `id` (as list-sas shows it)")
		fs.Uint64Var(&childID, "child-id", 0, "Child SA unique `id`")
	}
	switch cmd {
	case "list-conns", "stats", "watch":
		jsonFlag()
	case "list-sas":
		jsonFlag()
		fs.StringVar(&ike, "ike", "", "only SAs of connection `name`")
		fs.Uint64Var(&ikeID, "ike-id", 0, "only the IKE SA with this unique `id`")
	case "initiate":
		fs.StringVar(&ike, "ike", "", "connection `name`")
		fs.StringVar(&child, "child", "", "child `name`")
	case "terminate", "rekey":
		targetFlags()
	case "reload", "debug":
	case "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "cygnetctl: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	c.client = control.NewClient(socket)
	target := control.Target{IKE: ike, Child: child, IKEID: ikeID, ChildID: childID}
	rest := fs.Args()
	if cmd != "debug" && len(rest) > 0 {
		fmt.Fprintf(stderr, "cygnetctl %s: unexpected argument %q\n", cmd, rest[0])
		return exitUsage
	}

	var err error
	switch cmd {
	case "list-conns":
		err = c.listConns(ctx, asJSON)
	case "list-sas":
		err = c.listSAs(ctx, control.SAFilter{IKE: ike, IKEID: ikeID}, asJSON)
	case "initiate":
		if (ike == "") == (child == "") {
			fmt.Fprintf(stderr, "cygnetctl initiate: give exactly one of --ike NAME or --child NAME\n")
			return exitUsage
		}
		err = c.act(ctx, cmd, target)
	case "terminate", "rekey":
		if n := count(ike != "", child != "", ikeID != 0, childID != 0); n != 1 {
			fmt.Fprintf(stderr, "cygnetctl %s: give exactly one of --ike, --child, --ike-id or --child-id\n", cmd)
			return exitUsage
		}
		err = c.act(ctx, cmd, target)
	case "reload":
		err = c.reload(ctx)
	case "stats":
		err = c.stats(ctx, asJSON)
	case "watch":
		err = c.watch(ctx, asJSON)
	case "debug":
		if len(rest) != 2 || rest[0] != "kill" {
			fmt.Fprintf(stderr, "cygnetctl debug: usage: cygnetctl debug kill ACTOR\n")
			return exitUsage
		}
		err = c.debugKill(ctx, rest[1])
	}
	return c.report(cmd, err)
}

func isCommand(a string) bool {
	n := normalize(a)
	return n != a
}

// normalize maps swanctl's spellings to cygnetctl's commands.
func normalize(a string) string {
	switch a {
	case "--list-conns", "-L":
		return "list-conns"
	case "--list-sas", "-l":
		return "list-sas"
	case "--initiate", "-i":
		return "initiate"
	case "--terminate", "-t":
		return "terminate"
	case "--rekey", "-R":
		return "rekey"
	case "--load-all", "-q", "--reload":
		return "reload"
	case "--stats", "-S":
		return "stats"
	case "--monitor-sa", "-m", "--watch":
		return "watch"
	}
	return a
}

func count(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// report prints err and picks the exit code.
func (c *cli) report(cmd string, err error) int {
	if err == nil {
		return exitOK
	}
	var e *control.Error
	switch {
	case errors.Is(err, control.ErrNotRunning):
		fmt.Fprintf(c.errw, "cygnetctl: %v\n", err)
		return exitNotRunning
	case errors.Is(err, context.Canceled) && cmd == "watch":
		return exitOK // interrupted by the operator
	case errors.As(err, &e) && e.Code == control.CodeReloadFailed:
		fmt.Fprintf(c.errw, "cygnetctl: reload failed; the running configuration is unchanged:\n%s\n", e.Message)
	case errors.As(err, &e) && e.Code == control.CodeUnknownCommand && cmd == "debug":
		fmt.Fprintf(c.errw, "cygnetctl: debug commands are disabled: start cygnetd with daemon.chaos: yes\n")
	case errors.As(err, &e):
		fmt.Fprintf(c.errw, "cygnetctl: %s\n", e.Message)
	default:
		fmt.Fprintf(c.errw, "cygnetctl: %v\n", err)
	}
	return exitFailed
}

func (c *cli) act(ctx context.Context, cmd string, t control.Target) error {
	var done control.Done
	var err error
	switch cmd {
	case "initiate":
		done, err = c.client.Initiate(ctx, t)
	case "terminate":
		done, err = c.client.Terminate(ctx, t)
	case "rekey":
		done, err = c.client.Rekey(ctx, t)
	}
	if err != nil {
		return err
	}
	switch cmd {
	case "initiate":
		fmt.Fprintf(c.out, "initiate %s completed successfully\n", t)
	default:
		fmt.Fprintf(c.out, "%s %s completed successfully (%s)\n", cmd, t, plural(done.Count, "SA"))
	}
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
