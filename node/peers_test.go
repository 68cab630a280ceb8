package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/node/httperr"
)

// TestForwardingProtocol: what the internal API answers, through
// internalError, is what httpPeers tells the consensus engine: 409 means
// "not sent, retry elsewhere", 503 "unavailable", another 4xx keeps its
// status for the caller's client.
func TestForwardingProtocol(t *testing.T) {
	for _, tc := range []struct {
		name      string
		serverErr error
		check     func(error) bool
		wantCode  int
	}{
		{"not the leader: 409, retried", fmt.Errorf("%w: not the leader", errNotSent),
			func(err error) bool { return errors.Is(err, errNotSent) }, http.StatusConflict},
		{"unavailable: 503", &UnavailableError{Err: errors.New("leadership lost")},
			func(err error) bool {
				var u *UnavailableError
				return errors.As(err, &u) && !errors.Is(err, errNotSent)
			}, http.StatusServiceUnavailable},
		{"bad request: 400 kept", httperr.Errorf(http.StatusBadRequest, "node %q is not a member", "x"),
			func(err error) bool { return httperr.Status(err) == http.StatusBadRequest }, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var code int
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec := httptest.NewRecorder()
				internalError(rec, tc.serverErr)
				code = rec.Code
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				w.Write(rec.Body.Bytes())
			}))
			defer srv.Close()
			p := httpPeers{newPeerClient("s", apiTLS{})}
			_, err := p.Apply(context.Background(), strings.TrimPrefix(srv.URL, "http://"), []byte("x"))
			if code != tc.wantCode {
				t.Errorf("internal API answered %d, want %d", code, tc.wantCode)
			}
			if err == nil || !tc.check(err) {
				t.Fatalf("peer saw %v (%T)", err, err)
			}
			if strings.Contains(err.Error(), `{"error"`) {
				t.Errorf("peer error carries the raw JSON body: %v", err)
			}
		})
	}
}

// TestForwardingToARealNode sends a proposal and a read-index request to
// a running node's internal API, as a follower would.
func TestForwardingToARealNode(t *testing.T) {
	addr := strings.TrimPrefix(startTestNode(t), "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := events.Encode(events.Event{Time: time.Now().UTC(), Payload: events.BlobUnlinked{Repo: "r", Digest: digest.FromString("r")}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := httpPeers{newPeerClient("cluster-secret", apiTLS{})}.Apply(ctx, addr, b)
	if err != nil || res.Refusal == nil || res.Refusal.Code != fsm.CodeBlobUnknown {
		t.Fatalf("forwarded apply = %+v, %v; want a BLOB_UNKNOWN refusal", res, err)
	}
	ans, err := httpPeers{newPeerClient("cluster-secret", apiTLS{})}.ReadIndex(ctx, addr, "some-follower")
	if err != nil || ans.Index < res.Index || ans.Term == 0 {
		t.Fatalf("read index = %+v, %v; want at least %d in a term", ans, err, res.Index)
	}
	// A wrong cluster secret is the operator's misconfiguration, not the
	// admin client's token: not retried, and not passed on as a 401.
	if _, err := (httpPeers{newPeerClient("wrong", apiTLS{})}).ReadIndex(ctx, addr, "x"); err == nil || errors.Is(err, errNotSent) ||
		httperr.Status(err) != http.StatusInternalServerError || !strings.Contains(err.Error(), "cluster secret") {
		t.Fatalf("read index with a wrong secret = %v, want a plain 500 naming the cluster secret", err)
	}
}
