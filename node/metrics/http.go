package metrics

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HTTP metrics under CNCF Distribution's names and labels (its
// registry/handlers instrumentation), so that dashboards and alerts
// written for Distribution work against Berth.
const (
	requestsName = "registry_http_requests_total"
	durationName = "registry_http_request_duration_seconds"
	inFlightName = "registry_http_in_flight_requests"
	sizeName     = "registry_http_response_size_bytes"
)

// methods are the method label's values; any other method is "other", so a
// client cannot grow the label set.
var methods = [...]string{"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "other"}

const methodHEAD = 1

func methodIndex(m string) int {
	switch m {
	case "GET":
		return 0
	case "HEAD":
		return methodHEAD
	case "PUT":
		return 2
	case "POST":
		return 3
	case "PATCH":
		return 4
	case "DELETE":
		return 5
	case "OPTIONS":
		return 6
	}
	return 7
}

// codes are the statuses the registry answers with, each with a prepared
// counter slot; any other status is counted through a label lookup.
var codes = [...]int{200, 201, 202, 204, 206, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405,
	406, 408, 409, 411, 412, 413, 415, 416, 422, 429, 500, 501, 502, 503, 504, 507}

func codeIndex(c int) int {
	// codes is sorted: a binary search costs a handful of comparisons.
	lo, hi := 0, len(codes)
	for lo < hi {
		mid := (lo + hi) / 2
		if codes[mid] < c {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(codes) && codes[lo] == c {
		return lo
	}
	return -1
}

// httpMetrics instruments one handler whose requests fall into a fixed set
// of kinds (node/api.RouteKinds).
type httpMetrics struct {
	next   http.Handler
	kindOf func(path string) string
	index  map[string]int // kind -> position in kinds

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	size     *prometheus.HistogramVec
	inFlight []prometheus.Gauge   // by kind, created up front
	series   [][len(methods)]lazy // by kind and method
	pool     sync.Pool            // *recorder
	kinds    []string
}

// lazy holds a kind and method's series, created on first use so that
// /metrics lists only combinations that occur (a PATCH of a manifest never
// does) and later requests find them without a label lookup.
type lazy struct {
	p atomic.Pointer[methodSeries]
}

type methodSeries struct {
	duration prometheus.Observer
	size     prometheus.Observer
	codes    [len(codes)]atomic.Pointer[counterBox]
}

type counterBox struct{ c prometheus.Counter }

// HTTP instruments next, whose request paths kindOf maps onto kinds (the
// handler label); a kind not in kinds counts as the last of them, so
// kinds should end with a catch-all such as "other".
func (m *Metrics) HTTP(next http.Handler, kinds []string, kindOf func(path string) string) http.Handler {
	h := &httpMetrics{next: next, kindOf: kindOf, index: make(map[string]int, len(kinds)), kinds: kinds}
	h.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: requestsName, Help: "OCI API requests by route kind (handler), status code and method.",
	}, []string{"handler", "code", "method"})
	h.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: durationName, Help: "OCI API request latency, until the handler returned, by route kind and method.",
		Buckets: latencyBuckets,
	}, []string{"handler", "method"})
	h.size = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: sizeName, Help: "OCI API response body sizes by route kind and method (a HEAD sends none).",
		Buckets: prometheus.ExponentialBuckets(64, 8, 9), // 64 B .. 1 GiB
	}, []string{"handler", "method"})
	inFlight := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: inFlightName, Help: "OCI API requests being served, by route kind.",
	}, []string{"handler"})
	m.reg.MustRegister(h.requests, h.duration, h.size, inFlight)
	h.inFlight = make([]prometheus.Gauge, len(kinds))
	h.series = make([][len(methods)]lazy, len(kinds))
	for i, k := range kinds {
		h.index[k] = i
		h.inFlight[i] = inFlight.WithLabelValues(k)
	}
	h.pool.New = func() any { return new(recorder) }
	return h
}

func (h *httpMetrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind, ok := h.index[h.kindOf(r.URL.Path)]
	if !ok {
		kind = len(h.kinds) - 1
	}
	method := methodIndex(r.Method)
	g := h.inFlight[kind]
	g.Inc()
	rec := h.pool.Get().(*recorder)
	rec.ResponseWriter = w
	start := time.Now()
	// Deferred so that a handler that aborts with panic (a download cut
	// short) is still counted and leaves the in-flight gauge right.
	defer func() {
		g.Dec()
		h.observe(kind, method, rec.status, rec.bytes, time.Since(start))
		*rec = recorder{}
		h.pool.Put(rec)
	}()
	h.next.ServeHTTP(rec, r)
}

func (h *httpMetrics) observe(kind, method, status int, bytes int64, d time.Duration) {
	if status == 0 {
		status = http.StatusOK // the handler wrote nothing: net/http sends 200
	}
	s := h.series[kind][method].p.Load()
	if s == nil {
		s = &methodSeries{
			duration: h.duration.WithLabelValues(h.kinds[kind], methods[method]),
			size:     h.size.WithLabelValues(h.kinds[kind], methods[method]),
		}
		if !h.series[kind][method].p.CompareAndSwap(nil, s) {
			s = h.series[kind][method].p.Load()
		}
	}
	if method == methodHEAD {
		bytes = 0 // net/http discards what a HEAD handler writes
	}
	s.duration.Observe(d.Seconds())
	s.size.Observe(float64(bytes))
	ci := codeIndex(status)
	if ci < 0 {
		h.requests.WithLabelValues(h.kinds[kind], strconv.Itoa(status), methods[method]).Inc()
		return
	}
	c := s.codes[ci].Load()
	if c == nil {
		c = &counterBox{h.requests.WithLabelValues(h.kinds[kind], strconv.Itoa(status), methods[method])}
		s.codes[ci].Store(c) // a race stores the same counter twice: harmless
	}
	c.c.Inc()
}

// recorder notes the final status and the body bytes. It keeps the
// writer's optional abilities: ReadFrom (sendfile for blob downloads) and
// Unwrap (http.ResponseController's deadlines and flushes).
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	// 1xx answers (103 Early Hints) come before the final one.
	if r.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{r.ResponseWriter}, src)
	}
	r.bytes += n
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
