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

// routeName picks the subsystem of a logger name: the last dot-separated component that
// names a subsystem (or an alias); ok false when none does.
func routeName(name string) (Subsystem, bool) {
	for name != "" {
		last := name
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			last, name = name[i+1:], name[:i]
		} else {
			name = ""
		}
		if s, ok := aliases[last]; ok {
			return s, true
		}
		for i, n := range subsystemNames {
			if n == last {
				return Subsystem(i), true
			}
		}
	}
	return 0, false
}

// fieldSubsystems map the keys of the fields that name what a line is about to the
// subsystem whose level governs it: a line with a Child SA ("child") is the child
// subsystem's, one with an IKE family ("family") the family subsystem's, and
// protoactor's slog lines (which carry the actor system's ID as "system" but no logger
// name) the actor subsystem's. "child" wins over "family" (a Child SA line names its
// family too).
var fieldSubsystems = [...]struct {
	key string
	sub Subsystem
}{{"child", Child}, {"family", Family}, {"system", Actor}}

// fieldRoute picks a subsystem from field keys (fieldSubsystems); ok false when none
// names one.
func fieldRoute(fields []zapcore.Field) (Subsystem, bool) {
	best := len(fieldSubsystems)
	for i := range fields {
		for j := 0; j < best; j++ {
			if fields[i].Key == fieldSubsystems[j].key {
				best = j
				break
			}
		}
	}
	if best == len(fieldSubsystems) {
		return 0, false
	}
	return fieldSubsystems[best].sub, true
}

// Tree returns one logger for a component that logs for several subsystems (the actor
// tree, which gets a single *zap.Logger). Each line goes to a subsystem, at that
// subsystem's level, chosen by, in order:
//  1. its logger's name: the last dot-separated component that names a subsystem or an
//     alias ("family", "child", "kernel", "sockets", "protoactor", …);
//  2. its fields (With fields and the line's own): "child" → child, "family" → family,
//     "system" → actor (fieldSubsystems);
//  3. def.
//
// A line whose logger has no name is printed with the subsystem's name. When only the
// line's own fields can decide (no name, no With field), Check lets the line through if
// any subsystem it could go to is enabled at that level and Write drops it unless its
// subsystem is: a line is written exactly when its subsystem's level allows it.
func (l *Logs) Tree(def Subsystem) *zap.Logger {
	return zap.New(&routingCore{l: l, def: def}, zap.ErrorOutput(l.out))
}

// routingCore is a zapcore.Core that defers to the subsystem cores (see Tree).
type routingCore struct {
	l      *Logs
	def    Subsystem
	fields []zapcore.Field
	// withSub is the subsystem the With fields name, if withOK.
	withSub Subsystem
	withOK  bool
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
	n := &routingCore{l: c.l, def: c.def, fields: append(append([]zapcore.Field(nil), c.fields...), fields...)}
	n.withSub, n.withOK = fieldRoute(n.fields)
	return n
}

// known returns the subsystem a line goes to when its name or the With fields decide.
func (c *routingCore) known(name string) (Subsystem, bool) {
	if s, ok := routeName(name); ok {
		return s, true
	}
	return c.withSub, c.withOK
}

func (c *routingCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if s, ok := c.known(ent.LoggerName); ok {
		if c.l.levels[s].Enabled(ent.Level) {
			return ce.AddCore(ent, c)
		}
		return ce
	}
	// The line's own fields decide, in Write.
	for _, s := range [...]Subsystem{c.def, Child, Family, Actor} {
		if c.l.levels[s].Enabled(ent.Level) {
			return ce.AddCore(ent, c)
		}
	}
	return ce
}

func (c *routingCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	s, ok := c.known(ent.LoggerName)
	if !ok {
		if s, ok = fieldRoute(fields); !ok {
			s = c.def
		}
		if !c.l.levels[s].Enabled(ent.Level) {
			return nil
		}
	}
	if ent.LoggerName == "" {
		ent.LoggerName = s.String()
	}
	all := fields
	if len(c.fields) > 0 {
		all = append(append(make([]zapcore.Field, 0, len(c.fields)+len(fields)), c.fields...), fields...)
	}
	return c.l.cores[s].Write(ent, all)
}

func (c *routingCore) Sync() error { return c.l.out.Sync() }
