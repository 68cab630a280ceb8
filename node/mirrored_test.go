package node

import (
	"net/http"
	"strings"
	"testing"
)

// TestMirroredReposFollowPolicyChanges: which repositories refuse pushes
// follows every change to the policies, including a policy deleted and
// re-created under the same name (generation 1 again), which the decoded
// cache must not mistake for the one it replaced.
func TestMirroredReposFollowPolicyChanges(t *testing.T) {
	n := runTestNode(t, nil)
	base := "http://" + n.Addr()
	apply := func(spec string) {
		t.Helper()
		doc := `{"apiVersion":"berth.dev/v1","kind":"ReplicationPolicy","metadata":{"name":"follow"},"spec":` + spec + `}`
		if code, b, _ := call(t, "POST", base+"/admin/v1/apply", "admin-token", []byte(doc)); code != http.StatusOK {
			t.Fatalf("apply %s: %d %s", spec, code, b)
		}
	}
	remove := func() {
		t.Helper()
		if code, b, _ := call(t, "DELETE", base+"/admin/v1/resources/replicationpolicies/follow", "admin-token", nil); code != http.StatusOK {
			t.Fatalf("delete: %d %s", code, b)
		}
	}
	// refused reports whether starting an upload to repo is refused as mirrored.
	refused := func(repo string) bool {
		t.Helper()
		code, b, _ := call(t, "POST", base+"/v2/"+repo+"/blobs/uploads/", "", nil)
		switch {
		case code == http.StatusForbidden && strings.Contains(string(b), `ReplicationPolicy \"follow\"`):
			return true
		case code == http.StatusAccepted:
			return false
		}
		t.Fatalf("start upload to %s: %d %s", repo, code, b)
		return false
	}
	steps := []struct {
		name   string
		change func()
		want   map[string]bool // repository: refused
	}{
		{"no policy", func() {}, map[string]bool{"team-a/app": false, "team-b/app": false}},
		{"mirror of team-a", func() { apply(`{"mode":"mirror","registry":"nowhere","repositories":["team-a/**"]}`) },
			map[string]bool{"team-a/app": true, "team-b/app": false}},
		{"now of team-b", func() { apply(`{"mode":"mirror","registry":"nowhere","repositories":["team-b/**"]}`) },
			map[string]bool{"team-a/app": false, "team-b/app": true}},
		{"writable", func() { apply(`{"mode":"mirror","registry":"nowhere","repositories":["team-b/**"],"writable":true}`) },
			map[string]bool{"team-a/app": false, "team-b/app": false}},
		{"deleted", remove, map[string]bool{"team-a/app": false, "team-b/app": false}},
		{"re-created for team-a", func() { apply(`{"mode":"mirror","registry":"nowhere","repositories":["team-a/**"]}`) },
			map[string]bool{"team-a/app": true, "team-b/app": false}},
		{"deleted and re-created for team-b", func() {
			remove()
			apply(`{"mode":"proxy","registry":"nowhere","repositories":["**"],"prefix":{"add":"team-b/"}}`)
		}, map[string]bool{"team-a/app": false, "team-b/app": true}},
		{"disabled", func() {
			apply(`{"mode":"proxy","registry":"nowhere","repositories":["**"],"prefix":{"add":"team-b/"},"enabled":false}`)
		},
			map[string]bool{"team-a/app": false, "team-b/app": false}},
	}
	for _, s := range steps {
		s.change()
		for repo, want := range s.want {
			if got := refused(repo); got != want {
				t.Errorf("%s: push to %s refused = %v, want %v", s.name, repo, got, want)
			}
		}
	}
}
