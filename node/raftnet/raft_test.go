package raftnet

import (
	"io"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

func transport(l *Layer) *raft.NetworkTransport {
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: l, MaxPool: 2, Timeout: 5 * time.Second,
		Logger: hclog.New(&hclog.LoggerOptions{Output: io.Discard}),
	})
}

func forgedAppend(term uint64) *raft.AppendEntriesRequest {
	return &raft.AppendEntriesRequest{
		RPCHeader:         raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("intruder"), Addr: []byte("127.0.0.1:1")},
		Term:              term,
		Entries:           []*raft.Log{{Index: 1, Term: term, Type: raft.LogCommand, Data: []byte("forged")}},
		LeaderCommitIndex: 1,
	}
}

// The attack from issue 8: hashicorp/raft's own TCP transport, with no
// credentials, sends AppendEntries. Raft on the other side must never see
// the RPC; a member with the secret gets through on the same transport.
func TestRaftRPCNeedsAuthentication(t *testing.T) {
	layer, err := Listen("127.0.0.1:0", nil, newSecretAuth(t, testSecret), Options{HandshakeTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	server := transport(layer)
	defer server.Close()
	target := raft.ServerAddress(layer.Addr().String())

	attacker, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	var resp raft.AppendEntriesResponse
	if err := attacker.AppendEntries("victim", target, forgedAppend(1000), &resp); err == nil {
		t.Fatalf("unauthenticated AppendEntries answered: %+v", resp)
	}
	select {
	case rpc := <-server.Consumer():
		t.Fatalf("raft received an unauthenticated %T", rpc.Command)
	case <-time.After(300 * time.Millisecond):
	}

	ml, err := Listen("127.0.0.1:0", nil, newSecretAuth(t, testSecret), Options{})
	if err != nil {
		t.Fatal(err)
	}
	member := transport(ml)
	defer member.Close()
	go func() {
		rpc := <-server.Consumer()
		rpc.Respond(&raft.AppendEntriesResponse{Term: 7, Success: true}, nil)
	}()
	if err := member.AppendEntries("victim", target, forgedAppend(7), &resp); err != nil || !resp.Success {
		t.Fatalf("member AppendEntries: %+v, %v", resp, err)
	}
}
