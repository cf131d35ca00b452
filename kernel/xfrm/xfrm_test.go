//go:build linux

package xfrm_test

import (
	"testing"

	"github.com/cygnet-ipsec/cygnet/kernel/kerneltest"
)

// TestPolicyContract holds kernel/xfrm to the policy half of the contract on the host's
// own kernel, inside fresh network namespaces. (The host has XFRM policies but no ESP;
// the SA half runs in the test VM: TestInVM.)
func TestPolicyContract(t *testing.T) { kerneltest.RunPolicies(t, newTarget) }
