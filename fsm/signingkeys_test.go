package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/berth-registry/berth/events"
)

func keyEvent(id string) events.SigningKeyAdded {
	return events.SigningKeyAdded{ID: id, Alg: "EdDSA", Public: []byte("pub-" + id), Sealed: []byte("sealed-" + id), Created: t0}
}

func keyIDs(v *View) []string {
	var ids []string
	for _, k := range v.SigningKeys() {
		ids = append(ids, k.ID)
	}
	return ids
}

func TestSigningKeys(t *testing.T) {
	h := newHarness(t)
	for i := range 6 {
		h.must(keyEvent(fmt.Sprintf("k%d", i)))
	}
	if got, want := keyIDs(h.f.View()), []string{"k2", "k3", "k4", "k5"}; !slices.Equal(got, want) {
		t.Fatalf("kept keys = %v, want %v (the newest %d, oldest first)", got, want, signingKeysKept)
	}
	bad := []struct {
		name string
		ev   events.SigningKeyAdded
	}{
		{"duplicate", keyEvent("k5")},
		{"no id", events.SigningKeyAdded{Alg: "EdDSA", Public: []byte("p"), Sealed: []byte("s")}},
		{"alg none", events.SigningKeyAdded{ID: "x", Alg: "none", Public: []byte("p"), Sealed: []byte("s")}},
		{"not sealed", events.SigningKeyAdded{ID: "x", Alg: "ES256", Public: []byte("p")}},
	}
	for _, tc := range bad {
		before := h.snapshot()
		err := h.apply(tc.ev)
		var ref *Refusal
		if !errors.As(err, &ref) {
			t.Errorf("%s: err = %v, want a refusal", tc.name, err)
		}
		if !bytes.Equal(snapshotRows(h.snapshot()), snapshotRows(before)) {
			t.Errorf("%s: a refused key changed the state", tc.name)
		}
	}
	snap := h.snapshot()
	if _, err := CheckSnapshot(bytes.NewReader(snap)); err != nil {
		t.Fatalf("CheckSnapshot: %v", err)
	}
	h2 := newHarness(t)
	if err := h2.f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if got := h2.f.View().SigningKeys(); !slices.EqualFunc(got, h.f.View().SigningKeys(), func(a, b SigningKey) bool {
		return a.ID == b.ID && a.Index == b.Index && bytes.Equal(a.Sealed, b.Sealed) && a.Created.Equal(b.Created)
	}) {
		t.Errorf("restored keys = %v", got)
	}
}

func TestPullTimes(t *testing.T) {
	h := newHarness(t)
	h.seed()
	t1 := t0.Add(time.Hour)
	h.must(events.PullsRecorded{Pulls: []events.PullTime{
		{Repo: "app", Digest: dg("m1"), Time: t1},
		{Repo: "app", Digest: dg("nothing"), Time: t1}, // not a manifest: ignored
	}})
	// An older report (another node's, late) never moves the time back.
	h.must(events.PullsRecorded{Pulls: []events.PullTime{{Repo: "app", Digest: dg("m1"), Time: t0}}})
	if got, ok := h.f.View().LastPulled("app", dg("m1")); !ok || !got.Equal(t1) {
		t.Fatalf("LastPulled = %s %v, want %s", got, ok, t1)
	}
	if _, ok := h.f.View().LastPulled("app", dg("nothing")); ok {
		t.Error("a pull time was kept for a digest that is no manifest")
	}
	snap := h.snapshot()
	h2 := newHarness(t)
	if err := h2.f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if got, ok := h2.f.View().LastPulled("app", dg("m1")); !ok || !got.Equal(t1) {
		t.Errorf("restored LastPulled = %s %v", got, ok)
	}
	h.must(events.ManifestDeleted{Repo: "app", Digest: dg("sig")}, events.PullsRecorded{Pulls: []events.PullTime{{Repo: "app", Digest: dg("sig"), Time: t1}}})
	h.must(events.RepositoryDeleted{Repo: "app"})
	if _, ok := h.f.View().LastPulled("app", dg("m1")); ok {
		t.Error("pull time outlived its repository")
	}
	if err := h.apply(events.PullsRecorded{Pulls: make([]events.PullTime, events.MaxPullsRecorded+1)}); err == nil {
		t.Error("an oversized batch was accepted")
	}
}

func TestAuthEpoch(t *testing.T) {
	h := newHarness(t)
	h.seed() // applies Registry resources only
	if e := h.f.View().AuthEpoch(); e != 0 {
		t.Fatalf("epoch %d before any auth kind changed", e)
	}
	h.must(events.ResourceApplied{Kind: "Namespace", Name: "team-a", Document: []byte(`{"apiVersion":"berth.dev/v1","kind":"Namespace","metadata":{"name":"team-a"},"spec":{"public":true}}`)})
	e1 := h.f.View().AuthEpoch()
	if e1 != h.idx {
		t.Fatalf("epoch %d, want the Namespace's index %d", e1, h.idx)
	}
	h.must(events.TagSet{Repo: "app", Tag: "x", Digest: dg("m1")})
	if e := h.f.View().AuthEpoch(); e != e1 {
		t.Errorf("a tag moved the epoch to %d", e)
	}
	h.must(events.ResourceDeleted{Kind: "Namespace", Name: "team-a"})
	if e := h.f.View().AuthEpoch(); e != h.idx {
		t.Errorf("a deleted Namespace left the epoch at %d", e)
	}
	snap := h.snapshot()
	h2 := newHarness(t)
	if err := h2.f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if e := h2.f.View().AuthEpoch(); e != h.idx {
		t.Errorf("restored epoch %d, want %d", e, h.idx)
	}
}
