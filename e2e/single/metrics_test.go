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

// TestMetricsDuringPushes scrapes registryd while crane pushes: the
// request counters and the Raft indexes only grow, the node leads, and no
// series names a repository.
func TestMetricsDuringPushes(t *testing.T) {
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	dataDir := t.TempDir()
	reg := startRegistryEnv(t, dataDir, "", []string{"BERTH_HTTP_METRICSADDR=" + metricsAddr})
	crane, env := harness.Tool(t, "crane"), clientEnv(t)
	dir := t.TempDir()

	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := range 6 {
			layer := writeFile(t, filepath.Join(dir, fmt.Sprintf("layer%d.tar", i)), harness.TarWithFile("f", []byte(fmt.Sprintf("layer %d\n", i))))
			harness.Run(t, env, crane, "--insecure", "append", "-f", layer, "-t", fmt.Sprintf("%s/hidden-team/app%d:v%d", reg.addr, i, i))
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
		"berth_raft_commit_index", "berth_raft_applied_index",
		`berth_propose_duration_seconds_count{result="ok"}`,
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
