package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cygnet-ipsec/cygnet/wire"
	"github.com/cygnet-ipsec/cygnet/wire/proposal"
)

// proposalKind says whether a proposal is for the IKE SA or for ESP.
type proposalKind uint8

const (
	ikeProposal proposalKind = iota
	espProposal
)

func (k proposalKind) String() string {
	if k == ikeProposal {
		return "IKE"
	}
	return "ESP"
}

func (k proposalKind) protocol() wire.ProtocolID {
	if k == ikeProposal {
		return wire.ProtoIKE
	}
	return wire.ProtoESP
}

// checkProposal validates one proposal string in strongSwan's syntax (algorithm
// keywords joined by "-", or "default") with package wire/proposal, the parser the core
// uses, so a file that loads has proposals the core accepts. A trailing "!" (strongSwan's
// strict flag) is accepted: cygnet never appends defaults to a configured list. It
// returns the proposal lowercased, without the "!".
func checkProposal(kind proposalKind, s string) (string, error) {
	p := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "!")
	expect := "expected an IKE proposal like aes256gcm16-prfsha256-x25519 or default"
	if kind == espProposal {
		expect = "expected an ESP proposal like aes256gcm16 or aes128-sha256-esn, or default"
	}
	if p == "" {
		return "", fmt.Errorf("%s, got an empty string", expect)
	}
	if _, err := proposal.Parse(kind.protocol(), p); err != nil {
		return "", fmt.Errorf("%s, got %q: %s", expect, s, proposalReason(err, p))
	}
	return p, nil
}

// proposalReason is the parser's explanation without its prefix and the repeated
// proposal: `invalid proposal string: "x-y": unknown … "y"` becomes `unknown … "y"`.
func proposalReason(err error, p string) string {
	msg := err.Error()
	if errors.Is(err, proposal.ErrSyntax) {
		msg = strings.TrimPrefix(msg, proposal.ErrSyntax.Error()+": ")
	}
	return strings.TrimPrefix(msg, fmt.Sprintf("%q: ", p))
}
