package admin

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-registry/berth/events"
)

// TestHistoryAfterDelete: once the cluster runs generation 3, apply and
// delete record the admin as the actor, and the history of a deleted
// resource is still served, saying who deleted it. Before, a deleted
// resource has no history, as with generation 2 binaries.
func TestHistoryAfterDelete(t *testing.T) {
	tests := []struct {
		name     string
		gate     bool
		wantCode int
	}{
		{"generation 2 cluster", false, http.StatusNotFound},
		{"generation 3 cluster", true, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, n := newServer(t)
			if tt.gate {
				if _, err := n.Propose(context.Background(), events.QuotasEnabled{}); err != nil {
					t.Fatal(err)
				}
			}
			for _, body := range []string{twoRegistries, strings.Replace(twoRegistries, "Docker Hub", "v2", 1)} {
				if code, m := call(t, srv, "POST", "/admin/v1/apply", body); code != http.StatusOK {
					t.Fatalf("apply: %d %v", code, m)
				}
			}
			if code, m := call(t, srv, "DELETE", "/admin/v1/resources/registry/hub", ""); code != http.StatusOK {
				t.Fatalf("delete: %d %v", code, m)
			}
			code, m := call(t, srv, "GET", "/admin/v1/resources/registry/hub/history", "")
			if code != tt.wantCode {
				t.Fatalf("history after delete: %d %v, want %d", code, m, tt.wantCode)
			}
			if !tt.gate {
				if !strings.Contains(m["error"].(string), `Registry "hub" not found`) {
					t.Errorf("error = %v", m["error"])
				}
				return
			}
			items, _ := m["items"].([]any)
			gens, _ := m["generations"].([]any)
			if len(items) != 2 || len(gens) != 2 {
				t.Fatalf("history holds %d documents and %d generations, want 2 and 2: %v", len(items), len(gens), m)
			}
			for i, g := range gens {
				e := g.(map[string]any)
				if e["generation"] != float64(i+1) || e["actor"] != ResourceActor || e["applied"] != "2026-01-02T03:04:05Z" {
					t.Errorf("generation %d: %v", i+1, e)
				}
			}
			if desc := items[1].(map[string]any)["spec"].(map[string]any)["description"]; desc != "v2" {
				t.Errorf("last document's description %v, want v2", desc)
			}
			del, _ := m["deleted"].(map[string]any)
			if del["actor"] != ResourceActor || del["time"] != "2026-01-02T03:04:05Z" {
				t.Errorf("deleted = %v", m["deleted"])
			}
		})
	}
}
