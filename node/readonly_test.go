package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/gc"
)

// call sends one request and returns the status, the body and the headers.
func call(t *testing.T, method, url, token string, body []byte, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func setReadOnly(t *testing.T, base, body string) fsm.ReadOnly {
	t.Helper()
	code, b, _ := call(t, "POST", base+"/admin/v1/readonly", "admin-token", []byte(body))
	var ro fsm.ReadOnly
	if code != http.StatusOK || json.Unmarshal(b, &ro) != nil {
		t.Fatalf("POST /admin/v1/readonly %s: %d %s", body, code, b)
	}
	return ro
}

// TestReadOnlyOnARealNode: through the admin API, read-only mode refuses
// every write with 403 DENIED and a message naming who, when and why
// (before any byte is stored), serves every read, stays ready, shows in
// /metrics, pauses GC and lets resources apply; lifting it lets pushes in
// again and resumes the GC run it held.
func TestReadOnlyOnARealNode(t *testing.T) {
	n := runTestNode(t, func(c *Config) { c.HTTP.MetricsAddr = "127.0.0.1:0" }, func(n *Node) {
		n.cfg.GC.UploadMaxAge = 0 // below what Validate allows: tests only
	})
	base, metricsURL := "http://"+n.Addr(), "http://"+n.MetricsAddr()
	m := pushImage(t, base, "app")
	layer := digest.FromBytes([]byte("a layer of app"))
	if v, _ := scrapeMetrics(t, metricsURL, "").value("berth_readonly"); v != 0 {
		t.Errorf("berth_readonly = %v before, want 0", v)
	}
	// An upload session started before the switch, and a GC run left
	// open (marking) for the pause to hold.
	code, _, hdr := call(t, "POST", base+"/v2/app/blobs/uploads/", "", nil)
	if code != http.StatusAccepted {
		t.Fatalf("start upload: %d", code)
	}
	session := base + hdr.Get("Location")
	if _, err := n.Propose(context.Background(), events.GCStarted{Run: "held"}); err != nil {
		t.Fatal(err)
	}

	ro := setReadOnly(t, base, `{"on": true, "reason": "bucket copy"}`)
	if !ro.On || ro.Actor != "admin" || ro.Reason != "bucket copy" || ro.Index == 0 {
		t.Fatalf("mode after on: %+v", ro)
	}
	wantMsg := "registry is in read-only mode (set by admin at " + ro.Since.UTC().Format(time.RFC3339) + ": bucket copy); clusterctl readonly off lifts it"

	fresh := []byte("bytes pushed while read-only")
	sep := "?"
	if strings.Contains(session, "?") {
		sep = "&"
	}
	for _, w := range []struct {
		method, path string
		body         []byte
	}{
		{"POST", "/v2/app/blobs/uploads/", nil},
		{"POST", "/v2/app/blobs/uploads/?digest=" + digest.FromBytes(fresh).String(), fresh},
		{"POST", "/v2/other/blobs/uploads/?mount=" + layer.String() + "&from=app", nil},
		{"PATCH", strings.TrimPrefix(session, base), fresh},
		{"PUT", strings.TrimPrefix(session, base) + sep + "digest=" + digest.FromBytes(fresh).String(), fresh},
		{"DELETE", strings.TrimPrefix(session, base), nil},
		{"PUT", "/v2/app/manifests/v2", []byte(`{"schemaVersion":2}`)},
		{"DELETE", "/v2/app/manifests/" + m.String(), nil},
		{"DELETE", "/v2/app/blobs/" + layer.String(), nil},
	} {
		code, b, _ := call(t, w.method, base+w.path, "", w.body, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
		var e struct {
			Errors []struct{ Code, Message string }
		}
		if json.Unmarshal(b, &e); code != http.StatusForbidden || len(e.Errors) != 1 || e.Errors[0].Code != "DENIED" || e.Errors[0].Message != wantMsg {
			t.Errorf("%s %s: %d %s, want 403 DENIED %q", w.method, w.path, code, b, wantMsg)
		}
	}
	if _, err := n.blobs.Stat(context.Background(), digest.FromBytes(fresh)); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("a refused upload stored its bytes: Stat = %v", err)
	}
	// A write that reached Apply (proposed before this node's check saw
	// the switch) is refused there, with the same message.
	var ref *fsm.Refusal
	if _, err := n.Propose(context.Background(), events.TagSet{Repo: "app", Tag: "v2", Digest: m}); !errors.As(err, &ref) || ref.Code != fsm.CodeReadOnly || ref.Message != wantMsg {
		t.Errorf("TagSet while read-only: %v", err)
	}

	for _, r := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/v2/", 200}, {"GET", "/v2/_catalog", 200}, {"GET", "/v2/app/tags/list", 200},
		{"HEAD", "/v2/app/manifests/v1", 200}, {"GET", "/v2/app/manifests/" + m.String(), 200},
		{"GET", "/v2/app/blobs/" + layer.String(), 200}, {"GET", strings.TrimPrefix(session, base), 204},
		{"GET", "/readyz", 200},
	} {
		if code, b, _ := call(t, r.method, base+r.path, "", nil, "Accept", "application/vnd.oci.image.manifest.v1+json"); code != r.want {
			t.Errorf("%s %s while read-only: %d %s, want %d", r.method, r.path, code, b, r.want)
		}
	}
	if v, _ := scrapeMetrics(t, metricsURL, "").value("berth_readonly"); v != 1 {
		t.Errorf("berth_readonly = %v while on, want 1", v)
	}
	if code, b, _ := call(t, "GET", base+"/admin/v1/readonly", "admin-token", nil); code != 200 || !bytes.Contains(b, []byte(`"reason":"bucket copy"`)) {
		t.Errorf("GET /admin/v1/readonly: %d %s", code, b)
	}
	if code, b, _ := call(t, "GET", base+"/admin/v1/cluster/status", "admin-token", nil); code != 200 || !bytes.Contains(b, []byte(`"readOnly":true`)) || !bytes.Contains(b, []byte(`"readOnly":{"on":true`)) {
		t.Errorf("cluster status while read-only: %d %s", code, b)
	}
	doc := `{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"hub"},"spec":{"type":"dockerhub"}}`
	if code, b, _ := call(t, "POST", base+"/admin/v1/apply", "admin-token", []byte(doc)); code != 200 {
		t.Errorf("apply while read-only: %d %s", code, b)
	}

	// GC: a run is refused with the reason, status says why, a dry run
	// still answers, and the open run stays as it was.
	if _, err := n.RunGC(context.Background(), GCRunRequest{Wait: true}); !errors.Is(err, gc.ErrPaused) || !strings.Contains(err.Error(), "bucket copy") {
		t.Errorf("gc run while read-only: %v", err)
	}
	if code, b, _ := call(t, "POST", base+"/admin/v1/gc/run?wait=true", "admin-token", nil); code != http.StatusConflict || !bytes.Contains(b, []byte("read-only mode")) {
		t.Errorf("POST gc/run while read-only: %d %s", code, b)
	}
	if st, err := n.GCStatus(context.Background()); err != nil || !strings.Contains(st.Paused, wantMsg) || st.Open == nil || st.Open.Run != "held" {
		t.Errorf("gc status while read-only: %+v %v", st, err)
	}
	if _, err := n.RunGC(context.Background(), GCRunRequest{DryRun: true}); err != nil {
		t.Errorf("gc dry run while read-only: %v", err)
	}
	time.Sleep(gcResumeEvery + 500*time.Millisecond) // the loop sees the mode on
	if _, open := n.fsm.View().GCRun(); !open {
		t.Error("the open GC run went on while read-only")
	}

	if ro := setReadOnly(t, base, `{"on": false}`); ro.On || ro.Actor != "admin" {
		t.Errorf("mode after off: %+v", ro)
	}
	pushImage(t, base, "after")
	if v, _ := scrapeMetrics(t, metricsURL, "").value("berth_readonly"); v != 0 {
		t.Errorf("berth_readonly = %v after off, want 0", v)
	}
	deadline := time.Now().Add(3 * gcResumeEvery)
	for _, open := n.fsm.View().GCRun(); open && time.Now().Before(deadline); _, open = n.fsm.View().GCRun() {
		time.Sleep(100 * time.Millisecond)
	}
	if st, _ := n.GCStatus(context.Background()); st.Open != nil || len(st.Runs) != 1 || st.Runs[0].Run != "held" || st.Runs[0].Outcome != "swept" || st.Paused != "" {
		t.Errorf("the held run was not resumed after the lift: %+v", st)
	}
}
