package gc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

// logProposer applies proposals to the state in order, like a one-node log.
type logProposer struct {
	s   *state
	now time.Time
}

func (p *logProposer) Propose(_ context.Context, pl events.Payload) (uint64, error) {
	b, err := events.Encode(events.Event{Time: p.now, Payload: pl})
	if err != nil {
		return 0, err
	}
	p.s.idx++
	if res := p.s.f.Apply(&raft.Log{Index: p.s.idx, Type: raft.LogCommand, Data: b}); res != nil {
		return 0, res.(error)
	}
	return p.s.idx, nil
}

// store records deletes; bytes it never had answer ErrNotFound.
type store struct {
	mu      sync.Mutex
	have    map[digest.Digest]bool
	deleted []digest.Digest
	// onDelete runs after each delete (a test ends the term there).
	onDelete func(n int)
}

func (s *store) Delete(_ context.Context, d digest.Digest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.have[d] {
		return blob.ErrNotFound
	}
	delete(s.have, d)
	s.deleted = append(s.deleted, d)
	if s.onDelete != nil {
		s.onDelete(len(s.deleted))
	}
	return nil
}

func strays(s *state, n int) *store {
	st := &store{have: map[digest.Digest]bool{}}
	for i := range n {
		d := fmt.Sprintf("stray-%d", i)
		s.at(t0, link("app", d, 1))
		st.have[dg(d)] = true
	}
	return st
}

func newJob(s *state, st *store, fence Fence) *Job {
	return &Job{
		Props: &logProposer{s: s, now: t0.Add(48 * time.Hour)}, View: s.f.View, Blobs: st, Fence: fence,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Grace: time.Hour, Batch: 10,
		Now: func() time.Time { return t0.Add(48 * time.Hour) },
	}
}

// TestFencedJobStopsBeforeNextBatch: a job whose term ends deletes no more
// after the batch it was in; the next leader resumes the open run from the
// log and finishes it, deletes of gone bytes being harmless.
func TestFencedJobStopsBeforeNextBatch(t *testing.T) {
	s := newState(t)
	st := strays(s, 25)
	leading := true
	fence := func() error {
		if !leading {
			return ErrFenced
		}
		return nil
	}
	st.onDelete = func(n int) {
		if n == 3 {
			leading = false // the term ends during the first batch
		}
	}
	j := newJob(s, st, fence)
	if _, err := j.Run(context.Background(), Options{Grace: time.Hour}); !errors.Is(err, ErrFenced) {
		t.Fatalf("run: %v, want ErrFenced", err)
	}
	if len(st.deleted) != 10 {
		t.Fatalf("deleted %d after the term ended in the first batch of 10, want 10", len(st.deleted))
	}
	run, open := s.f.View().GCRun()
	if !open || run.Phase != fsm.GCPhaseSweeping {
		t.Fatalf("run after failover: %+v open=%v, want sweeping", run, open)
	}
	// The new leader: same log, its own term.
	st.onDelete = nil
	leading = true
	res, err := newJob(s, st, fence).Resume(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.deleted) != 25 || len(st.have) != 0 || res.Deleted != 15 {
		t.Errorf("after resume: %d deleted, %d left, result %d", len(st.deleted), len(st.have), res.Deleted)
	}
	if _, open := s.f.View().GCRun(); open {
		t.Error("run still open after resume")
	}
	if _, linked := s.f.View().FindBlobLink(dg("stray-0")); linked {
		t.Error("a swept blob is still linked")
	}
}

// TestJobNotLeaderDoesNothing: a job that is not leader commits nothing.
func TestJobNotLeaderDoesNothing(t *testing.T) {
	s := newState(t)
	st := strays(s, 3)
	before := s.idx
	_, err := newJob(s, st, func() error { return ErrFenced }).Run(context.Background(), Options{})
	if !errors.Is(err, ErrFenced) || s.idx != before || len(st.deleted) != 0 {
		t.Errorf("err %v, %d entries, %d deletes", err, s.idx-before, len(st.deleted))
	}
}

// TestDryRunMatchesRun: a dry run lists exactly what the run then deletes.
func TestDryRunMatchesRun(t *testing.T) {
	s := registry(t)
	st := &store{have: map[digest.Digest]bool{}}
	for _, d := range []string{"cfg", "l1", "l2", "ca", "cb", "stray", "young", "img", "sig", "arm", "amd", "idx", "untagged"} {
		st.have[dg(d)] = true
	}
	j := newJob(s, st, func() error { return nil })
	opt := Options{DeleteUntagged: true, Grace: time.Hour}
	before := s.idx
	dry := j.DryRun(opt)
	if s.idx != before || dry.Index != before || dry.Open != nil {
		t.Fatalf("dry run at index %d (open %v) committed %d entries, want it at %d and none", dry.Index, dry.Open, s.idx-before, before)
	}
	res, err := j.Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(dry.Blobs) != fmt.Sprint(res.Blobs) || len(dry.Blobs) != 4 {
		t.Errorf("dry run %v, run %v", dry.Blobs, res.Blobs)
	}
	if fmt.Sprint(dry.Manifests) != fmt.Sprint(res.Manifests) || len(dry.Manifests) == 0 {
		t.Errorf("dry run manifests %v, run %v", dry.Manifests, res.Manifests)
	}
	if h := s.f.View().GCHistory(); len(h) != 1 || h[0].Deleted != 4 {
		t.Errorf("history %+v", h)
	}
}
