package interop

import (
	"flag"
	"os"
	"testing"
)

// TestMain lets more scenarios run at once than -parallel's default (GOMAXPROCS):
// they mostly wait on charon and the network, not on the CPU. An explicit
// -parallel wins.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		if err := flag.Set("test.parallel", "4"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
