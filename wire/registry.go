package wire

import "strconv"

// This file holds the IANA registries of "Internet Key Exchange Version 2 (IKEv2)
// Parameters" that the header and the payloads use, as typed constants with String().
// Names follow the RFC / IANA spelling; String() of an unassigned value prints the type
// and the number, e.g. "PayloadType(99)".

// ExchangeType is the Exchange Type of the IKE header (RFC 7296 §3.1).
type ExchangeType uint8

const (
	ExchangeIKESAInit        ExchangeType = 34 // IKE_SA_INIT (RFC 7296 §1.2)
	ExchangeIKEAuth          ExchangeType = 35 // IKE_AUTH (RFC 7296 §1.2)
	ExchangeCreateChildSA    ExchangeType = 36 // CREATE_CHILD_SA (RFC 7296 §1.3)
	ExchangeInformational    ExchangeType = 37 // INFORMATIONAL (RFC 7296 §1.4)
	ExchangeIKESessionResume ExchangeType = 38 // IKE_SESSION_RESUME (RFC 5723)
	ExchangeIKEIntermediate  ExchangeType = 43 // IKE_INTERMEDIATE (RFC 9242)
	ExchangeIKEFollowupKE    ExchangeType = 44 // IKE_FOLLOWUP_KE (RFC 9370)
)

var exchangeNames = map[ExchangeType]string{
	ExchangeIKESAInit:        "IKE_SA_INIT",
	ExchangeIKEAuth:          "IKE_AUTH",
	ExchangeCreateChildSA:    "CREATE_CHILD_SA",
	ExchangeInformational:    "INFORMATIONAL",
	ExchangeIKESessionResume: "IKE_SESSION_RESUME",
	ExchangeIKEIntermediate:  "IKE_INTERMEDIATE",
	ExchangeIKEFollowupKE:    "IKE_FOLLOWUP_KE",
}

func (e ExchangeType) String() string { return name(exchangeNames, e, "ExchangeType") }

// Protected reports whether messages of this exchange carry their payloads inside an SK
// (or SKF) payload: every exchange except IKE_SA_INIT and IKE_SESSION_RESUME (RFC 7296
// §1.2, RFC 5723 §4.1). Unprotected INFORMATIONAL messages outside an IKE SA (§1.5) exist,
// but nothing in them is authenticated.
func (e ExchangeType) Protected() bool {
	return e != ExchangeIKESAInit && e != ExchangeIKESessionResume
}

// PayloadType is a Next Payload / payload type value (RFC 7296 §3.2).
type PayloadType uint8

const (
	PayloadNone    PayloadType = 0  // No Next Payload
	PayloadSA      PayloadType = 33 // Security Association (§3.3)
	PayloadKE      PayloadType = 34 // Key Exchange (§3.4)
	PayloadIDi     PayloadType = 35 // Identification - Initiator (§3.5)
	PayloadIDr     PayloadType = 36 // Identification - Responder (§3.5)
	PayloadCERT    PayloadType = 37 // Certificate (§3.6)
	PayloadCERTREQ PayloadType = 38 // Certificate Request (§3.7)
	PayloadAUTH    PayloadType = 39 // Authentication (§3.8)
	PayloadNonce   PayloadType = 40 // Nonce (Ni, Nr) (§3.9)
	PayloadNotify  PayloadType = 41 // Notify (§3.10)
	PayloadDelete  PayloadType = 42 // Delete (§3.11)
	PayloadVendor  PayloadType = 43 // Vendor ID (§3.12)
	PayloadTSi     PayloadType = 44 // Traffic Selector - Initiator (§3.13)
	PayloadTSr     PayloadType = 45 // Traffic Selector - Responder (§3.13)
	PayloadSK      PayloadType = 46 // Encrypted and Authenticated (§3.14)
	PayloadCP      PayloadType = 47 // Configuration (§3.15)
	PayloadEAP     PayloadType = 48 // Extensible Authentication (§3.16)
	PayloadGSPM    PayloadType = 49 // Generic Secure Password Methods (RFC 6467)
	PayloadIDg     PayloadType = 50 // Group Identification (RFC 9838)
	PayloadGSA     PayloadType = 51 // Group Security Association (RFC 9838)
	PayloadKD      PayloadType = 52 // Key Download (RFC 9838)
	PayloadSKF     PayloadType = 53 // Encrypted and Authenticated Fragment (RFC 7383)
	PayloadPS      PayloadType = 54 // Puzzle Solution (RFC 8019)
)

