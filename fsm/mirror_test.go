package fsm

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/berth-registry/berth/events"
)

func TestMirrorCursor(t *testing.T) {
	h := newHarness(t)
	h.seed()
	if _, ok := h.f.View().MirrorCursor("follow-eu"); ok {
		t.Fatal("a cursor before any was committed")
	}
	h.must(events.MirrorCursor{Policy: "follow-eu", Index: 100, Synced: true})
	h.must(events.MirrorCursor{Policy: "follow-eu", Index: 140, Seq: 12})
	h.must(events.MirrorCursor{Policy: "other", Index: 7, Seq: 3})
	c, ok := h.f.View().MirrorCursor("follow-eu")
	if !ok || c.Index != 140 || c.Seq != 12 || c.Synced || c.At != h.idx-1 {
		t.Errorf("cursor = %+v, %v; want index 140, seq 12, not synced, at %d", c, ok, h.idx-1)
	}

	var r *Refusal
	for _, bad := range []string{"", strings.Repeat("x", 64)} {
		if err := h.apply(events.MirrorCursor{Policy: bad, Index: 1}); !errors.As(err, &r) || r.Code != CodeInvalid {
			t.Errorf("policy %q: %v, want an INVALID refusal", bad, err)
		}
	}

	// The cursors survive snapshot and restore byte for byte.
	snap := h.snapshot()
	if !bytes.Contains(snap, []byte(`"t":"mirror"`)) {
		t.Fatalf("the snapshot holds no mirror row:\n%s", snap)
	}
	h2 := newHarness(t)
	if err := h2.f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if got, _ := h2.f.View().MirrorCursor("follow-eu"); got != c {
		t.Errorf("restored cursor %+v, want %+v", got, c)
	}
	if !bytes.Equal(h2.snapshot(), snap) {
		t.Error("a restored state snapshots differently")
	}

	// A row committed past the snapshot's index is refused.
	bad := reseal(bytes.Replace(snap, []byte(`"at":`+itoa(c.At)), []byte(`"at":999999`), 1))
	if err := newHarness(t).f.Restore(io.NopCloser(bytes.NewReader(bad))); err == nil || !strings.Contains(err.Error(), "past the snapshot's index") {
		t.Errorf("a snapshot with a cursor from the future: %v, want refused for it", err)
	}
}

func itoa(n uint64) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}
