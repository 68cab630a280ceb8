package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

const token = "s3cret-token"

// logNode stands in for the node with a real FSM: Propose encodes the event
// and applies it as the next Raft log entry, as a single-node cluster does.
type logNode struct {
	mu    sync.Mutex
	f     *fsm.FSM
	index uint64
	// failAt makes the proposal with this index fail as an unavailable
	// cluster would; a real FSM cannot produce that.
	failAt uint64
	// mutate, when set, sees (and may change) every payload before it is
	// encoded, as a proposer with a different view of validity would.
	mutate func(events.Payload) events.Payload
}

type unavailable struct{}

func (unavailable) Error() string     { return "no leader" }
func (unavailable) Unavailable() bool { return true }

func (n *logNode) Propose(ctx context.Context, p events.Payload) (uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failAt != 0 && n.index+1 == n.failAt {
		return 0, unavailable{}
	}
	if n.mutate != nil {
		p = n.mutate(p)
	}
	// As node.Propose does, the event carries the request's Origin.
	b, err := events.Encode(events.Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Origin: events.OriginFrom(ctx), Payload: p})
	if err != nil {
		return 0, err
	}
	n.index++
	if err, ok := n.f.Apply(&raft.Log{Index: n.index, Type: raft.LogCommand, Data: b}).(error); ok && err != nil {
		return n.index, err
	}
	return n.index, nil
}

func (n *logNode) ReadView(context.Context) (*fsm.View, error) { return n.f.View(), nil }

func (n *logNode) proposals() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.index
}

func newServer(t *testing.T) (*httptest.Server, *logNode) {
	t.Helper()
	n := &logNode{f: fsm.New(slog.New(slog.DiscardHandler))}
	srv := httptest.NewServer(New(token, n, n, nil))
	t.Cleanup(srv.Close)
	return srv, n
}

// call sends one request with the token and decodes the JSON answer.
func call(t *testing.T, srv *httptest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	code, _, m := callRaw(t, srv, method, path, body, "Bearer "+token)
	return code, m
}

func callRaw(t *testing.T, srv *httptest.Server, method, path, body, auth string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, body %s", method, path, ct, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object: %v\n%s", method, path, err, b)
	}
	return resp.StatusCode, resp.Header, m
}

func TestAuth(t *testing.T) {
	srv, _ := newServer(t)
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong", "Basic " + token, "Bearer " + token + "x", token} {
		for _, path := range []string{"/admin/v1/resources/registries", "/admin/v1/nothing"} {
			code, h, m := callRaw(t, srv, "GET", path, "", auth)
			if code != http.StatusUnauthorized || !strings.Contains(m["error"].(string), "admin token") || h.Get("WWW-Authenticate") == "" {
				t.Errorf("%q on %s: %d %v %v", auth, path, code, h, m)
			}
		}
	}
	for _, auth := range []string{"Bearer " + token, "bearer " + token} {
		if code, _, m := callRaw(t, srv, "GET", "/admin/v1/resources/registries", "", auth); code != http.StatusOK {
			t.Errorf("%q: %d %v", auth, code, m)
		}
	}

	// A node without a token accepts nobody, not even an empty bearer.
	n := &logNode{f: fsm.New(slog.New(slog.DiscardHandler))}
	locked := httptest.NewServer(New("", n, n, nil))
	defer locked.Close()
	for _, auth := range []string{"Bearer ", "Bearer"} {
		if code, _, _ := callRaw(t, locked, "GET", "/admin/v1/resources/registries", "", auth); code != http.StatusUnauthorized {
			t.Errorf("empty token, %q: %d", auth, code)
		}
	}
}

const twoRegistries = `apiVersion: berth.dev/v1
kind: Registry
metadata:
  name: hub
  labels: {team: platform}
spec:
  type: dockerhub
  description: Docker Hub
---
apiVersion: berth.dev/v1
kind: Registry
metadata:
  name: zot
spec:
  type: zot
  url: http://zot.internal:5000
  insecure: true
`