var payloadNames = map[PayloadType]string{
	PayloadNone: "NONE", PayloadSA: "SA", PayloadKE: "KE", PayloadIDi: "IDi", PayloadIDr: "IDr",
	PayloadCERT: "CERT", PayloadCERTREQ: "CERTREQ", PayloadAUTH: "AUTH", PayloadNonce: "No",
	PayloadNotify: "N", PayloadDelete: "D", PayloadVendor: "V", PayloadTSi: "TSi",
	PayloadTSr: "TSr", PayloadSK: "SK", PayloadCP: "CP", PayloadEAP: "EAP", PayloadGSPM: "GSPM",
	PayloadIDg: "IDg", PayloadGSA: "GSA", PayloadKD: "KD", PayloadSKF: "SKF", PayloadPS: "PS",
}

// String prints the RFC 7296 §3.2 notation (SA, KE, IDi, No, N, D, V, TSi, SK, …).
func (p PayloadType) String() string { return name(payloadNames, p, "PayloadType") }

// NotifyType is a Notify Message Type (RFC 7296 §3.10.1). Values below 16384 are errors,
// the others status types.
type NotifyType uint16

// Error types (RFC 7296 §3.10.1 and later RFCs).
const (
	NotifyUnsupportedCriticalPayload NotifyType = 1  // UNSUPPORTED_CRITICAL_PAYLOAD
	NotifyInvalidIKESPI              NotifyType = 4  // INVALID_IKE_SPI
	NotifyInvalidMajorVersion        NotifyType = 5  // INVALID_MAJOR_VERSION
	NotifyInvalidSyntax              NotifyType = 7  // INVALID_SYNTAX
	NotifyInvalidMessageID           NotifyType = 9  // INVALID_MESSAGE_ID
	NotifyInvalidSPI                 NotifyType = 11 // INVALID_SPI
	NotifyNoProposalChosen           NotifyType = 14 // NO_PROPOSAL_CHOSEN
	NotifyInvalidKEPayload           NotifyType = 17 // INVALID_KE_PAYLOAD
	NotifyAuthenticationFailed       NotifyType = 24 // AUTHENTICATION_FAILED
	NotifySinglePairRequired         NotifyType = 34 // SINGLE_PAIR_REQUIRED
	NotifyNoAdditionalSAs            NotifyType = 35 // NO_ADDITIONAL_SAS
	NotifyInternalAddressFailure     NotifyType = 36 // INTERNAL_ADDRESS_FAILURE
	NotifyFailedCPRequired           NotifyType = 37 // FAILED_CP_REQUIRED
	NotifyTSUnacceptable             NotifyType = 38 // TS_UNACCEPTABLE
	NotifyInvalidSelectors           NotifyType = 39 // INVALID_SELECTORS
	NotifyUnacceptableAddresses      NotifyType = 40 // UNACCEPTABLE_ADDRESSES (RFC 4555)
	NotifyUnexpectedNATDetected      NotifyType = 41 // UNEXPECTED_NAT_DETECTED (RFC 4555)
	NotifyUseAssignedHoA             NotifyType = 42 // USE_ASSIGNED_HoA (RFC 5026)
	NotifyTemporaryFailure           NotifyType = 43 // TEMPORARY_FAILURE (RFC 7296)
	NotifyChildSANotFound            NotifyType = 44 // CHILD_SA_NOT_FOUND (RFC 7296)
	NotifyInvalidGroupID             NotifyType = 45 // INVALID_GROUP_ID (RFC 9838)
	NotifyAuthorizationFailed        NotifyType = 46 // AUTHORIZATION_FAILED (RFC 9838)
)

