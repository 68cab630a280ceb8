package harness

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Image is a tiny OCI image pushed by raw HTTP: one config, one layer.
type Image struct {
	Repo, Tag      string
	Config, Layer  []byte
	Manifest       []byte
	ManifestDigest string
}

func Sha(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

func NewImage(repo, tag string) Image {
	layer := make([]byte, 1024)
	rand.Read(layer)
	config := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]}}`, Sha(layer))
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Sha(config), "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": Sha(layer), "size": len(layer)}},
	})
	return Image{Repo: repo, Tag: tag, Config: config, Layer: layer, Manifest: m, ManifestDigest: Sha(m)}
}

// Push uploads the image through base (a node or the load balancer,
// host:port; https with a Client in ctx that says so) the way a client does: monolithic blob uploads, then the manifest by tag.
// It returns nil only when the registry acknowledged the manifest (201).
func (im Image) Push(ctx context.Context, base string) error {
	return im.PushAs(ctx, base, "")
}

// PushAs pushes like Push with an Authorization header (none if empty),
// for a registry with authentication on.
func (im Image) PushAs(ctx context.Context, base, authorization string) error {
	hdr := withAuth(map[string]string{"Content-Type": "application/octet-stream"}, authorization)
	for _, b := range [][]byte{im.Config, im.Layer} {
		code, _, body, err := HTTPStatus(ctx, "POST",
			URL(ctx, base, fmt.Sprintf("/v2/%s/blobs/uploads/?digest=%s", im.Repo, Sha(b))), hdr, bytes.NewReader(b))
		if err != nil {
			return err
		}
		if code != http.StatusCreated {
			return fmt.Errorf("blob upload: %d %s", code, strings.TrimSpace(string(body)))
		}
	}
	_, err := im.putManifestHeader(ctx, base, authorization)
	return err
}

// withAuth adds an Authorization header to hdr unless authorization is empty.
func withAuth(hdr map[string]string, authorization string) map[string]string {
	if authorization != "" {
		hdr["Authorization"] = authorization
	}
	return hdr
}

// PushIndexed pushes like Push and returns the Raft index of the
// acknowledged manifest write (the Berth-Index response header), which
// names its published event.
func (im Image) PushIndexed(ctx context.Context, base string) (uint64, error) {
	for _, b := range [][]byte{im.Config, im.Layer} {
		code, _, body, err := HTTPStatus(ctx, "POST",
			URL(ctx, base, fmt.Sprintf("/v2/%s/blobs/uploads/?digest=%s", im.Repo, Sha(b))),
			map[string]string{"Content-Type": "application/octet-stream"}, bytes.NewReader(b))
		if err != nil {
			return 0, err
		}
		if code != http.StatusCreated {
			return 0, fmt.Errorf("blob upload: %d %s", code, strings.TrimSpace(string(body)))
		}
	}
	hdr, err := im.putManifestHeader(ctx, base, "")
	if err != nil {
		return 0, err
	}
	index, err := strconv.ParseUint(hdr.Get("Berth-Index"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("manifest put acknowledged without a Berth-Index header: %w", err)
	}
	return index, nil
}

// putManifest pushes the manifest by tag once its blobs are in place.
func (im Image) putManifest(ctx context.Context, base string) error {
	_, err := im.putManifestHeader(ctx, base, "")
	return err
}

func (im Image) putManifestHeader(ctx context.Context, base, authorization string) (http.Header, error) {
	code, hdr, body, err := HTTPStatus(ctx, "PUT",
		URL(ctx, base, fmt.Sprintf("/v2/%s/manifests/%s", im.Repo, im.Tag)),
		withAuth(map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, authorization), bytes.NewReader(im.Manifest))
	if err != nil {
		return nil, err
	}
	if code != http.StatusCreated {
		return nil, fmt.Errorf("manifest put: %d %s", code, strings.TrimSpace(string(body)))
	}
	if got := hdr.Get("Docker-Content-Digest"); got != im.ManifestDigest {
		return nil, fmt.Errorf("manifest digest %s, want %s", got, im.ManifestDigest)
	}
	return hdr, nil
}

// Verify pulls the image back through base and checks every byte.
func (im Image) Verify(ctx context.Context, base string) error {
	return im.VerifyAs(ctx, base, "")
}

// VerifyAs pulls and checks like Verify with an Authorization header
// (none if empty).
func (im Image) VerifyAs(ctx context.Context, base, authorization string) error {
	code, hdr, body, err := HTTPStatus(ctx, "GET", URL(ctx, base, fmt.Sprintf("/v2/%s/manifests/%s", im.Repo, im.Tag)),
		withAuth(map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}, authorization), nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("%s:%s on %s: manifest %d %s", im.Repo, im.Tag, base, code, strings.TrimSpace(string(body)))
	}
	if !bytes.Equal(body, im.Manifest) || hdr.Get("Docker-Content-Digest") != im.ManifestDigest {
		return fmt.Errorf("%s:%s on %s: manifest bytes differ", im.Repo, im.Tag, base)
	}
	for _, b := range [][]byte{im.Config, im.Layer} {
		code, _, got, err := HTTPStatus(ctx, "GET", URL(ctx, base, fmt.Sprintf("/v2/%s/blobs/%s", im.Repo, Sha(b))), withAuth(map[string]string{}, authorization), nil)
		if err != nil {
			return err
		}
		if code != http.StatusOK || !bytes.Equal(got, b) {
			return fmt.Errorf("%s on %s: blob %s: %d", im.Repo, base, Sha(b), code)
		}
	}
	return nil
}

func Ctx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// TarWithFile makes a one-file layer tarball, for `crane append`.
func TarWithFile(name string, content []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content))})
	tw.Write(content)
	tw.Close()
	return buf.Bytes()
}
