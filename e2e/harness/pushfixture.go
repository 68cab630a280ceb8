package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// PushFixture is what the push replication tests push to Berth and expect
// at the destination: tagged images over a few repositories, one
// multi-arch index (two platform images pushed by digest, the index by
// tag) and a cosign-style referrer (an artifact manifest whose subject is
// the first image, pushed by digest).
type PushFixture struct {
	Images   []LayeredImage
	Children []LayeredImage // of the index
	Index    []byte
	IndexRef string // repo:tag
	Referrer LayeredImage
	Repos    []string
}

// NewPushFixture builds n tagged artifacts (n-1 images and the index) in
// repositories under prefix, each image with a layer of its own of
// layerSize bytes.
func NewPushFixture(prefix string, n, layerSize int) PushFixture {
	f := PushFixture{}
	for i := range 5 {
		f.Repos = append(f.Repos, fmt.Sprintf("%s/app%d", prefix, i))
	}
	layer := func() []byte {
		b := make([]byte, layerSize)
		rand.Read(b)
		return b
	}
	for i := range n - 1 {
		repo := f.Repos[i%len(f.Repos)]
		f.Images = append(f.Images, NewLayeredImage(repo, fmt.Sprintf("v%d", i), fmt.Sprint(repo, i), [][]byte{layer()}, nil, ""))
	}
	repo := f.Repos[0]
	var descs []Descriptor
	for _, arch := range []string{"amd64", "arm64"} {
		c := NewLayeredImage(repo, "", "multi-"+arch, [][]byte{layer()}, nil, "")
		f.Children = append(f.Children, c)
		d := c.Descriptor()
		d.Platform = map[string]string{"os": "linux", "architecture": arch}
		descs = append(descs, d)
	}
	f.Index, _ = json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": MediaIndex, "manifests": descs})
	f.IndexRef = repo + ":multi"
	subject := f.Images[0].Descriptor()
	f.Referrer = NewLayeredImage(f.Images[0].Repo, "", "signature", [][]byte{[]byte(`{"critical":{"image":{"docker-manifest-digest":"` + subject.Digest + `"}}}`)},
		&subject, "application/vnd.dev.cosign.artifact.sig.v1+json")
	return f
}

// Push pushes everything through base: images, the index's children and
// the index, then the referrer.
func (f PushFixture) Push(ctx context.Context, base string) error {
	for _, im := range append(append([]LayeredImage{}, f.Images...), f.Children...) {
		if _, err := im.Push(ctx, base); err != nil {
			return err
		}
	}
	if err := PutManifest(ctx, base, f.Repos[0], "multi", MediaIndex, f.Index); err != nil {
		return err
	}
	_, err := f.Referrer.Push(ctx, base)
	return err
}

// Want is every repo:tag the destination must hold and its digest.
func (f PushFixture) Want(rename func(string) string) map[string]string {
	out := map[string]string{}
	for _, im := range f.Images {
		out[rename(im.Repo)+":"+im.Tag] = im.ManifestDigest
	}
	out[rename(f.Repos[0])+":multi"] = Sha(f.Index)
	return out
}

// Artifacts maps every manifest reference a push of the fixture uses (tag
// or digest) to the tagged artifact it belongs to, repo@digest: children
// belong to the index, the referrer to its subject.
func (f PushFixture) Artifacts(rename func(string) string) map[string]string {
	out := map[string]string{}
	for _, im := range f.Images {
		key := rename(im.Repo) + "@" + im.ManifestDigest
		out[rename(im.Repo)+"/manifests/"+im.Tag] = key
		out[rename(im.Repo)+"/manifests/"+im.ManifestDigest] = key
	}
	key := rename(f.Repos[0]) + "@" + Sha(f.Index)
	out[rename(f.Repos[0])+"/manifests/multi"] = key
	out[rename(f.Repos[0])+"/manifests/"+Sha(f.Index)] = key
	for _, c := range f.Children {
		out[rename(c.Repo)+"/manifests/"+c.ManifestDigest] = key
	}
	out[rename(f.Referrer.Repo)+"/manifests/"+f.Referrer.ManifestDigest] = rename(f.Images[0].Repo) + "@" + f.Images[0].ManifestDigest
	return out
}

// Check compares the destination at dest (host:port, plain HTTP) with the
// fixture under rename: every tag has the source's digest and nothing
// else is tagged, every image and the index's children pull back byte
// for byte, and the signature is found through the referrers tag scheme
// (Distribution has no referrers API: go-containerregistry keeps an index
// tagged sha256-<subject hex> there). gone are repo:tag (renamed) deleted
// at the source.
func (f PushFixture) Check(ctx context.Context, dest string, rename func(string) string, gone ...string) []error {
	ctx = WithClient(ctx, Client{}) // Distribution serves plain HTTP, whatever the cluster does
	var errs []error
	var repos []string
	for _, r := range f.Repos {
		repos = append(repos, rename(r))
	}
	want := f.Want(rename)
	for _, g := range gone {
		delete(want, g)
	}
	got, err := Listing(ctx, dest, repos)
	if err != nil {
		return []error{err}
	}
	fallback := strings.Replace(f.Images[0].ManifestDigest, ":", "-", 1)
	delete(got, rename(f.Images[0].Repo)+":"+fallback)
	for k, d := range want {
		if g, ok := got[k]; !ok {
			errs = append(errs, fmt.Errorf("missing %s at the destination", k))
		} else if g != d {
			errs = append(errs, fmt.Errorf("%s is %s at the destination, %s at the source", k, g, d))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			errs = append(errs, fmt.Errorf("extra %s at the destination", k))
		}
	}
	for _, im := range append(append([]LayeredImage{}, f.Images...), f.Children...) {
		if im.Tag != "" && slices.Contains(gone, rename(im.Repo)+":"+im.Tag) {
			continue
		}
		im.Repo = rename(im.Repo)
		if err := im.Verify(ctx, dest); err != nil {
			errs = append(errs, fmt.Errorf("at the destination: %w", err))
		}
	}
	ref := f.Referrer
	ref.Repo = rename(ref.Repo)
	if err := ref.Verify(ctx, dest); err != nil {
		errs = append(errs, fmt.Errorf("referrer at the destination: %w", err))
	}
	code, _, body, err := HTTPStatus(ctx, http.MethodGet, "http://"+dest+"/v2/"+ref.Repo+"/manifests/"+fallback,
		map[string]string{"Accept": MediaIndex}, nil)
	if err != nil || code != http.StatusOK || !bytes.Contains(body, []byte(ref.ManifestDigest)) {
		errs = append(errs, fmt.Errorf("the destination's referrers of %s (tag %s): %d %v %s, want %s listed", f.Images[0].ManifestDigest, fallback, code, err, body, ref.ManifestDigest))
	}
	if err := VerifyManifest(ctx, dest, rename(f.Repos[0]), "multi", MediaIndex, f.Index); err != nil {
		errs = append(errs, fmt.Errorf("index at the destination: %w", err))
	}
	return errs
}
