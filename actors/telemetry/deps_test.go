package telemetry

import (
	"go/build"
	"strings"
	"testing"
)

// TestImportsOnlyStdlib enforces the package contract: the pure core may import
// telemetry, so telemetry must not pull in Prometheus, zap, protoactor or netlink.
func TestImportsOnlyStdlib(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatalf("import .: %v", err)
	}
	for _, imp := range pkg.Imports {
		if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
			t.Errorf("telemetry imports %q; it must import only the standard library", imp)
		}
	}
}
