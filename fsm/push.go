package fsm

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/berth-registry/berth/events"
)

// Push jobs (issue 12, push mode): a push policy's current job and the
// artifacts it reported copied, from ReplicationReported. A new leader
// resumes an open job and skips what it finds here, so an artifact copied
// before a failover is not copied again. Only the newest job of a policy
// is kept, and its artifact rows go when it ends: the tables stay as small
// as one job. Both are empty until a push job ran, so older snapshots'
// bytes are unchanged.
const (
	tPushJob    = "pushjob"
	tPushCopied = "pushcopied"
)

// maxJobName bounds ReplicationReported.Job; maxReportError the error a
// job row keeps.
const (
	maxJobName     = 128
	maxReportError = 4096
)

// PushJob is a push policy's newest job.
type PushJob struct {
	Policy  string    `json:"policy"`
	Job     string    `json:"job"`
	Started time.Time `json:"started"`
	// Done is set by the job's caught-up report; Finished is its time.
	Done      bool      `json:"done,omitempty"`
	Finished  time.Time `json:"finished,omitzero"`
	Artifacts int       `json:"artifacts,omitempty"`
	Bytes     int64     `json:"bytes,omitempty"`
	LastError string    `json:"lastError,omitempty"`
	At        uint64    `json:"at"`
}

// pushCopiedRow is one artifact the open job reported copied.
type pushCopiedRow struct {
	Policy string
	Job    string
	Repo   string
	Digest string
}

func init() {
	schema.Tables[tPushJob] = &memdb.TableSchema{Name: tPushJob, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: str("Policy")},
	}}
	schema.Tables[tPushCopied] = &memdb.TableSchema{Name: tPushCopied, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: compound("Policy", "Job", "Repo", "Digest")},
	}}
}

func checkPushReport(p events.ReplicationReported) error {
	if err := checkMirrorPolicy(p.Policy); err != nil {
		return err
	}
	if len(p.Job) > maxJobName {
		return fmt.Errorf("replication report: job name is over %d characters", maxJobName)
	}
	if len(p.Error) > maxReportError {
		return fmt.Errorf("replication report: error is over %d characters", maxReportError)
	}
	return nil
}

// replicationReported keeps a push job's progress; every other report
// (mirror, event-driven push) is only published.
func (w writer) replicationReported(p events.ReplicationReported) error {
	if p.Mode != "push" || p.Job == "" {
		return nil
	}
	if len(p.Error) > maxReportError {
		p.Error = p.Error[:maxReportError]
	}
	if err := checkPushReport(p); err != nil {
		return refuse(CodeInvalid, "%v", err)
	}
	cur, _ := w.first(tPushJob, p.Policy).(*PushJob)
	if p.Kind == events.ReplicationStarted {
		if cur != nil {
			w.dropCopied(cur.Policy, cur.Job)
		}
		w.insert(tPushJob, &PushJob{Policy: p.Policy, Job: p.Job, Started: w.ev.Time.UTC(), At: w.index})
		return nil
	}
	if cur == nil || cur.Job != p.Job || cur.Done {
		return nil // a report of a job since replaced or ended: history only
	}
	j := *cur
	j.At = w.index
	switch p.Kind {
	case events.ReplicationCopied:
		if p.Repo == "" || p.Digest == "" {
			return refuse(CodeInvalid, "replication report: artifact.copied of job %q names no repository and digest", p.Job)
		}
		if w.first(tPushCopied, p.Policy, p.Job, p.Repo, p.Digest) == nil {
			w.insert(tPushCopied, &pushCopiedRow{Policy: p.Policy, Job: p.Job, Repo: p.Repo, Digest: p.Digest})
			j.Artifacts++
		}
		j.Bytes += p.Bytes
	case events.ReplicationFailed:
		j.LastError = p.Error
	case events.ReplicationCaughtUp:
		j.Done, j.Finished, j.LastError = true, w.ev.Time.UTC(), p.Error
		w.dropCopied(j.Policy, j.Job)
	}
	w.insert(tPushJob, &j)
	return nil
}

func (w writer) dropCopied(policy, job string) {
	if _, err := w.txn.DeleteAll(tPushCopied, idx+"_prefix", policy, job); err != nil {
		panic(fmt.Sprintf("fsm: delete %s: %v", tPushCopied, err))
	}
}

// PushJob is the newest job of push policy; ok is false before its first.
func (v *View) PushJob(policy string) (PushJob, bool) {
	if j, ok := v.first(tPushJob, policy).(*PushJob); ok {
		return *j, true
	}
	return PushJob{}, false
}

// PushCopied says whether the open job of policy reported the artifact
// repo@digest copied.
func (v *View) PushCopied(policy, job, repo, digest string) bool {
	return v.first(tPushCopied, policy, job, repo, digest) != nil
}

// pushJob checks a push job row of a snapshot.
func (l *loader) pushJob(j *PushJob) ([]any, error) {
	if err := checkPushReport(events.ReplicationReported{Policy: j.Policy, Job: j.Job, Error: j.LastError}); err != nil {
		return nil, err
	}
	if j.Job == "" {
		return nil, fmt.Errorf("push job of %q has no name", j.Policy)
	}
	if j.At > l.index {
		return nil, fmt.Errorf("push job %q of %q recorded at index %d, past the snapshot's index %d", j.Job, j.Policy, j.At, l.index)
	}
	return []any{j.Policy}, nil
}

// pushCopied checks a copied artifact row: it belongs to its policy's
// open job (tPushJob is loaded first).
func (l *loader) pushCopied(r *pushCopiedRow) ([]any, error) {
	j, ok := l.first(tPushJob, r.Policy).(*PushJob)
	if !ok || j.Job != r.Job || j.Done {
		return nil, fmt.Errorf("copied artifact %s@%s of push job %q of %q: no such open job", r.Repo, r.Digest, r.Job, r.Policy)
	}
	if r.Repo == "" || r.Digest == "" {
		return nil, fmt.Errorf("copied artifact of push job %q of %q names no repository and digest", r.Job, r.Policy)
	}
	return []any{r.Policy, r.Job, r.Repo, r.Digest}, nil
}
