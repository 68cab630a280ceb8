package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/node"
)

// startNode runs a real single node (Raft, FSM, filesystem blobs) on a
// free loopback port and returns its base URL.
func startNode(t *testing.T) string { return startNodeWith(t, nil) }

// startNodeWith is startNode with the configuration changed by change.
func startNodeWith(t *testing.T, change func(*node.Config)) string {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Storage.DataDir = t.TempDir()
	cfg.Limits.MaxManifestSize = 64 << 10
	if change != nil {
		change(&cfg)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.New(ctx, cfg, "test", logger, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return "http://" + n.Addr()
}

type resp struct {
	code int
	hdr  http.Header
	body []byte
}

// errCode is the first OCI error code of an error answer.
func (r resp) errCode() string {
	var e struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	json.Unmarshal(r.body, &e)
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

type client struct {
	t    *testing.T
	base string
}

func (c client) do(method, path string, hdr map[string]string, body []byte) resp {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{code: r.StatusCode, hdr: r.Header, body: b}
}

// expect checks status and, for errors, the OCI code.
func (c client) expect(r resp, code int, errCode string) {
	c.t.Helper()
	if r.code != code {
		c.t.Fatalf("status %d, want %d: %s", r.code, code, r.body)
	}
	if errCode != "" && r.errCode() != errCode {
		c.t.Fatalf("error code %q, want %q: %s", r.errCode(), errCode, r.body)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// pushBlob uploads with a single POST ?digest=.
func (c client) pushBlob(repo string, b []byte) digest.Digest {
	c.t.Helper()
	d := digest.FromBytes(b)
	r := c.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), nil, b)
	c.expect(r, 201, "")
	return d
}

func descriptor(mt string, b []byte) map[string]any {
	return map[string]any{"mediaType": mt, "digest": digest.FromBytes(b).String(), "size": len(b)}
}

// image pushes a config and a layer and returns an OCI manifest over them.
func (c client) image(repo string, extra map[string]any) []byte {
	c.t.Helper()
	cfg, layer := randomBytes(50), randomBytes(300)
	c.pushBlob(repo, cfg)
	c.pushBlob(repo, layer)
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        descriptor("application/vnd.oci.image.config.v1+json", cfg),
		"layers":        []any{descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer)},
	}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

const ociManifest = "application/vnd.oci.image.manifest.v1+json"

func ct(mt string) map[string]string { return map[string]string{"Content-Type": mt} }

func TestPingAndRouting(t *testing.T) {
	c := client{t, startNode(t)}
	r := c.do("GET", "/v2/", nil, nil)
	c.expect(r, 200, "")
	if r.hdr.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Error("missing API version header")
	}
	c.expect(c.do("GET", "/v2/Bad/Name/tags/list", nil, nil), 400, "NAME_INVALID")
	c.expect(c.do("GET", "/v2/a/"+strings.Repeat("b", 300)+"/tags/list", nil, nil), 400, "NAME_INVALID")
	c.expect(c.do("GET", "/v2/app/whatever", nil, nil), 404, "UNSUPPORTED")
	r = c.do("POST", "/v2/app/tags/list", nil, nil)
	c.expect(r, 405, "UNSUPPORTED")
	if r.hdr.Get("Allow") != "GET" {
		t.Errorf("Allow = %q", r.hdr.Get("Allow"))
	}
}

func TestBlobs(t *testing.T) {
	c := client{t, startNode(t)}
	data := randomBytes(10_000)
	d := c.pushBlob("lib/app", data)

	r := c.do("HEAD", "/v2/lib/app/blobs/"+d.String(), nil, nil)
	c.expect(r, 200, "")
	if r.hdr.Get("Docker-Content-Digest") != d.String() || r.hdr.Get("Content-Length") != "10000" || r.hdr.Get("Etag") != `"`+d.String()+`"` {
		t.Errorf("HEAD headers: %v", r.hdr)
	}
	r = c.do("GET", "/v2/lib/app/blobs/"+d.String(), map[string]string{"Range": "bytes=100-199"}, nil)
	c.expect(r, 206, "")
	if !bytes.Equal(r.body, data[100:200]) || r.hdr.Get("Content-Range") != "bytes 100-199/10000" {
		t.Errorf("range answer: %q %v", r.hdr.Get("Content-Range"), len(r.body))
	}
	c.expect(c.do("GET", "/v2/lib/app/blobs/"+d.String(), map[string]string{"If-None-Match": `"` + d.String() + `"`}, nil), 304, "")
	// Linked in lib/app only (rule 5).
	c.expect(c.do("GET", "/v2/other/blobs/"+d.String(), nil, nil), 404, "BLOB_UNKNOWN")
	c.expect(c.do("GET", "/v2/lib/app/blobs/sha256:nothex", nil, nil), 400, "DIGEST_INVALID")
	c.expect(c.do("GET", "/v2/lib/app/blobs/"+digest.FromString("x").String(), nil, nil), 404, "BLOB_UNKNOWN")

	c.expect(c.do("DELETE", "/v2/lib/app/blobs/"+d.String(), nil, nil), 202, "")
	c.expect(c.do("GET", "/v2/lib/app/blobs/"+d.String(), nil, nil), 404, "BLOB_UNKNOWN")
	c.expect(c.do("DELETE", "/v2/lib/app/blobs/"+d.String(), nil, nil), 404, "BLOB_UNKNOWN")

	// A monolithic POST whose bytes do not match its digest stores nothing.
	c.expect(c.do("POST", "/v2/lib/app/blobs/uploads/?digest="+digest.FromString("other").String(), nil, data), 400, "DIGEST_INVALID")
	c.expect(c.do("POST", "/v2/lib/app/blobs/uploads/?digest=sha256:zz", nil, data), 400, "DIGEST_INVALID")
}

func TestUploads(t *testing.T) {
	c := client{t, startNode(t)}
	data := randomBytes(3000)
	d := digest.FromBytes(data)

	t.Run("PostThenPut", func(t *testing.T) {
		c := client{t, c.base}
		r := c.do("POST", "/v2/up/blobs/uploads/", nil, nil)
		c.expect(r, 202, "")
		loc := r.hdr.Get("Location")
		if !strings.HasPrefix(loc, "/v2/up/blobs/uploads/") || r.hdr.Get("Docker-Upload-UUID") == "" || r.hdr.Get("Range") != "0-0" {
			t.Fatalf("POST headers: %v", r.hdr)
		}
		r = c.do("PUT", loc+"?digest="+d.String(), map[string]string{"Content-Type": "application/octet-stream"}, data)
		c.expect(r, 201, "")
		if r.hdr.Get("Location") != "/v2/up/blobs/"+d.String() || r.hdr.Get("Docker-Content-Digest") != d.String() {
			t.Errorf("PUT headers: %v", r.hdr)
		}
		c.expect(c.do("GET", "/v2/up/blobs/"+d.String(), nil, nil), 200, "")
	})
	t.Run("Chunked", func(t *testing.T) {
		c := client{t, c.base}
		loc := c.do("POST", "/v2/up/blobs/uploads/", nil, nil).hdr.Get("Location")
		r := c.do("PATCH", loc, map[string]string{"Content-Range": "0-999"}, data[:1000])
		c.expect(r, 202, "")
		if r.hdr.Get("Range") != "0-999" {
			t.Errorf("Range after first chunk: %q", r.hdr.Get("Range"))
		}
		// Out of order: 416 with the current range.
		r = c.do("PATCH", loc, map[string]string{"Content-Range": "2000-2999"}, data[2000:])
		c.expect(r, 416, "BLOB_UPLOAD_INVALID")
		if r.hdr.Get("Range") != "0-999" {
			t.Errorf("Range on 416: %q", r.hdr.Get("Range"))
		}
		// Content-Length must match Content-Range.
		c.expect(c.do("PATCH", loc, map[string]string{"Content-Range": "1000-1999"}, data[1000:1500]), 400, "SIZE_INVALID")
		r = c.do("GET", loc, nil, nil)
		c.expect(r, 204, "")
		if r.hdr.Get("Range") != "0-999" {
			t.Errorf("status Range: %q", r.hdr.Get("Range"))
		}
		c.expect(c.do("PATCH", loc, map[string]string{"Content-Range": "1000-1999"}, data[1000:2000]), 202, "")
		// The final chunk rides on the closing PUT.
		r = c.do("PUT", loc+"?digest="+d.String(), map[string]string{"Content-Range": "2000-2999"}, data[2000:])
		c.expect(r, 201, "")
		got := c.do("GET", "/v2/up/blobs/"+d.String(), nil, nil)
		if !bytes.Equal(got.body, data) {
			t.Error("chunked blob differs")
		}
	})
	t.Run("StreamedSha512", func(t *testing.T) {
		c := client{t, c.base}
		r := c.do("POST", "/v2/up/blobs/uploads/?digest-algorithm=sha512", nil, nil)
		c.expect(r, 202, "")
		loc := r.hdr.Get("Location")
		c.expect(c.do("PATCH", loc, nil, data[:1234]), 202, "")
		r = c.do("PATCH", loc, nil, data[1234:])
		c.expect(r, 202, "")
		if r.hdr.Get("Range") != "0-2999" {
			t.Errorf("Range after streaming: %q", r.hdr.Get("Range"))
		}
		d512 := digest.SHA512.FromBytes(data)
		c.expect(c.do("PUT", loc+"?digest="+d512.String(), nil, nil), 201, "")
		c.expect(c.do("HEAD", "/v2/up/blobs/"+d512.String(), nil, nil), 200, "")
		c.expect(c.do("POST", "/v2/up/blobs/uploads/?digest-algorithm=md5", nil, nil), 400, "DIGEST_INVALID")
	})
	t.Run("ErrorsAndCancel", func(t *testing.T) {
		c := client{t, c.base}
		loc := c.do("POST", "/v2/up/blobs/uploads/", nil, nil).hdr.Get("Location")
		c.expect(c.do("PUT", loc, nil, data), 400, "DIGEST_INVALID") // no ?digest=
		c.do("PATCH", loc, nil, data)
		c.expect(c.do("PUT", loc+"?digest="+digest.FromString("no").String(), nil, nil), 400, "DIGEST_INVALID")
		// A failed close leaves no session and no blob behind.
		c.expect(c.do("GET", loc, nil, nil), 404, "BLOB_UPLOAD_UNKNOWN")
		loc = c.do("POST", "/v2/up/blobs/uploads/", nil, nil).hdr.Get("Location")
		c.expect(c.do("DELETE", loc, nil, nil), 204, "")
		c.expect(c.do("GET", loc, nil, nil), 404, "BLOB_UPLOAD_UNKNOWN")
		c.expect(c.do("PATCH", "/v2/up/blobs/uploads/not-an-id", nil, data), 404, "BLOB_UPLOAD_UNKNOWN")
		c.expect(c.do("PATCH", "/v2/up/blobs/uploads/..%2F..%2Fetc", nil, data), 404, "")
	})
	t.Run("Mounts", func(t *testing.T) {
		c := client{t, c.base}
		src := c.pushBlob("src/repo", randomBytes(500))
		r := c.do("POST", "/v2/dst/one/blobs/uploads/?mount="+src.String()+"&from=src/repo", nil, nil)
		c.expect(r, 201, "")
		if r.hdr.Get("Location") != "/v2/dst/one/blobs/"+src.String() {
			t.Errorf("mount Location %q", r.hdr.Get("Location"))
		}
		c.expect(c.do("HEAD", "/v2/dst/one/blobs/"+src.String(), nil, nil), 200, "")
		// Without from: any repository that has it.
		c.expect(c.do("POST", "/v2/dst/two/blobs/uploads/?mount="+src.String(), nil, nil), 201, "")
		// Impossible mounts fall back to an upload session.
		r = c.do("POST", "/v2/dst/three/blobs/uploads/?mount="+digest.FromString("absent").String()+"&from=src/repo", nil, nil)
		c.expect(r, 202, "")
		if !strings.Contains(r.hdr.Get("Location"), "/blobs/uploads/") {
			t.Errorf("fallback Location %q", r.hdr.Get("Location"))
		}
		c.expect(c.do("POST", "/v2/dst/four/blobs/uploads/?mount="+src.String()+"&from=nothere", nil, nil), 202, "")
	})
}

func TestManifests(t *testing.T) {
	c := client{t, startNode(t)}
	m := c.image("app", map[string]any{"x-custom": map[string]any{"kept": true}})
	d := digest.FromBytes(m)

	r := c.do("PUT", "/v2/app/manifests/v1", ct(ociManifest), m)
	c.expect(r, 201, "")
	if r.hdr.Get("Location") != "/v2/app/manifests/"+d.String() || r.hdr.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("PUT headers: %v", r.hdr)
	}
	for _, ref := range []string{"v1", d.String()} {
		r = c.do("GET", "/v2/app/manifests/"+ref, nil, nil)
		c.expect(r, 200, "")
		if !bytes.Equal(r.body, m) || r.hdr.Get("Content-Type") != ociManifest || r.hdr.Get("Docker-Content-Digest") != d.String() {
			t.Errorf("GET %s: not byte for byte, or wrong headers %v", ref, r.hdr)
		}
		r = c.do("HEAD", "/v2/app/manifests/"+ref, nil, nil)
		c.expect(r, 200, "")
		if r.hdr.Get("Content-Length") != fmt.Sprint(len(m)) {
			t.Errorf("HEAD Content-Length %q", r.hdr.Get("Content-Length"))
		}
	}
	// Push by digest with ?tag=.
	r = c.do("PUT", "/v2/app/manifests/"+d.String()+"?tag=a&tag=b", ct(ociManifest), m)
	c.expect(r, 201, "")
	if got := r.hdr.Values("OCI-Tag"); len(got) != 2 {
		t.Errorf("OCI-Tag headers %v", got)
	}
	c.expect(c.do("GET", "/v2/app/manifests/b", nil, nil), 200, "")

	tests := []struct {
		name    string
		ref     string
		hdr     map[string]string
		body    []byte
		code    int
		errCode string
	}{
		{"digest mismatch", digest.FromString("x").String(), ct(ociManifest), m, 400, "DIGEST_INVALID"},
		{"not json", "bad", ct(ociManifest), []byte("{nope"), 400, "MANIFEST_INVALID"},
		{"no schemaVersion", "bad", ct(ociManifest), []byte(`{"mediaType":"` + ociManifest + `","config":{},"layers":[]}`), 400, "MANIFEST_INVALID"},
		{"bad descriptor digest", "bad", ct(ociManifest), []byte(`{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:1","size":1},"layers":[]}`), 400, "MANIFEST_INVALID"},
		{"type mismatch", "bad", ct("application/vnd.oci.image.index.v1+json"), m, 400, "MANIFEST_INVALID"},
		{"schema1", "bad", ct("application/vnd.docker.distribution.manifest.v1+prettyjws"), []byte(`{"schemaVersion":1,"fsLayers":[]}`), 400, "MANIFEST_INVALID"},
		{"unknown media type", "bad", ct("application/vnd.example+json"), []byte(`{"schemaVersion":2,"mediaType":"application/vnd.example+json"}`), 400, "MANIFEST_INVALID"},
		{"bad tag", "-bad", ct(ociManifest), m, 400, "MANIFEST_INVALID"},
		{"too large", "big", ct(ociManifest), bytes.Repeat([]byte(" "), 65<<10), 413, "MANIFEST_INVALID"},
		{"missing blobs", "missing", ct(ociManifest), []byte(`{"schemaVersion":2,"mediaType":"` + ociManifest + `","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + digest.FromString("c").String() + `","size":1},"layers":[]}`), 400, "MANIFEST_BLOB_UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client{t, c.base}
			c.expect(c.do("PUT", "/v2/app/manifests/"+tt.ref, tt.hdr, tt.body), tt.code, tt.errCode)
			if tt.ref != d.String() {
				c.expect(c.do("GET", "/v2/app/manifests/"+tt.ref, nil, nil), map[bool]int{true: 400, false: 404}[tt.ref == "-bad"], "")
			}
		})
	}

	c.expect(c.do("GET", "/v2/app/manifests/nope", nil, nil), 404, "MANIFEST_UNKNOWN")
	c.expect(c.do("GET", "/v2/unknown/repo/manifests/v1", nil, nil), 404, "NAME_UNKNOWN")

	// Deletes: a tag, then the manifest with its remaining tags.
	c.expect(c.do("DELETE", "/v2/app/manifests/a", nil, nil), 202, "")
	c.expect(c.do("GET", "/v2/app/manifests/a", nil, nil), 404, "MANIFEST_UNKNOWN")
	c.expect(c.do("DELETE", "/v2/app/manifests/a", nil, nil), 404, "MANIFEST_UNKNOWN")
	c.expect(c.do("DELETE", "/v2/app/manifests/"+d.String(), nil, nil), 202, "")
	c.expect(c.do("GET", "/v2/app/manifests/v1", nil, nil), 404, "MANIFEST_UNKNOWN")
	c.expect(c.do("GET", "/v2/app/manifests/"+d.String(), nil, nil), 404, "MANIFEST_UNKNOWN")
	c.expect(c.do("DELETE", "/v2/app/manifests/"+d.String(), nil, nil), 404, "MANIFEST_UNKNOWN")
}

