package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Media types the GC tests push.
const (
	MediaManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// Descriptor is an OCI descriptor as the tests write it.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int               `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Platform     map[string]string `json:"platform,omitempty"`
}

// Desc describes b as mediaType.
func Desc(mediaType string, b []byte) Descriptor {
	return Descriptor{MediaType: mediaType, Digest: Sha(b), Size: len(b)}
}

// LayeredImage is an OCI image whose layers a test picks, so that images
// share layers (and GC candidates) the way real ones share base layers.
// Subject, if set, makes it a referrer (a cosign-style signature).
type LayeredImage struct {
	Repo, Tag      string // Tag empty: pushed by digest
	Config         []byte
	Layers         [][]byte
	Manifest       []byte
	ManifestDigest string
}

// NewLayeredImage builds the manifest over a config unique to seed and
// layers; subject, if not nil, is the manifest the image refers to.
func NewLayeredImage(repo, tag, seed string, layers [][]byte, subject *Descriptor, artifactType string) LayeredImage {
	config := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","seed":%q}`, seed)
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     MediaManifest,
		"config":        Desc(mediaConfig, config),
	}
	var ls []Descriptor
	for _, l := range layers {
		ls = append(ls, Desc(mediaLayer, l))
	}
	m["layers"] = ls
	if subject != nil {
		m["subject"] = subject
	}
	if artifactType != "" {
		m["artifactType"] = artifactType
	}
	b, _ := json.Marshal(m)
	return LayeredImage{Repo: repo, Tag: tag, Config: config, Layers: layers, Manifest: b, ManifestDigest: Sha(b)}
}

// Blobs are the config and layers.
func (im LayeredImage) Blobs() [][]byte { return append([][]byte{im.Config}, im.Layers...) }

// Digests are every digest the image's bytes are stored under, manifest
// included.
func (im LayeredImage) Digests() []string {
	out := []string{im.ManifestDigest}
	for _, b := range im.Blobs() {
		out = append(out, Sha(b))
	}
	return out
}

// Descriptor describes the image's manifest.
func (im LayeredImage) Descriptor() Descriptor { return Desc(MediaManifest, im.Manifest) }

// ref is the tag, or the digest when the image has none.
func (im LayeredImage) ref() string {
	if im.Tag != "" {
		return im.Tag
	}
	return im.ManifestDigest
}

// retryable says whether a refusal is one a client meets when GC froze or
// swept a blob it uploads or references: 503 (BLOB_SWEEPING, with
// Retry-After) on a link or manifest put, or 400 MANIFEST_BLOB_UNKNOWN
// when the sweep removed the link between the upload and the manifest.
func retryable(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && (se.Code == http.StatusServiceUnavailable ||
		(se.Code == http.StatusBadRequest && strings.Contains(se.Body, "BLOB_UNKNOWN")))
}

