package node

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// startMetricsNode runs a real single node with http.metricsaddr set and
// returns the API's and the metrics listener's base URLs.
func startMetricsNode(t *testing.T) (api, metricsURL string) {
	t.Helper()
	n := runTestNode(t, func(c *Config) { c.HTTP.MetricsAddr = "127.0.0.1:0" })
	return "http://" + n.Addr(), "http://" + n.MetricsAddr()
}

func do(t *testing.T, method, url, token string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// pushImage pushes a config, a layer and a manifest as a client does
// (POST, then PUT with the digest), then pulls them back.
func pushImage(t *testing.T, base, repo string) digest.Digest {
	t.Helper()
	config, layer := []byte(`{}`), []byte("a layer of "+repo)
	for _, b := range [][]byte{config, layer} {
		resp := do(t, "POST", base+"/v2/"+repo+"/blobs/uploads/", "", nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST upload: %s", resp.Status)
		}
		loc := resp.Header.Get("Location")
		if !strings.HasPrefix(loc, "http") {
			loc = base + loc
		}
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		if resp := do(t, "PUT", loc+sep+"digest="+digest.FromBytes(b).String(), "", b); resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT upload: %s", resp.Status)
		}
	}
	desc := func(mt string, b []byte) map[string]any {
		return map[string]any{"mediaType": mt, "digest": digest.FromBytes(b), "size": len(b)}
	}
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": desc("application/vnd.oci.image.config.v1+json", config),
		"layers": []any{desc("application/vnd.oci.image.layer.v1.tar", layer)},
	})
	req, _ := http.NewRequest("PUT", base+"/v2/"+repo+"/manifests/v1", bytes.NewReader(manifest))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT manifest: %s", resp.Status)
	}
	if resp := do(t, "HEAD", base+"/v2/"+repo+"/manifests/v1", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD manifest: %s", resp.Status)
	}
	if resp := do(t, "GET", base+"/v2/"+repo+"/blobs/"+digest.FromBytes(layer).String(), "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob: %s", resp.Status)
	}
	return digest.FromBytes(manifest)
}

