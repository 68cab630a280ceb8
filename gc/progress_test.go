package gc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berth-registry/berth/events"
)

// watchingProposer records the job's progress while each GCMarked commits.
type watchingProposer struct {
	Proposer
	j    *Job
	seen []Progress
}

func (p *watchingProposer) Propose(ctx context.Context, pl events.Payload) (uint64, error) {
	i, err := p.Proposer.Propose(ctx, pl)
	if _, ok := pl.(events.GCMarked); ok {
		pr, _ := p.j.Progress()
		p.seen = append(p.seen, pr)
	}
	return i, err
}

// TestProgress: while a run marks and sweeps, Progress says which phase
// of which run, how many objects and bytes of how many; idle, nothing.
func TestProgress(t *testing.T) {
	s := newState(t)
	st := strays(s, 25)
	j := newJob(s, st, func() error { return nil })
	j.Parallel = 1 // one delete at a time, for exact counts at each
	wp := &watchingProposer{Proposer: j.Props, j: j}
	j.Props = wp
	var sweep []Progress
	st.onDelete = func(int) {
		p, _ := j.Progress()
		sweep = append(sweep, p)
	}
	if _, running := j.Progress(); running {
		t.Fatal("an idle job reports progress")
	}
	res, err := j.Run(context.Background(), Options{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(wp.seen) != 1 {
		t.Fatalf("%d marks committed, want 1", len(wp.seen))
	}
	// A chunk is counted once committed: while the only one commits,
	// none is done yet.
	if m := wp.seen[0]; m.Phase != PhaseMarking || m.Run != res.Run || m.Done != 0 || m.Total != 25 || m.Bytes != 0 || m.TotalBytes != 25 {
		t.Errorf("progress while the mark commits: %+v", m)
	}
	if len(sweep) != 25 {
		t.Fatalf("%d deletes seen, want 25", len(sweep))
	}
	for i, p := range sweep {
		// The delete is counted after it returns: the i-th sees i done.
		if p.Phase != PhaseSweeping || p.Run != res.Run || p.Done != i || p.Total != 25 || p.Bytes != int64(i) || p.TotalBytes != 25 ||
			p.Started.IsZero() || p.PhaseStarted.Before(p.Started) {
			t.Fatalf("progress at delete %d: %+v", i, p)
		}
	}
	if p, running := j.Progress(); running {
		t.Errorf("the job is done but reports %+v", p)
	}
}

// TestPurgeProgress: the upload purge reports itself as a job.
func TestPurgeProgress(t *testing.T) {
	s := newState(t)
	j := newJob(s, &store{}, func() error { return nil })
	var during Progress
	p := purgerFunc(func() (int, error) {
		during, _ = j.Progress()
		return 2, nil
	})
	if n, err := j.PurgeUploads(context.Background(), p, time.Hour, time.Now()); err != nil || n != 2 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	if during.Phase != PhasePurging || during.Done != 0 {
		t.Errorf("progress during the purge: %+v", during)
	}
	if _, running := j.Progress(); running {
		t.Error("progress left after the purge")
	}
	fenced := newJob(s, &store{}, func() error { return ErrFenced })
	if _, err := fenced.PurgeUploads(context.Background(), p, time.Hour, time.Now()); !errors.Is(err, ErrFenced) {
		t.Errorf("purge without leadership: %v", err)
	}
}

type purgerFunc func() (int, error)

func (f purgerFunc) PurgeUploads(context.Context, time.Time) (int, error) { return f() }
