package node

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Bad webhook and event-stream requests get a 4xx with a JSON message
// that says what to send, never a 500; without the token, 401.
func TestWebhookAdminRefusesBadRequests(t *testing.T) {
	base := startTestNode(t)
	for _, tc := range []struct {
		name, method, path string
		token              string
		want               int
		says               string
	}{
		{"no token", "GET", "/admin/v1/events", "", 401, "admin token"},
		{"unknown webhook deliveries", "GET", "/admin/v1/webhooks/nope/deliveries", "admin-token", 404, "does not exist"},
		{"unknown webhook dead letters", "GET", "/admin/v1/webhooks/nope/dead-letters", "admin-token", 404, "does not exist"},
		{"unknown webhook test", "POST", "/admin/v1/webhooks/nope/test", "admin-token", 404, "does not exist"},
		{"unknown action", "POST", "/admin/v1/webhooks/nope/explode", "admin-token", 404, "redeliver or test"},
		{"limit not a number", "GET", "/admin/v1/webhooks/nope/deliveries?limit=x", "admin-token", 400, "limit"},
		{"limit too large", "GET", "/admin/v1/webhooks/nope/dead-letters?limit=10001", "admin-token", 400, "1 to 10000"},
		{"bad glob", "GET", "/admin/v1/events?repo=%5B", "admin-token", 400, "glob"},
		{"bad type", "GET", "/admin/v1/events?type=Manifest%20Pushed", "admin-token", 400, "event type"},
		{"bad since", "GET", "/admin/v1/events?since=-1", "admin-token", 400, "log index"},
		{"bad follow", "GET", "/admin/v1/events?follow=yes", "admin-token", 400, "true or false"},
		{"events limit zero", "GET", "/admin/v1/events?limit=0", "admin-token", 400, "limit"},
		{"wrong method", "DELETE", "/admin/v1/events", "admin-token", 404, "no admin endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var e struct {
				Error string `json:"error"`
			}
			if resp.StatusCode != tc.want || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Error, tc.says) {
				t.Errorf("%s %s: %d %s; want %d mentioning %q", tc.method, tc.path, resp.StatusCode, b, tc.want, tc.says)
			}
		})
	}
}

// Redeliver needs exactly one of from=INDEX and deadLetters=true.
func TestWebhookRedeliverQuery(t *testing.T) {
	for _, tc := range []struct{ query, says string }{
		{"", "needs from=INDEX"},
		{"from=1&deadLetters=true", "not both"},
		{"from=x", "not a log index"},
		{"deadLetters=maybe", "true or false"},
	} {
		q, _ := url.ParseQuery(tc.query)
		_, err := (&Node{}).webhookAction(t.Context(), "ci", "redeliver", q, true)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("redeliver?%s: %v, want an error mentioning %q", tc.query, err, tc.says)
		}
	}
}
