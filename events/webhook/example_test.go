package webhook_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/berth-registry/berth/events/webhook"
)

// A receiver verifies each delivery over the raw body before it trusts
// it, rejects signatures older than five minutes (replays), and
// deduplicates by the Berth-Event-Id header (delivery is at least once).
func ExampleVerify() {
	secret := []byte("the shared secret")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Println("verified", r.Header.Get(webhook.EventIDHeader))
	})

	body := `{"specversion":"1.0","id":"c1:42"}`
	req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
	req.Header.Set(webhook.EventIDHeader, "c1:42")
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(secret, time.Now().Unix(), []byte(body)))
	handler.ServeHTTP(httptest.NewRecorder(), req)
	// Output: verified c1:42
}
