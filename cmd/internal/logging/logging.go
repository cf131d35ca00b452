// Package logging builds cygnetd's zap loggers: one named logger per subsystem, each
// with its own level that can be changed while the daemon runs (at reload), JSON or
// console output, and protoactor's slog output routed through the same cores.
//
// Contract:
//   - New returns a *Logs; Logger(sub) is that subsystem's *zap.Logger (named after it,
//     e.g. "kernel"), Slog(sub) the same output as a *slog.Logger, and ActorLoggerFactory
//     plugs protoactor into the Actor subsystem (notes/protoactor.md, Logging).
//   - Tree(def) is one logger for a component that logs for several subsystems (the
//     actor tree): each line goes to the subsystem its logger name or its fields
//     ("family", "child", …) say, at that subsystem's level (route.go).
//   - SetLevels changes levels atomically; loggers handed out earlier follow.
//   - Secrets never reach a log line: key material travels in a Secret, whose every
//     printed form is "<redacted>" (String, GoString, fmt verbs, zap object, JSON, text,
//     YAML). The fields that identify SAs are in actors/telemetry/logfield.
//   - No global logger is installed (zap.ReplaceGlobals is never called).
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"
)

// Subsystem is a part of the daemon with its own logger and level.
type Subsystem uint8

const (
	Manager Subsystem = iota // the manager actor: sockets' routing, half-open, cookies
	Family                   // IKE family actors (one per IKE SA)
	Child                    // Child SA actors
	Kernel                   // kernel backends (XFRM, in-memory)
	Socket                   // UDP sockets 500/4500
	Config                   // configuration loading and reload
	Control                  // the control socket
	Metrics                  // the /metrics endpoint
	Actor                    // protoactor's own messages
	numSubsystems
)

var subsystemNames = [numSubsystems]string{"manager", "family", "child", "kernel", "socket", "config", "control", "metrics", "actor"}

func (s Subsystem) String() string {
	if s < numSubsystems {
		return subsystemNames[s]
	}
	return fmt.Sprintf("Subsystem(%d)", uint8(s))
}

// Subsystems lists every subsystem in order.
func Subsystems() []Subsystem {
	out := make([]Subsystem, numSubsystems)
	for i := range out {
		out[i] = Subsystem(i)
	}
	return out
}

// ParseSubsystem reads a subsystem name as printed by String.
func ParseSubsystem(name string) (Subsystem, error) {
	for i, n := range subsystemNames {
		if n == name {
			return Subsystem(i), nil
		}
	}
	return 0, fmt.Errorf("unknown log subsystem %q (expected one of %s)", name, strings.Join(subsystemNames[:], ", "))
}

// Format is the output encoding.
type Format uint8

const (
	FormatJSON    Format = iota // one JSON object per line (the default)
	FormatConsole               // human-readable, tab-separated
)

func (f Format) String() string {
	switch f {
	case FormatJSON:
		return "json"
	case FormatConsole:
		return "console"
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// ParseFormat reads "json" or "console".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "json":
		return FormatJSON, nil
	case "console":
		return FormatConsole, nil
	}
	return 0, fmt.Errorf("unknown log format %q (expected json or console)", s)
}

// ParseLevel reads a zap level name: debug, info, warn, error.
func ParseLevel(s string) (zapcore.Level, error) {
	switch s {
	case "debug", "info", "warn", "error":
		l, err := zapcore.ParseLevel(s)
		if err != nil {
			return 0, fmt.Errorf("log level %q: %w", s, err)
		}
		return l, nil
	}
	return 0, fmt.Errorf("unknown log level %q (expected debug, info, warn or error)", s)
}

// Options configures New. The zero value is JSON at info on stderr.
type Options struct {
	Format Format
	// Level applies to every subsystem not in Levels.
	Level zapcore.Level
	// Levels overrides Level per subsystem.
	Levels map[Subsystem]zapcore.Level
	// Output receives the log lines; default os.Stderr.
	Output io.Writer
}

// Logs holds the daemon's loggers. Safe for concurrent use.
type Logs struct {
	out     zapcore.WriteSyncer
	levels  [numSubsystems]zap.AtomicLevel
	cores   [numSubsystems]zapcore.Core
	loggers [numSubsystems]*zap.Logger
	daemon  *zap.Logger
}

// New builds the loggers described by opts.
func New(opts Options) (*Logs, error) {
	var w io.Writer = os.Stderr
	if opts.Output != nil {
		w = opts.Output
	}
	l := &Logs{out: zapcore.Lock(zapcore.AddSync(w))}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "ts"
	encCfg.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder
	var enc zapcore.Encoder
	switch opts.Format {
	case FormatJSON:
		enc = zapcore.NewJSONEncoder(encCfg)
	case FormatConsole:
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("logging: unknown format %v", opts.Format)
	}
	for i := range l.levels {
		lvl := opts.Level
		if v, ok := opts.Levels[Subsystem(i)]; ok {
			lvl = v
		}
		l.levels[i] = zap.NewAtomicLevelAt(lvl)
		l.cores[i] = zapcore.NewCore(enc.Clone(), l.out, l.levels[i])
		l.loggers[i] = zap.New(l.cores[i], zap.ErrorOutput(l.out)).Named(Subsystem(i).String())
	}
	// The daemon's own lines (start, stop, reload) follow the config subsystem's level
	// but are named "cygnetd".
	l.daemon = zap.New(l.cores[Config], zap.ErrorOutput(l.out)).Named("cygnetd")
	return l, nil
}

// Logger returns the subsystem's logger.
func (l *Logs) Logger(s Subsystem) *zap.Logger {
	if s >= numSubsystems {
		return zap.NewNop()
	}
	return l.loggers[s]
}

// Daemon returns the logger for the daemon's own life cycle (named "cygnetd").
func (l *Logs) Daemon() *zap.Logger { return l.daemon }

// Level returns the subsystem's current level.
func (l *Logs) Level(s Subsystem) zapcore.Level { return l.levels[s].Level() }

// SetLevels sets every subsystem to level, except those in overrides. Used at reload.
func (l *Logs) SetLevels(level zapcore.Level, overrides map[Subsystem]zapcore.Level) {
	for i := range l.levels {
		lvl := level
		if v, ok := overrides[Subsystem(i)]; ok {
			lvl = v
		}
		l.levels[i].SetLevel(lvl)
	}
}

// Slog returns the subsystem's output as a *slog.Logger (zapslog), following the
// subsystem's level.
func (l *Logs) Slog(s Subsystem) *slog.Logger {
	if s >= numSubsystems {
		return slog.New(zapslog.NewHandler(zapcore.NewNopCore()))
	}
	return slog.New(zapslog.NewHandler(l.cores[s], zapslog.WithName(s.String())))
}

// ActorLoggerFactory is the value for actor.WithLoggerFactory: protoactor's slog lines
// go to the Actor subsystem. The actor system's ID is added as a field.
func (l *Logs) ActorLoggerFactory() func(*actor.ActorSystem) *slog.Logger {
	return func(system *actor.ActorSystem) *slog.Logger {
		lg := l.Slog(Actor)
		if system != nil {
			lg = lg.With("system", system.ID)
		}
		return lg
	}
}

// Sync flushes buffered output.
func (l *Logs) Sync() error { return l.out.Sync() }