type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, url, token string) scrape {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// value is the series' value (a histogram's count) of the first series
// of family name whose labels include the pairs given; ok is false when
// there is none.
func (s scrape) value(name string, labels ...string) (float64, bool) {
	f := s[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// TestMetricsAfterPush scrapes a real node before and after a push: the
// request counters, storage timings, proposal latencies and Raft indexes
// move, under bounded labels that never name the repository.
func TestMetricsAfterPush(t *testing.T) {
	base, metricsURL := startMetricsNode(t)
	before := scrapeMetrics(t, metricsURL, "")
	const repo = "secretteam/private-app"
	mdigest := pushImage(t, base, repo)
	// A read index asked for by a follower runs a leader round here (a
	// single node's own reads need none).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := (httpPeers{newPeerClient("cluster-secret", apiTLS{})}).ReadIndex(ctx, strings.TrimPrefix(base, "http://"), "some-follower"); err != nil {
		t.Fatal(err)
	}
	after := scrapeMetrics(t, base, "admin-token") // the main listener, with the token

	grew := []struct {
		name   string
		labels []string
		by     float64
	}{
		{"registry_http_requests_total", []string{"handler", "blob_upload", "code", "202", "method", "POST"}, 2},
		{"registry_http_requests_total", []string{"handler", "blob_upload_chunk", "code", "201", "method", "PUT"}, 2},
		{"registry_http_requests_total", []string{"handler", "manifest", "code", "201", "method", "PUT"}, 1},
		{"registry_http_requests_total", []string{"handler", "manifest", "code", "200", "method", "HEAD"}, 1},
		{"registry_http_requests_total", []string{"handler", "blob", "code", "200", "method", "GET"}, 1},
		{"registry_http_request_duration_seconds", []string{"handler", "manifest", "method", "HEAD"}, 1},
		{"registry_http_response_size_bytes", []string{"handler", "blob", "method", "GET"}, 1},
		{"registry_storage_action_seconds", []string{"driver", "filesystem", "action", "upload_start"}, 2},
		{"registry_storage_action_seconds", []string{"driver", "filesystem", "action", "upload_put"}, 2},
		{"registry_storage_action_seconds", []string{"driver", "filesystem", "action", "open"}, 1},
		{"berth_propose_duration_seconds", []string{"result", "ok"}, 3}, // two blob links, the manifest
		{"berth_read_index_rounds_total", []string{"role", "leader", "result", "ok"}, 1},
		{"berth_read_index_batch_size", []string{"role", "leader"}, 1},
		{"berth_read_index_round_seconds", []string{"role", "leader"}, 1},
		{"berth_raft_commit_index", nil, 3},
		{"berth_raft_applied_index", nil, 3},
		{"berth_raft_last_index", nil, 3},
	}
	for _, g := range grew {
		was, _ := before.value(g.name, g.labels...)
		now, ok := after.value(g.name, g.labels...)
		if !ok || now-was < g.by {
			t.Errorf("%s%v: %v before the push, %v after (present %v); want it to grow by %v", g.name, g.labels, was, now, ok, g.by)
		}
	}
	is := []struct {
		name string
		want float64
	}{
		{"berth_raft_leader", 1},
		{"berth_fsm_halted", 0},
		{"berth_storage_action_errors_total", 0},
		{"berth_build_info", 1},
	}
	for _, c := range is {
		if v, ok := after.value(c.name); !ok || v != c.want {
			t.Errorf("%s = %v (present %v), want %v", c.name, v, ok, c.want)
		}
	}
	if v, _ := after.value("berth_raft_term"); v < 1 {
		t.Errorf("berth_raft_term = %v", v)
	}
	if v, ok := after.value("registry_http_in_flight_requests", "handler", "manifest"); !ok || v != 0 {
		t.Errorf("manifest requests in flight after the push: %v (present %v)", v, ok)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "berth_raft_leader_changes_total"} {
		if _, ok := after[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
	// Bounded labels: nothing the client chose shows.
	secrets := []string{"secretteam", "private-app", mdigest.Encoded()[:16]}
	for name, f := range after {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				for _, s := range secrets {
					if strings.Contains(l.GetValue(), s) {
						t.Errorf("%s has label %s=%q, which names what a client chose", name, l.GetName(), l.GetValue())
					}
				}
			}
		}
	}
}

// /metrics on the main listener is behind the admin token; on
// http.metricsaddr it needs none, and that listener serves nothing else.
func TestMetricsAccess(t *testing.T) {
	base, metricsURL := startMetricsNode(t)
	for _, tc := range []struct {
		name, url, token string
		want             int
	}{
		{"main listener without a token", base + "/metrics", "", http.StatusUnauthorized},
		{"main listener with a wrong token", base + "/metrics", "nope", http.StatusUnauthorized},
		{"main listener with the admin token", base + "/metrics", "admin-token", http.StatusOK},
		{"metrics listener without a token", metricsURL + "/metrics", "", http.StatusOK},
		{"metrics listener serves no API", metricsURL + "/v2/", "", http.StatusNotFound},
		{"metrics listener serves no admin API", metricsURL + "/admin/v1/cluster/status", "admin-token", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(t, "GET", tc.url, tc.token, nil)
			if resp.StatusCode != tc.want {
				t.Fatalf("GET %s: %s, want %d", tc.url, resp.Status, tc.want)
			}
			if tc.want == http.StatusOK && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Errorf("Content-Type %q, want the Prometheus text format", resp.Header.Get("Content-Type"))
			}
		})
	}
}

// A taken http.metricsaddr fails the start at once, naming the key, before
// anything is created in the data dir.
func TestMetricsAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := DefaultConfig()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.HTTP.MetricsAddr = ln.Addr().String()
	cfg.Storage.DataDir = filepath.Join(t.TempDir(), "data")
	_, err = New(context.Background(), cfg, "test", slog.New(slog.DiscardHandler), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "http.metricsaddr") {
		t.Fatalf("New with a taken metrics address: %v; want an error naming http.metricsaddr", err)
	}
	if _, serr := os.Stat(cfg.Storage.DataDir); !os.IsNotExist(serr) {
		t.Errorf("the data dir was created: %v", serr)
	}
}
