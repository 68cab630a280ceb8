package metrics

import (
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// raftCollector reads Raft's and the FSM's state when scraped: these
// values already live in the raft instance, so nothing is copied on each
// entry.
type raftCollector struct {
	r      *raft.Raft
	halted func() error

	term, commit, applied, last, contact, leader, haltedDesc *prometheus.Desc
}

func newRaftCollector(r *raft.Raft, halted func() error) *raftCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &raftCollector{r: r, halted: halted,
		term:       d("berth_raft_term", "Current Raft term."),
		commit:     d("berth_raft_commit_index", "Highest Raft log index this node knows to be committed."),
		applied:    d("berth_raft_applied_index", "Highest Raft log index applied on this node (every entry type, so it compares with the commit index)."),
		last:       d("berth_raft_last_index", "Last Raft log index stored on this node."),
		contact:    d("berth_raft_last_contact_seconds", "Seconds since this follower last heard from the leader; absent on a leader and before any contact."),
		leader:     d("berth_raft_leader", "1 if this node is the Raft leader, else 0."),
		haltedDesc: d("berth_fsm_halted", "1 if the FSM stopped applying (an entry it cannot decode or apply); the node then refuses reads and writes until an operator acts."),
	}
}

func (c *raftCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.term, c.commit, c.applied, c.last, c.contact, c.leader, c.haltedDesc} {
		ch <- d
	}
}

func (c *raftCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	r := c.r
	gauge(c.term, float64(r.CurrentTerm()))
	gauge(c.commit, float64(r.CommitIndex()))
	gauge(c.applied, float64(r.AppliedIndex()))
	gauge(c.last, float64(r.LastIndex()))
	state := r.State()
	gauge(c.leader, boolValue(state == raft.Leader))
	if state == raft.Follower {
		if t := r.LastContact(); !t.IsZero() {
			gauge(c.contact, time.Since(t).Seconds())
		}
	}
	gauge(c.haltedDesc, boolValue(c.halted() != nil))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// WatchRaft exports Raft's state (read at scrape time), whether the FSM
// halted, and berth_raft_leader_changes_total, counted by a Raft observer
// that Close removes.
func (m *Metrics) WatchRaft(r *raft.Raft, halted func() error) {
	changes := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "berth_raft_leader_changes_total",
		Help: "Leader changes this node has seen, losing a leader included (elections, transfers, partitions).",
	})
	m.reg.MustRegister(newRaftCollector(r, halted), changes)

	// Not blocking: Raft drops an observation rather than wait for us, and
	// the buffer keeps that to storms of elections.
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(obs)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_, last := r.LeaderWithID()
		for {
			select {
			case <-done:
				return
			case o := <-ch:
				if id := o.Data.(raft.LeaderObservation).LeaderID; id != last {
					last = id
					changes.Inc()
				}
			}
		}
	}()
	m.onClose(func() {
		r.DeregisterObserver(obs)
		close(done)
		<-stopped
	})
}
