package admin

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

const authKinds = `apiVersion: berth.dev/v1
kind: Namespace
metadata: {name: team-a}
spec:
  quota: {storage: 51200Mi}
  members:
    - {robot: ci-team-a, role: developer}
    - {user: alice, role: admin}
---
apiVersion: berth.dev/v1
kind: User
metadata: {name: alice}
spec: {passwordHash: '$2a$10$lLuWqPd2eQBjBOD6tKSxTOfiOjykZALwEId.Wzvv4ukv8qmoR816.'}
---
apiVersion: berth.dev/v1
kind: Robot
metadata: {name: ci-team-a}
spec: {namespace: team-a, role: developer, expires: '2027-01-01T00:00:00Z', secretHash: 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'}
`

// The Namespace, User and Robot kinds go through the admin API like any
// other: applied in one entry, listed, read back normalized, re-applied
// unchanged; a plain password is refused before anything is proposed.
func TestApplyAuthKinds(t *testing.T) {
	srv, n := newServer(t)
	code, m := call(t, srv, "POST", "/admin/v1/apply", authKinds)
	want := []result{{"Namespace", "team-a", "created", 1}, {"User", "alice", "created", 1}, {"Robot", "ci-team-a", "created", 1}}
	if code != http.StatusOK || !equal(results(t, m), want) {
		t.Fatalf("apply: %d %v", code, m)
	}
	code, m = call(t, srv, "GET", "/admin/v1/resources/ns/team-a", "")
	spec, _ := json.Marshal(m["spec"])
	if code != http.StatusOK || string(spec) != `{"members":[{"role":"admin","user":"alice"},{"robot":"ci-team-a","role":"developer"}],"public":false,"quota":{"storage":"50Gi"}}` {
		t.Errorf("get namespace: %d %s", code, spec)
	}
	for kind, name := range map[string]string{"users": "alice", "robots": "ci-team-a", "namespaces": "team-a"} {
		code, m := call(t, srv, "GET", "/admin/v1/resources/"+kind, "")
		items, _ := m["items"].([]any)
		if code != http.StatusOK || len(items) != 1 || !strings.Contains(mustJSON(t, items[0]), `"name":"`+name+`"`) {
			t.Errorf("list %s: %d %v", kind, code, m)
		}
	}
	before := n.proposals()
	code, m = call(t, srv, "POST", "/admin/v1/apply", authKinds)
	if code != http.StatusOK || results(t, m)[0].Action != "unchanged" || n.proposals() != before {
		t.Errorf("re-apply: %d %v, %d proposals after %d", code, m, n.proposals(), before)
	}
	code, m = call(t, srv, "POST", "/admin/v1/apply", "apiVersion: berth.dev/v1\nkind: User\nmetadata: {name: bob}\nspec: {passwordHash: hunter2}\n")
	if code != http.StatusBadRequest || !strings.Contains(mustJSON(t, m), "clusterctl user passwd") || n.proposals() != before {
		t.Errorf("plain password: %d %v", code, m)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
