package replication

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/opencontainers/go-digest"
)

func policyFor(o *fakeOrigin) Policy {
	return Policy{
		Name: "follow", Registry: "origin", Key: "1",
		Covers:      func(repo string) bool { return !strings.HasPrefix(repo, "private/") },
		Destination: func(repo string) string { return repo },
		WantsTag:    func(tag string) bool { return !strings.HasSuffix(tag, "-dev") },
		Deletion:    true,
		Origin:      Origin{URL: o.srv.URL, NATSURLs: []string{o.url}, Stream: "BERTH_EVENTS"},
	}
}

func startManager(t *testing.T, f *fakeTarget, p Policy) *Manager {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	mg := NewManager(f.target(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	mg.Reconcile(ctx, []Policy{p}, nil)
	t.Cleanup(func() { cancel(); mg.Stop() })
	return mg
}

func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantListing(f *fakeTarget, want map[string]digest.Digest) func() error {
	return func() error {
		if got := f.listing(); !maps.Equal(got, want) {
			return fmt.Errorf("mirror holds %v, want %v", got, want)
		}
		return nil
	}
}

// A new mirror copies what the origin holds, then follows its stream in
// order: pushes, a moved tag, deletes; events of repositories and tags the
// policy leaves out change nothing but still move the cursor.
func TestMirrorSyncsThenFollows(t *testing.T) {
	o := newFakeOrigin(t)
	before := o.image("before")
	o.push("team/app", "v0", before)
	o.push("private/x", "v0", o.image("private"))
	f := newFakeTarget(t)
	mg := startManager(t, f, policyFor(o))
	waitFor(t, "the initial sync", wantListing(f, map[string]digest.Digest{"team/app:v0": before}))

	v1, v2 := o.image("v1"), o.image("v2")
	o.push("team/app", "v1", v1)
	o.push("team/app", "v2-dev", v2) // tag filtered: the manifest comes, the tag does not
	o.push("private/y", "v1", v1)
	o.publish(tagSet("team/app", "latest", v1))
	o.deleteTag("team/app", "v0")
	last := o.push("other/app", "v2", v2)
	waitFor(t, "the stream", wantListing(f, map[string]digest.Digest{
		"team/app:v1": v1, "team/app:latest": v1, "other/app:v2": v2,
	}))
	waitFor(t, "the cursor", func() error {
		if c, _ := f.Cursor("follow"); c.Index != last {
			return fmt.Errorf("cursor %+v, want index %d", c, last)
		}
		return nil
	})
	if !f.Manifest("team/app", v2) {
		t.Error("the manifest of a filtered tag was not mirrored")
	}
	st := mg.Status()
	if len(st) != 1 || st[0].Cursor != last || st[0].LagEntries != 0 || st[0].LastError != "" || st[0].Bytes == 0 || !st[0].Running {
		t.Errorf("status = %+v", st)
	}
}

// Bytes from the origin are verified before anything links them: a blob
// whose content does not match its digest is refused, the manifest is not
// committed, the cursor does not move and the status says why; once the
// origin serves the right bytes the mirror retries and catches up.
func TestMirrorRefusesTamperedBytes(t *testing.T) {
	o := newFakeOrigin(t)
	f := newFakeTarget(t)
	mg := startManager(t, f, policyFor(o))
	waitFor(t, "the (empty) initial sync", func() error {
		if _, ok := f.Cursor("follow"); !ok {
			return fmt.Errorf("no cursor")
		}
		return nil
	})
	d := o.image("tampered")
	var layer digest.Digest
	o.mu.Lock()
	for b := range o.blobs {
		if strings.HasPrefix(string(o.blobs[b]), "layer bytes of tampered") {
			layer = b
			o.tamper[b] = true
		}
	}
	o.mu.Unlock()
	idx := o.push("team/app", "v1", d)
	waitFor(t, "the refusal in the status", func() error {
		st := mg.Status()
		if len(st) != 1 || !strings.Contains(st[0].LastError, "digest") {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	// The lag shows while the mirror is stuck behind the origin.
	waitFor(t, "the lag in the status", func() error {
		st := mg.Status()[0]
		if st.OriginHead < idx || st.LagEntries == 0 || st.LagSeconds <= 0 || st.Cursor >= idx {
			return fmt.Errorf("status %+v, want head %d past the cursor and a lag", st, idx)
		}
		return nil
	})
	if f.BlobLinked("team/app", layer) || f.Manifest("team/app", d) {
		t.Fatal("tampered content was linked")
	}
	if _, err := f.store.Stat(context.Background(), layer); err == nil {
		t.Fatal("tampered bytes were stored under the digest")
	}
	if c, _ := f.Cursor("follow"); c.Index >= idx {
		t.Fatalf("cursor %+v passed the event that failed", c)
	}
	o.mu.Lock()
	o.tamper = map[digest.Digest]bool{}
	o.mu.Unlock()
	waitFor(t, "the retry", wantListing(f, map[string]digest.Digest{"team/app:v1": d}))
	waitFor(t, "the lag to clear", func() error {
		if st := mg.Status()[0]; st.LagEntries != 0 || st.LagSeconds != 0 || st.Cursor != idx || st.LastError != "" {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
}

// A mirror with a committed cursor resumes after it without listing the
// origin, and does not apply again what the cursor covers.
func TestMirrorResumesFromCursor(t *testing.T) {
	o := newFakeOrigin(t)
	old := o.image("old")
	o.push("team/app", "old", old) // before the cursor: not applied again
	info, err := o.js.Stream(context.Background(), "BERTH_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	seq := info.CachedInfo().State.LastSeq
	f := newFakeTarget(t)
	f.cursors["follow"] = Cursor{Index: o.index, Seq: seq}
	d := o.image("new")
	o.push("team/app", "new", d)
	startManager(t, f, policyFor(o))
	waitFor(t, "the new event", wantListing(f, map[string]digest.Digest{"team/app:new": d}))
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.catalogs != 0 {
		t.Errorf("the origin was listed %d times; a mirror with a cursor resumes the stream", o.catalogs)
	}
}

// A cursor whose sequence fell out of the stream's retention means events
// were lost to this mirror: it syncs from a full listing instead, and tags
// the origin deleted meanwhile go here too (deletion: true).
func TestMirrorResyncsOutOfRetention(t *testing.T) {
	o := newFakeOrigin(t)
	kept := o.image("kept")
	o.push("team/app", "kept", kept)
	gone := o.image("gone")
	o.push("team/app", "gone", gone)
	o.deleteTag("team/app", "gone")
	stream, err := o.js.Stream(context.Background(), "BERTH_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(context.Background(), jetstream.WithPurgeSequence(3)); err != nil {
		t.Fatal(err)
	}
	f := newFakeTarget(t)
	f.cursors["follow"] = Cursor{Index: 5, Seq: 1}
	f.setTag("team/app", "gone", gone) // what the mirror had before the gap
	startManager(t, f, policyFor(o))
	waitFor(t, "the resync", wantListing(f, map[string]digest.Digest{"team/app:kept": kept}))
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.catalogs == 0 {
		t.Error("the origin was not listed")
	}
}

// Events of different repositories are applied side by side, those of one
// repository in the origin's order: a tag moved back and forth among
// pushes to other repositories ends where the origin left it, and the
// cursor ends at the last event.
func TestMirrorKeepsOrderWithinARepository(t *testing.T) {
	o := newFakeOrigin(t)
	f := newFakeTarget(t)
	startManager(t, f, policyFor(o))
	waitFor(t, "the (empty) initial sync", func() error {
		if _, ok := f.Cursor("follow"); !ok {
			return fmt.Errorf("no cursor")
		}
		return nil
	})
	imgs := make([]digest.Digest, 5)
	for i := range imgs {
		imgs[i] = o.image(fmt.Sprintf("order %d", i))
	}
	want := map[string]digest.Digest{}
	var last uint64
	for i := range 40 {
		repo := fmt.Sprintf("team/other-%d", i%4)
		d := imgs[i%len(imgs)]
		o.push(repo, "t", d)
		want[repo+":t"] = d
		moved := imgs[(i*3)%len(imgs)]
		last = o.publish(tagSet("team/app", "latest", moved))
		want["team/app:latest"] = moved
		if i%10 == 9 {
			last = o.deleteTag("team/app", "latest")
			delete(want, "team/app:latest")
		}
	}
	waitFor(t, "the stream", wantListing(f, want))
	waitFor(t, "the cursor", func() error {
		if c, _ := f.Cursor("follow"); c.Index != last {
			return fmt.Errorf("cursor %+v, want index %d", c, last)
		}
		return nil
	})
}
