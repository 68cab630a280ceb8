package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// image is a tiny OCI image pushed by raw HTTP: one config, one layer.
type image struct {
	repo, tag      string
	config, layer  []byte
	manifest       []byte
	manifestDigest string
}

func sha(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

func newImage(repo, tag string) image {
	layer := make([]byte, 1024)
	rand.Read(layer)
	config := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]}}`, sha(layer))
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer), "size": len(layer)}},
	})
	return image{repo: repo, tag: tag, config: config, layer: layer, manifest: m, manifestDigest: sha(m)}
}

// push uploads the image through base (a node or the load balancer) the
// way a client does: monolithic blob uploads, then the manifest by tag.
// It returns nil only when the registry acknowledged the manifest (201).
func (im image) push(ctx context.Context, base string) error {
	for _, b := range [][]byte{im.config, im.layer} {
		code, _, body, err := harness.HTTPStatus(ctx, "POST",
			fmt.Sprintf("http://%s/v2/%s/blobs/uploads/?digest=%s", base, im.repo, sha(b)),
			map[string]string{"Content-Type": "application/octet-stream"}, bytes.NewReader(b))
		if err != nil {
			return err
		}
		if code != http.StatusCreated {
			return fmt.Errorf("blob upload: %d %s", code, strings.TrimSpace(string(body)))
		}
	}
	code, hdr, body, err := harness.HTTPStatus(ctx, "PUT",
		fmt.Sprintf("http://%s/v2/%s/manifests/%s", base, im.repo, im.tag),
		map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, bytes.NewReader(im.manifest))
	if err != nil {
		return err
	}
	if code != http.StatusCreated {
		return fmt.Errorf("manifest put: %d %s", code, strings.TrimSpace(string(body)))
	}
	if got := hdr.Get("Docker-Content-Digest"); got != im.manifestDigest {
		return fmt.Errorf("manifest digest %s, want %s", got, im.manifestDigest)
	}
	return nil
}

// verify pulls the image back through base and checks every byte.
func (im image) verify(ctx context.Context, base string) error {
	code, hdr, body, err := harness.HTTPStatus(ctx, "GET", fmt.Sprintf("http://%s/v2/%s/manifests/%s", base, im.repo, im.tag),
		map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("%s:%s on %s: manifest %d %s", im.repo, im.tag, base, code, strings.TrimSpace(string(body)))
	}
	if !bytes.Equal(body, im.manifest) || hdr.Get("Docker-Content-Digest") != im.manifestDigest {
		return fmt.Errorf("%s:%s on %s: manifest bytes differ", im.repo, im.tag, base)
	}
	for _, b := range [][]byte{im.config, im.layer} {
		code, _, got, err := harness.HTTPStatus(ctx, "GET", fmt.Sprintf("http://%s/v2/%s/blobs/%s", base, im.repo, sha(b)), nil, nil)
		if err != nil {
			return err
		}
		if code != http.StatusOK || !bytes.Equal(got, b) {
			return fmt.Errorf("%s on %s: blob %s: %d", im.repo, base, sha(b), code)
		}
	}
	return nil
}

func ctxT(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
