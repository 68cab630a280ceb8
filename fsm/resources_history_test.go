package fsm

import (
	"bytes"
	"io"
	"testing"

	"github.com/berth-registry/berth/events"
)

func registryDoc(url string) []byte {
	return []byte(`{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"hub"},"spec":{"url":"` + url + `"}}`)
}

// TestResourceHistoryAfterDelete: once every voter runs generation 3
// (QuotasEnabled committed), each generation records who applied it, a
// delete keeps the history and records who deleted it, a snapshot of
// that restores, and applying the name again starts a new history.
// Before the gate Apply does what a generation 2 binary does.
func TestResourceHistoryAfterDelete(t *testing.T) {
	tests := []struct {
		name      string
		gate      bool
		wantHist  int // generations kept after the delete
		wantActor string
	}{
		{"before generation 3", false, 0, ""},
		{"after generation 3", true, 2, "berth:admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.gate {
				h.must(events.QuotasEnabled{})
			}
			for _, p := range []events.Payload{
				events.ResourceApplied{Kind: "Registry", Name: "hub", Document: registryDoc("https://a")},
				events.ResourceApplied{Kind: "Registry", Name: "hub", Document: registryDoc("https://b")},
				events.ResourceDeleted{Kind: "Registry", Name: "hub"},
			} {
				if err := h.applyAs("berth:admin", p); err != nil {
					t.Fatal(err)
				}
			}
			v := h.f.View()
			hist := v.ResourceHistory("Registry", "hub")
			if len(hist) != tt.wantHist {
				t.Fatalf("history after delete holds %d generations, want %d", len(hist), tt.wantHist)
			}
			del, deleted := v.ResourceDeletion("Registry", "hub")
			if deleted != tt.gate || del.Actor != tt.wantActor {
				t.Errorf("deletion = %+v, %v; want recorded %v by %q", del, deleted, tt.gate, tt.wantActor)
			}
			for i, r := range hist {
				if r.Generation != int64(i+1) || r.Actor != tt.wantActor {
					t.Errorf("generation %d: %+v, want generation %d by %q", i+1, r, i+1, tt.wantActor)
				}
			}

			// The state restores from its own snapshot.
			r := newHarness(t)
			if err := r.f.Restore(io.NopCloser(bytes.NewReader(h.snapshot()))); err != nil {
				t.Fatalf("restore: %v", err)
			}
			if got := r.f.View().ResourceHistory("Registry", "hub"); len(got) != tt.wantHist {
				t.Errorf("restored history holds %d generations, want %d", len(got), tt.wantHist)
			}

			// The same name again: a new resource with a new history.
			h.must(events.ResourceApplied{Kind: "Registry", Name: "hub", Document: registryDoc("https://c")})
			v = h.f.View()
			if got := v.ResourceHistory("Registry", "hub"); len(got) != 0 {
				t.Errorf("re-created resource has %d old generations, want none", len(got))
			}
			if _, deleted := v.ResourceDeletion("Registry", "hub"); deleted {
				t.Error("re-created resource still reported deleted")
			}
			if cur, _ := v.Resource("Registry", "hub"); cur.Generation != 1 {
				t.Errorf("re-created resource generation %d, want 1", cur.Generation)
			}
		})
	}
}
