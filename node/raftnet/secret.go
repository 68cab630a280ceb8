package raftnet

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
)

// The secret handshake, for clusters without TLS certificates. Both sides
// prove that they know a key derived from the cluster secret; the secret
// itself never crosses the wire. Every message has a fixed size, so nothing
// a peer sends can make us read more.
//
//	client -> server: magic | client nonce                      (48 bytes)
//	server -> client: magic | server nonce | server proof       (80 bytes)
//	client -> server: client proof                              (32 bytes)
//	server -> client: ok                                        (1 byte)
//
// proof = HMAC-SHA256(key, label | client nonce | server nonce), with the
// labels "server" and "client" distinct so neither proof can be reflected
// as the other, and fresh nonces on both sides so none can be replayed.
// The server proves itself first, so a client never answers an impostor.
//
// This authenticates each connection when it opens; it does not encrypt or
// integrity-protect what follows. Across untrusted networks, use TLS.
const (
	magic     = "BERTH-RAFT-AUTH1"
	nonceSize = 32
	proofSize = sha256.Size
	okByte    = 'k'
	// keyLabel separates this use of the cluster secret from its others
	// (the /internal bearer token, the gossip key).
	keyLabel = "berth raft transport v1"
)

// errBadProof is what a peer with a different cluster secret produces.
var errBadProof = errors.New("proof does not match: the peer has a different cluster secret")

type secretAuth struct {
	key []byte
}

// NewSecret returns an Authenticator that proves knowledge of secret.
func NewSecret(secret string) (Authenticator, error) {
	if secret == "" {
		return nil, errors.New("raftnet: empty cluster secret")
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(keyLabel))
	return &secretAuth{key: m.Sum(nil)}, nil
}

func (a *secretAuth) Mode() string { return "secret" }

func (a *secretAuth) proof(label string, clientNonce, serverNonce []byte) []byte {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(label))
	m.Write(clientNonce)
	m.Write(serverNonce)
	return m.Sum(nil)
}

func (a *secretAuth) Server(_ context.Context, conn net.Conn) (net.Conn, error) {
	hello := make([]byte, len(magic)+nonceSize)
	if _, err := io.ReadFull(conn, hello); err != nil {
		return nil, fmt.Errorf("read hello: %w", err)
	}
	if !bytes.Equal(hello[:len(magic)], []byte(magic)) {
		return nil, errors.New("peer did not open with the Berth raft handshake (an unauthenticated raft client, or another protocol)")
	}
	clientNonce := hello[len(magic):]
	serverNonce := make([]byte, nonceSize)
	rand.Read(serverNonce)
	reply := make([]byte, 0, len(magic)+nonceSize+proofSize)
	reply = append(reply, magic...)
	reply = append(reply, serverNonce...)
	reply = append(reply, a.proof("server", clientNonce, serverNonce)...)
	if _, err := conn.Write(reply); err != nil {
		return nil, fmt.Errorf("write challenge: %w", err)
	}
	got := make([]byte, proofSize)
	if _, err := io.ReadFull(conn, got); err != nil {
		return nil, fmt.Errorf("read proof: %w", err)
	}
	if !hmac.Equal(got, a.proof("client", clientNonce, serverNonce)) {
		return nil, errBadProof
	}
	if _, err := conn.Write([]byte{okByte}); err != nil {
		return nil, fmt.Errorf("write ok: %w", err)
	}
	return conn, nil
}

func (a *secretAuth) Client(_ context.Context, conn net.Conn) (net.Conn, error) {
	clientNonce := make([]byte, nonceSize)
	rand.Read(clientNonce)
	if _, err := conn.Write(append([]byte(magic), clientNonce...)); err != nil {
		return nil, fmt.Errorf("write hello: %w", err)
	}
	reply := make([]byte, len(magic)+nonceSize+proofSize)
	if _, err := io.ReadFull(conn, reply); err != nil {
		return nil, fmt.Errorf("read challenge (is the peer a Berth node with the cluster secret handshake, not TLS?): %w", err)
	}
	if !bytes.Equal(reply[:len(magic)], []byte(magic)) {
		return nil, errors.New("peer did not answer with the Berth raft handshake")
	}
	serverNonce := reply[len(magic) : len(magic)+nonceSize]
	if !hmac.Equal(reply[len(magic)+nonceSize:], a.proof("server", clientNonce, serverNonce)) {
		return nil, errBadProof
	}
	if _, err := conn.Write(a.proof("client", clientNonce, serverNonce)); err != nil {
		return nil, fmt.Errorf("write proof: %w", err)
	}
	ok := make([]byte, 1)
	if _, err := io.ReadFull(conn, ok); err != nil || ok[0] != okByte {
		return nil, fmt.Errorf("peer refused our proof: %w", errBadProof)
	}
	return conn, nil
}
