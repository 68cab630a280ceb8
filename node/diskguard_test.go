package node

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/blob"
)

// fullStore is a Raft log whose writes fail with ENOSPC while full is set.
type fullStore struct {
	raft.LogStore
	full atomic.Bool
	// onFail, if set, runs as a write fails (space coming back just then).
	onFail atomic.Pointer[func()]
}

func (s *fullStore) StoreLogs(logs []*raft.Log) error {
	if s.full.Load() {
		if f := s.onFail.Load(); f != nil {
			(*f)()
		}
		return fmt.Errorf("write raft.db: %w", &os.PathError{Op: "write", Path: "raft.db", Err: syscall.ENOSPC})
	}
	return s.LogStore.StoreLogs(logs)
}

func testGuard(singleNode bool, reserve uint64, avail *atomic.Uint64) *diskGuard {
	g := newDiskGuard("/data/raft", reserve, singleNode, slog.New(slog.NewTextHandler(io.Discard, nil)))
	g.freeBytes = func(string) (uint64, bool) { return avail.Load(), true }
	return g
}

// TestDiskGuardRefusesBelowReserve: proposals are refused with an error the
// API answers 507, and accepted again once space is back.
func TestDiskGuardRefusesBelowReserve(t *testing.T) {
	var avail atomic.Uint64
	avail.Store(1 << 20)
	g := testGuard(true, 8<<20, &avail)
	if err := g.check(); !errors.Is(err, blob.ErrNoSpace) || !blob.IsNoSpace(err) {
		t.Fatalf("1 MiB free with an 8 MiB reserve: %v, want blob.ErrNoSpace", err)
	}
	avail.Store(9 << 20)
	if err := g.check(); err != nil {
		t.Fatalf("9 MiB free with an 8 MiB reserve: %v", err)
	}
}

// TestDiskGuardLogWrites: a client's entry that cannot be stored fails at
// once (its proposer gets an answer) and keeps proposals refused; Raft's
// own entries wait for space on a single node and fail in a cluster.
func TestDiskGuardLogWrites(t *testing.T) {
	cmd := []*raft.Log{{Index: 1, Term: 1, Type: raft.LogCommand}}
	noop := []*raft.Log{{Index: 1, Term: 1, Type: raft.LogNoop}}
	for _, tc := range []struct {
		name       string
		singleNode bool
		logs       []*raft.Log
		held       bool
	}{
		{"single node, client entry", true, cmd, false},
		{"single node, raft's no-op", true, noop, true},
		{"cluster, raft's no-op", false, noop, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var avail atomic.Uint64 // statfs shows 0 free, and no reserve
			g := testGuard(tc.singleNode, 0, &avail)
			store := &fullStore{LogStore: raft.NewInmemStore()}
			store.full.Store(true)
			ls := g.logStore(store)
			done := make(chan error, 1)
			go func() { done <- ls.StoreLogs(tc.logs) }()
			select {
			case err := <-done:
				if tc.held {
					t.Fatalf("returned %v; want it held until space is back", err)
				}
				if !blob.IsNoSpace(err) {
					t.Fatalf("got %v, want the ENOSPC", err)
				}
			case <-time.After(3 * holdPoll):
				if !tc.held {
					t.Fatal("held; want the error at once")
				}
			}
			if err := g.check(); !errors.Is(err, blob.ErrNoSpace) {
				t.Fatalf("after a failed log write, check: %v, want blob.ErrNoSpace", err)
			}
			// Space comes back (more free than at the failure).
			store.full.Store(false)
			avail.Store(recoverMargin + 1)
			if tc.held {
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("held write after space came back: %v", err)
					}
				case <-time.After(5 * holdPoll):
					t.Fatal("held write not retried after space came back")
				}
				if err := store.GetLog(1, new(raft.Log)); err != nil {
					t.Fatalf("held entry not stored: %v", err)
				}
			}
			if err := g.check(); err != nil {
				t.Fatalf("after space came back, check: %v", err)
			}
		})
	}
}

// TestDiskGuardSpaceBackDuringHeldRetry: space that comes back between a
// held write's failed retry and the guard's look at statfs must not keep
// proposals refused once the held write went in (a race that failed CI).
func TestDiskGuardSpaceBackDuringHeldRetry(t *testing.T) {
	var avail atomic.Uint64
	g := testGuard(true, 0, &avail)
	store := &fullStore{LogStore: raft.NewInmemStore()}
	store.full.Store(true)
	done := make(chan error, 1)
	go func() { done <- g.logStore(store).StoreLogs([]*raft.Log{{Index: 1, Term: 1, Type: raft.LogNoop}}) }()
	time.Sleep(holdPoll / 2) // the first write failed; the write is held
	free := func() {
		store.full.Store(false)
		avail.Store(recoverMargin + 1)
	}
	store.onFail.Store(&free)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("held write: %v", err)
		}
	case <-time.After(10 * holdPoll):
		t.Fatal("held write not retried after space came back")
	}
	if err := g.check(); err != nil {
		t.Fatalf("after the held write went in, check: %v", err)
	}
}

// TestDiskGuardClose releases a held write for shutdown.
func TestDiskGuardClose(t *testing.T) {
	var avail atomic.Uint64
	g := testGuard(true, 0, &avail)
	store := &fullStore{LogStore: raft.NewInmemStore()}
	store.full.Store(true)
	done := make(chan error, 1)
	go func() { done <- g.logStore(store).StoreLogs([]*raft.Log{{Index: 1, Type: raft.LogNoop}}) }()
	time.Sleep(holdPoll)
	g.close()
	select {
	case err := <-done:
		if !blob.IsNoSpace(err) {
			t.Fatalf("released write: %v, want the ENOSPC", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("close did not release the held write")
	}
}
