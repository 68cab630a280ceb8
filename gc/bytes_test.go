package gc

import (
	"context"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

// TestRunReportsTheBytesTheDryRunListed: a run's reclaimed bytes (its
// result, GCSwept and gc status) count every deleted digest, manifests
// and orphans included, as the dry run does. They once counted only
// digests with a blob link, so an untagged manifest's and a deleted
// manifest's bytes were reported as 0.
func TestRunReportsTheBytesTheDryRunListed(t *testing.T) {
	s := registry(t)
	// A deleted manifest (an orphan, no link) and its own config.
	s.at(t0, link("app", "gone-cfg", 7),
		events.ManifestPut{Repo: "app", Digest: dg("gone"), MediaType: img, Size: 300, Blobs: []digest.Digest{dg("gone-cfg")}},
		events.ManifestDeleted{Repo: "app", Digest: dg("gone")})
	st := &store{have: map[digest.Digest]bool{}}
	for _, d := range []string{"cfg", "l1", "l2", "ca", "cb", "stray", "young", "img", "sig", "arm", "amd", "idx", "untagged", "gone", "gone-cfg"} {
		st.have[dg(d)] = true
	}
	j := newJob(s, st, func() error { return nil })
	opt := Options{DeleteUntagged: true, Grace: time.Hour}
	dry := j.DryRun(opt)
	res, err := j.Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	// l2 (20), stray (50), young (60), untagged (105), gone (300), gone-cfg (7).
	if dry.Bytes != 542 || res.Bytes != dry.Bytes {
		t.Errorf("dry run lists %d bytes, the run reclaimed %d; want 542 both", dry.Bytes, res.Bytes)
	}
	if h := s.f.View().GCHistory(); len(h) != 1 || h[0].Bytes != dry.Bytes {
		t.Errorf("gc status: %+v, want %d bytes", h, dry.Bytes)
	}
}