type result struct {
	Kind, Name, Action string
	Generation         int64
}

func results(t *testing.T, m map[string]any) []result {
	t.Helper()
	b, _ := json.Marshal(m["results"])
	var rs []result
	if err := json.Unmarshal(b, &rs); err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestApplyIsIdempotentAndCountsGenerations(t *testing.T) {
	srv, n := newServer(t)
	steps := []struct {
		name, body string
		want       []result
	}{
		{"create", twoRegistries, []result{{"Registry", "hub", "created", 1}, {"Registry", "zot", "created", 1}}},
		{"again", twoRegistries, []result{{"Registry", "hub", "unchanged", 1}, {"Registry", "zot", "unchanged", 1}}},
		{"change one", strings.Replace(twoRegistries, "Docker Hub", "Docker Hub mirror", 1),
			[]result{{"Registry", "hub", "configured", 2}, {"Registry", "zot", "unchanged", 1}}},
		{"change labels", strings.Replace(twoRegistries, "Docker Hub", "Docker Hub mirror", 1) + "  enabled: false\n",
			[]result{{"Registry", "hub", "unchanged", 2}, {"Registry", "zot", "configured", 2}}},
		{"json", `{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"quay"},"spec":{"type":"quay"}}`,
			[]result{{"Registry", "quay", "created", 1}}},
	}
	for _, st := range steps {
		code, m := call(t, srv, "POST", "/admin/v1/apply", st.body)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %v", st.name, code, m)
		}
		if got := results(t, m); len(got) != len(st.want) || !equal(got, st.want) {
			t.Errorf("%s: results %+v, want %+v", st.name, got, st.want)
		}
	}
	// Unchanged documents are not proposed: a re-apply adds nothing to
	// the log, and an apply that changes anything is one entry.
	if n.proposals() != 4 {
		t.Errorf("%d proposals, want one per apply that changes something (4)", n.proposals())
	}

	code, m := call(t, srv, "GET", "/admin/v1/resources/registry/hub", "")
	meta, _ := m["metadata"].(map[string]any)
	spec, _ := m["spec"].(map[string]any)
	if code != http.StatusOK || meta["generation"] != 2.0 || spec["description"] != "Docker Hub mirror" ||
		spec["url"] != "https://registry-1.docker.io" || spec["enabled"] != true || meta["creationTimestamp"] != "2026-01-02T03:04:05Z" {
		t.Errorf("get hub: %d %v", code, m)
	}
}

func equal(a, b []result) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A request with any invalid document applies nothing and names every
// problem of every document.
func TestApplyRefusesInvalidInput(t *testing.T) {
	srv, n := newServer(t)
	bad := twoRegistries + `---
apiVersion: berth.dev/v1
kind: Registry
metadata: {name: Bad_Name}
spec: {type: floppy, url: 'ftp://x', password: hunter2}
---
apiVersion: berth.dev/v1
kind: Registry
metadata: {name: hub}
spec: {type: quay}
`
	code, m := call(t, srv, "POST", "/admin/v1/apply", bad)
	if code != http.StatusBadRequest || !strings.Contains(m["error"].(string), "nothing was applied") {
		t.Fatalf("%d %v", code, m)
	}
	b, _ := json.Marshal(m["documents"])
	var docs []DocumentError
	if err := json.Unmarshal(b, &docs); err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || docs[0].Document != 3 || docs[0].Line != 19 || docs[0].Name != "Bad_Name" || len(docs[0].Problems) != 4 ||
		docs[1].Document != 4 || !strings.Contains(docs[1].Problems[0], "also document 1") {
		t.Errorf("documents = %+v", docs)
	}
	for i, want := range []string{"metadata.name", "spec.type", "spec.url", "spec.password"} {
		if !strings.HasPrefix(docs[0].Problems[i], want+": ") {
			t.Errorf("problem %d = %q, want %s first", i, docs[0].Problems[i], want)
		}
	}
	if n.proposals() != 0 {
		t.Errorf("%d proposals for an invalid request", n.proposals())
	}

	tests := []struct {
		name, body string
		code       int
		want       string
	}{
		{"empty", "", http.StatusBadRequest, "no resources"},
		{"only separators", "---\n---\n", http.StatusBadRequest, "no resources"},
		{"broken yaml", twoRegistries + "---\nkind: [\n", http.StatusBadRequest, "document 3"},
		{"a list", "- a\n", http.StatusBadRequest, "must be a mapping"},
		{"binary", "\x00\x01\x02\xff", http.StatusBadRequest, "cannot parse"},
		{"too big", strings.Repeat("#", maxApplyBody+1), http.StatusRequestEntityTooLarge, "split the file"},
	}
	for _, tt := range tests {
		code, m := call(t, srv, "POST", "/admin/v1/apply", tt.body)
		if code != tt.code || !strings.Contains(m["error"].(string), tt.want) {
			t.Errorf("%s: %d %v, want %d mentioning %q", tt.name, code, m, tt.code, tt.want)
		}
	}
	if n.proposals() != 0 {
		t.Errorf("%d proposals for invalid requests", n.proposals())
	}
}