func TestIndexesDockerTypesAndArtifacts(t *testing.T) {
	c := client{t, startNode(t)}
	m1 := c.image("multi", nil)
	c.expect(c.do("PUT", "/v2/multi/manifests/amd64", ct(ociManifest), m1), 201, "")
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []any{descriptor(ociManifest, m1)}})
	c.expect(c.do("PUT", "/v2/multi/manifests/idx", ct("application/vnd.oci.image.index.v1+json"), idx), 201, "")
	// An index of indexes.
	outer, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []any{descriptor("application/vnd.oci.image.index.v1+json", idx)}})
	c.expect(c.do("PUT", "/v2/multi/manifests/nested", ct("application/vnd.oci.image.index.v1+json"), outer), 201, "")
	// A child that is not in the repository is refused.
	bad, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []any{descriptor(ociManifest, []byte("absent"))}})
	c.expect(c.do("PUT", "/v2/multi/manifests/bad", ct("application/vnd.oci.image.index.v1+json"), bad), 400, "MANIFEST_BLOB_UNKNOWN")

	// Docker schema 2 and manifest list.
	cfg, layer := randomBytes(40), randomBytes(80)
	c.pushBlob("docker", cfg)
	c.pushBlob("docker", layer)
	dm, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
		"config": descriptor("application/vnd.docker.container.image.v1+json", cfg),
		"layers": []any{descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", layer),
			// A foreign layer need not be in the registry.
			map[string]any{"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": digest.FromString("win").String(), "size": 5, "urls": []string{"https://example.com/l"}}}})
	c.expect(c.do("PUT", "/v2/docker/manifests/v2", ct("application/vnd.docker.distribution.manifest.v2+json"), dm), 201, "")
	r := c.do("GET", "/v2/docker/manifests/v2", nil, nil)
	if r.hdr.Get("Content-Type") != "application/vnd.docker.distribution.manifest.v2+json" {
		t.Errorf("docker manifest content type %q", r.hdr.Get("Content-Type"))
	}
	dl, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
		"manifests": []any{descriptor("application/vnd.docker.distribution.manifest.v2+json", dm)}})
	c.expect(c.do("PUT", "/v2/docker/manifests/list", ct("application/vnd.docker.distribution.manifest.list.v2+json"), dl), 201, "")

	// An artifact with the empty config, referring to m1 through subject.
	empty := []byte("{}")
	c.pushBlob("multi", empty)
	sbom := randomBytes(64)
	c.pushBlob("multi", sbom)
	art, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": ociManifest,
		"artifactType": "application/vnd.example.sbom",
		"config":       descriptor("application/vnd.oci.empty.v1+json", empty),
		"layers":       []any{descriptor("application/json", sbom)},
		"subject":      descriptor(ociManifest, m1),
		"annotations":  map[string]string{"org.example": "yes"}})
	r = c.do("PUT", "/v2/multi/manifests/"+digest.FromBytes(art).String(), ct(ociManifest), art)
	c.expect(r, 201, "")
	if r.hdr.Get("OCI-Subject") != digest.FromBytes(m1).String() {
		t.Errorf("OCI-Subject = %q", r.hdr.Get("OCI-Subject"))
	}
	// A subject that does not exist (yet) is allowed.
	art2, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": ociManifest, "artifactType": "application/vnd.example.sig",
		"config": descriptor("application/vnd.oci.empty.v1+json", empty), "layers": []any{},
		"subject": descriptor(ociManifest, []byte("not pushed"))})
	c.expect(c.do("PUT", "/v2/multi/manifests/"+digest.FromBytes(art2).String(), ct(ociManifest), art2), 201, "")

	type index struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Digest       string            `json:"digest"`
			ArtifactType string            `json:"artifactType"`
			Annotations  map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	var got index
	r = c.do("GET", "/v2/multi/referrers/"+digest.FromBytes(m1).String(), nil, nil)
	c.expect(r, 200, "")
	json.Unmarshal(r.body, &got)
	if r.hdr.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" || len(got.Manifests) != 1 ||
		got.Manifests[0].ArtifactType != "application/vnd.example.sbom" || got.Manifests[0].Annotations["org.example"] != "yes" {
		t.Errorf("referrers: %s", r.body)
	}
	r = c.do("GET", "/v2/multi/referrers/"+digest.FromBytes(m1).String()+"?artifactType=application/vnd.example.other", nil, nil)
	c.expect(r, 200, "")
	if r.hdr.Get("OCI-Filters-Applied") != "artifactType" || !strings.Contains(string(r.body), `"manifests":[]`) {
		t.Errorf("filtered referrers: %v %s", r.hdr, r.body)
	}
	r = c.do("GET", "/v2/nothing/here/referrers/"+digest.FromString("z").String(), nil, nil)
	c.expect(r, 200, "")
	if !strings.Contains(string(r.body), `"manifests":[]`) {
		t.Errorf("empty referrers must be an empty index: %s", r.body)
	}
	c.expect(c.do("GET", "/v2/multi/referrers/notadigest", nil, nil), 400, "DIGEST_INVALID")
}

