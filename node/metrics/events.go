package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/events/webhook"
)

// OutboxStates are the values of berth_events_outbox_state's state label
// (node.EventsStatus.State).
var OutboxStates = []string{"off", "standby", "publishing", "unavailable"}

// EventsStats is the event outbox as this node sees it when scraped.
type EventsStats struct {
	State string
	// Published counts the events this node's outbox had JetStream
	// acknowledge since the process started (over all its terms).
	Published uint64
	// Cursor is the last index JetStream acknowledged (committed through
	// the log); Lag is the applied index minus Cursor, in log entries.
	Cursor, Lag uint64
}

// eventsCollector reads the outbox and the webhook engine's counters when
// scraped.
type eventsCollector struct {
	events   func() EventsStats
	webhooks *webhook.Counters

	published, lag, cursor, state, deliveries, deadLetters *prometheus.Desc
}

// WatchEvents exports the event outbox (events) and webhook delivery
// (counters, which the node's webhook engine increments).
func (m *Metrics) WatchEvents(events func() EventsStats, counters *webhook.Counters) {
	m.reg.MustRegister(&eventsCollector{events: events, webhooks: counters,
		published: prometheus.NewDesc("berth_events_published_total", "Events this node published to JetStream as the leader's outbox (acknowledged by JetStream).", nil, nil),
		lag:       prometheus.NewDesc("berth_events_publish_lag", "Log entries accepted but not yet acknowledged by JetStream: the applied index minus the outbox cursor. Grows while NATS is unreachable; events wait in the log.", nil, nil),
		cursor:    prometheus.NewDesc("berth_events_cursor_index", "The last log index JetStream acknowledged, as committed through the log.", nil, nil),
		state:     prometheus.NewDesc("berth_events_outbox_state", "1 for the outbox's current state on this node: off (events disabled), standby (a follower), publishing (the leader, NATS answering), unavailable (the leader, NATS not answering).", []string{"state"}, nil),
		deliveries: prometheus.NewDesc("berth_webhook_deliveries_total", "Webhook delivery attempts made by this node (the leader), by webhook and status: the HTTP status code, or error (timeout, refused connection).",
			[]string{"webhook", "status"}, nil),
		deadLetters: prometheus.NewDesc("berth_webhook_dead_letters_total", "Events a webhook gave up on after retry.maxDeliveries attempts (clusterctl webhook dead-letters NAME lists them).", []string{"webhook"}, nil),
	})
}

func (c *eventsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.published, c.lag, c.cursor, c.state, c.deliveries, c.deadLetters} {
		ch <- d
	}
}

func (c *eventsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.events()
	ch <- prometheus.MustNewConstMetric(c.published, prometheus.CounterValue, float64(s.Published))
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(s.Lag))
	ch <- prometheus.MustNewConstMetric(c.cursor, prometheus.GaugeValue, float64(s.Cursor))
	for _, st := range OutboxStates {
		v := 0.0
		if st == s.State {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, st)
	}
	if c.webhooks == nil {
		return
	}
	deliveries, deadLetters := c.webhooks.Snapshot()
	for k, v := range deliveries {
		ch <- prometheus.MustNewConstMetric(c.deliveries, prometheus.CounterValue, float64(v), k.Webhook, k.Status)
	}
	for name, v := range deadLetters {
		ch <- prometheus.MustNewConstMetric(c.deadLetters, prometheus.CounterValue, float64(v), name)
	}
}
