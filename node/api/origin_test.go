package api

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-registry/berth/events"
)

func TestWithOrigin(t *testing.T) {
	for _, tc := range []struct {
		method, sentID string
		keepID         bool
		stamped        bool
	}{
		{"GET", "", false, false},
		{"HEAD", "abc", false, false},
		{"PUT", "", false, true},
		{"POST", "trace-1.2_3", true, true},
		{"PATCH", "bad id with spaces", false, true},
		{"DELETE", strings.Repeat("x", 65), false, true},
	} {
		t.Run(tc.method+"/"+tc.sentID, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/v2/a/manifests/t", nil)
			r.Header.Set("User-Agent", "crane/test")
			if tc.sentID != "" {
				r.Header.Set("X-Request-Id", tc.sentID)
			}
			w := httptest.NewRecorder()
			o := events.OriginFrom(withOrigin(w, r).Context())
			got := w.Header().Get("X-Request-Id")
			if !tc.stamped {
				if got != "" || o != (events.Origin{}) {
					t.Errorf("a read was stamped: %q %+v", got, o)
				}
				return
			}
			if o.UserAgent != "crane/test" || o.RequestID != got || !validRequestID(got) {
				t.Errorf("origin %+v, header %q", o, got)
			}
			if (got == tc.sentID) != tc.keepID {
				t.Errorf("request ID %q for sent %q", got, tc.sentID)
			}
		})
	}
}