// Status types (RFC 7296 §3.10.1 and later RFCs).
const (
	NotifyInitialContact                  NotifyType = 16384 // INITIAL_CONTACT
	NotifySetWindowSize                   NotifyType = 16385 // SET_WINDOW_SIZE
	NotifyAdditionalTSPossible            NotifyType = 16386 // ADDITIONAL_TS_POSSIBLE
	NotifyIPCOMPSupported                 NotifyType = 16387 // IPCOMP_SUPPORTED
	NotifyNATDetectionSourceIP            NotifyType = 16388 // NAT_DETECTION_SOURCE_IP
	NotifyNATDetectionDestinationIP       NotifyType = 16389 // NAT_DETECTION_DESTINATION_IP
	NotifyCookie                          NotifyType = 16390 // COOKIE
	NotifyUseTransportMode                NotifyType = 16391 // USE_TRANSPORT_MODE
	NotifyHTTPCertLookupSupported         NotifyType = 16392 // HTTP_CERT_LOOKUP_SUPPORTED
	NotifyRekeySA                         NotifyType = 16393 // REKEY_SA
	NotifyESPTFCPaddingNotSupported       NotifyType = 16394 // ESP_TFC_PADDING_NOT_SUPPORTED
	NotifyNonFirstFragmentsAlso           NotifyType = 16395 // NON_FIRST_FRAGMENTS_ALSO
	NotifyMOBIKESupported                 NotifyType = 16396 // MOBIKE_SUPPORTED (RFC 4555)
	NotifyAdditionalIP4Address            NotifyType = 16397 // ADDITIONAL_IP4_ADDRESS (RFC 4555)
	NotifyAdditionalIP6Address            NotifyType = 16398 // ADDITIONAL_IP6_ADDRESS (RFC 4555)
	NotifyNoAdditionalAddresses           NotifyType = 16399 // NO_ADDITIONAL_ADDRESSES (RFC 4555)
	NotifyUpdateSAAddresses               NotifyType = 16400 // UPDATE_SA_ADDRESSES (RFC 4555)
	NotifyCookie2                         NotifyType = 16401 // COOKIE2 (RFC 4555)
	NotifyNoNATsAllowed                   NotifyType = 16402 // NO_NATS_ALLOWED (RFC 4555)
	NotifyAuthLifetime                    NotifyType = 16403 // AUTH_LIFETIME (RFC 4478)
	NotifyMultipleAuthSupported           NotifyType = 16404 // MULTIPLE_AUTH_SUPPORTED (RFC 4739)
	NotifyAnotherAuthFollows              NotifyType = 16405 // ANOTHER_AUTH_FOLLOWS (RFC 4739)
	NotifyRedirectSupported               NotifyType = 16406 // REDIRECT_SUPPORTED (RFC 5685)
	NotifyRedirect                        NotifyType = 16407 // REDIRECT (RFC 5685)
	NotifyRedirectedFrom                  NotifyType = 16408 // REDIRECTED_FROM (RFC 5685)
	NotifyTicketLTOpaque                  NotifyType = 16409 // TICKET_LT_OPAQUE (RFC 5723)
	NotifyTicketRequest                   NotifyType = 16410 // TICKET_REQUEST (RFC 5723)
	NotifyTicketAck                       NotifyType = 16411 // TICKET_ACK (RFC 5723)
	NotifyTicketNack                      NotifyType = 16412 // TICKET_NACK (RFC 5723)
	NotifyTicketOpaque                    NotifyType = 16413 // TICKET_OPAQUE (RFC 5723)
	NotifyLinkID                          NotifyType = 16414 // LINK_ID (RFC 5739)
	NotifyUseWESPMode                     NotifyType = 16415 // USE_WESP_MODE (RFC 5840)
	NotifyROHCSupported                   NotifyType = 16416 // ROHC_SUPPORTED (RFC 5857)
	NotifyEAPOnlyAuthentication           NotifyType = 16417 // EAP_ONLY_AUTHENTICATION (RFC 5998)
	NotifyChildlessIKEv2Supported         NotifyType = 16418 // CHILDLESS_IKEV2_SUPPORTED (RFC 6023)
	NotifyQuickCrashDetection             NotifyType = 16419 // QUICK_CRASH_DETECTION (RFC 6290)
	NotifyIKEv2MessageIDSyncSupported     NotifyType = 16420 // IKEV2_MESSAGE_ID_SYNC_SUPPORTED (RFC 6311)
	NotifyIPsecReplayCounterSyncSupported NotifyType = 16421 // IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED (RFC 6311)
	NotifyIKEv2MessageIDSync              NotifyType = 16422 // IKEV2_MESSAGE_ID_SYNC (RFC 6311)
	NotifyIPsecReplayCounterSync          NotifyType = 16423 // IPSEC_REPLAY_COUNTER_SYNC (RFC 6311)
	NotifySecurePasswordMethods           NotifyType = 16424 // SECURE_PASSWORD_METHODS (RFC 6467)
	NotifyPSKPersist                      NotifyType = 16425 // PSK_PERSIST (RFC 6631)
	NotifyPSKConfirm                      NotifyType = 16426 // PSK_CONFIRM (RFC 6631)
	NotifyERXSupported                    NotifyType = 16427 // ERX_SUPPORTED (RFC 6867)
	NotifyIFOMCapability                  NotifyType = 16428 // IFOM_CAPABILITY
	NotifySenderRequestID                 NotifyType = 16429 // SENDER_REQUEST_ID
	NotifyIKEv2FragmentationSupported     NotifyType = 16430 // IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383)
	NotifySignatureHashAlgorithms         NotifyType = 16431 // SIGNATURE_HASH_ALGORITHMS (RFC 7427)
	NotifyCloneIKESASupported             NotifyType = 16432 // CLONE_IKE_SA_SUPPORTED (RFC 7791)
	NotifyCloneIKESA                      NotifyType = 16433 // CLONE_IKE_SA (RFC 7791)
	NotifyPuzzle                          NotifyType = 16434 // PUZZLE (RFC 8019)
	NotifyUsePPK                          NotifyType = 16435 // USE_PPK (RFC 8784)
	NotifyPPKIdentity                     NotifyType = 16436 // PPK_IDENTITY (RFC 8784)
	NotifyNoPPKAuth                       NotifyType = 16437 // NO_PPK_AUTH (RFC 8784)
	NotifyIntermediateExchangeSupported   NotifyType = 16438 // INTERMEDIATE_EXCHANGE_SUPPORTED (RFC 9242)
	NotifyIP4Allowed                      NotifyType = 16439 // IP4_ALLOWED (RFC 8983)
	NotifyIP6Allowed                      NotifyType = 16440 // IP6_ALLOWED (RFC 8983)
	NotifyAdditionalKeyExchange           NotifyType = 16441 // ADDITIONAL_KEY_EXCHANGE (RFC 9370)
	NotifyUseAggfrag                      NotifyType = 16442 // USE_AGGFRAG (RFC 9347)
	NotifySupportedAuthMethods            NotifyType = 16443 // SUPPORTED_AUTH_METHODS (RFC 9593)
	NotifySAResourceInfo                  NotifyType = 16444 // SA_RESOURCE_INFO (RFC 9611)

	notifyStatusFirst NotifyType = 16384 // the first status type
)

