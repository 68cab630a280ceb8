package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/fsm"
)

// maxManifestBytes bounds a manifest read from the blob store (the OCI
// API refuses larger ones by default); maxRawBytes bounds the JSON shown.
const (
	maxManifestBytes = 4 << 20
	maxRawBytes      = 64 << 10
	maxTagsShown     = 100
	referrersPage    = 100
)

// descriptor is the part of an OCI descriptor the console shows.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     *struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Variant      string `json:"variant,omitempty"`
	} `json:"platform,omitempty"`
}

// PlatformString is os/arch[/variant], or "" without a platform.
func (d descriptor) PlatformString() string {
	if d.Platform == nil {
		return ""
	}
	s := d.Platform.OS + "/" + d.Platform.Architecture
	if d.Platform.Variant != "" {
		s += "/" + d.Platform.Variant
	}
	return s
}

// ociManifest is an image manifest, an index, or a Docker v2 manifest or
// list: the fields the console shows.
type ociManifest struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Config       *descriptor       `json:"config,omitempty"`
	Layers       []descriptor      `json:"layers,omitempty"`
	Manifests    []descriptor      `json:"manifests,omitempty"`
	Subject      *descriptor       `json:"subject,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// readManifest reads a manifest's bytes from the blob store.
func (c *Console) readManifest(ctx context.Context, d digest.Digest, size int64) ([]byte, error) {
	if size > maxManifestBytes {
		return nil, fmt.Errorf("manifest %s is %d bytes, more than the console reads (%d)", d, size, maxManifestBytes)
	}
	rc, _, err := c.cfg.Blobs.Open(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", d, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", d, err)
	}
	return b, nil
}

// platformCache remembers the platforms of indexes by digest: a digest's
// bytes never change, so an entry never goes stale. It is bounded; when
// full it starts over, which costs only re-reads.
type platformCache struct {
	mu  sync.Mutex
	m   map[digest.Digest][]string
	max int
}

func (p *platformCache) init(n int) { p.m, p.max = map[digest.Digest][]string{}, n }

// platformsOf lists an index's platforms (os/arch/variant), from the cache
// or the blob store; nil when they cannot be read.
func (c *Console) platformsOf(ctx context.Context, d digest.Digest, size int64) []string {
	c.platforms.mu.Lock()
	ps, ok := c.platforms.m[d]
	c.platforms.mu.Unlock()
	if ok {
		return ps
	}
	b, err := c.readManifest(ctx, d, size)
	if err != nil {
		c.cfg.Logger.Debug("console: platforms not read", "digest", d, "err", err)
		return nil
	}
	var m ociManifest
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	ps = []string{}
	for _, child := range m.Manifests {
		if p := child.PlatformString(); p != "" && p != "unknown/unknown" {
			ps = append(ps, p)
		}
	}
	c.platforms.mu.Lock()
	if len(c.platforms.m) >= c.platforms.max {
		clear(c.platforms.m)
	}
	c.platforms.m[d] = ps
	c.platforms.mu.Unlock()
	return ps
}

type annotation struct{ Key, Value string }

type layerRow struct {
	descriptor
	Linked bool
}

type childRow struct {
	descriptor
	Present bool
}

type manifestData struct {
	Repo        string
	Manifest    fsm.Manifest
	Kind        string
	Tags        []string
	MoreTags    bool
	Config      *layerRow
	Layers      []layerRow
	Children    []childRow
	Subject     *childRow
	Annotations []annotation
	Referrers   []fsm.Manifest
	After       digest.Digest
	Next        digest.Digest
	Total       int64
	Raw         string
	ReadError   string
}

func (c *Console) manifest(s *session) (string, string, string, any, error) {
	q := s.r.URL.Query()
	repo := q.Get("repo")
	d, err := digest.Parse(q.Get("digest"))
	if repo == "" || err != nil {
		return "", "", "", nil, errorf(http.StatusBadRequest, "name a repository and a manifest digest: %s?repo=REPOSITORY&digest=sha256:...", Prefix+"manifest")
	}
	var after digest.Digest
	if a := q.Get("after"); a != "" {
		if after, err = digest.Parse(a); err != nil {
			return "", "", "", nil, errorf(http.StatusBadRequest, "after %q is not a digest (the cursor of the previous page of referrers)", a)
		}
	}
	if !s.canPull(repo) {
		return "", "", "", nil, errorf(http.StatusNotFound, "repository %q not found (or you may not pull it)", repo)
	}
	m, ok := s.v.Manifest(repo, d)
	if !ok {
		return "", "", "", nil, errorf(http.StatusNotFound, "manifest %s not found in %s", d, repo)
	}
	md := manifestData{Repo: repo, Manifest: m, Kind: kindOf(m), After: after}
	md.Tags = s.v.TagsFor(repo, d)
	if len(md.Tags) > maxTagsShown {
		md.Tags, md.MoreTags = md.Tags[:maxTagsShown], true
	}
	md.Referrers, md.Next = s.v.Referrers(repo, d, fsm.ReferrersQuery{After: after, Limit: referrersPage})
	for k, v := range m.Annotations {
		md.Annotations = append(md.Annotations, annotation{k, v})
	}
	sort.Slice(md.Annotations, func(i, j int) bool { return md.Annotations[i].Key < md.Annotations[j].Key })

	b, err := c.readManifest(s.r.Context(), d, m.Size)
	if err != nil {
		md.ReadError = err.Error()
		return "manifest.html", shortDigest(d), "repositories", md, nil
	}
	var om ociManifest
	if err := json.Unmarshal(b, &om); err != nil {
		md.ReadError = "the manifest is not JSON: " + err.Error()
	}
	linked := func(desc descriptor) layerRow {
		_, ok := s.v.BlobLink(repo, desc.Digest)
		return layerRow{descriptor: desc, Linked: ok}
	}
	if om.Config != nil {
		r := linked(*om.Config)
		md.Config = &r
		md.Total = m.Size + r.Size
	}
	for _, l := range om.Layers {
		md.Layers = append(md.Layers, linked(l))
		md.Total += l.Size
	}
	for _, ch := range om.Manifests {
		_, ok := s.v.Manifest(repo, ch.Digest)
		md.Children = append(md.Children, childRow{descriptor: ch, Present: ok})
	}
	if om.Subject != nil {
		_, ok := s.v.Manifest(repo, om.Subject.Digest)
		md.Subject = &childRow{descriptor: *om.Subject, Present: ok}
	}
	if len(b) <= maxRawBytes {
		var pretty bytes.Buffer
		if json.Indent(&pretty, b, "", "  ") == nil {
			md.Raw = pretty.String()
		}
	}
	return "manifest.html", shortDigest(d), "repositories", md, nil
}
