package node

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

func TestVotersBehind(t *testing.T) {
	voters := []raft.Server{
		{ID: "a", Suffrage: raft.Voter}, {ID: "b", Suffrage: raft.Voter},
		{ID: "c", Suffrage: raft.Voter}, {ID: "d", Suffrage: raft.Nonvoter},
	}
	for _, tc := range []struct {
		name      string
		gen       int
		announced map[string]int // absent: never seen through gossip
		want      []string
	}{
		{"all announce it", 2, map[string]int{"b": 2, "c": 3}, nil},
		{"an old voter", 2, map[string]int{"b": 2, "c": 1}, []string{"c (generation 1)"}},
		{"nothing announced is the baseline", 2, map[string]int{"b": 0, "c": 2}, []string{"b (generation 1)"}},
		{"a voter gossip never saw", 2, map[string]int{"b": 2}, []string{"c (not seen through gossip)"}},
		{"non-voters and self do not count", 2, map[string]int{"b": 2, "c": 2, "d": 0}, nil},
		{"baseline needs nobody", 1, map[string]int{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := votersBehind(tc.gen, voters, "a", func(id string) (int, bool) {
				g, ok := tc.announced[id]
				return g, ok
			})
			if tc.gen <= events.BaselineGeneration {
				got = nil // admit never asks for the baseline
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("votersBehind = %q, want %q", got, tc.want)
			}
		})
	}
}

// startSingle runs a single node without an outbox: its own entries
// (cluster ID, cursors) would make the log grow behind the tests' backs.
func startSingle(t *testing.T) *Node {
	t.Helper()
	return runTestNode(t, func(c *Config) { c.Events.Enabled = "false" })
}

func TestForwardedApplyRefusesBadBytes(t *testing.T) {
	n := startSingle(t)
	n.cfg.Cluster.secret = "s3cret"
	h := n.internalHandler()
	good, err := events.Encode(events.Event{Time: time.Now(), Payload: events.BlobLinked{Repo: "a", Digest: digest.FromString("a"), Size: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		body string
		want int
	}{
		{"empty body", "", http.StatusBadRequest},
		{"not JSON", "\x00\x01garbage", http.StatusBadRequest},
		{"unknown type", `{"type":"FromTheFuture","v":1,"data":{}}`, http.StatusBadRequest},
		{"unknown version", `{"type":"TagSet","v":9,"data":{}}`, http.StatusBadRequest},
		{"payload of the wrong shape", `{"type":"TagSet","v":1,"data":[1,2]}`, http.StatusBadRequest},
		{"a real event", string(good), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := n.raft.raft.LastIndex()
			req := httptest.NewRequest("POST", internalPrefix+"apply", strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer s3cret")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tc.want)
			}
			grew := n.raft.raft.LastIndex() > before
			if grew != (tc.want == http.StatusOK) {
				t.Errorf("log grew = %v for a %d answer", grew, rec.Code)
			}
		})
	}
}

func TestHaltedNodeIsNotReadyAndServesNoReads(t *testing.T) {
	n := startSingle(t)
	// Bypass admit, as an entry from a newer leader would arrive.
	if err := n.raft.raft.Apply([]byte(`{"type":"FromTheFuture","v":1,"data":{}}`), 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	n.readyz(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "upgrade this node") {
		t.Errorf("readyz = %d %q, want 503 naming the halt", rec.Code, rec.Body)
	}
	var halt *fsm.HaltError
	if _, err := n.ReadView(context.Background()); !errors.As(err, &halt) {
		t.Errorf("ReadView = %v, want the HaltError", err)
	}
	if st := n.localStatus(); !strings.Contains(st.Halted, "FromTheFuture") {
		t.Errorf("status halted = %q", st.Halted)
	}
	_, err := n.Propose(context.Background(), events.BlobLinked{Repo: "a", Digest: digest.FromString("b"), Size: 1})
	if !errors.As(err, &halt) {
		t.Errorf("Propose on a halted node = %v, want the HaltError", err)
	}
}
