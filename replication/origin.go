package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
)

// maxManifest bounds a manifest read from the origin, as the API bounds a
// push (4 MiB by default).
const maxManifest = 8 << 20

// manifestAccept is every manifest type Berth stores.
var manifestAccept = strings.Join([]string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}, ", ")

// errGone is the origin's 404: the thing was deleted there since the event.
var errGone = errors.New("not found at the origin")

// originClient reads the origin's OCI API. Nothing it returns is trusted
// until checked against a digest: manifests here, blobs by blob.Store.Put.
type originClient struct {
	o     Origin
	limit *limiter
	// max bounds a manifest read; 0 is maxManifest. A proxy sets the
	// OCI API's limit, so it caches nothing a push could not store.
	max int64
}

func (c *originClient) get(ctx context.Context, path string, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.o.URL, "/")+path, nil)
	if err != nil {
		return nil, fmt.Errorf("origin request %s: %w", path, err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if c.o.Username != "" || c.o.Password != "" {
		req.SetBasicAuth(c.o.Username, c.o.Password)
	}
	hc := c.o.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("origin %s: %w", c.o.URL, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return resp, nil
	case resp.StatusCode == http.StatusNotFound:
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %w", path, errGone)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		resp.Body.Close()
		return nil, fmt.Errorf("origin %s refused GET %s with %s: check the Registry's spec.credentials", c.o.URL, path, resp.Status)
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("origin %s: GET %s: %s: %s", c.o.URL, path, resp.Status, strings.TrimSpace(string(b)))
	}
}

// manifest fetches a manifest by digest and checks its bytes against it.
func (c *originClient) manifest(ctx context.Context, repo string, d digest.Digest) ([]byte, string, error) {
	body, mt, err := c.manifestRef(ctx, repo, d.String())
	if err != nil {
		return nil, "", err
	}
	if err := d.Validate(); err != nil {
		return nil, "", fmt.Errorf("manifest %s: %w", d, err)
	}
	if got := d.Algorithm().FromBytes(body); got != d {
		return nil, "", fmt.Errorf("origin sent manifest %s of %s with digest %s: refused", d, repo, got)
	}
	return body, mt, nil
}

// manifestByTag fetches what a tag points at; the digest is computed from
// the bytes, never taken from a header.
func (c *originClient) manifestByTag(ctx context.Context, repo, tag string) (digest.Digest, error) {
	body, _, err := c.manifestRef(ctx, repo, tag)
	if err != nil {
		return "", err
	}
	return digest.FromBytes(body), nil
}

func (c *originClient) manifestRef(ctx context.Context, repo, ref string) ([]byte, string, error) {
	resp, err := c.get(ctx, "/v2/"+repo+"/manifests/"+ref, manifestAccept)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	limit := c.max
	if limit <= 0 {
		limit = maxManifest
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, "", fmt.Errorf("read manifest %s@%s from the origin: %w", repo, ref, err)
	}
	if int64(len(body)) > limit {
		return nil, "", fmt.Errorf("manifest %s@%s at the origin is over %d bytes", repo, ref, limit)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return body, mt, nil
}

// blob opens a blob's bytes at the origin, throttled by the policy's
// bandwidth; the caller verifies them while storing.
func (c *originClient) blob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error) {
	resp, err := c.get(ctx, "/v2/"+repo+"/blobs/"+d.String(), "")
	if err != nil {
		return nil, 0, err
	}
	return readCloser{c.limit.reader(ctx, resp.Body), resp.Body}, resp.ContentLength, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// catalog lists every repository, and the origin's applied index that
// answered the first page: everything committed up to it is listed.
func (c *originClient) catalog(ctx context.Context) ([]string, uint64, error) {
	var (
		repos []string
		index uint64
	)
	next := "/v2/_catalog?n=1000"
	for next != "" {
		var page struct {
			Repositories []string `json:"repositories"`
		}
		hdr, err := c.getJSON(ctx, next, &page)
		if err != nil {
			return nil, 0, err
		}
		if index == 0 {
			index, err = strconv.ParseUint(hdr.Get("Berth-Applied-Index"), 10, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("origin %s answered the catalog without a Berth-Applied-Index header: is it a Berth registry?", c.o.URL)
			}
		}
		repos = append(repos, page.Repositories...)
		next = nextLink(hdr)
	}
	return repos, index, nil
}

// tags lists every tag of repo at the origin.
func (c *originClient) tags(ctx context.Context, repo string) ([]string, error) {
	var tags []string
	next := "/v2/" + repo + "/tags/list?n=1000"
	for next != "" {
		var page struct {
			Tags []string `json:"tags"`
		}
		hdr, err := c.getJSON(ctx, next, &page)
		if err != nil {
			return nil, err
		}
		tags = append(tags, page.Tags...)
		next = nextLink(hdr)
	}
	return tags, nil
}

// referrers lists the manifests that refer to d at the origin.
func (c *originClient) referrers(ctx context.Context, repo string, d digest.Digest) ([]digest.Digest, error) {
	var out []digest.Digest
	next := "/v2/" + repo + "/referrers/" + d.String()
	for next != "" {
		var page struct {
			Manifests []struct {
				Digest digest.Digest `json:"digest"`
			} `json:"manifests"`
		}
		hdr, err := c.getJSON(ctx, next, &page)
		if err != nil {
			return nil, err
		}
		for _, m := range page.Manifests {
			out = append(out, m.Digest)
		}
		next = nextLink(hdr)
	}
	return out, nil
}

func (c *originClient) getJSON(ctx context.Context, path string, v any) (http.Header, error) {
	resp, err := c.get(ctx, path, "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return nil, fmt.Errorf("origin %s: GET %s: %w", c.o.URL, path, err)
	}
	return resp.Header, nil
}

// nextLink reads an RFC 5988 Link header's rel="next" target, as a path
// on the origin; "" when there is no next page.
func nextLink(h http.Header) string {
	l := h.Get("Link")
	if l == "" {
		return ""
	}
	start, end := strings.Index(l, "<"), strings.Index(l, ">")
	if start < 0 || end <= start || !strings.Contains(l[end:], `rel="next"`) {
		return ""
	}
	u, err := url.Parse(l[start+1 : end])
	if err != nil {
		return ""
	}
	return u.RequestURI()
}
