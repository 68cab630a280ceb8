package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// kinds lists the reports committed so far, as "kind repo" lines.
func (f *fakeTarget) kinds() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.reports {
		line := r.Kind
		switch {
		case r.Job != "":
			line += " " + r.Job
		case r.Repo != "":
			line += " " + r.Repo + "@" + r.Digest[:15]
		}
		out = append(out, line)
	}
	return out
}

func (f *fakeTarget) report(kind string) []events.ReplicationReported {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []events.ReplicationReported
	for _, r := range f.reports {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

// The mirror's leader commits its progress: started for the term and for
// the initial sync, one artifact.copied per copied manifest (with its
// repository, digest, tags and bytes; a tag moved onto a manifest already
// here copies nothing and reports nothing), one failed however often the
// same error is retried, and caught-up once the backlog is drained.
func TestMirrorReportsProgress(t *testing.T) {
	o := newFakeOrigin(t)
	before := o.image("before")
	o.push("team/app", "v0", before)
	f := newFakeTarget(t)
	retryMin, retryMax = 20*time.Millisecond, 50*time.Millisecond
	t.Cleanup(func() { retryMin, retryMax = 500*time.Millisecond, 30*time.Second })
	startManager(t, f, policyFor(o))
	waitFor(t, "the initial sync to be caught up", func() error {
		if len(f.report(events.ReplicationCaughtUp)) == 0 {
			return fmt.Errorf("reports: %v", f.kinds())
		}
		return nil
	})
	short := before.String()[:15]
	if got, want := strings.Join(f.kinds(), ", "), "started, started initial-sync, artifact.copied team/app@"+short+", caught-up"; got != want {
		t.Errorf("reports after the initial sync:\n got %s\nwant %s", got, want)
	}
	c := f.report(events.ReplicationCopied)[0]
	if c.Policy != "follow" || c.Mode != "mirror" || c.Digest != before.String() || strings.Join(c.Tags, ",") != "v0" || c.Bytes == 0 || c.Artifacts != 1 {
		t.Errorf("artifact.copied = %+v", c)
	}

	// A tampered layer fails every retry the same way: one failed.
	d := o.image("tampered")
	o.mu.Lock()
	for b, content := range o.blobs {
		if strings.HasPrefix(string(content), "layer bytes of tampered") {
			o.tamper[b] = true
		}
	}
	o.mu.Unlock()
	o.push("team/app", "v1", d)
	time.Sleep(time.Second) // many retries at 20-50 ms
	if n := len(f.report(events.ReplicationFailed)); n != 1 {
		t.Errorf("%d failed reports for one error retried many times, want 1: %v", n, f.kinds())
	}
	if fr := f.report(events.ReplicationFailed); len(fr) > 0 && !strings.Contains(fr[0].Error, "digest") {
		t.Errorf("failed report names no digest mismatch: %q", fr[0].Error)
	}
	o.mu.Lock()
	o.tamper = map[digest.Digest]bool{}
	o.mu.Unlock()
	o.publish(tagSet("team/app", "latest", before)) // nothing to copy
	waitFor(t, "the second caught-up", func() error {
		if n := len(f.report(events.ReplicationCaughtUp)); n != 2 {
			return fmt.Errorf("reports: %v", f.kinds())
		}
		return nil
	})
	copied := f.report(events.ReplicationCopied)
	if len(copied) != 2 || copied[1].Digest != d.String() || strings.Join(copied[1].Tags, ",") != "v1" {
		t.Errorf("artifact.copied after the recovery: %+v", copied)
	}
	if tail := f.kinds()[4:]; strings.Join(tail, ", ") != "failed, artifact.copied team/app@"+d.String()[:15]+", caught-up" {
		t.Errorf("reports after the failure: %v", tail)
	}
}

// An event applied while the origin's NATS is out of reach (delivered
// before the connection dropped) neither clears the failure nor reports
// the mirror caught up: the origin's head is out of sight. The first
// event applied once back online does both.
func TestReporterOfflineProgress(t *testing.T) {
	r := newReporter("follow", newFakeTarget(t).target(), slog.New(slog.DiscardHandler))
	queued := func() []string {
		var out []string
		for {
			select {
			case ev := <-r.queue:
				out = append(out, ev.Kind)
			default:
				return out
			}
		}
	}
	steps := []struct {
		name    string
		do      func()
		lastErr string
		reports string
	}{
		{"behind", func() { r.progress(context.Background(), 5, 0, 0, true) }, "", ""},
		{"connection lost", func() { r.failed(context.Background(), errors.New("lost the connection")) }, "lost the connection", events.ReplicationFailed},
		{"buffered events drain offline", func() {
			r.progress(context.Background(), 1, 1, 10, false)
			r.progress(context.Background(), 0, 2, 20, false)
		}, "lost the connection", ""},
		{"the same error again", func() { r.failed(context.Background(), errors.New("lost the connection")) }, "lost the connection", ""},
		{"online again", func() { r.progress(context.Background(), 0, 3, 30, true) }, "", events.ReplicationCaughtUp},
	}
	for _, s := range steps {
		s.do()
		r.mu.Lock()
		lastErr := r.lastErr
		r.mu.Unlock()
		if got := strings.Join(queued(), ","); lastErr != s.lastErr || got != s.reports {
			t.Errorf("%s: last error %q, reports %q; want %q, %q", s.name, lastErr, got, s.lastErr, s.reports)
		}
	}
}
