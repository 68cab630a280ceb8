package fsm

import "fmt"

// HaltError is what an FSM answers once it met a log entry it cannot
// decode: a newer Berth wrote it. Skipping the entry would leave this node
// serving state that is silently wrong while its applied index claims
// otherwise, so the FSM stops instead. It applies nothing more, keeps its
// applied index just before the entry (so read-index waits never pass it),
// and refuses to snapshot (so Raft keeps the entry in its log). Restarting
// the node with a binary that decodes the entry replays the log from the
// last snapshot and carries on; so does installing a snapshot from the
// leader.
type HaltError struct {
	Index uint64 // the entry that could not be decoded
	Err   error
}

func (e *HaltError) Error() string {
	return fmt.Sprintf("stopped applying the log at entry %d, which this registryd cannot decode (%v): upgrade this node; it resumes from the log when restarted", e.Index, e.Err)
}

func (e *HaltError) Unwrap() error { return e.Err }

// Unavailable marks the node as unable to serve for now, so HTTP layers
// answer 503 rather than 500.
func (e *HaltError) Unavailable() bool { return true }

// Halted returns the *HaltError when the FSM has stopped, or nil.
func (f *FSM) Halted() error {
	if h := f.halted.Load(); h != nil {
		return h
	}
	return nil
}