var notifyNames = map[NotifyType]string{
	NotifyUnsupportedCriticalPayload: "UNSUPPORTED_CRITICAL_PAYLOAD",
	NotifyInvalidIKESPI:              "INVALID_IKE_SPI",
	NotifyInvalidMajorVersion:        "INVALID_MAJOR_VERSION",
	NotifyInvalidSyntax:              "INVALID_SYNTAX",
	NotifyInvalidMessageID:           "INVALID_MESSAGE_ID",
	NotifyInvalidSPI:                 "INVALID_SPI",
	NotifyNoProposalChosen:           "NO_PROPOSAL_CHOSEN",
	NotifyInvalidKEPayload:           "INVALID_KE_PAYLOAD",
	NotifyAuthenticationFailed:       "AUTHENTICATION_FAILED",
	NotifySinglePairRequired:         "SINGLE_PAIR_REQUIRED",
	NotifyNoAdditionalSAs:            "NO_ADDITIONAL_SAS",
	NotifyInternalAddressFailure:     "INTERNAL_ADDRESS_FAILURE",
	NotifyFailedCPRequired:           "FAILED_CP_REQUIRED",
	NotifyTSUnacceptable:             "TS_UNACCEPTABLE",
	NotifyInvalidSelectors:           "INVALID_SELECTORS",
	NotifyUnacceptableAddresses:      "UNACCEPTABLE_ADDRESSES",
	NotifyUnexpectedNATDetected:      "UNEXPECTED_NAT_DETECTED",
	NotifyUseAssignedHoA:             "USE_ASSIGNED_HoA",
	NotifyTemporaryFailure:           "TEMPORARY_FAILURE",
	NotifyChildSANotFound:            "CHILD_SA_NOT_FOUND",
	NotifyInvalidGroupID:             "INVALID_GROUP_ID",
	NotifyAuthorizationFailed:        "AUTHORIZATION_FAILED",

	NotifyInitialContact:                  "INITIAL_CONTACT",
	NotifySetWindowSize:                   "SET_WINDOW_SIZE",
	NotifyAdditionalTSPossible:            "ADDITIONAL_TS_POSSIBLE",
	NotifyIPCOMPSupported:                 "IPCOMP_SUPPORTED",
	NotifyNATDetectionSourceIP:            "NAT_DETECTION_SOURCE_IP",
	NotifyNATDetectionDestinationIP:       "NAT_DETECTION_DESTINATION_IP",
	NotifyCookie:                          "COOKIE",
	NotifyUseTransportMode:                "USE_TRANSPORT_MODE",
	NotifyHTTPCertLookupSupported:         "HTTP_CERT_LOOKUP_SUPPORTED",
	NotifyRekeySA:                         "REKEY_SA",
	NotifyESPTFCPaddingNotSupported:       "ESP_TFC_PADDING_NOT_SUPPORTED",
	NotifyNonFirstFragmentsAlso:           "NON_FIRST_FRAGMENTS_ALSO",
	NotifyMOBIKESupported:                 "MOBIKE_SUPPORTED",
	NotifyAdditionalIP4Address:            "ADDITIONAL_IP4_ADDRESS",
	NotifyAdditionalIP6Address:            "ADDITIONAL_IP6_ADDRESS",
	NotifyNoAdditionalAddresses:           "NO_ADDITIONAL_ADDRESSES",
	NotifyUpdateSAAddresses:               "UPDATE_SA_ADDRESSES",
	NotifyCookie2:                         "COOKIE2",
	NotifyNoNATsAllowed:                   "NO_NATS_ALLOWED",
	NotifyAuthLifetime:                    "AUTH_LIFETIME",
	NotifyMultipleAuthSupported:           "MULTIPLE_AUTH_SUPPORTED",
	NotifyAnotherAuthFollows:              "ANOTHER_AUTH_FOLLOWS",
	NotifyRedirectSupported:               "REDIRECT_SUPPORTED",
	NotifyRedirect:                        "REDIRECT",
	NotifyRedirectedFrom:                  "REDIRECTED_FROM",
	NotifyTicketLTOpaque:                  "TICKET_LT_OPAQUE",
	NotifyTicketRequest:                   "TICKET_REQUEST",
	NotifyTicketAck:                       "TICKET_ACK",
	NotifyTicketNack:                      "TICKET_NACK",
	NotifyTicketOpaque:                    "TICKET_OPAQUE",
	NotifyLinkID:                          "LINK_ID",
	NotifyUseWESPMode:                     "USE_WESP_MODE",
	NotifyROHCSupported:                   "ROHC_SUPPORTED",
	NotifyEAPOnlyAuthentication:           "EAP_ONLY_AUTHENTICATION",
	NotifyChildlessIKEv2Supported:         "CHILDLESS_IKEV2_SUPPORTED",
	NotifyQuickCrashDetection:             "QUICK_CRASH_DETECTION",
	NotifyIKEv2MessageIDSyncSupported:     "IKEV2_MESSAGE_ID_SYNC_SUPPORTED",
	NotifyIPsecReplayCounterSyncSupported: "IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED",
	NotifyIKEv2MessageIDSync:              "IKEV2_MESSAGE_ID_SYNC",
	NotifyIPsecReplayCounterSync:          "IPSEC_REPLAY_COUNTER_SYNC",
	NotifySecurePasswordMethods:           "SECURE_PASSWORD_METHODS",
	NotifyPSKPersist:                      "PSK_PERSIST",
	NotifyPSKConfirm:                      "PSK_CONFIRM",
	NotifyERXSupported:                    "ERX_SUPPORTED",
	NotifyIFOMCapability:                  "IFOM_CAPABILITY",
	NotifySenderRequestID:                 "SENDER_REQUEST_ID",
	NotifyIKEv2FragmentationSupported:     "IKEV2_FRAGMENTATION_SUPPORTED",
	NotifySignatureHashAlgorithms:         "SIGNATURE_HASH_ALGORITHMS",
	NotifyCloneIKESASupported:             "CLONE_IKE_SA_SUPPORTED",
	NotifyCloneIKESA:                      "CLONE_IKE_SA",
	NotifyPuzzle:                          "PUZZLE",
	NotifyUsePPK:                          "USE_PPK",
	NotifyPPKIdentity:                     "PPK_IDENTITY",
	NotifyNoPPKAuth:                       "NO_PPK_AUTH",
	NotifyIntermediateExchangeSupported:   "INTERMEDIATE_EXCHANGE_SUPPORTED",
	NotifyIP4Allowed:                      "IP4_ALLOWED",
	NotifyIP6Allowed:                      "IP6_ALLOWED",
	NotifyAdditionalKeyExchange:           "ADDITIONAL_KEY_EXCHANGE",
	NotifyUseAggfrag:                      "USE_AGGFRAG",
	NotifySupportedAuthMethods:            "SUPPORTED_AUTH_METHODS",
	NotifySAResourceInfo:                  "SA_RESOURCE_INFO",
}

