package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/internal/golden"
)

// Run `go test ./events -update` to create the golden file of a NEW event
// type or schema version. It refuses to rewrite a file git tracks: released
// fixtures never change (rule 3), and the test compares against the bytes
// as first committed (internal/golden).
var update = flag.Bool("update", false, "create missing golden files (never rewrites a released one)")

var (
	t0   = time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	dA   = digest.Digest("sha256:" + string(bytes.Repeat([]byte("a"), 64)))
	dB   = digest.Digest("sha256:" + string(bytes.Repeat([]byte("b"), 64)))
	dC   = digest.Digest("sha512:" + string(bytes.Repeat([]byte("c"), 128)))
	samp = []Payload{
		ManifestPut{
			Repo: "library/alpine", Digest: dA, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1234,
			ArtifactType: "application/vnd.example.sbom", Annotations: map[string]string{"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
			Subject: dB, Blobs: []digest.Digest{dB, dC}, Manifests: []digest.Digest{dC}, Tags: []string{"3.20", "latest"},
		},
		ManifestDeleted{Repo: "library/alpine", Digest: dA},
		TagSet{Repo: "library/alpine", Tag: "latest", Digest: dA},
		TagDeleted{Repo: "library/alpine", Tag: "latest"},
		BlobLinked{Repo: "library/alpine", Digest: dC, Size: 42},
		BlobLinked{Repo: "library/alpine", Digest: dC, Size: 42, Since: 977},
		BlobUnlinked{Repo: "library/alpine", Digest: dC},
		RepositoryDeleted{Repo: "library/alpine"},
		ResourceApplied{Kind: "Registry", Name: "dockerhub", Document: json.RawMessage(`{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"dockerhub"},"spec":{"type":"dockerhub"}}`)},
		ResourceDeleted{Kind: "Registry", Name: "dockerhub"},
		ResourcesApplied{Resources: []ResourceApplied{
			{Kind: "Registry", Name: "dockerhub", Document: json.RawMessage(`{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"dockerhub"},"spec":{"type":"dockerhub"}}`)},
			{Kind: "Registry", Name: "quay", Document: json.RawMessage(`{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"quay"},"spec":{"type":"quay"}}`)},
		}},
		OutboxCursor{Index: 4242},
		ClusterIdentified{ID: "3f2a9c1d7e6b5a40"},
		GCStarted{Run: "1767323045-7", DeleteUntagged: true, GraceSeconds: 86400},
		GCMarked{Run: "1767323045-7", Blobs: []digest.Digest{dB, dC}, Manifests: []ManifestRef{{Repo: "library/alpine", Digest: dA}}},
		GCSweepStarted{Run: "1767323045-7"},
		GCSwept{Run: "1767323045-7", Deleted: 2, Bytes: 4096},
		GCCancelled{Run: "1767323045-7", Reason: "leadership lost"},
		BytesOrphaned{Digest: dA, Size: 425},
		RetentionApplied{Policy: "keep-10", Index: 977, DeletedTags: 3, DeletedManifests: 2, KeptTags: 10, Skipped: 1},
		PullsRecorded{Pulls: []PullTime{{Repo: "library/alpine", Digest: dA, Time: t0}}},
		SigningKeyAdded{ID: "ABCD:EFGH", Alg: "EdDSA", Public: []byte{1, 2, 3}, Sealed: []byte{4, 5, 6}, Created: t0},
		ReadOnlySet{On: true, Reason: "migrating the bucket to eu-west"},
		MirrorCursor{Policy: "follow-eu", Index: 4711, Seq: 815},
		ReplicationReported{Policy: "to-dr", Mode: "push", Kind: ReplicationCopied, Job: "20261130-1", Repo: "team-a/app", Digest: "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b", Tags: []string{"v1"}, Bytes: 1024},
		QuotasEnabled{},
	}
	// olderVersions maps the golden file of each superseded schema version
	// to the current payload it must decode (upgrade) to. Empty until a
	// payload gains version 2.
	olderVersions = map[string]Payload{}
)

func goldenName(p Payload) string {
	return filepath.Join("testdata", fmt.Sprintf("%s.v%d.json", p.EventType(), p.SchemaVersion()))
}

// TestGoldenEncoding checks that the current encoding of every event type
// is byte for byte the released one.
func TestGoldenEncoding(t *testing.T) {
	seen := map[Type]bool{}
	for _, p := range samp {
		seen[p.EventType()] = true
		name := goldenName(p)
		t.Run(string(p.EventType()), func(t *testing.T) {
			got, err := Encode(Event{Time: t0, Payload: p})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(name); *update && errors.Is(err, os.ErrNotExist) {
				golden.Write(t, name, append(got, '\n'))
			}
			want := bytes.TrimRight(golden.Released(t, name), "\n")
			if !bytes.Equal(got, want) {
				t.Errorf("encoding changed; old logs would no longer match.\n got: %s\nwant: %s", got, want)
			}
		})
	}
	for typ := range decoders {
		if !seen[typ] {
			t.Errorf("event type %s has no golden sample", typ)
		}
	}
}

// TestEveryGoldenFileDecodes decodes every file in testdata, current and
// superseded versions alike, into the event it was written from: a new
// binary must replay every log ever written.
func TestEveryGoldenFileDecodes(t *testing.T) {
	want := map[string]Payload{}
	for _, p := range samp {
		want[goldenName(p)] = p
	}
	for name, p := range olderVersions {
		want[name] = p
	}
	files := golden.Files(t, "testdata")
	if len(files) < len(samp) {
		t.Errorf("testdata holds %d files, want at least one per event type (%d)", len(files), len(samp))
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			p, ok := want[name]
			if !ok {
				t.Fatalf("no test knows what %s decodes to: add it to samp or olderVersions", name)
			}
			ev, err := Decode(bytes.TrimRight(golden.Released(t, name), "\n"))
			if err != nil {
				t.Fatal(err)
			}
			if !ev.Time.Equal(t0) || !reflect.DeepEqual(ev.Payload, p) {
				t.Errorf("decode(%s) = %+v, want %+v", name, ev, p)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"unknown type", `{"type":"Teleported","v":1,"time":"2026-01-01T00:00:00Z","data":{}}`, ErrUnknownType},
		{"unknown version", `{"type":"TagSet","v":99,"time":"2026-01-01T00:00:00Z","data":{}}`, ErrUnknownVersion},
		{"not json", `{"type":`, nil},
		{"bad payload", `{"type":"TagSet","v":1,"time":"2026-01-01T00:00:00Z","data":{"repo":5}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatal("want error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEncodeNilPayload(t *testing.T) {
	if _, err := Encode(Event{Time: t0}); err == nil {
		t.Fatal("want error for nil payload")
	}
}

func FuzzDecode(f *testing.F) {
	for _, p := range samp {
		b, _ := Encode(Event{Time: t0, Payload: p})
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to a fixed point.
		b2, err := Encode(ev)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		ev2, err := Decode(b2)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		b3, err := Encode(ev2)
		if err != nil {
			t.Fatalf("re-encode again: %v", err)
		}
		if !bytes.Equal(b2, b3) {
			t.Fatalf("encoding is not stable:\n%s\n%s", b2, b3)
		}
	})
}

func TestMessageID(t *testing.T) {
	tests := []struct {
		cluster string
		index   uint64
		want    string
	}{
		{"prod-eu", 7, "prod-eu:7"},
		{"c1", 42, "c1:42"},
		{"c2", 42, "c2:42"},
		{"c1", 43, "c1:43"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		got := MessageID(tt.cluster, tt.index)
		if got != tt.want {
			t.Errorf("MessageID(%q, %d) = %q, want %q", tt.cluster, tt.index, got, tt.want)
		}
		if seen[got] {
			t.Errorf("MessageID %q is not unique", got)
		}
		seen[got] = true
	}
}
