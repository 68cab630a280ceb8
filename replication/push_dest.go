package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/blob"
)

// maxReferrerDepth bounds how deep referrers of referrers are followed (a
// signature of an SBOM of an image is two).
const maxReferrerDepth = 3

// destClient writes artifacts of this cluster to a push destination
// through go-containerregistry. Content is read from the blob store, whose
// bytes were verified against their digests when they were stored.
type destClient struct {
	d      Destination
	target PushTarget
	limit  *limiter
	bytes  *atomic.Int64
}

func (c *destClient) options(ctx context.Context) []remote.Option {
	var auth authn.Authenticator = authn.Anonymous
	switch {
	case c.d.Token != "":
		auth = &authn.Bearer{Token: c.d.Token}
	case c.d.Username != "" || c.d.Password != "":
		auth = &authn.Basic{Username: c.d.Username, Password: c.d.Password}
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth), remote.WithUserAgent("berth-replication"),
		// Retries are the job's, per artifact, with its own backoff.
		remote.WithRetryBackoff(remote.Backoff{Steps: 1})}
	if c.d.HTTP != nil && c.d.HTTP.Transport != nil {
		opts = append(opts, remote.WithTransport(c.d.HTTP.Transport))
	}
	return opts
}

// repo names repository dst at the destination.
func (c *destClient) repo(dst string) (name.Repository, error) {
	host, insecure := c.d.URL, false
	switch {
	case strings.HasPrefix(host, "http://"):
		host, insecure = strings.TrimPrefix(host, "http://"), true
	case strings.HasPrefix(host, "https://"):
		host = strings.TrimPrefix(host, "https://")
	}
	host = strings.TrimRight(host, "/")
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRepository(host+"/"+dst, opts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("destination repository %s/%s: %w", host, dst, err)
	}
	return r, nil
}

// push makes artifact a exist at the destination with its tags: children
// and blobs first, then the manifest, its tags, then its referrers.
func (c *destClient) push(ctx context.Context, a artifact) (int64, error) {
	before := c.bytes.Load()
	repo, err := c.repo(a.dst)
	if err != nil {
		return 0, err
	}
	raw, mt, err := c.manifest(ctx, repo, a.src, a.d, 0)
	if err != nil {
		return 0, err
	}
	for _, t := range a.tags {
		ref := repo.Tag(t)
		if d, err := remote.Head(ref, c.options(ctx)...); err == nil && d.Digest.String() == a.d.String() {
			continue
		}
		if err := remote.Put(ref, rawManifest{raw, mt}, c.options(ctx)...); err != nil {
			return 0, destError("tag "+ref.String(), err)
		}
	}
	if err := c.referrers(ctx, repo, a.src, a.d, 0); err != nil {
		return 0, err
	}
	return c.bytes.Load() - before, nil
}

// manifest pushes manifest d of local repository src, and what it
// references, unless the destination has it; it returns its bytes.
func (c *destClient) manifest(ctx context.Context, repo name.Repository, src string, d digest.Digest, depth int) ([]byte, types.MediaType, error) {
	if depth > maxIndexDepth {
		return nil, "", fmt.Errorf("manifest %s@%s: indexes nest more than %d deep", src, d, maxIndexDepth)
	}
	m, ok := c.target.View().Manifest(src, d)
	if !ok {
		return nil, "", fmt.Errorf("manifest %s@%s: %w", src, d, errGone)
	}
	raw, err := c.readManifest(ctx, d)
	if err != nil {
		return nil, "", err
	}
	mt := types.MediaType(m.MediaType)
	ref := repo.Digest(d.String())
	if _, err := remote.Head(ref, c.options(ctx)...); err == nil {
		return raw, mt, nil // a registry has what a manifest it holds references
	}
	for _, child := range m.Manifests {
		if _, _, err := c.manifest(ctx, repo, src, child, depth+1); err != nil {
			return nil, "", fmt.Errorf("child of index %s: %w", d, err)
		}
	}
	for _, b := range m.Blobs {
		if err := c.blob(ctx, repo, b); err != nil {
			return nil, "", err
		}
	}
	if err := remote.Put(ref, rawManifest{raw, mt}, c.options(ctx)...); err != nil {
		return nil, "", destError("manifest "+ref.String(), err)
	}
	return raw, mt, nil
}

