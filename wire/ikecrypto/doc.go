// Package ikecrypto holds the cryptographic transforms of IKEv2 (RFC 7296) and the
// computations built on them: pseudorandom functions and prf+ (§2.13), the keys of an
// IKE SA (§2.14), of a rekeyed IKE SA (§2.18) and of a Child SA (§2.17), protection of
// the Encrypted payload (§3.14, RFC 5282, RFC 7634), key exchange methods (RFC 3526,
// RFC 5903, RFC 8031, RFC 9370 with ML-KEM), and the AUTH payload's data for shared
// keys (§2.15) and digital signatures (RFC 7427).
//
// Contract:
//
//   - Algorithms are named by their IANA transform IDs (the wire package's constants);
//     an unsupported ID is an error, never a panic.
//   - Key exchange reads randomness only from the io.Reader it is given, and the same
//     reader bytes give the same keys, ciphertexts and secrets, so the protocol core runs
//     unchanged under a deterministic simulator (crypto/ecdh's GenerateKey ignores its
//     reader since Go 1.26, so private scalars are drawn here and passed to
//     NewPrivateKey). ML-KEM encapsulation with crypto/rand.Reader takes the standard
//     library's randomized path instead of the derandomized one (see mlkemGroup).
//     Signatures: Ed25519 and ECDSA with an *ecdsa.PrivateKey are deterministic
//     (RFC 6979); RSA-PSS and other crypto.Signers draw from crypto/rand.
//   - Values received from the peer (public keys, ciphertexts, AUTH data, encrypted
//     payloads) are validated; malformed input yields an error wrapped with context.
//   - Integrity checks and AUTH comparisons run in constant time.
//   - Only the standard library and golang.org/x/crypto do the cryptography.
//
// Secrets are returned as fresh slices that the caller owns.
package ikecrypto
