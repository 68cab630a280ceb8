package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

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