// referrers pushes the manifests here whose subject is d.
func (c *destClient) referrers(ctx context.Context, repo name.Repository, src string, d digest.Digest, depth int) error {
	if depth >= maxReferrerDepth {
		return nil
	}
	for _, r := range c.target.View().Referrers(src, d) {
		if _, _, err := c.manifest(ctx, repo, src, r, 0); err != nil && !errors.Is(err, errGone) {
			return fmt.Errorf("referrer %s of %s: %w", r, d, err)
		}
		if err := c.referrers(ctx, repo, src, r, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func (c *destClient) readManifest(ctx context.Context, d digest.Digest) ([]byte, error) {
	rc, _, err := c.target.Blobs.Open(ctx, d)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, fmt.Errorf("manifest %s: %w", d, errGone)
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", d, err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", d, err)
	}
	if len(raw) > maxManifest || d.Algorithm().FromBytes(raw) != d {
		return nil, fmt.Errorf("manifest %s in the blob store does not match its digest", d)
	}
	return raw, nil
}

// blob uploads blob d unless the destination has it (WriteLayer asks).
func (c *destClient) blob(ctx context.Context, repo name.Repository, d digest.Digest) error {
	info, err := c.target.Blobs.Stat(ctx, d)
	if errors.Is(err, blob.ErrNotFound) {
		return fmt.Errorf("blob %s: %w", d, errGone)
	}
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	l := &localLayer{ctx: ctx, c: c, d: d, size: info.Size}
	if err := remote.WriteLayer(repo, l, c.options(ctx)...); err != nil {
		return destError("blob "+repo.String()+"@"+d.String(), err)
	}
	return nil
}

// tags lists repository dst's tags at the destination; none when it does
// not exist there.
func (c *destClient) tags(ctx context.Context, dst string) ([]string, error) {
	repo, err := c.repo(dst)
	if err != nil {
		return nil, err
	}
	tags, err := remote.List(repo, c.options(ctx)...)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, destError("list tags of "+repo.String(), err)
	}
	return tags, nil
}

// deleteTag removes a tag at the destination, already gone is done.
func (c *destClient) deleteTag(ctx context.Context, dst, tag string) error {
	repo, err := c.repo(dst)
	if err != nil {
		return err
	}
	if err := remote.Delete(repo.Tag(tag), c.options(ctx)...); err != nil && !isNotFound(err) {
		return destError("delete tag "+repo.Tag(tag).String(), err)
	}
	return nil
}

// deleteManifest removes a manifest by digest at the destination.
func (c *destClient) deleteManifest(ctx context.Context, dst string, d digest.Digest) error {
	repo, err := c.repo(dst)
	if err != nil {
		return err
	}
	ref := repo.Digest(d.String())
	if err := remote.Delete(ref, c.options(ctx)...); err != nil && !isNotFound(err) {
		return destError("delete manifest "+ref.String(), err)
	}
	return nil
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// destError says what to do about the answers an operator can act on.
func destError(what string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("destination refused %s (%d): check the Registry's spec.credentials and the account's push rights: %w", what, te.StatusCode, err)
		case http.StatusMethodNotAllowed:
			return fmt.Errorf("destination does not allow %s (405): deletes must be enabled there (Distribution: storage.delete.enabled), or set deletion: false: %w", what, err)
		}
	}
	return fmt.Errorf("destination %s: %w", what, err)
}

// rawManifest is a manifest's exact bytes for remote.Put, so that the
// destination's digest is this cluster's.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// localLayer is a blob of the blob store as a v1.Layer for WriteLayer,
// read through the policy's bandwidth limit and counted.
type localLayer struct {
	ctx  context.Context
	c    *destClient
	d    digest.Digest
	size int64
}

func (l *localLayer) Digest() (v1.Hash, error) { return v1.NewHash(l.d.String()) }
func (l *localLayer) DiffID() (v1.Hash, error) { return v1.NewHash(l.d.String()) }
func (l *localLayer) Size() (int64, error)     { return l.size, nil }
func (l *localLayer) MediaType() (types.MediaType, error) {
	return types.MediaType("application/octet-stream"), nil
}
func (l *localLayer) Uncompressed() (io.ReadCloser, error) { return l.Compressed() }
func (l *localLayer) Compressed() (io.ReadCloser, error) {
	rc, _, err := l.c.target.Blobs.Open(l.ctx, l.d)
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", l.d, err)
	}
	r := &countingReader{r: l.c.limit.reader(l.ctx, rc), n: l.c.bytes}
	return readCloser{r, rc}, nil
}
