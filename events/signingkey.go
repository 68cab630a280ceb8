package events

import "time"

// TypeSigningKeyAdded is generation 3 (generation.go).
const TypeSigningKeyAdded Type = "SigningKeyAdded"

// SigningKeyAdded adds a token signing key to the cluster and makes it the
// one new tokens are signed with. The private key travels only sealed
// under the cluster secret (auth.SealSigningKey): the log, snapshots and
// every follower's disk hold ciphertext, and any node holding the secret
// can sign. Older keys keep verifying until every token they signed has
// expired (the FSM keeps the last few), so rotation needs no downtime.
// It is never published: ToCloudEvent returns ok=false for it.
type SigningKeyAdded struct {
	ID  string `json:"id"`
	Alg string `json:"alg"`
	// Public is the PKIX DER public key, so verifying needs no secret.
	Public []byte `json:"public"`
	// Sealed is the PKCS #8 private key sealed under the cluster secret.
	Sealed []byte `json:"sealed"`
	// Created is when the leader made the key; rotation is due a period
	// after it.
	Created time.Time `json:"created"`
}

func (SigningKeyAdded) EventType() Type    { return TypeSigningKeyAdded }
func (SigningKeyAdded) SchemaVersion() int { return 1 }
