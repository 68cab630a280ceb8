package fsm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/events"
)

// olderBinary decodes like a Berth that predates TagDeleted.
func olderBinary(b []byte) (events.Event, error) {
	ev, err := events.Decode(b)
	if err == nil && ev.Type() == events.TypeTagDeleted {
		return events.Event{}, fmt.Errorf("decode event %q: %w", ev.Type(), events.ErrUnknownType)
	}
	return ev, err
}

func TestUndecodableEntryHaltsTheFSM(t *testing.T) {
	h := newHarness(t)
	h.f.decode = olderBinary
	h.must(events.ManifestPut{Repo: "app", Digest: dg("m"), Tags: []string{"x"}})
	before := h.f.AppliedIndex()

	err := h.apply(events.TagDeleted{Repo: "app", Tag: "x"})
	var halt *HaltError
	if !errors.As(err, &halt) || halt.Index != before+1 || !errors.Is(err, events.ErrUnknownType) {
		t.Fatalf("apply of an undecodable entry = %v, want a HaltError at %d wrapping ErrUnknownType", err, before+1)
	}
	// Later entries, decodable or not, are not applied.
	if err := h.apply(events.TagSet{Repo: "app", Tag: "y", Digest: dg("m")}); !errors.As(err, &halt) {
		t.Fatalf("apply after the halt = %v, want the HaltError", err)
	}
	h.f.Apply(&raft.Log{Index: h.idx + 1, Type: raft.LogNoop})
	if got := h.f.AppliedIndex(); got != before {
		t.Errorf("applied index = %d, want it held at %d, before the entry", got, before)
	}
	if _, ok := h.f.View().Tag("app", "y"); ok {
		t.Error("an entry after the halt was applied")
	}
	if err := h.f.Halted(); !errors.As(err, &halt) {
		t.Errorf("Halted() = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := h.f.WaitApplied(ctx, before+1); !errors.As(err, &halt) {
		t.Errorf("WaitApplied past the halt = %v, want the HaltError at once", err)
	}
	if err := h.f.WaitApplied(ctx, before); err != nil {
		t.Errorf("WaitApplied before the halt = %v", err)
	}
	if _, err := h.f.Snapshot(); !errors.As(err, &halt) {
		t.Errorf("Snapshot of a halted FSM = %v, want the HaltError (it would let Raft compact the entry away)", err)
	}
}

// TestHaltedNodeResumesAfterUpgrade runs real Raft: a node whose binary
// cannot decode an entry stops there, Raft keeps the entry, and a restart
// with a binary that can decode it replays the log to the right state.
func TestHaltedNodeResumesAfterUpgrade(t *testing.T) {
	logs, snaps := raft.NewInmemStore(), raft.NewInmemSnapshotStore()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(f *FSM, bootstrap bool) *raft.Raft {
		t.Helper()
		addr, trans := raft.NewInmemTransport("n1")
		c := raft.DefaultConfig()
		c.LocalID = "n1"
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
		c.Logger = nil
		c.LogOutput = io.Discard
		r, err := raft.NewRaft(c, f, logs, logs, snaps, trans)
		if err != nil {
			t.Fatal(err)
		}
		if bootstrap {
			if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: "n1", Address: addr}}}).Error(); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for r.State() != raft.Leader {
			if time.Now().After(deadline) {
				t.Fatal("no leader")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := r.Barrier(5 * time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	apply := func(r *raft.Raft, p events.Payload) any {
		t.Helper()
		b, err := events.Encode(events.Event{Time: t0, Payload: p})
		if err != nil {
			t.Fatal(err)
		}
		f := r.Apply(b, 5*time.Second)
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
		return f.Response()
	}

	old := New(logger)
	old.decode = olderBinary
	r := start(old, true)
	apply(r, events.ManifestPut{Repo: "app", Digest: dg("m"), Tags: []string{"x", "keep"}})
	var halt *HaltError
	if res := apply(r, events.TagDeleted{Repo: "app", Tag: "x"}); !errors.As(res.(error), &halt) {
		t.Fatalf("old binary applied an entry it cannot decode: %v", res)
	}
	apply(r, events.TagSet{Repo: "app", Tag: "y", Digest: dg("m")})
	if err := r.Snapshot().Error(); err == nil {
		t.Error("Raft took a snapshot past the undecodable entry")
	}
	if _, ok := old.View().Tag("app", "x"); !ok {
		t.Error("old binary lost state from before the halt")
	}
	if err := r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}

	upgraded := New(logger)
	r = start(upgraded, false)
	defer r.Shutdown()
	if err := upgraded.Halted(); err != nil {
		t.Fatalf("upgraded binary halted: %v", err)
	}
	v := upgraded.View()
	if _, ok := v.Tag("app", "x"); ok {
		t.Error("tag x should be deleted after the replay")
	}
	for _, tag := range []string{"keep", "y"} {
		if _, ok := v.Tag("app", tag); !ok {
			t.Errorf("tag %s missing after the replay", tag)
		}
	}
}
