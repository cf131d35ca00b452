package logging

import (
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// aliases map logger names other packages use to subsystems.
var aliases = map[string]Subsystem{
	"sockets":    Socket,
	"protoactor": Actor,
	"xfrm":       Kernel,
	"memkernel":  Kernel,
	"control":    Control,
	"cygnetd":    Config,
}

// route picks the subsystem of a logger name: the last dot-separated component that
// names a subsystem (or an alias), else def.
func route(name string, def Subsystem) Subsystem {
	for name != "" {
		last := name
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			last, name = name[i+1:], name[:i]
		} else {
			name = ""
		}
		if s, ok := aliases[last]; ok {
			return s
		}
		for i, n := range subsystemNames {
			if n == last {
				return Subsystem(i)
			}
		}
	}
	return def
}

// Tree returns one logger for a component that names its own sub-loggers (the actor
// tree): each line goes to the subsystem its logger's name says — "family", "child",
// "kernel", "sockets", "protoactor", … anywhere in the dotted name, the last match
// winning — at that subsystem's level, and to def when no component matches. So
// actors.New(…, logs.Tree(logging.Manager), …) gets per-subsystem levels as long as
// the actors call log.Named("family") and so on.
func (l *Logs) Tree(def Subsystem) *zap.Logger {
	return zap.New(&routingCore{l: l, def: def}, zap.ErrorOutput(l.out))
}

// routingCore is a zapcore.Core that defers to the subsystem cores by logger name.
type routingCore struct {
	l      *Logs
	def    Subsystem
	fields []zapcore.Field
}

func (c *routingCore) Enabled(lvl zapcore.Level) bool {
	for i := range c.l.levels {
		if c.l.levels[i].Enabled(lvl) {
			return true
		}
	}
	return false
}

func (c *routingCore) With(fields []zapcore.Field) zapcore.Core {
	return &routingCore{l: c.l, def: c.def, fields: append(append([]zapcore.Field(nil), c.fields...), fields...)}
}

func (c *routingCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.l.levels[route(ent.LoggerName, c.def)].Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

func (c *routingCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	all := fields
	if len(c.fields) > 0 {
		all = append(append(make([]zapcore.Field, 0, len(c.fields)+len(fields)), c.fields...), fields...)
	}
	return c.l.cores[route(ent.LoggerName, c.def)].Write(ent, all)
}

func (c *routingCore) Sync() error { return c.l.out.Sync() }
