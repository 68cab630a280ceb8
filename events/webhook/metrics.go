package webhook

import "sync"

// Metrics receives delivery outcomes; the node exports them (Prometheus)
// without this package depending on a metrics library.
type Metrics interface {
	// Delivered counts one attempt; status is the HTTP status code or
	// "error" when no response arrived.
	Delivered(webhook, status string)
	// DeadLettered counts one event given up on.
	DeadLettered(webhook string)
}

// DeliveryKey labels a delivery counter.
type DeliveryKey struct{ Webhook, Status string }

// Counters is a Metrics that keeps plain counters; its size is bounded by
// webhooks × distinct statuses.
type Counters struct {
	mu          sync.Mutex
	deliveries  map[DeliveryKey]uint64
	deadLetters map[string]uint64
}

// NewCounters returns empty counters.
func NewCounters() *Counters {
	return &Counters{deliveries: map[DeliveryKey]uint64{}, deadLetters: map[string]uint64{}}
}

// Delivered implements Metrics.
func (c *Counters) Delivered(webhook, status string) {
	c.mu.Lock()
	c.deliveries[DeliveryKey{webhook, status}]++
	c.mu.Unlock()
}

// DeadLettered implements Metrics.
func (c *Counters) DeadLettered(webhook string) {
	c.mu.Lock()
	c.deadLetters[webhook]++
	c.mu.Unlock()
}

// Snapshot copies the counters.
func (c *Counters) Snapshot() (deliveries map[DeliveryKey]uint64, deadLetters map[string]uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	deliveries = make(map[DeliveryKey]uint64, len(c.deliveries))
	for k, v := range c.deliveries {
		deliveries[k] = v
	}
	deadLetters = make(map[string]uint64, len(c.deadLetters))
	for k, v := range c.deadLetters {
		deadLetters[k] = v
	}
	return deliveries, deadLetters
}

type nopMetrics struct{}

func (nopMetrics) Delivered(string, string) {}
func (nopMetrics) DeadLettered(string)      {}