func TestTagsAndCatalogPagination(t *testing.T) {
	c := client{t, startNode(t)}
	m := c.image("pg", nil)
	d := digest.FromBytes(m)
	c.expect(c.do("PUT", "/v2/pg/manifests/"+d.String()+"?tag=c&tag=a&tag=e&tag=b&tag=d", ct(ociManifest), m), 201, "")
	r := c.do("GET", "/v2/pg/tags/list", nil, nil)
	c.expect(r, 200, "")
	if string(bytes.TrimSpace(r.body)) != `{"name":"pg","tags":["a","b","c","d","e"]}` {
		t.Errorf("tags: %s", r.body)
	}
	r = c.do("GET", "/v2/pg/tags/list?n=2", nil, nil)
	if !strings.Contains(string(r.body), `["a","b"]`) || r.hdr.Get("Link") != `</v2/pg/tags/list?n=2&last=b>; rel="next"` {
		t.Errorf("page 1: %s %q", r.body, r.hdr.Get("Link"))
	}
	r = c.do("GET", "/v2/pg/tags/list?n=2&last=d", nil, nil)
	if !strings.Contains(string(r.body), `["e"]`) || r.hdr.Get("Link") != "" {
		t.Errorf("last page: %s %q", r.body, r.hdr.Get("Link"))
	}
	r = c.do("GET", "/v2/pg/tags/list?n=0", nil, nil)
	if !strings.Contains(string(r.body), `"tags":[]`) {
		t.Errorf("n=0: %s", r.body)
	}
	c.expect(c.do("GET", "/v2/pg/tags/list?n=-1", nil, nil), 400, "UNSUPPORTED")
	c.expect(c.do("GET", "/v2/pg/tags/list?n=abc", nil, nil), 400, "UNSUPPORTED")
	c.expect(c.do("GET", "/v2/nope/tags/list", nil, nil), 404, "NAME_UNKNOWN")

	c.pushBlob("a/one", []byte("1"))
	c.pushBlob("z/last", []byte("2"))
	r = c.do("GET", "/v2/_catalog?n=2", nil, nil)
	if !strings.Contains(string(r.body), `["a/one","pg"]`) || !strings.Contains(r.hdr.Get("Link"), "last=pg") {
		t.Errorf("catalog page: %s %q", r.body, r.hdr.Get("Link"))
	}
	r = c.do("GET", "/v2/_catalog?last=pg", nil, nil)
	if !strings.Contains(string(r.body), `["z/last"]`) {
		t.Errorf("catalog after pg: %s", r.body)
	}
}

func TestWriteThenReadIsImmediate(t *testing.T) {
	c := client{t, startNode(t)}
	last := 0
	for i := range 20 {
		m := c.image("rw", map[string]any{"annotations": map[string]string{"i": fmt.Sprint(i)}})
		tag := fmt.Sprintf("t%d", i)
		c.expect(c.do("PUT", "/v2/rw/manifests/"+tag, ct(ociManifest), m), 201, "")
		r := c.do("HEAD", "/v2/rw/manifests/"+tag, nil, nil)
		c.expect(r, 200, "")
		// Reads report the applied index they were served at; it only grows.
		var idx int
		if _, err := fmt.Sscan(r.hdr.Get("Berth-Applied-Index"), &idx); err != nil || idx <= last {
			t.Fatalf("Berth-Applied-Index %q after %d", r.hdr.Get("Berth-Applied-Index"), last)
		}
		last = idx
	}
}
