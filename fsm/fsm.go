// Package fsm is Berth's Raft state machine: it folds the events of the log
// into the materialized state every node serves reads from.
//
// Apply is deterministic (ARCHITECTURE.md rule 2): it reads only the event
// and the current state. Checks that depend on state (are the referenced
// blobs linked? does the manifest exist?) run here, so the order of the log
// settles every race between concurrent writers.
package fsm

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/events"
)

// FSM implements raft.FSM over a go-memdb database.
type FSM struct {
	logger *slog.Logger

	// db is swapped wholesale by Restore; readers load it atomically.
	db      atomic.Pointer[memdb.MemDB]
	applied atomic.Uint64
	// stateMu makes a commit and the advance of applied one step, so
	// SnapshotAt never pairs a state with the index of another.
	stateMu sync.Mutex

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced after every apply

	// halted is set at the first entry this binary cannot decode; from
	// then on nothing is applied (see HaltError).
	halted atomic.Pointer[HaltError]
	// decode is events.Decode; tests swap it to play an older binary.
	decode func([]byte) (events.Event, error)
}

// New returns an empty FSM.
func New(logger *slog.Logger) *FSM {
	f := &FSM{logger: logger, notify: make(chan struct{}), decode: events.Decode}
	f.db.Store(newDB())
	return f
}

func newDB() *memdb.MemDB {
	db, err := memdb.NewMemDB(schema)
	if err != nil {
		panic(fmt.Sprintf("fsm schema: %v", err)) // a programming error, caught by every test
	}
	return db
}

// Apply folds one committed log entry into the state. It returns nil, a
// *Refusal when a state check failed, or a *HaltError once it met an entry
// this binary cannot decode (a log written by a newer Berth). After a halt
// it applies nothing more and its applied index stays before that entry.
func (f *FSM) Apply(l *raft.Log) interface{} {
	if h := f.halted.Load(); h != nil {
		return h
	}
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	if l.Type != raft.LogCommand {
		f.advance(l.Index)
		return nil
	}
	ev, err := f.decode(l.Data)
	if err != nil {
		h := &HaltError{Index: l.Index, Err: err}
		f.halted.Store(h)
		f.logger.Error("stopped applying the log: this binary cannot decode an entry; upgrade this node", "index", l.Index, "err", err)
		f.wake()
		return h
	}
	err = f.applyEvent(l.Index, l.Data, ev)
	f.advance(l.Index)
	if err != nil {
		return err
	}
	return nil
}

// applyEvent runs one event in a write transaction that commits only if
// the event is accepted.
func (f *FSM) applyEvent(index uint64, entry []byte, ev events.Event) error {
	txn := f.db.Load().Txn(true)
	defer txn.Abort()
	w := writer{txn: txn, ev: ev, index: index, quota: &quotaChanges{}}
	if err := w.readOnlyGuard(ev.Payload); err != nil {
		return err
	}
	if err := w.gcGuard(ev.Payload); err != nil {
		return err
	}
	orphans := w.gcOrphansOf(ev.Payload)
	var err error
	switch p := ev.Payload.(type) {
	case events.ManifestPut:
		err = w.manifestPut(p)
	case events.ManifestDeleted:
		err = w.manifestDeleted(p)
	case events.TagSet:
		err = w.tagSet(p)
	case events.TagDeleted:
		err = w.tagDeleted(p)
	case events.BlobLinked:
		err = w.blobLinked(p)
	case events.BlobUnlinked:
		err = w.blobUnlinked(p)
	case events.RepositoryDeleted:
		err = w.repositoryDeleted(p)
	case events.ResourceApplied:
		err = w.resourceApplied(p)
	case events.ResourceDeleted:
		err = w.resourceDeleted(p)
	case events.ResourcesApplied:
		err = w.resourcesApplied(p)
	case events.OutboxCursor:
		err = w.outboxCursor(p)
	case events.ClusterIdentified:
		err = w.clusterIdentified(p)
	case events.GCStarted:
		err = w.gcStarted(p)
	case events.GCMarked:
		err = w.gcMarked(p)
	case events.GCSweepStarted:
		err = w.gcSweepStarted(p)
	case events.GCSwept:
		err = w.gcSwept(p)
	case events.GCCancelled:
		err = w.gcCancelled(p)
	case events.SigningKeyAdded:
		err = w.signingKeyAdded(p)
	case events.PullsRecorded:
		err = w.pullsRecorded(p)
	case events.BytesOrphaned:
		err = w.bytesOrphaned(p)
	case events.RetentionApplied:
		// Nothing to change: the run's deletions were entries of their
		// own; this one is published (dev.berth.retention.completed).
	case events.ReadOnlySet:
		err = w.readOnlySet(p)
	case events.QuotasEnabled:
		err = w.quotasEnabled()
	case events.MirrorCursor:
		err = w.mirrorCursor(p)
	case events.ReplicationReported:
		// Published (dev.berth.replication.<kind>); a push job's
		// reports also keep its progress (push.go).
		err = w.replicationReported(p)
	default:
		err = fmt.Errorf("fsm: no handler for event %s", ev.Type())
	}
	if err != nil {
		return err
	}
	w.gcRecordOrphans(ev.Payload, orphans)
	w.noteAuthChange(ev.Payload)
	w.recordOutbox(entry, w.quotaWarnings(ev.Payload))
	txn.Commit()
	return nil
}

func (f *FSM) advance(index uint64) {
	f.applied.Store(index)
	f.wake()
}

// wake releases every WaitApplied caller to look again.
func (f *FSM) wake() {
	f.notifyMu.Lock()
	close(f.notify)
	f.notify = make(chan struct{})
	f.notifyMu.Unlock()
}

// Changed is closed after the next entry is applied (or the state is
// restored): the outbox waits on it for new rows.
func (f *FSM) Changed() <-chan struct{} {
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	return f.notify
}

// AppliedIndex is the index of the last log entry this FSM applied (or the
// index of the snapshot it was restored from).
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// WaitApplied blocks until the FSM has applied index, or ctx ends. It
// fails at once with the *HaltError when the FSM halted before index.
func (f *FSM) WaitApplied(ctx context.Context, index uint64) error {
	for {
		if f.applied.Load() >= index {
			return nil
		}
		if h := f.halted.Load(); h != nil {
			return h
		}
		f.notifyMu.Lock()
		ch := f.notify
		f.notifyMu.Unlock()
		if f.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for index %d (applied %d): %w", index, f.applied.Load(), ctx.Err())
		}
	}
}

// View returns a consistent, point-in-time read of the state.
func (f *FSM) View() *View {
	// Index first: the transaction then reflects at least that index.
	index := f.applied.Load()
	return &View{txn: f.db.Load().Txn(false), index: index}
}
