package single

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// scrape reads a /metrics answer into series -> value, the series keyed
// as exposed (name{labels}).
func scrape(t *testing.T, url string, hdr map[string]string) map[string]float64 {
	t.Helper()
	ctx, cancel := harness.Ctx(10 * time.Second)
	defer cancel()
	code, _, body, err := harness.HTTPStatus(ctx, "GET", url, hdr, nil)
	if err != nil || code != 200 {
		t.Fatalf("GET %s: %d %v", url, code, err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// meteredNamespace is a namespace an operator created, so its usage and
// quota are exported (namespaces only clients named are not).
const meteredNamespace = `apiVersion: berth.dev/v1
kind: Namespace
metadata: {name: metered}
spec:
  quota: {storage: 10Mi}
`

// TestMetricsDuringPushes scrapes registryd while crane pushes: the
// request counters, the Raft indexes, proposal counts and times and a
// namespace's usage only grow, the node leads in one term with no last
// contact (that is a follower's), and no series names a repository. A
// single node reads without read-index rounds: the cluster's
// TestMetricsCluster checks those, last contact and leader changes.
func TestMetricsDuringPushes(t *testing.T) {
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	dataDir := t.TempDir()
	reg := startRegistryEnv(t, dataDir, "", []string{"BERTH_HTTP_METRICSADDR=" + metricsAddr})
	crane, env := harness.Tool(t, "crane"), clientEnv(t)
	dir := t.TempDir()
	harness.Run(t, []string{"BERTH_SERVER=http://" + reg.addr, "BERTH_TOKEN="}, harness.Tool(t, "clusterctl"),
		"--token-file", filepath.Join(dataDir, "admin.token"), "apply", "-f", writeFile(t, filepath.Join(dir, "ns.yaml"), []byte(meteredNamespace)))

	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := range 6 {
			ns := "hidden-team"
			if i%2 == 1 {
				ns = "metered"
			}
			layer := writeFile(t, filepath.Join(dir, fmt.Sprintf("layer%d.tar", i)), harness.TarWithFile("f", []byte(fmt.Sprintf("layer %d\n", i))))
			harness.Run(t, env, crane, "--insecure", "append", "-f", layer, "-t", fmt.Sprintf("%s/%s/app%d:v%d", reg.addr, ns, i, i))
		}
	}()
	var scrapes []map[string]float64
	for {
		scrapes = append(scrapes, scrape(t, "http://"+metricsAddr+"/metrics", nil))
		select {
		case <-done:
		case <-time.After(50 * time.Millisecond):
			continue
		}
		break
	}
	wg.Wait()
	scrapes = append(scrapes, scrape(t, "http://"+metricsAddr+"/metrics", nil))
	first, last := scrapes[0], scrapes[len(scrapes)-1]

	for _, s := range []string{
		`registry_http_requests_total{code="201",handler="manifest",method="PUT"}`,
		`registry_http_requests_total{code="202",handler="blob_upload",method="POST"}`,
		"berth_raft_commit_index", "berth_raft_applied_index", "berth_raft_last_index",
		`berth_propose_duration_seconds_count{result="ok"}`, `berth_propose_duration_seconds_sum{result="ok"}`,
		`berth_namespace_usage_bytes{namespace="metered"}`,
	} {
		prev := -1.0
		for i, sc := range scrapes {
			if sc[s] < prev {
				t.Errorf("%s went down from %v to %v at scrape %d", s, prev, sc[s], i)
			}
			prev = sc[s]
		}
		if last[s] <= first[s] {
			t.Errorf("%s did not move during the pushes: %v, then %v", s, first[s], last[s])
		}
	}
	if got := last[`registry_http_requests_total{code="201",handler="manifest",method="PUT"}`]; got != 6 {
		t.Errorf("manifest PUTs counted: %v, want 6", got)
	}
	if last["berth_raft_leader"] != 1 || last["berth_raft_term"] < 1 || last["berth_fsm_halted"] != 0 {
		t.Errorf("raft: leader %v term %v halted %v", last["berth_raft_leader"], last["berth_raft_term"], last["berth_fsm_halted"])
	}
	// Pushes hold no election: one term, no leader change.
	for _, s := range []string{"berth_raft_term", "berth_raft_leader_changes_total"} {
		if first[s] != last[s] {
			t.Errorf("%s changed during the pushes: %v, then %v", s, first[s], last[s])
		}
	}
	if v, ok := last["berth_raft_last_contact_seconds"]; ok {
		t.Errorf("the leader reports berth_raft_last_contact_seconds %v; only followers have a last contact", v)
	}
	if got := last[`berth_namespace_quota_bytes{namespace="metered"}`]; got != 10<<20 {
		t.Errorf("metered quota %v, want %d", got, 10<<20)
	}
	for series := range last {
		if strings.Contains(series, "hidden-team") {
			t.Errorf("series %s names a repository", series)
		}
	}

	// The API listener serves the same behind the admin token.
	token, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := harness.Ctx(10 * time.Second)
	defer cancel()
	if code, _, _, err := harness.HTTPStatus(ctx, "GET", "http://"+reg.addr+"/metrics", nil, nil); err != nil || code != 401 {
		t.Errorf("/metrics on the API listener without a token: %d %v, want 401", code, err)
	}
	withToken := scrape(t, "http://"+reg.addr+"/metrics", map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(token))})
	if withToken["berth_raft_leader"] != 1 {
		t.Errorf("/metrics with the admin token lacks berth_raft_leader")
	}
}