func (n NotifyType) String() string { return name(notifyNames, n, "NotifyType") }

// IsError reports whether n is an error type (RFC 7296 §3.10.1: 0..16383). An
// unrecognized error type in a response means the request failed; an unrecognized status
// type is ignored (§3.10.1).
func (n NotifyType) IsError() bool { return n < notifyStatusFirst }

// IDType is the ID Type of an IDi/IDr payload (RFC 7296 §3.5).
type IDType uint8

const (
	IDIPv4Addr   IDType = 1  // ID_IPV4_ADDR: four octets
	IDFQDN       IDType = 2  // ID_FQDN: a fully qualified domain name, no terminator
	IDRFC822Addr IDType = 3  // ID_RFC822_ADDR: an email address, no terminator
	IDIPv6Addr   IDType = 5  // ID_IPV6_ADDR: sixteen octets
	IDDERASN1DN  IDType = 9  // ID_DER_ASN1_DN: binary DER of an X.500 Distinguished Name
	IDDERASN1GN  IDType = 10 // ID_DER_ASN1_GN: binary DER of an X.509 GeneralName
	IDKeyID      IDType = 11 // ID_KEY_ID: opaque octets
	IDFCName     IDType = 12 // ID_FC_NAME (RFC 4595)
	IDNull       IDType = 13 // ID_NULL (RFC 7619): empty data
)

