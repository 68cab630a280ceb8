package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berth-registry/berth/events"
)

// TestAccessLogActor: the actor the auth gate puts in the context, between
// AccessLog and the API handler, reaches the line; a request the gate
// refuses is still logged, without one.
func TestAccessLogActor(t *testing.T) {
	cases := []struct {
		name       string
		gate       func(next http.Handler) http.Handler
		wantStatus float64
		wantActor  any
	}{
		{"signed in", func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(events.WithOrigin(r.Context(), events.Origin{Actor: "alice"})))
			})
		}, 200, "alice"},
		{"refused by the gate", func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(401) })
		}, 401, nil},
		{"anonymous", func(next http.Handler) http.Handler { return next }, 200, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, nil))
			h := AccessLog(logger, tc.gate(New(Config{}, nil, nil, nil, logger)))
			r := httptest.NewRequest("GET", "/v2/", nil)
			r.Header.Set("User-Agent", "docker/27")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			var l map[string]any
			if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &l); err != nil {
				t.Fatalf("want exactly one JSON line, got %q", buf.String())
			}
			want := map[string]any{"msg": "request", "level": "INFO", "method": "GET", "path": "/v2/", "status": tc.wantStatus,
				"user_agent": "docker/27", "client": r.RemoteAddr, "request_id": w.Header().Get("X-Request-Id"), "actor": tc.wantActor}
			for k, v := range want {
				if l[k] != v {
					t.Errorf("%s = %#v, want %#v (line %v)", k, l[k], v, l)
				}
			}
			if !validRequestID(w.Header().Get("X-Request-Id")) {
				t.Errorf("X-Request-Id %q", w.Header().Get("X-Request-Id"))
			}
		})
	}
}
