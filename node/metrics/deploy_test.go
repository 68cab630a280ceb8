package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"gopkg.in/yaml.v3"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/blob/cache"
	"github.com/berth-registry/berth/events/webhook"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/node/api"
)

// The files in deploy/ that build on these metrics.
const (
	alertsFile    = "../../deploy/prometheus/alerts.yml"
	dashboardFile = "../../deploy/grafana/berth.json"
)

// externalMetrics are series the deploy files read from elsewhere:
// Prometheus itself and node_exporter.
var externalMetrics = map[string]bool{"up": true, "node_filesystem_avail_bytes": true, "node_filesystem_size_bytes": true}

// exported returns every metric name a fully wired node exports (for a
// histogram, also its _bucket, _sum and _count series).
func exported(t *testing.T) map[string]bool {
	m := New("test")
	newTestRaft(t, m, func() error { return nil })
	m.WatchCache(func() cache.Stats { return cache.Stats{} })
	hooks := webhook.NewCounters()
	hooks.Delivered("ci", "200")
	hooks.DeadLettered("ci")
	m.WatchEvents(func() EventsStats { return EventsStats{State: "publishing"} }, hooks)
	m.WatchReadOnly(func() bool { return false })
	gcState := fsm.New(slog.New(slog.DiscardHandler))
	m.WatchGC(gcState.View)
	fs, err := blob.NewFS(t.TempDir(), nil, blob.FSLimits{})
	if err != nil {
		t.Fatal(err)
	}
	m.Store(fs, "filesystem").Stat(context.Background(), digest.FromString("x"))
	m.HTTP(http.NotFoundHandler(), api.RouteKinds, api.RouteKind).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v2/", nil))
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{
		// Only followers report it; this one leads.
		"berth_raft_last_contact_seconds": true,
	}
	for _, f := range families {
		names[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+s] = true
			}
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\b(?:registry|berth|go|process|node)_[a-z0-9_]+\b|\bup\b`)

// checkNames fails for every metric an expression reads that nobody exports.
func checkNames(t *testing.T, where, expr string, known map[string]bool) {
	t.Helper()
	for _, n := range metricName.FindAllString(expr, -1) {
		if !known[n] && !externalMetrics[n] {
			t.Errorf("%s reads %s, which no node exports", where, n)
		}
	}
}

func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	known := exported(t)
	alerts := map[string]bool{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("group %s: rule %q needs alert, expr, summary and description", g.Name, r.Alert)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
			}
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") {
				t.Errorf("%s: unbalanced parentheses in %q", r.Alert, r.Expr)
			}
			checkNames(t, r.Alert, r.Expr, known)
			alerts[r.Alert] = true
		}
	}
	for _, a := range []string{"BerthNoLeader", "BerthFSMHalted", "BerthFollowerLag", "BerthHigh5xxRate", "BerthDiskFilling",
		"BerthEventsPublishLag", "BerthWebhookDeadLetters"} {
		if !alerts[a] {
			t.Errorf("alert %s missing", a)
		}
	}
}

func TestDashboard(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Errorf("dashboard needs a title and a uid")
	}
	known := exported(t)
	read := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			checkNames(t, "panel "+p.Title, q.Expr, known)
			for _, n := range metricName.FindAllString(q.Expr, -1) {
				read[n] = true
			}
		}
	}
	// What the dashboard is for: requests and latency by handler, Raft,
	// storage latency, the cache hit ratio.
	for _, n := range []string{"registry_http_requests_total", "registry_http_request_duration_seconds_bucket",
		"berth_raft_term", "berth_raft_commit_index", "berth_raft_applied_index", "berth_raft_leader",
		"registry_storage_action_seconds_bucket", "berth_blob_cache_hits_total", "berth_blob_cache_misses_total"} {
		if !read[n] {
			t.Errorf("no panel shows %s", n)
		}
	}
}
