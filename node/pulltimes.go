package node

import (
	"context"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/node/api"
)

// pullTimes batches the manifest pulls this node serves and commits the
// latest time of each about once a minute (events.PullsRecorded), so
// retention knows what was pulled without a Raft entry per pull.
type pullTimes struct {
	mu      sync.Mutex
	pending map[pullKey]time.Time
	dropped int
}

type pullKey struct {
	repo   string
	digest digest.Digest
}

const (
	pullTimesEvery = time.Minute
	// maxPendingPulls bounds memory between flushes: distinct manifests
	// pulled in a minute beyond it are dropped (and counted), which only
	// makes retention keep fewer images than it might.
	maxPendingPulls = 65536
)

func newPullTimes() *pullTimes { return &pullTimes{pending: map[pullKey]time.Time{}} }

// Pulled implements api.PullHook; it never blocks on I/O.
func (p *pullTimes) Pulled(pl events.Pull) {
	if pl.Kind != events.PullManifest {
		return
	}
	k := pullKey{pl.Repository, pl.Digest}
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.pending[k]; ok {
		if pl.Time.After(t) {
			p.pending[k] = pl.Time
		}
		return
	}
	if len(p.pending) >= maxPendingPulls {
		p.dropped++
		return
	}
	p.pending[k] = pl.Time
}

// take empties the batch.
func (p *pullTimes) take() []events.PullTime {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]events.PullTime, 0, len(p.pending))
	for k, t := range p.pending {
		out = append(out, events.PullTime{Repo: k.repo, Digest: k.digest, Time: t})
	}
	clear(p.pending)
	return out
}

// putBack returns a batch that could not be committed, for the next try.
func (p *pullTimes) putBack(batch []events.PullTime) {
	for _, pt := range batch {
		p.Pulled(events.Pull{Kind: events.PullManifest, Repository: pt.Repo, Digest: pt.Digest, Time: pt.Time})
	}
}

// run flushes every pullTimesEvery until ctx ends. Every node runs it:
// a follower's proposal is forwarded to the leader like any write.
func (n *Node) runPullTimes(ctx context.Context) {
	t := time.NewTicker(pullTimesEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		batch := n.pullTimes.take()
		for len(batch) > 0 {
			k := min(len(batch), events.MaxPullsRecorded)
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := n.Propose(pctx, events.PullsRecorded{Pulls: batch[:k]})
			cancel()
			if err != nil {
				n.logger.Warn("could not record pull times; keeping them for the next minute", "pulls", len(batch), "err", err)
				n.pullTimes.putBack(batch)
				break
			}
			batch = batch[k:]
		}
	}
}

// pullHooks calls every hook in order.
type pullHooks []api.PullHook

func (hs pullHooks) Pulled(p events.Pull) {
	for _, h := range hs {
		h.Pulled(p)
	}
}
