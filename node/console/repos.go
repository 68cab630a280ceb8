package console

import (
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/fsm"
)

// Page sizes: the defaults, and the most one page may hold (a page of
// 10000 tags renders in well under a second).
const (
	defaultRepos = 100
	maxRepos     = 1000
	defaultTags  = 100
	maxTags      = 10000
	// tagCountCap bounds the tags counted per repository on the list.
	tagCountCap = 100
	// repoScanFactor bounds the names one page looks at, so a visitor
	// who may see few namespaces cannot make a page walk the whole
	// catalog: such a page comes back short, with a cursor to go on.
	repoScanFactor = 20
)

type repoRow struct {
	Name     string
	Tags     int
	MoreTags bool
}

type reposData struct {
	Rows []repoRow
	N    int
	Last string
	// Next is the cursor of the following page; "" on the last page.
	Next string
}

func (c *Console) repositories(s *session) (string, string, string, any, error) {
	n, err := limitParam(s.r, defaultRepos, maxRepos)
	if err != nil {
		return "", "", "", nil, err
	}
	last := s.r.URL.Query().Get("last")
	d := reposData{N: n, Last: last}
	cursor, scanned := last, 0
	for {
		if scanned >= n*repoScanFactor {
			d.Next = cursor
			break
		}
		names, more := s.v.Repositories(cursor, n)
		for _, name := range names {
			cursor = name
			scanned++
			if !s.canPull(name) {
				continue
			}
			tags, moreTags := s.v.Tags(name, "", tagCountCap)
			d.Rows = append(d.Rows, repoRow{Name: name, Tags: len(tags), MoreTags: moreTags})
			if len(d.Rows) == n {
				if rest, _ := s.v.Repositories(cursor, 1); len(rest) > 0 {
					d.Next = cursor
				}
				return "repositories.html", "Repositories", "repositories", d, nil
			}
		}
		if !more {
			break
		}
	}
	return "repositories.html", "Repositories", "repositories", d, nil
}

// Kinds of manifest, as the tables show them.
const (
	kindImage    = "image"
	kindIndex    = "index"
	kindArtifact = "artifact"
)

func isIndex(mediaType string) bool {
	return mediaType == "application/vnd.oci.image.index.v1+json" ||
		mediaType == "application/vnd.docker.distribution.manifest.list.v2+json"
}

// kindOf tells images from other artifacts. The FSM keeps, as the
// referrers API wants it, the artifactType or else the config's media
// type, so an image is a manifest whose "artifact type" is an image
// config.
func kindOf(m fsm.Manifest) string {
	switch {
	case isIndex(m.MediaType):
		return kindIndex
	case m.ArtifactType == "", m.ArtifactType == "application/vnd.oci.image.config.v1+json",
		m.ArtifactType == "application/vnd.docker.container.image.v1+json":
		return kindImage
	}
	return kindArtifact
}

// referrerBadge counts a manifest's referrers of one artifact type.
type referrerBadge struct {
	ArtifactType string
	Count        int
}

// summary is what the tables show of one manifest.
type summary struct {
	Repo      string
	Digest    digest.Digest
	MediaType string
	Kind      string
	Size      int64
	Platforms []string
	Created   time.Time
	Referrers []referrerBadge
	// MoreReferrers is set when there are more than the badges count.
	MoreReferrers bool
	// Cells is the summary's table cells, rendered once per manifest
	// rather than once per tag: most of a page's rendering time.
	Cells template.HTML
}

type tagRow struct {
	Tag string
	*summary
}

type repoData struct {
	Repo string
	Rows []tagRow
	N    int
	Last string
	Next string
}

// summaries computes manifest summaries once per digest for one page: a
// page of 10000 tags of a few manifests costs a few lookups.
type summaries struct {
	c    *Console
	s    *session
	repo string
	memo map[digest.Digest]*summary
	// reads bounds the manifests read from the blob store per page (for
	// an index's platforms); past it platforms are left out.
	reads int
}

const (
	maxPlatformReads  = 200
	referrersPerBadge = 50
)

func (m *summaries) of(d digest.Digest) *summary {
	if sm, ok := m.memo[d]; ok {
		return sm
	}
	sm := &summary{Repo: m.repo, Digest: d}
	m.memo[d] = sm
	defer m.render(sm)
	man, ok := m.s.v.Manifest(m.repo, d)
	if !ok {
		sm.Kind = "missing"
		return sm
	}
	sm.MediaType, sm.Kind, sm.Created = man.MediaType, kindOf(man), man.Created
	sm.Size = m.imageSize(man)
	if sm.Kind == kindIndex {
		sm.Size = man.Size
		for _, child := range man.Manifests {
			if cm, ok := m.s.v.Manifest(m.repo, child); ok {
				sm.Size += m.imageSize(cm)
			}
		}
		if m.reads < maxPlatformReads {
			m.reads++
			sm.Platforms = m.c.platformsOf(m.s.r.Context(), d, man.Size)
		}
	}
	refs, next := m.s.v.Referrers(m.repo, d, fsm.ReferrersQuery{Limit: referrersPerBadge})
	sm.MoreReferrers = next != ""
	for _, r := range refs {
		found := false
		for i := range sm.Referrers {
			if sm.Referrers[i].ArtifactType == r.ArtifactType {
				sm.Referrers[i].Count++
				found = true
			}
		}
		if !found {
			sm.Referrers = append(sm.Referrers, referrerBadge{ArtifactType: r.ArtifactType, Count: 1})
		}
	}
	return sm
}

func (m *summaries) render(sm *summary) {
	var b strings.Builder
	if err := m.c.pages["repository.html"].ExecuteTemplate(&b, "summary-cells", sm); err != nil {
		panic("console: summary-cells: " + err.Error()) // a template bug
	}
	sm.Cells = template.HTML(b.String()) // html/template escaped it
}

// imageSize is a manifest's own size plus its config and layers, as
// linked in the repository (what a pull of it transfers at most).
func (m *summaries) imageSize(man fsm.Manifest) int64 {
	size := man.Size
	for _, b := range man.Blobs {
		if l, ok := m.s.v.BlobLink(m.repo, b); ok {
			size += l.Size
		}
	}
	return size
}

func (c *Console) repository(s *session) (string, string, string, any, error) {
	q := s.r.URL.Query()
	repo := q.Get("name")
	if repo == "" {
		return "", "", "", nil, errorf(http.StatusBadRequest, "name the repository: %s?name=REPOSITORY", Prefix+"repository")
	}
	if !s.canPull(repo) || !s.v.RepositoryExists(repo) {
		return "", "", "", nil, errorf(http.StatusNotFound, "repository %q not found (or you may not pull it)", repo)
	}
	n, err := limitParam(s.r, defaultTags, maxTags)
	if err != nil {
		return "", "", "", nil, err
	}
	d := repoData{Repo: repo, N: n, Last: q.Get("last")}
	tags, more := s.v.Tags(repo, d.Last, n)
	sums := &summaries{c: c, s: s, repo: repo, memo: map[digest.Digest]*summary{}}
	d.Rows = make([]tagRow, 0, len(tags))
	for _, t := range tags {
		dg, _ := s.v.Tag(repo, t)
		d.Rows = append(d.Rows, tagRow{Tag: t, summary: sums.of(dg)})
	}
	if more && len(tags) > 0 {
		d.Next = tags[len(tags)-1]
	}
	return "repository.html", repo, "repositories", d, nil
}
