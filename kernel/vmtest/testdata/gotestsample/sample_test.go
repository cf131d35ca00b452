// Package gotestsample is not a test of anything: TestParseRealGoTestOutput compiles it
// and runs it on the host to get real -test.v output to parse, with every kind of result
// (pass, fail, skip, subtests, parallel tests, a test that exits the process). It lives
// under testdata so that `go test ./...` never runs it.
package gotestsample

import (
	"os"
	"testing"
)

func TestPass(t *testing.T) { t.Log("pass log line") }

func TestFail(t *testing.T) { t.Error("fail message") }

func TestSkip(t *testing.T) { t.Skip("skip reason") }

func TestSub(t *testing.T) {
	t.Run("ok", func(t *testing.T) {})
	t.Run("bad", func(t *testing.T) { t.Error("sub failure") })
}

func TestParA(t *testing.T) {
	t.Parallel()
	t.Log("in A")
}

func TestParB(t *testing.T) {
	t.Parallel()
	t.Log("in B")
}

func TestExit(t *testing.T) {
	t.Log("about to exit")
	os.Exit(3)
}
