package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cygnet-ipsec/cygnet/actors/telemetry/logfield"
)

// lines decodes JSON log output into one map per line.
func lines(t *testing.T, out *bytes.Buffer) []map[string]any {
	t.Helper()
	var res []map[string]any
	for _, ln := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if ln == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", ln, err)
		}
		res = append(res, m)
	}
	return res
}

func TestLevelPerSubsystem(t *testing.T) {
	var out bytes.Buffer
	logs, err := New(Options{Output: &out, Level: zapcore.InfoLevel,
		Levels: map[Subsystem]zapcore.Level{Kernel: zapcore.DebugLevel, Socket: zapcore.ErrorLevel}})
	if err != nil {
		t.Fatal(err)
	}
	logs.Logger(Kernel).Debug("kernel debug") // on: kernel is at debug
	logs.Logger(Family).Debug("family debug") // off: default info
	logs.Logger(Family).Info("family info")   // on
	logs.Logger(Socket).Warn("socket warn")   // off: socket at error
	logs.Logger(Socket).Error("socket error") // on
	logs.Logger(Control).Info("control info", logfield.Conn("ab"))

	got := lines(t, &out)
	var msgs []string
	for _, l := range got {
		msgs = append(msgs, l["logger"].(string)+": "+l["msg"].(string))
	}
	want := []string{"kernel: kernel debug", "family: family info", "socket: socket error", "control: control info"}
	if strings.Join(msgs, "|") != strings.Join(want, "|") {
		t.Errorf("logged %q, want %q", msgs, want)
	}
	if got[3]["conn"] != "ab" {
		t.Errorf("conn field = %v, want ab", got[3]["conn"])
	}
}

func TestSetLevelsAppliesToExistingLoggers(t *testing.T) {
	var out bytes.Buffer
	logs, err := New(Options{Output: &out, Level: zapcore.WarnLevel})
	if err != nil {
		t.Fatal(err)
	}
	fam := logs.Logger(Family)
	fam.Info("before")
	logs.SetLevels(zapcore.WarnLevel, map[Subsystem]zapcore.Level{Family: zapcore.DebugLevel})
	fam.Debug("after")
	if logs.Level(Family) != zapcore.DebugLevel || logs.Level(Kernel) != zapcore.WarnLevel {
		t.Errorf("levels family=%v kernel=%v, want debug, warn", logs.Level(Family), logs.Level(Kernel))
	}
	got := lines(t, &out)
	if len(got) != 1 || got[0]["msg"] != "after" {
		t.Errorf("got %v, want only the line logged after SetLevels", got)
	}
}

func TestConsoleFormat(t *testing.T) {
	var out bytes.Buffer
	logs, err := New(Options{Output: &out, Format: FormatConsole})
	if err != nil {
		t.Fatal(err)
	}
	logs.Logger(Manager).Info("listening", logfield.SPIi(0xab))
	s := out.String()
	for _, want := range []string{"INFO", "manager", "listening", `"spi_i": "00000000000000ab"`} {
		if !strings.Contains(s, want) {
			t.Errorf("console line %q lacks %q", s, want)
		}
	}
	if strings.HasPrefix(strings.TrimSpace(s), "{") {
		t.Errorf("console format printed JSON: %q", s)
	}
}

func TestSlogFollowsSubsystemLevel(t *testing.T) {
	var out bytes.Buffer
	logs, err := New(Options{Output: &out, Level: zapcore.InfoLevel})
	if err != nil {
		t.Fatal(err)
	}
	sl := logs.Slog(Actor)
	sl.Debug("hidden")
	sl.Info("shown", "pid", "family/1")
	got := lines(t, &out)
	if len(got) != 1 || got[0]["msg"] != "shown" || got[0]["pid"] != "family/1" || got[0]["logger"] != "actor" {
		t.Errorf("got %v, want one line 'shown' from logger actor with pid", got)
	}
}

// protoactor writes through the factory: spawning and stopping an actor under a system
// built with ActorLoggerFactory must produce lines from the "actor" logger and nothing
// on stderr (the factory replaces protoactor's default slog handler).
func TestProtoactorLogsThroughZap(t *testing.T) {
	var out bytes.Buffer
	logs, err := New(Options{Output: &out, Level: zapcore.DebugLevel})
	if err != nil {
		t.Fatal(err)
	}
	sys := actor.NewActorSystemWithConfig(actor.Configure(actor.WithLoggerFactory(logs.ActorLoggerFactory())))
	sys.Logger().Info("from protoactor")
	sys.Shutdown()
	found := false
	for _, l := range lines(t, &out) {
		if l["msg"] == "from protoactor" && l["logger"] == "actor" && l["system"] != nil {
			found = true
		}
	}
	if !found {
		t.Errorf("protoactor's logger did not write through zap; output:\n%s", out.String())
	}
}

