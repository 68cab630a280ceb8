package fsm

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
)

func TestImmutableTags(t *testing.T) {
	h := newHarness(t)
	h.seed() // app: m1 tagged v1 and latest, idx tagged multi
	h.must(events.ManifestPut{Repo: "app", Digest: dg("m2"), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 90,
		Blobs: []digest.Digest{dg("config"), dg("layer")}})
	h.must(events.ResourceApplied{Kind: "ImmutabilityRule", Name: "releases", Document: []byte(
		`{"apiVersion":"berth.dev/v1","kind":"ImmutabilityRule","metadata":{"name":"releases"},"spec":{"repositories":["app"],"tags":["v*"]}}`)})
	refused := []struct {
		name string
		ev   events.Payload
	}{
		{"move by tag set", events.TagSet{Repo: "app", Tag: "v1", Digest: dg("m2")}},
		{"move by manifest put", events.ManifestPut{Repo: "app", Digest: dg("m2"), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 90,
			Blobs: []digest.Digest{dg("config"), dg("layer")}, Tags: []string{"v1"}}},
		{"tag delete", events.TagDeleted{Repo: "app", Tag: "v1"}},
		{"manifest delete", events.ManifestDeleted{Repo: "app", Digest: dg("m1")}},
		{"repository delete", events.RepositoryDeleted{Repo: "app"}},
	}
	for _, tc := range refused {
		before := h.snapshot()
		err := h.apply(tc.ev)
		var ref *Refusal
		if !errors.As(err, &ref) || ref.Code != CodeImmutable || !strings.Contains(ref.Message, "app:v1") || !strings.Contains(ref.Message, "releases") {
			t.Errorf("%s: err = %v, want an IMMUTABLE refusal naming app:v1 and the rule", tc.name, err)
		}
		if !bytes.Equal(snapshotRows(h.snapshot()), snapshotRows(before)) {
			t.Errorf("%s: a refused event changed the state", tc.name)
		}
	}
	// What stays allowed: the same digest again, a new protected tag,
	// and moving or deleting tags the rule does not match.
	h.must(
		events.TagSet{Repo: "app", Tag: "v1", Digest: dg("m1")},
		events.TagSet{Repo: "app", Tag: "v2", Digest: dg("m2")},
		events.TagSet{Repo: "app", Tag: "latest", Digest: dg("m2")},
		events.TagDeleted{Repo: "app", Tag: "latest"},
	)
	// Deleting the rule lifts it.
	h.must(events.ResourceDeleted{Kind: "ImmutabilityRule", Name: "releases"}, events.TagDeleted{Repo: "app", Tag: "v1"})
}