var idNames = map[IDType]string{
	IDIPv4Addr: "ID_IPV4_ADDR", IDFQDN: "ID_FQDN", IDRFC822Addr: "ID_RFC822_ADDR",
	IDIPv6Addr: "ID_IPV6_ADDR", IDDERASN1DN: "ID_DER_ASN1_DN", IDDERASN1GN: "ID_DER_ASN1_GN",
	IDKeyID: "ID_KEY_ID", IDFCName: "ID_FC_NAME", IDNull: "ID_NULL",
}

func (t IDType) String() string { return name(idNames, t, "IDType") }

// TSType is the TS Type of a traffic selector (RFC 7296 §3.13.1).
type TSType uint8

const (
	TSIPv4AddrRange TSType = 7  // TS_IPV4_ADDR_RANGE
	TSIPv6AddrRange TSType = 8  // TS_IPV6_ADDR_RANGE
	TSFCAddrRange   TSType = 9  // TS_FC_ADDR_RANGE (RFC 4595)
	TSSecLabel      TSType = 10 // TS_SECLABEL (RFC 9478)
)

var tsNames = map[TSType]string{
	TSIPv4AddrRange: "TS_IPV4_ADDR_RANGE", TSIPv6AddrRange: "TS_IPV6_ADDR_RANGE",
	TSFCAddrRange: "TS_FC_ADDR_RANGE", TSSecLabel: "TS_SECLABEL",
}

func (t TSType) String() string { return name(tsNames, t, "TSType") }

// AuthMethod is the Auth Method of an AUTH payload (RFC 7296 §3.8).
type AuthMethod uint8

const (
	AuthRSASig          AuthMethod = 1  // RSA Digital Signature (PKCS#1 v1.5, SHA-1)
	AuthPSK             AuthMethod = 2  // Shared Key Message Integrity Code
	AuthDSSSig          AuthMethod = 3  // DSS Digital Signature
	AuthECDSA256        AuthMethod = 9  // ECDSA with SHA-256 on the P-256 curve (RFC 4754)
	AuthECDSA384        AuthMethod = 10 // ECDSA with SHA-384 on the P-384 curve (RFC 4754)
	AuthECDSA521        AuthMethod = 11 // ECDSA with SHA-512 on the P-521 curve (RFC 4754)
	AuthGenericSecurePW AuthMethod = 12 // Generic Secure Password Authentication Method (RFC 6467)
	AuthNull            AuthMethod = 13 // NULL Authentication (RFC 7619)
	AuthDigitalSig      AuthMethod = 14 // Digital Signature (RFC 7427)
)

var authNames = map[AuthMethod]string{
	AuthRSASig: "RSA_SIG", AuthPSK: "PSK", AuthDSSSig: "DSS_SIG", AuthECDSA256: "ECDSA_256",
	AuthECDSA384: "ECDSA_384", AuthECDSA521: "ECDSA_521", AuthGenericSecurePW: "GSPM",
	AuthNull: "NULL", AuthDigitalSig: "DIGITAL_SIGNATURE",
}

func (m AuthMethod) String() string { return name(authNames, m, "AuthMethod") }