// A file is applied whole or not at all: when Apply refuses one document,
// or the cluster cannot commit, no document of the file is applied, and a
// retry applies them all.
func TestApplyIsAllOrNothing(t *testing.T) {
	// refuseZot makes the real FSM refuse the second document, as a check
	// that only Apply can make (one that depends on state) would.
	refuseZot := func(p events.Payload) events.Payload {
		switch p := p.(type) {
		case events.ResourceApplied:
			if p.Name == "zot" {
				p.Document = []byte(`"not an object"`)
			}
			return p
		case events.ResourcesApplied:
			rs := slices.Clone(p.Resources)
			for i := range rs {
				if rs[i].Name == "zot" {
					rs[i].Document = []byte(`"not an object"`)
				}
			}
			return events.ResourcesApplied{Resources: rs}
		}
		return p
	}
	tests := []struct {
		name    string
		setup   func(n *logNode)
		code    int
		message []string
	}{
		{"second document refused in Apply", func(n *logNode) { n.mutate = refuseZot }, http.StatusBadRequest,
			[]string{"nothing was applied", `Registry "zot" was refused`}},
		{"cluster unavailable", func(n *logNode) { n.failAt = 1 }, http.StatusServiceUnavailable,
			[]string{"may not have been committed", "no leader", "run it again"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, n := newServer(t)
			tt.setup(n)
			code, h, m := callRaw(t, srv, "POST", "/admin/v1/apply", twoRegistries, "Bearer "+token)
			if code != tt.code {
				t.Fatalf("%d %v", code, m)
			}
			if code == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			for _, want := range tt.message {
				if msg, _ := m["error"].(string); !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			if _, ok := m["results"]; ok {
				t.Errorf("a failed apply reports results: %v", m)
			}
			for _, name := range []string{"hub", "zot"} {
				if code, m := call(t, srv, "GET", "/admin/v1/resources/registry/"+name, ""); code != http.StatusNotFound {
					t.Errorf("%s after the failed apply: %d %v", name, code, m)
				}
			}
			n.mu.Lock()
			n.failAt, n.mutate = 0, nil
			n.mu.Unlock()
			code, m = call(t, srv, "POST", "/admin/v1/apply", twoRegistries)
			if got := results(t, m); code != http.StatusOK || !equal(got, []result{{"Registry", "hub", "created", 1}, {"Registry", "zot", "created", 1}}) {
				t.Errorf("retry: %d %+v", code, got)
			}
		})
	}
}

// One changed document goes to the log as a plain ResourceApplied, which
// every Berth version decodes; several as one ResourcesApplied.
func TestApplyProposesOneEntry(t *testing.T) {
	srv, n := newServer(t)
	var types []events.Type
	n.mutate = func(p events.Payload) events.Payload { types = append(types, p.EventType()); return p }
	call(t, srv, "POST", "/admin/v1/apply", twoRegistries)
	call(t, srv, "POST", "/admin/v1/apply", strings.Replace(twoRegistries, "Docker Hub", "Docker Hub mirror", 1))
	want := []events.Type{events.TypeResourcesApplied, events.TypeResourceApplied}
	if !slices.Equal(types, want) {
		t.Errorf("proposed %v, want %v", types, want)
	}
}

func TestListGetHistoryDelete(t *testing.T) {
	srv, n := newServer(t)
	for _, body := range []string{twoRegistries, strings.Replace(twoRegistries, "Docker Hub", "v2", 1), strings.Replace(twoRegistries, "Docker Hub", "v3", 1)} {
		if code, m := call(t, srv, "POST", "/admin/v1/apply", body); code != http.StatusOK {
			t.Fatalf("apply: %d %v", code, m)
		}
	}

	names := func(m map[string]any) (out []string) {
		items, _ := m["items"].([]any)
		for _, it := range items {
			meta := it.(map[string]any)["metadata"].(map[string]any)
			out = append(out, meta["name"].(string))
		}
		return out
	}
	for _, kind := range []string{"registries", "Registry", "REGISTRIES", "reg", "regs", "registry"} {
		code, m := call(t, srv, "GET", "/admin/v1/resources/"+kind, "")
		if code != http.StatusOK || m["kind"] != "RegistryList" || strings.Join(names(m), ",") != "hub,zot" {
			t.Errorf("list %s: %d %v", kind, code, m)
		}
	}

	code, m := call(t, srv, "GET", "/admin/v1/resources/registries/hub/history", "")
	var gens []float64
	for _, it := range m["items"].([]any) {
		meta := it.(map[string]any)["metadata"].(map[string]any)
		gens = append(gens, meta["generation"].(float64))
	}
	if code != http.StatusOK || len(gens) != 3 || gens[0] != 1 || gens[1] != 2 || gens[2] != 3 {
		t.Errorf("history: %d %v", code, gens)
	}

	before := n.proposals()
	code, m = call(t, srv, "DELETE", "/admin/v1/resources/Registries/zot", "")
	if code != http.StatusOK || m["action"] != "deleted" || m["kind"] != "Registry" || m["name"] != "zot" {
		t.Errorf("delete: %d %v", code, m)
	}
	if n.proposals() != before+1 {
		t.Errorf("delete made %d proposals", n.proposals()-before)
	}
	if code, m := call(t, srv, "GET", "/admin/v1/resources/registries", ""); strings.Join(names(m), ",") != "hub" {
		t.Errorf("after delete: %d %v", code, m)
	}

	notFound := []struct{ method, path, want string }{
		{"GET", "/admin/v1/resources/registries/zot", `Registry "zot" not found`},
		{"GET", "/admin/v1/resources/registries/zot/history", `Registry "zot" not found`},
		{"DELETE", "/admin/v1/resources/registries/zot", `Registry "zot" does not exist`},
		{"DELETE", "/admin/v1/resources/registries/Not_A_Name", "does not exist"},
		{"GET", "/admin/v1/resources/widgets", `unknown kind "widgets": known kinds are ImmutabilityRule, Namespace, Registry, ReplicationPolicy, RetentionPolicy, Robot, User, Webhook`},
		{"GET", "/admin/v1/resources/widgets/x", "unknown kind"},
		{"DELETE", "/admin/v1/resources/widgets/x", "unknown kind"},
		{"GET", "/admin/v1/nothing", "no admin endpoint"},
		{"GET", "/admin/v1/resources/registries/hub/history/more", "no admin endpoint"},
	}
	before = n.proposals()
	for _, tt := range notFound {
		code, m := call(t, srv, tt.method, tt.path, "")
		if code != http.StatusNotFound || !strings.Contains(m["error"].(string), tt.want) {
			t.Errorf("%s %s: %d %v, want 404 mentioning %q", tt.method, tt.path, code, m, tt.want)
		}
	}
	if n.proposals() != before {
		t.Errorf("deleting what does not exist made %d proposals", n.proposals()-before)
	}

	// An empty list is an empty array, not null.
	code, m = call(t, srv, "DELETE", "/admin/v1/resources/registries/hub", "")
	if code != http.StatusOK {
		t.Fatalf("delete hub: %d %v", code, m)
	}
	if _, m := call(t, srv, "GET", "/admin/v1/resources/registries", ""); m["items"] == nil || len(m["items"].([]any)) != 0 {
		t.Errorf("empty list: %v", m)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	srv, _ := newServer(t)
	tests := []struct{ method, path, allow string }{
		{"GET", "/admin/v1/apply", "POST"},
		{"PUT", "/admin/v1/apply", "POST"},
		{"POST", "/admin/v1/resources/registries", "GET"},
		{"PATCH", "/admin/v1/resources/registries/hub", "DELETE, GET"},
		{"DELETE", "/admin/v1/resources/registries/hub/history", "GET"},
	}
	for _, tt := range tests {
		code, h, m := callRaw(t, srv, tt.method, tt.path, "", "Bearer "+token)
		if code != http.StatusMethodNotAllowed || !sameSet(h.Get("Allow"), tt.allow) || m["error"] == nil {
			t.Errorf("%s %s: %d Allow %q %v", tt.method, tt.path, code, h.Get("Allow"), m)
		}
	}
}

func sameSet(a, b string) bool {
	as, bs := strings.Split(a, ", "), strings.Split(b, ", ")
	if len(as) != len(bs) {
		return false
	}
	for _, x := range as {
		if !strings.Contains(", "+b+", ", ", "+x+", ") {
			return false
		}
	}
	return true
}

// A failing read is the cluster's problem, not the client's: 503.
func TestUnavailableReads(t *testing.T) {
	h := New(token, failing{}, failing{}, nil)
	for _, tt := range []struct{ method, path, body string }{
		{"GET", "/admin/v1/resources/registries", ""},
		{"GET", "/admin/v1/resources/registries/x", ""},
		{"DELETE", "/admin/v1/resources/registries/x", ""},
		{"POST", "/admin/v1/apply", twoRegistries},
	} {
		req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "no leader") {
			t.Errorf("%s %s: %d %s", tt.method, tt.path, rec.Code, rec.Body)
		}
	}
}

type failing struct{}

func (failing) Propose(context.Context, events.Payload) (uint64, error) { return 0, unavailable{} }
func (failing) ReadView(context.Context) (*fsm.View, error)             { return nil, unavailable{} }

func TestStatusOf(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{&fsm.Refusal{Code: fsm.CodeResourceUnknown}, http.StatusNotFound},
		{&fsm.Refusal{Code: fsm.CodeInvalid}, http.StatusBadRequest},
		{unavailable{}, http.StatusServiceUnavailable},
		{context.DeadlineExceeded, http.StatusServiceUnavailable},
		{errors.New("bug"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		if got := statusOf(tt.err); got != tt.want {
			t.Errorf("statusOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// Whatever the body, apply never answers 500: bad input is a 4xx.
func FuzzApply(f *testing.F) {
	f.Add(twoRegistries)
	f.Add("---\n")
	f.Add(`{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"x"},"spec":{"type":"zot","url":"https://z"}}`)
	f.Add("apiVersion: berth.dev/v1\nkind: Registry\nmetadata: {name: x}\nspec: {type: zot, tls: {caBundle: x}}\n")
	n := &logNode{f: fsm.New(slog.New(slog.DiscardHandler))}
	h := New(token, n, n, nil)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/admin/v1/apply", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%d for %q: %s", rec.Code, body, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %s", rec.Body)
		}
	})
}
