package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// Run `go test ./events -update` only when adding a NEW schema version: the
// files of versions already released must never change (rule 3).
var update = flag.Bool("update", false, "rewrite golden files")

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
		BlobUnlinked{Repo: "library/alpine", Digest: dC},
		RepositoryDeleted{Repo: "library/alpine"},
		ResourceApplied{Kind: "Registry", Name: "dockerhub", Document: json.RawMessage(`{"apiVersion":"berth.dev/v1","kind":"Registry","metadata":{"name":"dockerhub"},"spec":{"type":"dockerhub"}}`)},
		ResourceDeleted{Kind: "Registry", Name: "dockerhub"},
	}
)

func TestGoldenEncoding(t *testing.T) {
	seen := map[Type]bool{}
	for _, p := range samp {
		seen[p.EventType()] = true
		name := filepath.Join("testdata", string(p.EventType())+".v1.json")
		t.Run(string(p.EventType()), func(t *testing.T) {
			got, err := Encode(Event{Time: t0, Payload: p})
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(name, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(name)
			if err != nil {
				t.Fatalf("golden file missing (run with -update only for a new version): %v", err)
			}
			want = bytes.TrimRight(want, "\n")
			if !bytes.Equal(got, want) {
				t.Errorf("encoding changed; old logs would no longer match.\n got: %s\nwant: %s", got, want)
			}
			// The released bytes must still decode into the same event.
			ev, err := Decode(want)
			if err != nil {
				t.Fatal(err)
			}
			if !ev.Time.Equal(t0) || !reflect.DeepEqual(ev.Payload, p) {
				t.Errorf("decode(golden) = %+v, want %+v", ev, p)
			}
		})
	}
	for typ := range decoders {
		if !seen[typ] {
			t.Errorf("event type %s has no golden sample", typ)
		}
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
		{"prod-eu", 7, "prod-eu-7"},
		{"c1", 42, "c1-42"},
		{"c2", 42, "c2-42"},
		{"c1", 43, "c1-43"},
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
