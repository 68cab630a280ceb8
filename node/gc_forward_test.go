package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-registry/berth/gc"
	"github.com/berth-registry/berth/node/httperr"
)

// TestGCForwardingErrors: what a leader's internal GC endpoint answers is
// what the forwarding follower's admin client sees: a node that does not
// lead (any more) makes the follower try again (errNotSent); a run in
// progress or read-only mode is the admin API's 409 with the leader's
// message, never a retry and never a 500.
func TestGCForwardingErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		leader   error
		retry    bool
		wantCode int
		wantMsg  string
	}{
		{"not the leader", &NotLeaderError{Leader: "10.0.0.2:5000"}, true, 0, ""},
		{"busy", gcBusyError{}, false, http.StatusConflict, "already in progress"},
		{"read-only", gcPausedError{fmt.Errorf("%w: registry is in read-only mode", gc.ErrPaused)}, false, http.StatusConflict, "read-only mode"},
		{"unavailable", &UnavailableError{Err: errors.New("leadership lost")}, false, http.StatusServiceUnavailable, "leadership lost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { internalGCError(w, tc.leader) }))
			defer srv.Close()
			c := newPeerClient("s", apiTLS{})
			var out GCRunAnswer
			err := gcLeaderError(c.doLimit(context.Background(), "POST", strings.TrimPrefix(srv.URL, "http://"), "gc/run", nil, &out, maxGCAnswer))
			if got := errors.Is(err, errNotSent); got != tc.retry {
				t.Fatalf("follower saw %v: retried %v, want %v", err, got, tc.retry)
			}
			if tc.retry {
				return
			}
			code := httperr.Status(err)
			var st interface{ HTTPStatus() int }
			if errors.As(err, &st) {
				code = st.HTTPStatus() // as node/admin answers it
			}
			if code != tc.wantCode || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("follower answers %d %q, want %d with %q", code, err, tc.wantCode, tc.wantMsg)
			}
		})
	}
}
