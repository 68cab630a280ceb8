package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/berth-registry/berth/node/api"
)

func instrument(t testing.TB, h http.HandlerFunc) (*Metrics, http.Handler) {
	m := New("test")
	return m, m.HTTP(h, api.RouteKinds, api.RouteKind)
}

func TestHTTPLabels(t *testing.T) {
	var inFlight float64
	var m *Metrics
	m, h := instrument(t, func(w http.ResponseWriter, r *http.Request) {
		inFlight, _ = sample(t, m, inFlightName, "handler", api.RouteKind(r.URL.Path))
		switch r.URL.Query().Get("do") {
		case "404":
			http.Error(w, "unknown", http.StatusNotFound)
		case "418":
			w.WriteHeader(http.StatusTeapot) // not a prepared code
		case "early":
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusCreated)
		case "panic":
			w.WriteHeader(http.StatusOK)
			panic(http.ErrAbortHandler)
		case "nothing":
		default:
			w.Write([]byte("hello"))
		}
	})
	for _, tc := range []struct {
		method, path, handler, code, metricMethod string
	}{
		{"GET", "/v2/", "base", "200", "GET"},
		{"HEAD", "/v2/secret-team/app/manifests/latest", "manifest", "200", "HEAD"},
		{"GET", "/v2/secret-team/app/manifests/latest?do=404", "manifest", "404", "GET"},
		{"PUT", "/v2/secret-team/app/manifests/v1?do=early", "manifest", "201", "PUT"},
		{"POST", "/v2/secret-team/app/blobs/uploads/", "blob_upload", "200", "POST"},
		{"PATCH", "/v2/secret-team/app/blobs/uploads/abc-123?do=nothing", "blob_upload_chunk", "200", "PATCH"},
		{"GET", "/v2/secret-team/app/blobs/sha256:aa?do=panic", "blob", "200", "GET"},
		{"GET", "/v2/secret-team/app/tags/list?do=418", "tags", "418", "GET"},
		{"GET", "/v2/secret-team/app/referrers/sha256:aa", "referrers", "200", "GET"},
		{"GET", "/v2/_catalog", "catalog", "200", "GET"},
		{"BREW", "/v2/secret-team/app/nowhere", "other", "200", "other"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			labels := []string{"handler", tc.handler, "code", tc.code, "method", tc.metricMethod}
			before, _ := sample(t, m, requestsName, labels...)
			func() {
				defer func() {
					if p := recover(); p != nil && p != http.ErrAbortHandler {
						panic(p)
					}
				}()
				h.ServeHTTP(httptest.NewRecorder(), req)
			}()
			if after, _ := sample(t, m, requestsName, labels...); after-before != 1 {
				t.Errorf("%s%v grew by %v, want 1", requestsName, labels, after-before)
			}
			if inFlight != 1 {
				t.Errorf("in flight during the request: %v, want 1", inFlight)
			}
			if after, ok := sample(t, m, inFlightName, "handler", tc.handler); !ok || after != 0 {
				t.Errorf("in flight after the request: %v, want 0", after)
			}
		})
	}
	// Labels never carry what the client chose.
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if strings.Contains(l.GetValue(), "secret-team") || strings.Contains(l.GetValue(), "BREW") {
					t.Errorf("%s has label %s=%q", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	if n := testutil.CollectAndCount(m.reg, durationName); n == 0 {
		t.Errorf("no %s series", durationName)
	}
	// A HEAD's body is discarded by net/http: it counts as 0 bytes.
	if n, sum := histogram(t, m, sizeName, "manifest", "HEAD"); n != 1 || sum != 0 {
		t.Errorf("HEAD response sizes: %v observations of %v bytes, want 1 of 0", n, sum)
	}
	if n, sum := histogram(t, m, sizeName, "base", "GET"); n != 1 || sum != 5 {
		t.Errorf("GET response sizes: %v observations of %v bytes, want 1 of 5", n, sum)
	}
	// Only combinations that occurred are listed: 11 requests, 11 kind/method pairs.
	if n := testutil.CollectAndCount(m.reg, sizeName); n != 11 {
		t.Errorf("%d %s series, want 11", n, sizeName)
	}
}

// The recorder keeps what the API relies on: ReadFrom (sendfile) and
// Unwrap (http.ResponseController), and counts bytes either way.
func TestHTTPWriterKeepsOptionalInterfaces(t *testing.T) {
	var sawReaderFrom, sawController bool
	_, h := instrument(t, func(w http.ResponseWriter, r *http.Request) {
		_, sawReaderFrom = w.(io.ReaderFrom)
		sawController = http.NewResponseController(w).Flush() == nil
		w.(io.ReaderFrom).ReadFrom(strings.NewReader("abc"))
		w.Write([]byte("de"))
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v2/a/blobs/sha256:aa", nil))
	if !sawReaderFrom || !sawController {
		t.Fatalf("ReaderFrom %v, ResponseController flush %v; want both", sawReaderFrom, sawController)
	}
	if rec.Body.String() != "abcde" || !rec.Flushed {
		t.Fatalf("body %q flushed %v", rec.Body.String(), rec.Flushed)
	}
}

// BenchmarkMiddleware is what the instrumentation adds to a request: the
// route kind, the in-flight gauge, one histogram each for latency and
// size, and a counter, all through prepared series (0 allocations once
// warm).
func BenchmarkMiddleware(b *testing.B) {
	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	req := httptest.NewRequest("HEAD", "/v2/team/app/manifests/latest", nil)
	w := httptest.NewRecorder()
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			noop.ServeHTTP(w, req)
		}
	})
	b.Run("instrumented", func(b *testing.B) {
		_, h := instrument(b, noop)
		h.ServeHTTP(w, req) // create the series
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, req)
		}
	})
}
