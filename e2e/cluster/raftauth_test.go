package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/e2e/harness"
	"github.com/berth-registry/berth/events"
)

// TestRaftPortRejectsForgedAppendEntries is the attack from issue 8: a
// client with no credentials speaks hashicorp/raft's wire protocol to a
// node's Raft port and sends AppendEntries at a higher term carrying a
// RepositoryDeleted event. The node must apply nothing: the repository
// stays and the node's term does not jump to the forged one.
func TestRaftPortRejectsForgedAppendEntries(t *testing.T) {
	c := &cluster{t: t, dir: t.TempDir()}
	c.minio = startMinIO(t, c.dir)
	c.startNodes("solo", 1)
	im := harness.NewImage("victim/app", "v1")
	ctx, cancel := c.ctx(30 * time.Second)
	defer cancel()
	if err := im.Push(ctx, c.nodes[0].api); err != nil {
		t.Fatalf("push: %v", err)
	}
	c.forgeAppendEntries(t, c.nodes[0], im.Repo)
}

// nodeRaftStatus is the part of a node's status the forgery needs.
type nodeRaftStatus struct {
	ID        string `json:"id"`
	Term      uint64 `json:"term"`
	LastIndex uint64 `json:"lastIndex"`
}

func (c *cluster) raftStatus(t *testing.T, nd *node) nodeRaftStatus {
	t.Helper()
	ctx, cancel := c.ctx(5 * time.Second)
	defer cancel()
	code, _, body, err := c.httpStatus(ctx, "GET", c.url(nd.api, "/admin/v1/cluster/status"),
		map[string]string{"Authorization": "Bearer " + adminToken}, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("status of %s: %d %v %s", nd.id, code, err, body)
	}
	var st struct {
		Nodes []nodeRaftStatus `json:"nodes"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Nodes {
		if s.ID == nd.id {
			return s
		}
	}
	t.Fatalf("%s is not in its own status: %s", nd.id, body)
	return nodeRaftStatus{}
}

// forgeAppendEntries sends, with raft's own unauthenticated TCP transport,
// an AppendEntries that extends nd's log exactly where it ends (so an
// unprotected node accepts it) at a term far above nd's, committing an
// entry that deletes repo. Then it checks for five seconds that nothing
// happened.
func (c *cluster) forgeAppendEntries(t *testing.T, nd *node, repo string) {
	t.Helper()
	before := c.raftStatus(t, nd)
	forgedTerm := before.Term + 1000
	data, err := events.Encode(events.Event{Time: time.Now(), Payload: events.RepositoryDeleted{Repo: repo}})
	if err != nil {
		t.Fatal(err)
	}
	attacker, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	req := &raft.AppendEntriesRequest{
		RPCHeader:    raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("intruder"), Addr: []byte(attacker.LocalAddr())},
		Term:         forgedTerm,
		PrevLogEntry: before.LastIndex,
		PrevLogTerm:  before.Term,
		Entries: []*raft.Log{{
			Index: before.LastIndex + 1, Term: forgedTerm, Type: raft.LogCommand, Data: data, AppendedAt: time.Now(),
		}},
		LeaderCommitIndex: before.LastIndex + 1,
	}
	var resp raft.AppendEntriesResponse
	err = attacker.AppendEntries(raft.ServerID(nd.id), raft.ServerAddress(nd.raft), req, &resp)
	t.Logf("forged AppendEntries (term %d -> %d, entry %d) to %s: response %+v, err %v", before.Term, forgedTerm, before.LastIndex+1, nd.id, resp, err)
	if err == nil {
		t.Errorf("%s answered an unauthenticated AppendEntries: %+v", nd.id, resp)
	}

	tags := func() (int, []byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		code, _, body, err := c.httpStatus(ctx, "GET", c.url(nd.api, "/v2/"+repo+"/tags/list"), nil, nil)
		return code, body, err
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		switch code, body, err := tags(); {
		case err == nil && code == http.StatusOK:
		case err == nil && code == http.StatusServiceUnavailable:
			// An honest election: on a loaded machine a leader can lose
			// contact with its peers for a moment and step down. That
			// says nothing about the forgery (which would show as a 404
			// or the forged term); the read after the loop must succeed.
			t.Logf("%s after the forged AppendEntries: GET tags of %s: %d %s", nd.id, repo, code, body)
		default:
			t.Fatalf("%s after the forged AppendEntries: GET tags of %s: %d %v %s", nd.id, repo, code, err, body)
		}
		if st := c.raftStatus(t, nd); st.Term >= forgedTerm {
			t.Fatalf("%s took the forged term: now %d, was %d, forged %d", nd.id, st.Term, before.Term, forgedTerm)
		}
		time.Sleep(250 * time.Millisecond)
	}
	harness.WaitFor(t, repo+" still listed on "+nd.id, 30*time.Second, func() error {
		code, body, err := tags()
		if err == nil && code == http.StatusNotFound {
			t.Fatalf("%s after the forged AppendEntries: %s is gone: %s", nd.id, repo, body)
		}
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("GET tags of %s: %d %v %s", repo, code, err, body)
		}
		return nil
	})
}