// CertEncoding is the Cert Encoding of a CERT or CERTREQ payload (RFC 7296 §3.6).
type CertEncoding uint8

const (
	CertPKCS7             CertEncoding = 1  // PKCS #7 wrapped X.509 certificate
	CertPGP               CertEncoding = 2  // PGP Certificate
	CertDNSSignedKey      CertEncoding = 3  // DNS Signed Key
	CertX509Sig           CertEncoding = 4  // X.509 Certificate - Signature
	CertKerberos          CertEncoding = 6  // Kerberos Token
	CertCRL               CertEncoding = 7  // Certificate Revocation List (CRL)
	CertARL               CertEncoding = 8  // Authority Revocation List (ARL)
	CertSPKI              CertEncoding = 9  // SPKI Certificate
	CertX509Attr          CertEncoding = 10 // X.509 Certificate - Attribute
	CertRawRSAKey         CertEncoding = 11 // Raw RSA Key (deprecated)
	CertHashURLX509       CertEncoding = 12 // Hash and URL of X.509 certificate
	CertHashURLX509Bundle CertEncoding = 13 // Hash and URL of X.509 bundle
	CertOCSPContent       CertEncoding = 14 // OCSP Content (RFC 4806)
	CertRawPublicKey      CertEncoding = 15 // Raw Public Key (RFC 7670)
)

var certNames = map[CertEncoding]string{
	CertPKCS7: "PKCS7_WRAPPED_X509", CertPGP: "PGP", CertDNSSignedKey: "DNS_SIGNED_KEY",
	CertX509Sig: "X509_CERT_SIG", CertKerberos: "KERBEROS_TOKEN", CertCRL: "CRL", CertARL: "ARL",
	CertSPKI: "SPKI", CertX509Attr: "X509_CERT_ATTR", CertRawRSAKey: "RAW_RSA_KEY",
	CertHashURLX509: "HASH_URL_X509_CERT", CertHashURLX509Bundle: "HASH_URL_X509_BUNDLE",
	CertOCSPContent: "OCSP_CONTENT", CertRawPublicKey: "RAW_PUBLIC_KEY",
}

func (c CertEncoding) String() string { return name(certNames, c, "CertEncoding") }

// CPType is the CFG Type of a Configuration payload (RFC 7296 §3.15).
type CPType uint8

const (
	CPRequest CPType = 1 // CFG_REQUEST
	CPReply   CPType = 2 // CFG_REPLY
	CPSet     CPType = 3 // CFG_SET
	CPAck     CPType = 4 // CFG_ACK
)

var cpNames = map[CPType]string{CPRequest: "CFG_REQUEST", CPReply: "CFG_REPLY", CPSet: "CFG_SET", CPAck: "CFG_ACK"}

func (t CPType) String() string { return name(cpNames, t, "CPType") }

// CPAttrType is a Configuration Attribute Type (RFC 7296 §3.15.1), 15 bits.
type CPAttrType uint16

const (
	CPInternalIP4Address  CPAttrType = 1  // INTERNAL_IP4_ADDRESS
	CPInternalIP4Netmask  CPAttrType = 2  // INTERNAL_IP4_NETMASK
	CPInternalIP4DNS      CPAttrType = 3  // INTERNAL_IP4_DNS
	CPInternalIP4NBNS     CPAttrType = 4  // INTERNAL_IP4_NBNS
	CPInternalIP4DHCP     CPAttrType = 6  // INTERNAL_IP4_DHCP
	CPApplicationVersion  CPAttrType = 7  // APPLICATION_VERSION
	CPInternalIP6Address  CPAttrType = 8  // INTERNAL_IP6_ADDRESS
	CPInternalIP6DNS      CPAttrType = 10 // INTERNAL_IP6_DNS
	CPInternalIP6DHCP     CPAttrType = 12 // INTERNAL_IP6_DHCP
	CPInternalIP4Subnet   CPAttrType = 13 // INTERNAL_IP4_SUBNET
	CPSupportedAttributes CPAttrType = 14 // SUPPORTED_ATTRIBUTES
	CPInternalIP6Subnet   CPAttrType = 15 // INTERNAL_IP6_SUBNET
	CPMIP6HomePrefix      CPAttrType = 16 // MIP6_HOME_PREFIX (RFC 5026)
	CPInternalIP6Link     CPAttrType = 17 // INTERNAL_IP6_LINK (RFC 5739)
	CPInternalIP6Prefix   CPAttrType = 18 // INTERNAL_IP6_PREFIX (RFC 5739)
	CPHomeAgentAddress    CPAttrType = 19 // HOME_AGENT_ADDRESS
	CPPCSCFIP4Address     CPAttrType = 20 // P_CSCF_IP4_ADDRESS (RFC 7651)
	CPPCSCFIP6Address     CPAttrType = 21 // P_CSCF_IP6_ADDRESS (RFC 7651)
	CPFTTKAT              CPAttrType = 22 // FTT_KAT
	CPExternalSourceIP4   CPAttrType = 23 // EXTERNAL_SOURCE_IP4_NAT_INFO
	CPTimeoutLiveness     CPAttrType = 24 // TIMEOUT_PERIOD_FOR_LIVENESS_CHECK
	CPInternalDNSDomain   CPAttrType = 25 // INTERNAL_DNS_DOMAIN (RFC 8598)
	CPInternalDNSSECTA    CPAttrType = 26 // INTERNAL_DNSSEC_TA (RFC 8598)
)

