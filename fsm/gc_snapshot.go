package fsm

import "fmt"

// gc checks one row of GC's tables from a snapshot and returns its key.
// The candidate rows need an open run, in the phase that can hold them.
func (l *loader) gc(obj any) ([]any, error) {
	run, _ := l.first(tGCRun, gcRunKey).(*GCRun)
	switch o := obj.(type) {
	case *GCRun:
		if o.Key != gcRunKey || o.Run == "" {
			return nil, fmt.Errorf("GC run row has key %q and run %q", o.Key, o.Run)
		}
		if o.Phase != GCPhaseMarking && o.Phase != GCPhaseSweeping {
			return nil, fmt.Errorf("GC run %s has unknown phase %q", o.Run, o.Phase)
		}
		if o.StartIndex > l.index || o.SweepIndex > l.index || o.GraceSeconds < 0 || o.Blobs < 0 || o.Manifests < 0 || o.Bytes < 0 {
			return nil, fmt.Errorf("GC run %s has counters or indexes out of range", o.Run)
		}
		return []any{o.Key}, nil
	case *gcBlobRow:
		if run == nil {
			return nil, fmt.Errorf("GC candidate %s without an open run", o.Digest)
		}
		if o.Size < 0 {
			return nil, fmt.Errorf("GC candidate %s has a negative size", o.Digest)
		}
		return []any{o.Digest.String()}, checkDigest("GC candidate", o.Digest)
	case *gcManifestRow:
		if run == nil || run.Phase != GCPhaseMarking {
			return nil, fmt.Errorf("GC manifest candidate %s@%s outside a marking run", o.Repo, o.Digest)
		}
		if err := checkRepoName(o.Repo); err != nil {
			return nil, err
		}
		return []any{o.Repo, o.Digest.String()}, checkDigest("GC manifest candidate", o.Digest)
	case *gcTouchedRow:
		if run == nil || run.Phase != GCPhaseMarking {
			return nil, fmt.Errorf("GC reference %s@%s outside a marking run", o.Repo, o.Digest)
		}
		if err := checkRepoName(o.Repo); err != nil {
			return nil, err
		}
		return []any{o.Repo, o.Digest.String()}, checkDigest("GC reference", o.Digest)
	case *gcTombRow:
		if o.Index > l.index {
			return nil, fmt.Errorf("GC tombstone of %s is past the snapshot's index", o.Digest)
		}
		return []any{o.Digest.String()}, checkDigest("GC tombstone", o.Digest)
	case *gcOrphanRow:
		if o.Size < 0 {
			return nil, fmt.Errorf("GC orphan %s has a negative size", o.Digest)
		}
		return []any{o.Digest.String()}, checkDigest("GC orphan", o.Digest)
	case *GCRecord:
		if o.Key != gcRecordKey(o.StartIndex) || o.StartIndex > l.index {
			return nil, fmt.Errorf("GC record %q does not match its start index %d", o.Key, o.StartIndex)
		}
		if o.Outcome != "swept" && o.Outcome != "cancelled" {
			return nil, fmt.Errorf("GC record %s has unknown outcome %q", o.Run, o.Outcome)
		}
		return []any{o.Key}, nil
	}
	return nil, fmt.Errorf("no check for %T", obj)
}
