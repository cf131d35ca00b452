//go:build !cygnet_vm

package vmtest_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/cygnet-ipsec/cygnet/kernel/vmtest"
)

// A host test that runs its package's VM-only tests (files tagged cygnet_vm) inside the
// VM and reports each one. In a real test, every error below is a t.Fatal: a missing
// prerequisite is a failure, never a skip.
func ExampleRun() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "vm")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "xfrm.test")
	if err := vmtest.BuildTestBinary(ctx, "github.com/cygnet-ipsec/cygnet/kernel/xfrm", bin, "cygnet_vm"); err != nil {
		log.Fatal(err)
	}
	res, err := vmtest.Run(ctx, vmtest.Config{Binaries: []vmtest.Binary{
		{Name: "xfrm.test", Path: bin, Args: []string{"-test.v", "-test.run", "^TestVM"}},
	}})
	if err != nil {
		log.Fatal(err) // the VM could not run every binary; err quotes the console
	}
	run := res.Runs[0]
	for _, tr := range vmtest.ParseGoTestOutput(run.Output) {
		fmt.Printf("%s %s\n", tr.Status, tr.Name) // FAIL and UNFINISHED tests are failures
	}
	fmt.Printf("exit %d, boot %v, total %v\n", run.ExitCode, res.Boot, res.Total)
}
