package gc

import (
	"sync"
	"time"
)

// Phases a running job reports in its Progress.
const (
	PhaseMarking  = "marking"  // computing the mark and committing it
	PhaseSweeping = "sweeping" // deleting the frozen candidates' bytes
	PhasePurging  = "purging"  // removing upload sessions older than gc.uploadmaxage
)

// Progress is what the job in progress has done so far. It lives only in
// the leader's memory: it is for watching a run (gc status, gc run
// --wait), while what a run did is in the log (fsm.GCRecord).
type Progress struct {
	Run   string `json:"run,omitempty"`
	Phase string `json:"phase"`
	// Started is when the job began; PhaseStarted when Phase did (a rate,
	// and so an ETA, is only meaningful within one phase).
	Started      time.Time `json:"started"`
	PhaseStarted time.Time `json:"phaseStarted"`
	// Done of Total objects: candidates committed while marking, digests
	// deleted while sweeping, sessions purged (Total 0: not known ahead).
	Done  int `json:"done"`
	Total int `json:"total"`
	// Bytes of TotalBytes: the candidates' sizes marked or deleted so far.
	Bytes      int64 `json:"bytes"`
	TotalBytes int64 `json:"totalBytes"`
}

// tracker holds the job's Progress; its zero value is idle.
type tracker struct {
	mu  sync.Mutex
	cur *Progress
}

// Progress returns the job's progress, and false when no job runs.
func (j *Job) Progress() (Progress, bool) {
	j.prog.mu.Lock()
	defer j.prog.mu.Unlock()
	if j.prog.cur == nil {
		return Progress{}, false
	}
	return *j.prog.cur, true
}

// begin marks the job running, unless it already is (Run resumes an
// open run first); the returned func ends it if begin started it.
func (j *Job) begin() (end func()) {
	j.prog.mu.Lock()
	defer j.prog.mu.Unlock()
	if j.prog.cur != nil {
		return func() {}
	}
	j.prog.cur = &Progress{Started: j.now()}
	return func() {
		j.prog.mu.Lock()
		j.prog.cur = nil
		j.prog.mu.Unlock()
	}
}

// phase starts a phase of run with total objects and bytes to go.
func (j *Job) phase(run, phase string, total int, totalBytes int64) {
	j.update(func(p *Progress) {
		*p = Progress{Run: run, Phase: phase, Started: p.Started, PhaseStarted: j.now(), Total: total, TotalBytes: totalBytes}
	})
}

// step counts objects and bytes done in the current phase.
func (j *Job) step(objects int, bytes int64) {
	j.update(func(p *Progress) {
		p.Done += objects
		p.Bytes += bytes
	})
}

func (j *Job) update(fn func(*Progress)) {
	j.prog.mu.Lock()
	defer j.prog.mu.Unlock()
	if j.prog.cur != nil {
		fn(j.prog.cur)
	}
}
