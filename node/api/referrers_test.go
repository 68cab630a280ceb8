package api_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/node"
)

var nextRe = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// referrerPages follows the Link headers from path and returns each page's
// digests.
func (c client) referrerPages(path string) (pages [][]string) {
	c.t.Helper()
	for path != "" && len(pages) < 100 {
		r := c.do("GET", path, nil, nil)
		c.expect(r, 200, "")
		var idx struct {
			MediaType string `json:"mediaType"`
			Manifests []struct {
				Digest       string `json:"digest"`
				ArtifactType string `json:"artifactType"`
			} `json:"manifests"`
		}
		if err := json.Unmarshal(r.body, &idx); err != nil || idx.MediaType != "application/vnd.oci.image.index.v1+json" {
			c.t.Fatalf("page %s: not an image index (%v): %s", path, err, r.body)
		}
		var page []string
		for _, m := range idx.Manifests {
			page = append(page, m.Digest)
		}
		pages = append(pages, page)
		path = ""
		if link := r.hdr.Get("Link"); link != "" {
			m := nextRe.FindStringSubmatch(link)
			if m == nil {
				c.t.Fatalf("Link %q is not <url>; rel=\"next\"", link)
			}
			path = m[1]
		}
		if q, _ := url.ParseQuery(strings.SplitN(path+"?", "?", 2)[1]); path != "" && strings.Contains(r.hdr.Get("OCI-Filters-Applied"), "artifactType") && q.Get("artifactType") == "" {
			c.t.Errorf("the next Link of a filtered page drops the filter: %s", path)
		}
	}
	return pages
}

// TestReferrersArePaginated: a subject with more referrers than a page
// holds is served in bounded pages joined by Link headers, as the spec's
// "Listing Referrers" asks, with and without an artifactType filter.
func TestReferrersArePaginated(t *testing.T) {
	const pageSize, count = 5, 23
	c := client{t, startNodeWith(t, func(cfg *node.Config) { cfg.Limits.ReferrersPageSize = pageSize })}
	subject := c.image("refs", nil)
	c.expect(c.do("PUT", "/v2/refs/manifests/base", ct(ociManifest), subject), 201, "")
	empty := []byte("{}")
	c.pushBlob("refs", empty)
	var all, sigs []string
	for i := range count {
		at := "application/vnd.example.sbom"
		if i%2 == 1 {
			at = "application/vnd.example.sig"
		}
		art, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": ociManifest, "artifactType": at,
			"config": descriptor("application/vnd.oci.empty.v1+json", empty), "layers": []any{},
			"subject": descriptor(ociManifest, subject), "annotations": map[string]string{"n": fmt.Sprint(i)}})
		d := digest.FromBytes(art).String()
		c.expect(c.do("PUT", "/v2/refs/manifests/"+d, ct(ociManifest), art), 201, "")
		all = append(all, d)
		if i%2 == 1 {
			sigs = append(sigs, d)
		}
	}
	slices.Sort(all)
	slices.Sort(sigs)
	base := "/v2/refs/referrers/" + digest.FromBytes(subject).String()

	for _, tc := range []struct {
		name  string
		path  string
		want  []string
		pages int
	}{
		{"unfiltered", base, all, 5},
		{"filtered", base + "?artifactType=" + url.QueryEscape("application/vnd.example.sig"), sigs, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := client{t, c.base}
			pages := c.referrerPages(tc.path)
			var got []string
			for i, p := range pages {
				if len(p) > pageSize {
					t.Errorf("page %d has %d descriptors, more than the page size %d", i, len(p), pageSize)
				}
				got = append(got, p...)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("pages %v\nwant (in digest order) %v", pages, tc.want)
			}
			if tc.pages > 0 && len(pages) != tc.pages {
				t.Errorf("%d pages, want %d", len(pages), tc.pages)
			}
		})
	}
	c.expect(c.do("GET", base+"?last=nope", nil, nil), 400, "DIGEST_INVALID")
}