// StatusError is an unexpected answer from the registry.
type StatusError struct {
	What string
	Code int
	Body string
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s: %d %s", e.What, e.Code, e.Body) }

// Push uploads every blob (monolithic POST ?digest=) and then the manifest,
// and starts over, as a client retrying does, while the registry answers
// with a refusal GC causes (see retryable). It returns nil only once the
// manifest put was acknowledged (201), and reports how many attempts were
// refused.
//
// Like every helper here that takes a base (host:port), it reaches base
// with the Client ctx carries (WithClient), so that the same GC test runs
// against plain and TLS registries; without one it is plain HTTP.
func (im LayeredImage) Push(ctx context.Context, base string) (refused int, err error) {
	for {
		err = im.pushOnce(ctx, base)
		if err == nil || !retryable(err) {
			return refused, err
		}
		refused++
		select {
		case <-ctx.Done():
			return refused, fmt.Errorf("%w (last refusal: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (im LayeredImage) pushOnce(ctx context.Context, base string) error {
	for _, b := range im.Blobs() {
		if err := PushBlob(ctx, base, im.Repo, b); err != nil {
			return err
		}
	}
	return PutManifest(ctx, base, im.Repo, im.ref(), MediaManifest, im.Manifest)
}

// PushBlob uploads b into repo in one POST.
func PushBlob(ctx context.Context, base, repo string, b []byte) error {
	code, _, body, err := HTTPStatus(ctx, "POST", URL(ctx, base, fmt.Sprintf("/v2/%s/blobs/uploads/?digest=%s", repo, Sha(b))),
		map[string]string{"Content-Type": "application/octet-stream"}, bytes.NewReader(b))
	if err != nil {
		return err
	}
	if code != http.StatusCreated {
		return &StatusError{"blob upload " + Sha(b), code, strings.TrimSpace(string(body))}
	}
	return nil
}

// PutManifest puts body as repo:ref and checks the digest the registry
// answers with.
func PutManifest(ctx context.Context, base, repo, ref, mediaType string, body []byte) error {
	code, hdr, resp, err := HTTPStatus(ctx, "PUT", URL(ctx, base, fmt.Sprintf("/v2/%s/manifests/%s", repo, ref)),
		map[string]string{"Content-Type": mediaType}, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if code != http.StatusCreated {
		return &StatusError{"manifest put " + repo + ":" + ref, code, strings.TrimSpace(string(resp))}
	}
	if got := hdr.Get("Docker-Content-Digest"); got != Sha(body) {
		return fmt.Errorf("manifest put %s:%s: digest %s, want %s", repo, ref, got, Sha(body))
	}
	return nil
}

// Verify pulls the image by its tag (or digest) and every blob by digest
// and checks every byte.
func (im LayeredImage) Verify(ctx context.Context, base string) error {
	if err := VerifyManifest(ctx, base, im.Repo, im.ref(), MediaManifest, im.Manifest); err != nil {
		return err
	}
	for _, b := range im.Blobs() {
		if err := VerifyBlob(ctx, base, im.Repo, b); err != nil {
			return err
		}
	}
	return nil
}

// VerifyManifest GETs repo:ref and compares the bytes with want.
func VerifyManifest(ctx context.Context, base, repo, ref, accept string, want []byte) error {
	code, hdr, body, err := HTTPStatus(ctx, "GET", URL(ctx, base, fmt.Sprintf("/v2/%s/manifests/%s", repo, ref)), map[string]string{"Accept": accept}, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return &StatusError{"manifest get " + repo + ":" + ref, code, strings.TrimSpace(string(body))}
	}
	if !bytes.Equal(body, want) || hdr.Get("Docker-Content-Digest") != Sha(want) {
		return fmt.Errorf("manifest %s:%s: bytes differ from what was pushed", repo, ref)
	}
	return nil
}

// VerifyBlob GETs b's digest from repo and compares the bytes.
func VerifyBlob(ctx context.Context, base, repo string, b []byte) error {
	code, _, got, err := HTTPStatus(ctx, "GET", URL(ctx, base, fmt.Sprintf("/v2/%s/blobs/%s", repo, Sha(b))), nil, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return &StatusError{"blob get " + repo + "@" + Sha(b), code, strings.TrimSpace(string(got))}
	}
	if Sha(got) != Sha(b) {
		return fmt.Errorf("blob %s@%s: got bytes of %s", repo, Sha(b), Sha(got))
	}
	return nil
}

// ManifestStatus is the status code of a manifest GET, for what must be gone.
func ManifestStatus(ctx context.Context, base, repo, ref string) (int, error) {
	code, _, _, err := HTTPStatus(ctx, "GET", URL(ctx, base, fmt.Sprintf("/v2/%s/manifests/%s", repo, ref)),
		map[string]string{"Accept": MediaManifest + "," + MediaIndex}, nil)
	return code, err
}

// DeleteTag deletes repo:tag (202).
func DeleteTag(ctx context.Context, base, repo, tag string) error {
	code, _, body, err := HTTPStatus(ctx, "DELETE", URL(ctx, base, fmt.Sprintf("/v2/%s/manifests/%s", repo, tag)), nil, nil)
	if err != nil {
		return err
	}
	if code != http.StatusAccepted {
		return &StatusError{"delete " + repo + ":" + tag, code, strings.TrimSpace(string(body))}
	}
	return nil
}

// FSBlobs lists the blob files a filesystem-driver data dir holds, as
// "sha256:<hex>", sorted.
func FSBlobs(dataDir string) ([]string, error) {
	var out []string
	root := filepath.Join(dataDir, "blobs", "sha256")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !d.IsDir() && len(d.Name()) == 64 {
			out = append(out, "sha256:"+d.Name())
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// FSFiles lists every file under dir (relative paths), for leftovers of
// upload sessions.
func FSFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, rel)
		}
		return nil
	})
	return out, err
}

// BucketKeys lists the object keys under prefix in a MinIO bucket the
// tests started (MinIOUser's credentials), sorted: what the store really
// holds, not what the registry's state says.
func BucketKeys(ctx context.Context, endpoint, bucket, prefix string) ([]string, error) {
	c, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(MinIOUser, MinIOSecret, "")})
	if err != nil {
		return nil, err
	}
	var out []string
	for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("list %s/%s: %w", bucket, prefix, o.Err)
		}
		out = append(out, o.Key)
	}
	sort.Strings(out)
	return out, nil
}

