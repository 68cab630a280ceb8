package access

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/berth-registry/berth/auth"
)

// Identify is the console's sign-in: Basic credentials of users and
// robots, the admin token as password or bearer; never an API token.
func TestIdentify(t *testing.T) {
	s := newState(t)
	srv := newServer(s, time.Now())
	apiTok := token(t, srv, basic("alice", "alice-password"), "repository:team-a/app:pull")
	for _, tc := range []struct {
		name, authz string
		want        string // identity subject; "" with wantErr
		admin       bool
		wantErr     error // nil: any error when want == ""
	}{
		{name: "user", authz: basic("alice", "alice-password"), want: "alice"},
		{name: "robot", authz: basic("ci", robotSecret), want: "robot:ci"},
		{name: "admin token as password", authz: basic("anyone", adminToken), want: AdminSubject, admin: true},
		{name: "admin token as bearer", authz: "Bearer " + adminToken, want: AdminSubject, admin: true},
		{name: "none", authz: "", wantErr: ErrNoCredentials},
		{name: "wrong password", authz: basic("alice", "nope"), wantErr: auth.ErrBadCredentials},
		{name: "unknown user", authz: basic("mallory", "x"), wantErr: auth.ErrBadCredentials},
		{name: "api token", authz: "Bearer " + apiTok},
		{name: "malformed", authz: "Digest abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/ui/", nil)
			if tc.authz != "" {
				r.Header.Set("Authorization", tc.authz)
			}
			id, err := srv.Identify(r, s.f.View())
			if tc.want == "" {
				if err == nil {
					t.Fatalf("Identify = %+v, want an error", id)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || id.Subject() != tc.want || id.ClusterAdmin != tc.admin {
				t.Fatalf("Identify = %+v, %v; want %s (admin %v)", id, err, tc.want, tc.admin)
			}
		})
	}
}
