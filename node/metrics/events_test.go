package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/berth-registry/berth/events/webhook"
)

// The outbox and webhook counters are read when scraped: what the engine
// counted and the outbox reports is what /metrics shows.
func TestEventsCollector(t *testing.T) {
	m := New("test")
	hooks := webhook.NewCounters()
	stats := EventsStats{State: "unavailable", Published: 7, Cursor: 40, Lag: 12}
	m.WatchEvents(func() EventsStats { return stats }, hooks)
	hooks.Delivered("ci", "503")
	hooks.Delivered("ci", "503")
	hooks.Delivered("ci", "200")
	hooks.DeadLettered("ci")
	want := `
# HELP berth_events_outbox_state 1 for the outbox's current state on this node: off (events disabled), standby (a follower), publishing (the leader, NATS answering), unavailable (the leader, NATS not answering).
# TYPE berth_events_outbox_state gauge
berth_events_outbox_state{state="off"} 0
berth_events_outbox_state{state="publishing"} 0
berth_events_outbox_state{state="standby"} 0
berth_events_outbox_state{state="unavailable"} 1
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "berth_events_outbox_state"); err != nil {
		t.Error(err)
	}
	for name, v := range map[string]float64{"berth_events_published_total": 7, "berth_events_publish_lag": 12, "berth_events_cursor_index": 40} {
		if got, _ := sample(t, m, name); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	for labels, v := range map[[2]string]float64{{"ci", "503"}: 2, {"ci", "200"}: 1} {
		if got, _ := sample(t, m, "berth_webhook_deliveries_total", "webhook", labels[0], "status", labels[1]); got != v {
			t.Errorf("deliveries %v = %v, want %v", labels, got, v)
		}
	}
	if got, _ := sample(t, m, "berth_webhook_dead_letters_total", "webhook", "ci"); got != 1 {
		t.Errorf("dead letters = %v, want 1", got)
	}
}
