package config

import "slices"

// Keyring answers Config.PSK's question — which pre-shared key is for the identities
// (local, remote) — without scanning every secret: a concentrator holds one secret per
// peer (tens of thousands) and asks once per IKE_AUTH (RFC 7296 §2.15). Its answers are
// Config.PSK's, secret for secret (a property test holds it to that). It is read-only
// after NewKeyring and safe for concurrent use.
type Keyring struct {
	// byID holds, for each identity a secret names (%any included), the indexes of
	// those secrets in file order.
	byID map[Identity][]int
	// sole holds, for each identity X, the secrets whose identities are X alone (%any
	// aside): a group key for every peer of X.
	sole map[Identity][]int
	// anyPair are the secrets without identities (for any pair), in file order.
	anyPair []int
	secrets []*Secret
}

// NewKeyring indexes cfg's secrets. cfg's secrets must not change afterwards.
func NewKeyring(cfg *Config) *Keyring {
	k := &Keyring{byID: make(map[Identity][]int, len(cfg.Secrets)), sole: map[Identity][]int{}, secrets: cfg.Secrets}
	for i, s := range cfg.Secrets {
		if len(s.IDs) == 0 {
			k.anyPair = append(k.anyPair, i)
			continue
		}
		for j, id := range s.IDs {
			if slices.Contains(s.IDs[:j], id) {
				continue // listed twice: index it once
			}
			k.byID[id] = append(k.byID[id], i)
		}
		if x, ok := soleID(s.IDs); ok {
			k.sole[x] = append(k.sole[x], i)
		}
	}
	return k
}

// PSK returns the key for (local, remote) exactly as Config.PSK does. remote is the
// peer's concrete identity (IDi or IDr as received) or %any.
func (k *Keyring) PSK(local, remote Identity) (*Secret, bool) {
	if remote.Type == IDAny {
		// Any secret naming some other identity may match: not worth indexing (the
		// answer is the same for every IKE SA of the connection, asked at load).
		return (&Config{Secrets: k.secrets}).PSK(local, remote)
	}
	// A secret matches only if it has no identities, lists %any, names remote, or names
	// local and nothing else (Secret.match): the candidates are the union of those
	// lists. (A gateway's per-peer secrets all name local too, so indexing every secret
	// that names local would make every secret a candidate.)
	cand := make([]int, 0, 8)
	cand = append(cand, k.anyPair...)
	cand = append(cand, k.byID[AnyID]...)
	cand = append(cand, k.byID[remote]...)
	cand = append(cand, k.sole[local]...)
	slices.Sort(cand)
	cand = slices.Compact(cand)
	sub := make([]*Secret, len(cand))
	for i, c := range cand {
		sub[i] = k.secrets[c]
	}
	// Config.PSK on the candidates, in file order, gives the same best match and the
	// same tie-break (the first in the file) as on every secret.
	return (&Config{Secrets: sub}).PSK(local, remote)
}

// soleID returns X when every identity in ids other than %any is X.
func soleID(ids []Identity) (Identity, bool) {
	var x Identity
	found := false
	for _, id := range ids {
		switch {
		case id.Type == IDAny:
		case !found:
			x, found = id, true
		case id != x:
			return Identity{}, false
		}
	}
	return x, found
}