// BucketBlobs lists the blobs in the bucket as "sha256:<hex>", sorted
// (keys blobs/sha256/<2>/<hex>).
func BucketBlobs(ctx context.Context, endpoint, bucket string) ([]string, error) {
	keys, err := BucketKeys(ctx, endpoint, bucket, "blobs/sha256/")
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, "sha256:"+filepath.Base(k))
	}
	return out, nil
}

// GCStatus is what GET /admin/v1/gc/status answers.
type GCStatus struct {
	Open *struct {
		Run       string
		Phase     string
		Blobs     int
		Manifests int
	} `json:"open"`
	Runs []struct {
		Run        string
		Candidates int
		Manifests  int
		Deleted    int
		Bytes      int64
		Outcome    string
		Reason     string
	} `json:"runs"`
	LastError string `json:"lastError"`
}

// GetGCStatus reads the GC status from base with the admin token.
func GetGCStatus(ctx context.Context, base, token string) (GCStatus, error) {
	var st GCStatus
	code, _, body, err := HTTPStatus(ctx, "GET", URL(ctx, base, "/admin/v1/gc/status"), map[string]string{"Authorization": "Bearer " + token}, nil)
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, &StatusError{"gc status", code, strings.TrimSpace(string(body))}
	}
	return st, json.Unmarshal(body, &st)
}

// StartGC asks base (the leader) for a GC run and does not wait for it.
func StartGC(ctx context.Context, base, token string, deleteUntagged bool) error {
	q := url.Values{"wait": {"false"}, "deleteUntagged": {fmt.Sprint(deleteUntagged)}}
	code, _, body, err := HTTPStatus(ctx, "POST", URL(ctx, base, "/admin/v1/gc/run?"+q.Encode()), map[string]string{"Authorization": "Bearer " + token}, nil)
	if err != nil {
		return err
	}
	if code/100 != 2 {
		return &StatusError{"gc run", code, strings.TrimSpace(string(body))}
	}
	return nil
}

// ReadToken reads a token file (the single node's admin.token).
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

// SetReadOnly switches read-only mode on base with the admin token.
func SetReadOnly(ctx context.Context, base, token string, on bool) error {
	body := `{"on":false}`
	if on {
		body = `{"on":true,"reason":"e2e"}`
	}
	code, _, resp, err := HTTPStatus(ctx, "POST", URL(ctx, base, "/admin/v1/readonly"),
		map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"}, strings.NewReader(body))
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return &StatusError{"readonly", code, strings.TrimSpace(string(resp))}
	}
	return nil
}
