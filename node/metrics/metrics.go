// Package metrics exports a node's Prometheus metrics: the OCI API's
// requests (under CNCF Distribution's registry_http_* names, so dashboards
// built for it work), blob storage actions by driver, Raft, the read index,
// proposals and the blob cache, with Go runtime and process metrics.
//
// Each node has its own prometheus.Registry (nothing is registered in the
// default one), so several nodes in one test process do not collide and
// nothing here is global. Values that Raft, the FSM or the cache already
// keep are read when /metrics is scraped (Collectors), not copied into
// gauges on every event; only what nothing else counts (requests, storage
// latencies, rounds) is observed as it happens, through series prepared
// ahead so the hot path does no label lookups.
//
// No label carries a client-chosen string (a repository, tag, digest or
// session ID): every label has a small fixed set of values.
package metrics

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-registry/berth/fsm"
	cs "github.com/berth-registry/berth/node/consensus"
)

// latencyBuckets span a cached manifest HEAD (well under a millisecond)
// to a large blob moved through object storage (a minute).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Metrics is one node's registry and the instruments that feed it.
type Metrics struct {
	reg *prometheus.Registry

	propose     [numResults]prometheus.Observer
	readRounds  [2][2]prometheus.Counter // [leader][failed]
	readBatch   [2]prometheus.Observer   // [leader]
	readLatency [2]prometheus.Observer   // [leader]

	storeSeconds *prometheus.HistogramVec
	storeErrors  *prometheus.CounterVec
	authFailures *prometheus.CounterVec

	mu    sync.Mutex
	stops []func()
}

// New returns a node's metrics with the Go runtime and process collectors
// and berth_build_info registered.
func New(version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "berth_build_info", Help: "Always 1; the version label says which registryd runs.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	info.Set(1)
	m.reg.MustRegister(info)
	m.registerConsensus()
	m.registerStorage()
	m.registerAuth()
	return m
}

// Registry is where everything is registered; for other parts of the node
// that add their own collectors, and for tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text (or OpenMetrics)
// format. A collector that fails is reported in the answer and the rest
// still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            m.reg, // promhttp_metric_handler_errors_total
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// Close stops what the watchers started (the Raft leader observer).
func (m *Metrics) Close() {
	m.mu.Lock()
	stops := m.stops
	m.stops = nil
	m.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
}

func (m *Metrics) onClose(f func()) {
	m.mu.Lock()
	m.stops = append(m.stops, f)
	m.mu.Unlock()
}

// Results of a proposal, the values of berth_propose_duration_seconds'
// result label.
const (
	resultOK = iota
	resultRefused
	resultUnavailable
	resultError
	numResults
)

var resultNames = [numResults]string{"ok", "refused", "unavailable", "error"}

func (m *Metrics) registerConsensus() {
	propose := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "berth_propose_duration_seconds",
		Help:    "Time from proposing an event until this node applied it (forwarding to the leader included), by result: ok, refused (by an FSM check), unavailable (no leader, timeout), error.",
		Buckets: latencyBuckets,
	}, []string{"result"})
	rounds := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "berth_read_index_rounds_total",
		Help: "Read-index rounds this node ran, by role (leader: verified with a quorum; follower: asked the leader) and result (ok, error).",
	}, []string{"role", "result"})
	batch := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "berth_read_index_batch_size",
		Help:    "Reads answered by one read-index round (concurrent reads share a round).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
	}, []string{"role"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "berth_read_index_round_seconds",
		Help:    "Duration of one read-index round, without the wait to join it.",
		Buckets: latencyBuckets,
	}, []string{"role"})
	m.reg.MustRegister(propose, rounds, batch, latency)
	for i, r := range resultNames {
		m.propose[i] = propose.WithLabelValues(r)
	}
	for leader, role := range []string{"follower", "leader"} {
		m.readRounds[leader][0] = rounds.WithLabelValues(role, "ok")
		m.readRounds[leader][1] = rounds.WithLabelValues(role, "error")
		m.readBatch[leader] = batch.WithLabelValues(role)
		m.readLatency[leader] = latency.WithLabelValues(role)
	}
}

// ObservePropose is consensus.Config.OnPropose.
func (m *Metrics) ObservePropose(d time.Duration, err error) {
	m.propose[proposeResult(err)].Observe(d.Seconds())
}

func proposeResult(err error) int {
	var refusal *fsm.Refusal
	var u interface{ Unavailable() bool }
	switch {
	case err == nil:
		return resultOK
	case errors.As(err, &refusal):
		return resultRefused
	case errors.As(err, &u) && u.Unavailable():
		return resultUnavailable
	}
	return resultError
}

// ObserveReadIndexRound is consensus.Config.OnReadIndexRound.
func (m *Metrics) ObserveReadIndexRound(r cs.ReadIndexRound) {
	leader, failed := 0, 0
	if r.Leader {
		leader = 1
	}
	if r.Err != nil {
		failed = 1
	}
	m.readRounds[leader][failed].Inc()
	m.readBatch[leader].Observe(float64(r.Batch))
	m.readLatency[leader].Observe(r.Duration.Seconds())
}
