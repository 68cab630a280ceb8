package node

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/blob"
)

// diskGuard keeps a full disk from turning into an election storm.
//
// When the Raft log cannot grow, hashicorp/raft's leader fails to store an
// entry and steps down; a single node then wins the next election at once,
// fails to store that term's no-op, and steps down again, several times a
// second, and reads wait for a leader that never settles. The guard stops
// this at both ends:
//
//   - before a proposal reaches Raft (check), it refuses with a
//     *DiskFullError (HTTP 507) when the data dir has less than the reserve
//     free, or the log failed with ENOSPC/EDQUOT within recheckAfter and
//     the disk has not visibly recovered since, so Raft is not handed
//     entries it cannot store;
//   - under Raft (guardedLogStore), a write that still fails for lack of
//     space (another process filled the disk between check and write, or
//     the reserve is 0) is remembered so that check refuses the next
//     proposals. A client's entry fails at once: Raft steps down, the
//     proposal is answered 507, and the entry is certainly not stored.
//     Raft's own entries (the no-op of a new term, barriers) are held, on
//     a single node, until space is back: with no other voter to take
//     over, a leader that waits keeps its term, where one that failed
//     would be re-elected and fail again several times a second.
type diskGuard struct {
	dir     string
	reserve uint64
	// hold: a log write of Raft's own entries waits for space rather than
	// fail (single node only; in a cluster another node takes over).
	hold   bool
	logger *slog.Logger
	// freeBytes reports the bytes available to this process under dir
	// (statfs); ok is false where that cannot be told.
	freeBytes func(dir string) (avail uint64, ok bool)
	closed    chan struct{}
	closeOnce sync.Once
	low       atomic.Bool // below the reserve at the last check, to log changes once

	mu          sync.Mutex
	failedAt    time.Time // last out-of-space log write; zero when none
	failErr     error
	availAtFail uint64 // free bytes seen then
}

// A failed log write keeps proposals refused until statfs shows
// recoverMargin more bytes free than when it failed, or, as statfs cannot
// see a quota (EDQUOT) or free pages inside the log file, for recheckAfter:
// then one proposal is let through to try. Letting one through sooner
// would cost a term each time on a disk that is still full.
const (
	recoverMargin = 1 << 20
	recheckAfter  = 30 * time.Second
)

// holdPoll is how often a held log write looks for space again.
const holdPoll = 250 * time.Millisecond

func newDiskGuard(dir string, reserve uint64, singleNode bool, logger *slog.Logger) *diskGuard {
	return &diskGuard{dir: dir, reserve: reserve, hold: singleNode, logger: logger, freeBytes: statfsFree, closed: make(chan struct{})}
}

// DiskFullError refuses a write because the node's data dir is (nearly)
// full. It matches blob.ErrNoSpace, which the API answers with 507.
type DiskFullError struct {
	Dir            string
	Avail, Reserve uint64
	Cause          error // the log write that failed, if that is how it was found
}

func (e *DiskFullError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("disk full: the raft log in %s cannot grow (%v); free space or grow the volume", e.Dir, e.Cause)
	}
	return fmt.Sprintf("disk full: %d bytes free in %s, below the %d reserved for the raft log (storage.reservedspace); free space or grow the volume",
		e.Avail, e.Dir, e.Reserve)
}

func (e *DiskFullError) Unwrap() error { return blob.ErrNoSpace }

// Unavailable marks the refusal as temporary for callers that map errors
// by that interface (the admin API answers 503): the write can succeed
// once space is freed.
func (e *DiskFullError) Unavailable() bool { return true }

// check says whether a proposal may go to Raft now.
func (g *diskGuard) check() error {
	avail, ok := g.freeBytes(g.dir)
	if ok && avail < g.reserve {
		if !g.low.Swap(true) {
			g.logger.Warn("data dir below its free-space reserve; refusing writes until space is freed (reads go on)",
				"dir", g.dir, "free", avail, "reserve", g.reserve)
		}
		return &DiskFullError{Dir: g.dir, Avail: avail, Reserve: g.reserve}
	}
	if g.low.Swap(false) {
		g.logger.Info("data dir has space again; accepting writes", "dir", g.dir, "free", avail)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failedAt.IsZero() {
		return nil
	}
	recovered := ok && avail >= g.availAtFail+recoverMargin
	if !recovered && time.Since(g.failedAt) < recheckAfter {
		return &DiskFullError{Dir: g.dir, Avail: avail, Reserve: g.reserve, Cause: g.failErr}
	}
	g.failedAt, g.failErr = time.Time{}, nil
	g.logger.Info("disk has space again; accepting writes", "dir", g.dir, "free", avail)
	return nil
}

// lastFailure is the remembered log-write failure as a *DiskFullError, or
// nil: it explains a proposal that Raft failed with leadership lost.
func (g *diskGuard) lastFailure() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failedAt.IsZero() {
		return nil
	}
	return &DiskFullError{Dir: g.dir, Reserve: g.reserve, Cause: g.failErr}
}

func (g *diskGuard) remember(err error) {
	avail, _ := g.freeBytes(g.dir)
	g.mu.Lock()
	first := g.failedAt.IsZero()
	g.failedAt, g.failErr, g.availAtFail = time.Now(), err, avail
	g.mu.Unlock()
	if first {
		g.logger.Error("raft log write failed: disk full; refusing writes until space is freed (reads go on)", "dir", g.dir, "err", err)
	}
}

// recovered forgets the remembered failure: a log write went in.
func (g *diskGuard) recovered() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.failedAt.IsZero() {
		g.failedAt, g.failErr = time.Time{}, nil
		g.logger.Info("raft log write succeeded after a full disk; accepting writes", "dir", g.dir)
	}
}

// close releases a log write that is waiting for space, for shutdown: it
// must come before anything that needs Raft's leader loop (a snapshot).
func (g *diskGuard) close() { g.closeOnce.Do(func() { close(g.closed) }) }

// logStore wraps the Raft log so out-of-space failures are remembered and,
// for Raft's own entries on a single node, waited out.
func (g *diskGuard) logStore(s raft.LogStore) raft.LogStore {
	return &guardedLogStore{LogStore: s, g: g}
}

type guardedLogStore struct {
	raft.LogStore
	g *diskGuard
}

func (s *guardedLogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs holds a write of Raft's own entries that failed for lack of
// space until it succeeds: a bolt transaction that fails is rolled back
// whole, so the same entries can be written again. A client's entry is
// never held: its proposer must get an answer, and only a failed write
// tells it for sure that the entry will not commit later.
func (s *guardedLogStore) StoreLogs(logs []*raft.Log) error {
	err := s.LogStore.StoreLogs(logs)
	if err == nil || !blob.IsNoSpace(err) {
		return err
	}
	s.g.remember(err)
	if !s.g.hold || slices.ContainsFunc(logs, func(l *raft.Log) bool { return l.Type == raft.LogCommand }) {
		return err
	}
	t := time.NewTicker(holdPoll)
	defer t.Stop()
	for {
		select {
		case <-s.g.closed:
			return err
		case <-t.C:
		}
		if avail, ok := s.g.freeBytes(s.g.dir); ok && avail < s.g.reserve {
			s.g.remember(err) // keep proposals refused while this waits
			continue
		}
		err = s.LogStore.StoreLogs(logs)
		if err == nil {
			// The write that failed for lack of space went in: there is
			// space, whatever statfs showed when the failure was
			// remembered (space may have come back in between).
			s.g.recovered()
			return nil
		}
		if !blob.IsNoSpace(err) {
			return err
		}
		s.g.remember(err)
	}
}