var cpAttrNames = map[CPAttrType]string{
	CPInternalIP4Address: "INTERNAL_IP4_ADDRESS", CPInternalIP4Netmask: "INTERNAL_IP4_NETMASK",
	CPInternalIP4DNS: "INTERNAL_IP4_DNS", CPInternalIP4NBNS: "INTERNAL_IP4_NBNS",
	CPInternalIP4DHCP: "INTERNAL_IP4_DHCP", CPApplicationVersion: "APPLICATION_VERSION",
	CPInternalIP6Address: "INTERNAL_IP6_ADDRESS", CPInternalIP6DNS: "INTERNAL_IP6_DNS",
	CPInternalIP6DHCP: "INTERNAL_IP6_DHCP", CPInternalIP4Subnet: "INTERNAL_IP4_SUBNET",
	CPSupportedAttributes: "SUPPORTED_ATTRIBUTES", CPInternalIP6Subnet: "INTERNAL_IP6_SUBNET",
	CPMIP6HomePrefix: "MIP6_HOME_PREFIX", CPInternalIP6Link: "INTERNAL_IP6_LINK",
	CPInternalIP6Prefix: "INTERNAL_IP6_PREFIX", CPHomeAgentAddress: "HOME_AGENT_ADDRESS",
	CPPCSCFIP4Address: "P_CSCF_IP4_ADDRESS", CPPCSCFIP6Address: "P_CSCF_IP6_ADDRESS",
	CPFTTKAT: "FTT_KAT", CPExternalSourceIP4: "EXTERNAL_SOURCE_IP4_NAT_INFO",
	CPTimeoutLiveness: "TIMEOUT_PERIOD_FOR_LIVENESS_CHECK", CPInternalDNSDomain: "INTERNAL_DNS_DOMAIN",
	CPInternalDNSSECTA: "INTERNAL_DNSSEC_TA",
}

func (t CPAttrType) String() string { return name(cpAttrNames, t, "CPAttrType") }

// Flags are the flags octet of the IKE header (RFC 7296 §3.1).
type Flags uint8

const (
	FlagInitiator Flags = 0x08 // I: sent by the original initiator of the IKE SA
	FlagVersion   Flags = 0x10 // V: the sender can speak a higher major version
	FlagResponse  Flags = 0x20 // R: this message is a response
)

// Initiator reports the I flag.
func (f Flags) Initiator() bool { return f&FlagInitiator != 0 }

// Response reports the R flag.
func (f Flags) Response() bool { return f&FlagResponse != 0 }

// String prints the set flags as "I|R"-style text ("0" when none are set; unknown bits
// as hex).
func (f Flags) String() string {
	var b []byte
	add := func(s string) {
		if len(b) > 0 {
			b = append(b, '|')
		}
		b = append(b, s...)
	}
	if f&FlagInitiator != 0 {
		add("I")
	}
	if f&FlagVersion != 0 {
		add("V")
	}
	if f&FlagResponse != 0 {
		add("R")
	}
	if rest := f &^ (FlagInitiator | FlagVersion | FlagResponse); rest != 0 {
		add("0x" + strconv.FormatUint(uint64(rest), 16))
	}
	if len(b) == 0 {
		return "0"
	}
	return string(b)
}

// name looks v up in a registry table, falling back to "Kind(number)".
func name[T ~uint8 | ~uint16](table map[T]string, v T, kind string) string {
	if s, ok := table[v]; ok {
		return s
	}
	return kind + "(" + strconv.FormatUint(uint64(v), 10) + ")"
}
