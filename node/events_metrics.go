package node

import (
	"sync"

	"github.com/berth-registry/berth/events/outbox"
	"github.com/berth-registry/berth/node/metrics"
)

// publishedCounter turns the outboxes' per-term counts into one count for
// the process: each term has its own outbox, whose Published starts at
// zero. It is read at scrape time, so what a term published after the
// last scrape before it ended is not counted.
type publishedCounter struct {
	mu        sync.Mutex
	last      *outbox.Outbox
	lastValue uint64
	base      uint64
}

func (p *publishedCounter) total(cur *outbox.Outbox) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur != p.last {
		p.base += p.lastValue
		p.last, p.lastValue = cur, 0
	}
	if cur != nil {
		p.lastValue = cur.Status().Published
	}
	return p.base + p.lastValue
}

// eventsStats is what /metrics shows of the outbox (node/metrics).
func (n *Node) eventsStats() metrics.EventsStats {
	st := n.eventsStatus()
	s := metrics.EventsStats{State: st.State, Cursor: st.Cursor, Lag: st.Lag}
	if n.events != nil {
		s.Published = n.webhooks.published.total(n.events.cur.Load())
	}
	return s
}
