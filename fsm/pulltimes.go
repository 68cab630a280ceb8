package fsm

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// tPullTime holds the last pull time of each manifest (PullsRecorded),
// for retention's keepPulledWithin. A row goes with its manifest.
const tPullTime = "pulltime"

type pullTimeRow struct {
	Repo   string
	Digest digest.Digest
	Time   time.Time
}

func init() {
	schema.Tables[tPullTime] = &memdb.TableSchema{Name: tPullTime, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: compound("Repo", "Digest")},
	}}
}

func (w writer) pullsRecorded(p events.PullsRecorded) error {
	if len(p.Pulls) > events.MaxPullsRecorded {
		return refuse(CodeInvalid, "%d pull times in one entry, at most %d", len(p.Pulls), events.MaxPullsRecorded)
	}
	for _, pt := range p.Pulls {
		if w.first(tManifest, pt.Repo, pt.Digest.String()) == nil {
			continue // deleted since the pull, or never there
		}
		t := pt.Time.UTC()
		if old, ok := w.first(tPullTime, pt.Repo, pt.Digest.String()).(*pullTimeRow); ok && !t.After(old.Time) {
			continue
		}
		w.insert(tPullTime, &pullTimeRow{Repo: pt.Repo, Digest: pt.Digest, Time: t})
	}
	return nil
}

// forgetPulls drops the pull time of a manifest that is gone.
func (w writer) forgetPulls(repo string, d digest.Digest) {
	if o := w.first(tPullTime, repo, d.String()); o != nil {
		w.delete(tPullTime, o)
	}
}

func (l *loader) pullTime(r *pullTimeRow) ([]any, error) {
	if err := l.needRepo(r.Repo); err != nil {
		return nil, err
	}
	if err := checkDigest("pull time in "+r.Repo, r.Digest); err != nil {
		return nil, err
	}
	if l.first(tManifest, r.Repo, r.Digest.String()) == nil {
		return nil, fmt.Errorf("pull time of %s@%s, which is not a manifest before it", r.Repo, r.Digest)
	}
	return []any{r.Repo, r.Digest.String()}, nil
}

// LastPulled is when the manifest was last pulled, as far as the nodes
// have reported (about a minute behind).
func (v *View) LastPulled(repo string, d digest.Digest) (time.Time, bool) {
	if r, ok := v.first(tPullTime, repo, d.String()).(*pullTimeRow); ok {
		return r.Time, true
	}
	return time.Time{}, false
}
