package retention

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/fsm/resource"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func dg(s string) digest.Digest { return digest.FromString(s) }

// registry builds state at event times the test chooses.
type registry struct {
	t   *testing.T
	f   *fsm.FSM
	idx uint64
}

func (r *registry) at(when time.Time, ps ...events.Payload) {
	r.t.Helper()
	for _, p := range ps {
		b, err := events.Encode(events.Event{Time: when, Payload: p})
		if err != nil {
			r.t.Fatal(err)
		}
		r.idx++
		if res := r.f.Apply(&raft.Log{Index: r.idx, Type: raft.LogCommand, Data: b}); res != nil {
			r.t.Fatalf("%T: %v", p, res)
		}
	}
}

const mt = "application/vnd.oci.image.manifest.v1+json"

// image pushes a manifest with its config blob, tagged, at day d.
func (r *registry) image(repo, name string, day int, tags ...string) {
	when := t0.Add(time.Duration(day) * 24 * time.Hour)
	r.at(when, events.BlobLinked{Repo: repo, Digest: dg("cfg-" + name), Size: 10},
		events.ManifestPut{Repo: repo, Digest: dg(name), MediaType: mt, Size: 100, Blobs: []digest.Digest{dg("cfg-" + name)}, Tags: tags})
}

func policy(t *testing.T, spec string) resource.RetentionPolicy {
	docs, err := resource.ParseYAML(strings.NewReader("apiVersion: berth.dev/v1\nkind: RetentionPolicy\nmetadata: {name: p}\nspec:\n" + spec))
	if err != nil {
		t.Fatal(err)
	}
	norm, err := resource.Normalize(docs[0])
	if err != nil {
		t.Fatal(err)
	}
	p, err := resource.DecodeRetentionPolicy(norm)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func deletedTags(p Plan) []string {
	var out []string
	for _, d := range p.Tags {
		out = append(out, d.Repo+":"+d.Tag)
	}
	return out
}

func deletedManifests(p Plan) []digest.Digest {
	var out []digest.Digest
	for _, m := range p.Manifests {
		out = append(out, m.Digest)
	}
	return out
}

func newRegistry(t *testing.T) *registry {
	r := &registry{t: t, f: fsm.New(slog.New(slog.DiscardHandler))}
	// team-a/app: v1 (day 1) .. v4 (day 4), latest on v4; v2 pulled on day 29.
	r.image("team-a/app", "a1", 1, "v1")
	r.image("team-a/app", "a2", 2, "v2")
	r.image("team-a/app", "a3", 3, "v3", "rc")
	r.image("team-a/app", "a4", 4, "v4", "latest")
	r.at(t0.Add(29*24*time.Hour), events.PullsRecorded{Pulls: []events.PullTime{{Repo: "team-a/app", Digest: dg("a2"), Time: t0.Add(29 * 24 * time.Hour)}}})
	r.image("team-b/app", "b1", 1, "old")
	return r
}

func TestEvaluateKeepRules(t *testing.T) {
	now := t0.Add(30 * 24 * time.Hour)
	immut := []resource.ImmutabilityRule{{Name: "rel", Spec: resource.ImmutabilitySpec{Repositories: []string{"**"}, Tags: []string{"v1"}}}}
	cases := []struct {
		name, spec string
		immut      []resource.ImmutabilityRule
		want       []string
	}{
		// Tags count one by one: latest and v4 (one image, pushed last) are
		// the two most recent; ties go by name.
		{"keep last 2", "  repositories: [team-a/**]\n  keepLast: 2\n", nil, []string{"team-a/app:rc", "team-a/app:v1", "team-a/app:v2", "team-a/app:v3"}},
		// Day 4 is 26 days before now, day 3 exactly 27: not within.
		{"pushed within", "  repositories: [team-a/**]\n  keepPushedWithin: 27d\n", nil, []string{"team-a/app:rc", "team-a/app:v1", "team-a/app:v2", "team-a/app:v3"}},
		{"pulled within", "  repositories: [team-a/**]\n  keepPulledWithin: 2d\n", nil, []string{"team-a/app:latest", "team-a/app:rc", "team-a/app:v1", "team-a/app:v3", "team-a/app:v4"}},
		{"keep tags", "  repositories: [team-a/**]\n  keepTags: [\"v*\"]\n", nil, []string{"team-a/app:latest", "team-a/app:rc"}},
		{"rules OR'd", "  repositories: [team-a/**]\n  keepLast: 1\n  keepPulledWithin: 2d\n  keepTags: [rc]\n", nil, []string{"team-a/app:v1", "team-a/app:v3", "team-a/app:v4"}},
		{"immutable survives", "  repositories: [team-a/**]\n  keepLast: 1\n", immut, []string{"team-a/app:rc", "team-a/app:v2", "team-a/app:v3", "team-a/app:v4"}},
		{"only covered repositories", "  repositories: [\"**\", \"!team-a/**\"]\n  keepLast: 5\n", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRegistry(t)
			got := deletedTags(Evaluate(r.f.View(), policy(t, tc.spec), Options{Now: now, Immutable: tc.immut}))
			if !slices.Equal(got, tc.want) {
				t.Errorf("deleted %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEvaluateUntagged(t *testing.T) {
	r := newRegistry(t)
	// An index over a4 and a child only it names, a signature of a4, an
	// orphan pushed long ago, and a fresh untagged child whose index is
	// still on its way.
	day := t0.Add(5 * 24 * time.Hour)
	r.at(day,
		events.BlobLinked{Repo: "team-a/app", Digest: dg("cfg-c"), Size: 1},
		events.ManifestPut{Repo: "team-a/app", Digest: dg("child"), MediaType: mt, Size: 5, Blobs: []digest.Digest{dg("cfg-c")}},
		events.ManifestPut{Repo: "team-a/app", Digest: dg("index"), MediaType: "application/vnd.oci.image.index.v1+json", Size: 5, Manifests: []digest.Digest{dg("a4"), dg("child")}, Tags: []string{"multi"}},
		events.ManifestPut{Repo: "team-a/app", Digest: dg("sig"), MediaType: mt, Size: 5, Subject: dg("a4"), Blobs: []digest.Digest{dg("cfg-c")}},
		events.ManifestPut{Repo: "team-a/app", Digest: dg("orphan"), MediaType: mt, Size: 5, Blobs: []digest.Digest{dg("cfg-c")}},
		events.ManifestPut{Repo: "team-a/app", Digest: dg("sig-of-a1"), MediaType: mt, Size: 5, Subject: dg("a1"), Blobs: []digest.Digest{dg("cfg-c")}},
	)
	now := t0.Add(30 * 24 * time.Hour)
	r.at(now.Add(-time.Minute), events.ManifestPut{Repo: "team-a/app", Digest: dg("fresh"), MediaType: mt, Size: 5, Blobs: []digest.Digest{dg("cfg-c")}})
	p := Evaluate(r.f.View(), policy(t, "  repositories: [team-a/**]\n  keepTags: [latest, multi]\n  deleteUntagged: true\n"),
		Options{Now: now, UntaggedGrace: time.Hour})
	if got, want := deletedTags(p), []string{"team-a/app:rc", "team-a/app:v1", "team-a/app:v2", "team-a/app:v3", "team-a/app:v4"}; !slices.Equal(got, want) {
		t.Errorf("tags %v, want %v", got, want)
	}
	want := []digest.Digest{dg("a1"), dg("a2"), dg("a3"), dg("orphan"), dg("sig-of-a1")}
	slices.Sort(want)
	if got := deletedManifests(p); !slices.Equal(got, want) {
		t.Errorf("manifests %v, want %v (a4's index child and signature stay, and the fresh one)", got, want)
	}
}
