package proposal_test

import (
	"fmt"
	"strings"

	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/proposal"
)

// A responder configured with two IKE proposals answers an initiator's offer.
func Example() {
	ours, err := proposal.Parse(wire.ProtoIKE, "aes256gcm16-prfsha256-x25519, aes128-sha256-modp2048")
	if err != nil {
		panic(err)
	}
	offer, _ := proposal.Parse(wire.ProtoIKE, "aes128-aes256-sha256-modp3072-modp2048")
	chosen, err := proposal.Select(ours, offer, proposal.Options{})
	fmt.Println(proposal.FormatOne(chosen), err)
	var groups []string
	for _, g := range proposal.KEGroups(ours) {
		groups = append(groups, wire.TransformName(wire.TransformKE, g))
	}
	fmt.Println(strings.Join(groups, " "))

	other, _ := proposal.Parse(wire.ProtoIKE, "aes256gcm16-prfsha512-ecp521")
	_, err = proposal.Select(ours, other, proposal.Options{})
	fmt.Println(err)
	// Output:
	// aes128-sha256-prfsha256-modp2048 <nil>
	// CURVE25519 MODP_2048
	// NO_PROPOSAL_CHOSEN for IKE: offered aes256gcm16-prfsha512-ecp521, configured aes256gcm16-prfsha256-x25519,aes128-sha256-prfsha256-modp2048
}
