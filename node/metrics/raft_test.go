package metrics

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/fsm"
	cs "github.com/berth-registry/berth/node/consensus"
)

// A single voter on in-memory stores: it elects itself, which the leader
// observer counts, and its state is read when gathered.
func TestWatchRaft(t *testing.T) {
	m := New("test")
	var halted error
	r := newTestRaft(t, m, func() error { return halted })
	if err := r.Apply([]byte("x"), time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"berth_raft_leader": 1, "berth_raft_term": float64(r.CurrentTerm()),
		"berth_raft_commit_index": float64(r.CommitIndex()), "berth_raft_applied_index": float64(r.AppliedIndex()),
		"berth_raft_last_index": float64(r.LastIndex()), "berth_fsm_halted": 0,
	}
	for name, v := range want {
		if got, ok := sample(t, m, name); !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, v)
		}
	}
	if _, ok := sample(t, m, "berth_raft_last_contact_seconds"); ok {
		t.Error("a leader reports last contact")
	}
	for deadline := time.Now().Add(2 * time.Second); ; {
		if n, _ := sample(t, m, "berth_raft_leader_changes_total"); n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the election was not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	halted = errors.New("cannot decode")
	if got, _ := sample(t, m, "berth_fsm_halted"); got != 1 {
		t.Errorf("berth_fsm_halted = %v after a halt, want 1", got)
	}
}

// newTestRaft starts a single voter on in-memory stores, watched by m
// from before its election, and waits until it leads.
func newTestRaft(t *testing.T, m *Metrics, halted func() error) *raft.Raft {
	t.Helper()
	rc := raft.DefaultConfig()
	rc.LocalID = "a"
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	rc.Logger = hclog.New(&hclog.LoggerOptions{Output: io.Discard})
	store := raft.NewInmemStore()
	addr, trans := raft.NewInmemTransport("a")
	r, err := raft.NewRaft(rc, &raft.MockFSM{}, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown().Error() })
	m.WatchRaft(r, halted)
	t.Cleanup(m.Close)
	if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: "a", Address: addr}}}).Error(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.State() != raft.Leader || r.AppliedIndex() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return r
}

func TestObservePropose(t *testing.T) {
	m := New("test")
	for _, tc := range []struct {
		err    error
		result string
	}{
		{nil, "ok"},
		{&fsm.Refusal{}, "refused"},
		{&cs.UnavailableError{Err: raft.ErrNotLeader}, "unavailable"},
		{context.DeadlineExceeded, "error"},
	} {
		m.ObservePropose(time.Millisecond, tc.err)
		if n, _ := sample(t, m, "berth_propose_duration_seconds", "result", tc.result); n != 1 {
			t.Errorf("%v: result %s has %v observations, want 1", tc.err, tc.result, n)
		}
	}
	m.ObserveReadIndexRound(cs.ReadIndexRound{Leader: true, Batch: 5, Duration: time.Millisecond})
	m.ObserveReadIndexRound(cs.ReadIndexRound{Leader: false, Batch: 1, Err: errors.New("no leader")})
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"berth_read_index_rounds_total", []string{"role", "leader", "result", "ok"}, 1},
		{"berth_read_index_rounds_total", []string{"role", "follower", "result", "error"}, 1},
		{"berth_read_index_rounds_total", []string{"role", "leader", "result", "error"}, 0},
		{"berth_read_index_batch_size", []string{"role", "leader"}, 1},
		{"berth_read_index_round_seconds", []string{"role", "follower"}, 1},
	} {
		if n, _ := sample(t, m, c.name, c.labels...); n != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, n, c.want)
		}
	}
}
