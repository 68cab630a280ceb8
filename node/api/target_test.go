package api

import (
	"net/http/httptest"
	"slices"
	"testing"
)

// TestNeeds pins what each request needs. A request Needs waves through
// (ok false) reaches the handler unauthenticated, so every such case must
// be one the handler refuses whatever the caller's rights.
func TestNeeds(t *testing.T) {
	const sum = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	push := Need{Repository: "team-a/app", Action: "push"}
	for _, tc := range []struct {
		name, method, target string
		needs                []Need
		ping, ok             bool
	}{
		{"base", "GET", "/v2/", nil, true, true},
		{"catalog", "GET", "/v2/_catalog", []Need{{Action: "*", Catalog: true}}, false, true},
		{"manifest get", "GET", "/v2/team-a/app/manifests/1", []Need{{Repository: "team-a/app", Action: "pull"}}, false, true},
		{"manifest put", "PUT", "/v2/team-a/app/manifests/1", []Need{push}, false, true},
		{"manifest delete", "DELETE", "/v2/team-a/app/manifests/" + sum, []Need{{Repository: "team-a/app", Action: "delete"}}, false, true},
		{"upload cancel", "DELETE", "/v2/team-a/app/blobs/uploads/abc", []Need{push}, false, true},
		{"upload start", "POST", "/v2/team-a/app/blobs/uploads/", []Need{push}, false, true},
		{"mount from another repository", "POST", "/v2/team-a/app/blobs/uploads/?mount=" + sum + "&from=team-b/lib",
			[]Need{push, {Repository: "team-b/lib", Action: "pull"}}, false, true},
		{"mount from itself", "POST", "/v2/team-a/app/blobs/uploads/?mount=" + sum + "&from=team-a/app", []Need{push}, false, true},
		// The handler ignores a from= that is no repository name and
		// opens an upload session: that still needs push (it once let
		// anyone open sessions in any repository).
		{"mount from an invalid name", "POST", "/v2/team-a/app/blobs/uploads/?mount=" + sum + "&from=NOT..VALID", []Need{push}, false, true},
		{"from without mount", "POST", "/v2/team-a/app/blobs/uploads/?from=team-b/lib", []Need{push}, false, true},
		{"invalid repository name", "GET", "/v2/Team-A/manifests/1", nil, false, false},
		{"no such endpoint", "GET", "/v2/team-a/app/nothing", nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			needs, ping, ok := Needs(httptest.NewRequest(tc.method, tc.target, nil))
			if !slices.Equal(needs, tc.needs) || ping != tc.ping || ok != tc.ok {
				t.Errorf("Needs(%s %s) = %v, %v, %v; want %v, %v, %v", tc.method, tc.target, needs, ping, ok, tc.needs, tc.ping, tc.ok)
			}
		})
	}
}
