package access

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm/resource"
)

// TestDecisionsFollowTheStateWithAWarmCache: after each change to a
// namespace or an account, the next request is decided on the changed
// state, although the request before it filled the decode cache with
// the old document.
func TestDecisionsFollowTheStateWithAWarmCache(t *testing.T) {
	s := newState(t)
	srv := newServer(s, time.Now())
	gate := srv.Gate(echo)
	aliceTok := "Bearer " + token(t, srv, basic("alice", "alice-password"), "repository:team-a/app:pull,push")
	robotTok := "Bearer " + token(t, srv, basic("ci", robotSecret), "repository:team-a/app:pull")
	aliceHash, _, _ := srv.dir(s.f.View()).User("alice")
	user := func(disabled bool) func() {
		return func() {
			d := "false"
			if disabled {
				d = "true"
			}
			s.applyYAML("apiVersion: berth.dev/v1\nkind: User\nmetadata: {name: alice}\nspec: {passwordHash: '" + aliceHash.PasswordHash + "', disabled: " + d + "}\n")
		}
	}
	namespace := func(role string) func() {
		return func() {
			s.applyYAML("apiVersion: berth.dev/v1\nkind: Namespace\nmetadata: {name: team-a}\nspec:\n  members: [{user: alice, role: " + role + "}]\n")
		}
	}
	steps := []struct {
		name         string
		change       func()
		method, auth string
		want         int
		body         string // substring of the answer
	}{
		{"developer pushes", func() {}, "PUT", aliceTok, 200, "alice"},
		{"downgraded to guest: push refused", namespace("guest"), "PUT", aliceTok, 401, "does not grant push"},
		{"guest still pulls", func() {}, "GET", aliceTok, 200, "alice"},
		{"back to developer", namespace("developer"), "PUT", aliceTok, 200, "alice"},
		{"user disabled", user(true), "GET", aliceTok, 401, "get a new token"},
		{"user enabled again", user(false), "GET", aliceTok, 200, "alice"},
		{"namespace deleted", func() { s.apply(events.ResourceDeleted{Kind: "Namespace", Name: "team-a"}) }, "GET", aliceTok, 401, "does not grant pull"},
		{"namespace re-created", namespace("developer"), "PUT", aliceTok, 200, "alice"},
		{"user deleted", func() { s.apply(events.ResourceDeleted{Kind: "User", Name: "alice"}) }, "GET", aliceTok, 401, "get a new token"},
		{"robot pulls", func() {}, "GET", robotTok, 200, "robot:ci"},
		{"robot disabled", func() {
			s.applyYAML("apiVersion: berth.dev/v1\nkind: Robot\nmetadata: {name: ci}\nspec: {namespace: team-a, role: guest, secretHash: '" + mustRobot(t, srv, s).SecretHash + "', disabled: true}\n")
		}, "GET", robotTok, 401, "get a new token"},
	}
	for _, st := range steps {
		st.change()
		w := do(gate, st.method, "/v2/team-a/app/manifests/v1", st.auth)
		if w.Code != st.want || !strings.Contains(w.Body.String(), st.body) {
			t.Errorf("%s: %s answered %d %q, want %d with %q", st.name, st.method, w.Code, w.Body, st.want, st.body)
		}
	}
}

func mustRobot(t *testing.T, srv *Server, s *state) resource.RobotSpec {
	t.Helper()
	spec, ok, err := srv.dir(s.f.View()).Robot("ci")
	if !ok || err != nil {
		t.Fatalf("robot ci: %v %v", ok, err)
	}
	return spec
}

// TestDirectoryDecodesEachDocumentOnce: a document is decoded on its
// first read and again only when the stored bytes change.
func TestDirectoryDecodesEachDocumentOnce(t *testing.T) {
	s := newState(t)
	srv := newServer(s, time.Now())
	decodes := 0
	read := func() (resource.NamespaceSpec, bool) {
		t.Helper()
		spec, ok, err := lookup(srv.dir(s.f.View()), "Namespace", "team-a", func(doc []byte) (resource.NamespaceSpec, error) {
			decodes++
			ns, err := resource.DecodeNamespace(doc)
			return ns.Spec, err
		})
		if err != nil {
			t.Fatal(err)
		}
		return spec, ok
	}
	steps := []struct {
		name        string
		change      func()
		wantDecodes int
		wantRole    string // "" when there is no such namespace
	}{
		{"first read decodes", func() {}, 1, "developer"},
		{"second read does not", func() {}, 1, "developer"},
		{"another resource changes", func() {
			s.applyYAML("apiVersion: berth.dev/v1\nkind: Namespace\nmetadata: {name: team-b}\nspec: {public: true}\n")
		}, 1, "developer"},
		{"the namespace changes", func() {
			s.applyYAML("apiVersion: berth.dev/v1\nkind: Namespace\nmetadata: {name: team-a}\nspec:\n  members: [{user: alice, role: guest}]\n")
		}, 2, "guest"},
		{"read again", func() {}, 2, "guest"},
		{"deleted", func() { s.apply(events.ResourceDeleted{Kind: "Namespace", Name: "team-a"}) }, 2, ""},
		{"re-created as before", func() {
			s.applyYAML("apiVersion: berth.dev/v1\nkind: Namespace\nmetadata: {name: team-a}\nspec:\n  members: [{user: alice, role: maintainer}]\n")
		}, 3, "maintainer"},
	}
	for _, st := range steps {
		st.change()
		spec, ok := read()
		role, _ := spec.RoleOf("alice", false)
		if decodes != st.wantDecodes || ok != (st.wantRole != "") || role != st.wantRole {
			t.Errorf("%s: %d decodes, found %v, role %q; want %d decodes, role %q", st.name, decodes, ok, role, st.wantDecodes, st.wantRole)
		}
	}
}

// TestSpecCacheIsBounded: a full cache is emptied rather than growing.
func TestSpecCacheIsBounded(t *testing.T) {
	var c specCache
	c.init()
	c.max = 2
	for _, n := range []string{"a", "b", "c"} {
		c.put(specKey{"User", n}, []byte(n), resource.UserSpec{})
	}
	if len(c.m) != 1 {
		t.Errorf("%d entries after 3 puts with room for 2, want 1", len(c.m))
	}
	if _, ok := c.get(specKey{"User", "c"}, []byte("c")); !ok {
		t.Error("the last entry put is missing")
	}
	if _, ok := c.get(specKey{"User", "c"}, []byte("changed")); ok {
		t.Error("an entry was returned for a different document")
	}
}

// BenchmarkGateDeveloperPull is the gate's cost for a developer's pull
// with a token: the path every manifest HEAD through the token flow takes.
func BenchmarkGateDeveloperPull(b *testing.B) {
	s := newState(b)
	srv := newServer(s, time.Now())
	gate := srv.Gate(echo)
	tok := "Bearer " + token(b, srv, basic("alice", "alice-password"), "repository:team-a/app:pull")
	b.ReportAllocs()
	for b.Loop() {
		if w := do(gate, "HEAD", "/v2/team-a/app/manifests/v1", tok); w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkNoGate is BenchmarkGateDeveloperPull's request without the
// gate: the difference is the gate's own cost.
func BenchmarkNoGate(b *testing.B) {
	s := newState(b)
	srv := newServer(s, time.Now())
	tok := "Bearer " + token(b, srv, basic("alice", "alice-password"), "repository:team-a/app:pull")
	b.ReportAllocs()
	for b.Loop() {
		if w := do(echo, "HEAD", "/v2/team-a/app/manifests/v1", tok); w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