// TestMetricsS3Cache: on the S3 driver, storage timings carry
// driver="s3" and the node-local blob cache counts a miss that fills it,
// then hits.
func TestMetricsS3Cache(t *testing.T) {
	m := harness.StartMinIO(t, t.TempDir(), "")
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	reg := startRegistryEnv(t, t.TempDir(), "", append(m.Env("berth"), "BERTH_HTTP_METRICSADDR="+metricsAddr))
	ctx, cancel := harness.Ctx(time.Minute)
	defer cancel()
	im := harness.NewImage("cached/app", "v1")
	if err := im.Push(ctx, reg.addr); err != nil {
		t.Fatal(err)
	}
	// Each Verify reads the config and the layer: the first pass fills
	// the cache, the next two are served from it. Fills finish in the
	// background, so wait for them before the next pass.
	if err := im.Verify(ctx, reg.addr); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "cache filled", 10*time.Second, func() error {
		if v := scrape(t, "http://"+metricsAddr+"/metrics", nil)["berth_blob_cache_fills_total"]; v < 2 {
			return fmt.Errorf("%v fills", v)
		}
		return nil
	})
	for range 2 {
		if err := im.Verify(ctx, reg.addr); err != nil {
			t.Fatal(err)
		}
	}
	s := scrape(t, "http://"+metricsAddr+"/metrics", nil)
	want := map[string]float64{
		"berth_blob_cache_misses_total":                                    2,
		"berth_blob_cache_hits_total":                                      4,
		"berth_blob_cache_hit_bytes_total":                                 float64(2 * (len(im.Config) + len(im.Layer))),
		"berth_blob_cache_filled_bytes_total":                              float64(len(im.Config) + len(im.Layer)),
		"berth_blob_cache_used_bytes":                                      float64(len(im.Config) + len(im.Layer)),
		`registry_storage_action_seconds_count{action="open",driver="s3"}`: 2,
		// The two blobs, and the manifest's bytes, stored as a blob too.
		`registry_storage_action_seconds_count{action="put",driver="s3"}`: 3,
	}
	for series, v := range want {
		if s[series] != v {
			t.Errorf("%s = %v, want %v", series, s[series], v)
		}
	}
	for series, v := range s {
		if strings.HasPrefix(series, "berth_storage_action_errors_total") && v != 0 {
			t.Errorf("%s = %v, want 0", series, v)
		}
	}
}