func TestParsers(t *testing.T) {
	for _, name := range subsystemNames {
		s, err := ParseSubsystem(name)
		if err != nil || s.String() != name {
			t.Errorf("ParseSubsystem(%q) = %v, %v", name, s, err)
		}
	}
	if _, err := ParseSubsystem("ike"); err == nil || !strings.Contains(err.Error(), "manager, family, child") {
		t.Errorf("ParseSubsystem(ike) error = %v, want a list of valid names", err)
	}
	if _, err := ParseLevel("verbose"); err == nil {
		t.Error("ParseLevel(verbose) accepted")
	}
	if _, err := ParseLevel("dpanic"); err == nil {
		t.Error("ParseLevel(dpanic) accepted; only debug, info, warn, error are offered")
	}
	if f, err := ParseFormat("console"); err != nil || f != FormatConsole {
		t.Errorf("ParseFormat(console) = %v, %v", f, err)
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("ParseFormat(xml) accepted")
	}
}

// One logger handed to the actor tree routes by logger name to each subsystem's level.
func TestTreeRoutesByName(t *testing.T) {
	var out bytes.Buffer
	logs, err := New(Options{Output: &out, Level: zapcore.InfoLevel,
		Levels: map[Subsystem]zapcore.Level{Family: zapcore.DebugLevel, Socket: zapcore.ErrorLevel, Actor: zapcore.WarnLevel}})
	if err != nil {
		t.Fatal(err)
	}
	tree := logs.Tree(Manager).With(logfield.Conn("ab"))
	tree.Debug("manager debug")                     // off: manager at info
	tree.Info("manager info")                       // on
	tree.Named("family").Debug("family debug")      // on: family at debug
	tree.Named("family").Named("x").Debug("nested") // on: routed by "family", the last match
	tree.Named("sockets").Warn("socket warn")       // off: socket at error
	tree.Named("protoactor").Info("actor info")     // off: actor at warn
	tree.Named("child").Info("child info", logfield.Child("net"))
	logs.SetLevels(zapcore.InfoLevel, map[Subsystem]zapcore.Level{Socket: zapcore.DebugLevel})
	tree.Named("sockets").Debug("socket debug after reload") // on now

	var got []string
	for _, l := range lines(t, &out) {
		name, _ := l["logger"].(string)
		got = append(got, name+": "+l["msg"].(string))
		if l["conn"] != "ab" {
			t.Errorf("line %v lost the With field", l)
		}
	}
	want := []string{"manager: manager info", "family: family debug", "family.x: nested", "child: child info", "sockets: socket debug after reload"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("logged %q\nwant %q", got, want)
	}
}

// The actor tree's family and child actors log through the one logger they are given,
// without names: their lines are routed by the fields that say what they are about
// ("child", "family", protoactor's "system"), whether given with With or on the line. A
// subsystem at warn emits no info line while one at debug emits its debug lines.
func TestTreeRoutesByFields(t *testing.T) {
	var out bytes.Buffer
	logs, err := New(Options{Output: &out, Level: zapcore.InfoLevel,
		Levels: map[Subsystem]zapcore.Level{Family: zapcore.DebugLevel, Child: zapcore.WarnLevel, Manager: zapcore.WarnLevel, Actor: zapcore.ErrorLevel}})
	if err != nil {
		t.Fatal(err)
	}
	tree := logs.Tree(Manager)
	fam := tree.With(zap.Uint64("family", 7), logfield.Conn("ab"))
	child := fam.With(logfield.Child("net"))

	fam.Debug("family debug (With)")                                                    // on: family at debug
	tree.Debug("family debug (own field)", zap.Uint64("family", 7))                     // on
	child.Info("child info (With)")                                                     // off: child at warn
	tree.Info("child info (own field)", logfield.Child("net"), zap.Uint64("family", 7)) // off: child wins
	child.Warn("child warn")                                                            // on
	tree.Info("manager info")                                                           // off: manager at warn
	tree.Debug("manager debug")                                                         // off
	tree.Warn("manager warn")                                                           // on
	if ce := tree.Check(zapcore.DebugLevel, "family debug (Check, then fields)"); ce != nil {
		ce.Write(zap.Uint64("family", 7)) // on: decided at Write
	}
	if ce := tree.Check(zapcore.InfoLevel, "manager info (Check)"); ce != nil {
		ce.Write(zap.String("x", "y")) // off: no field names a subsystem, manager at warn
	}
	slogger := logs.Tree(Manager)
	slogger.With(zap.String("system", "s1")).Warn("protoactor warn") // off: actor at error

	var got []string
	for _, l := range lines(t, &out) {
		got = append(got, l["logger"].(string)+": "+l["msg"].(string))
	}
	want := []string{"family: family debug (With)", "family: family debug (own field)", "child: child warn",
		"manager: manager warn", "family: family debug (Check, then fields)"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("logged %q\nwant %q", got, want)
	}

	// At reload the levels move for the routed lines too.
	out.Reset()
	logs.SetLevels(zapcore.WarnLevel, map[Subsystem]zapcore.Level{Child: zapcore.DebugLevel})
	fam.Info("family info after reload") // off: family now at warn
	child.Debug("child debug after reload")
	got = got[:0]
	for _, l := range lines(t, &out) {
		got = append(got, l["logger"].(string)+": "+l["msg"].(string))
	}
	if strings.Join(got, "|") != "child: child debug after reload" {
		t.Errorf("after reload logged %q", got)
	}
}
