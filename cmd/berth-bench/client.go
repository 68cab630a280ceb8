package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// client speaks the OCI Distribution API with plain net/http, so the
// numbers measure the registry, not a client library. With tokens set it
// follows the Docker token flow (tokens.go) as real clients do.
type client struct {
	base   string
	hc     *http.Client
	tokens *tokenSource
}

func newClient(base string, concurrency int) *client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        concurrency * 4,
		MaxIdleConnsPerHost: concurrency * 4,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &client{base: strings.TrimRight(base, "/"), hc: &http.Client{Transport: tr, Timeout: 5 * time.Minute}}
}

// withAuth makes the client answer Bearer challenges with tokens got
// with these Basic credentials.
func (c *client) withAuth(user, password string) *client {
	c.tokens = newTokenSource(c.hc, user, password)
	return c
}

// do sends a request and drains the answer, returning status, headers and
// the body (kept only when keep is true; otherwise just counted). With a
// token source, the repository's cached token goes up front, and a 401
// with a Bearer challenge is answered with a token and the request sent
// once more (a body must then be an io.Seeker, as bytes.Reader is).
// Requests that carry their own Authorization are left alone.
func (c *client) do(ctx context.Context, method, path string, hdr map[string]string, body io.Reader, size int64, keep bool) (int, http.Header, []byte, int64, error) {
	if c.tokens == nil || hdr["Authorization"] != "" {
		return c.send(ctx, method, path, hdr, "", body, size, keep)
	}
	code, rh, b, n, err := c.send(ctx, method, path, hdr, c.tokens.forPath(path), body, size, keep)
	if err != nil || code != http.StatusUnauthorized {
		return code, rh, b, n, err
	}
	seeker, rewindable := body.(io.Seeker)
	if body != nil && !rewindable {
		return code, rh, b, n, err
	}
	tok, ok, terr := c.tokens.answer(ctx, rh)
	if terr != nil {
		return code, rh, b, n, terr
	}
	if !ok {
		return code, rh, b, n, err
	}
	if seeker != nil {
		if _, err := seeker.Seek(0, io.SeekStart); err != nil {
			return code, rh, b, n, fmt.Errorf("rewind the body to retry with a token: %w", err)
		}
	}
	return c.send(ctx, method, path, hdr, tok, body, size, keep)
}

// send is one HTTP exchange, without the token flow; a non-empty token
// goes in the Authorization header.
func (c *client) send(ctx context.Context, method, path string, hdr map[string]string, token string, body io.Reader, size int64, keep bool) (int, http.Header, []byte, int64, error) {
	url := path
	if !strings.HasPrefix(path, "http") {
		url = c.base + path
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, nil, nil, 0, err
	}
	if size >= 0 && body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, 0, err
	}
	defer resp.Body.Close()
	if keep {
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b, int64(len(b)), err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header, nil, n, err
}

func sha(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

func expect(code, want int, what string, body []byte) error {
	if code != want {
		return fmt.Errorf("%s: status %d, want %d: %s", what, code, want, bytes.TrimSpace(body))
	}
	return nil
}

// location resolves an upload Location against the base URL.
func (c *client) location(loc string) string {
	if strings.HasPrefix(loc, "http") {
		return loc
	}
	return c.base + loc
}

func withParam(u, kv string) string {
	if strings.Contains(u, "?") {
		return u + "&" + kv
	}
	return u + "?" + kv
}

// pushBlob does what docker and crane do: HEAD, then POST and a
// monolithic PUT.
func (c *client) pushBlob(ctx context.Context, repo string, b []byte, digest string) error {
	code, _, _, _, err := c.do(ctx, "HEAD", "/v2/"+repo+"/blobs/"+digest, nil, nil, -1, false)
	if err != nil {
		return err
	}
	if code == http.StatusOK {
		return nil
	}
	code, hdr, body, _, err := c.do(ctx, "POST", "/v2/"+repo+"/blobs/uploads/", nil, nil, -1, true)
	if err != nil {
		return err
	}
	if err := expect(code, 202, "start upload", body); err != nil {
		return err
	}
	code, _, body, _, err = c.do(ctx, "PUT", withParam(c.location(hdr.Get("Location")), "digest="+digest),
		map[string]string{"Content-Type": "application/octet-stream"}, bytes.NewReader(b), int64(len(b)), true)
	if err != nil {
		return err
	}
	return expect(code, 201, "finish upload", body)
}

// pushChunked uploads b in chunks of chunk bytes with Content-Range.
func (c *client) pushChunked(ctx context.Context, repo string, b []byte, digest string, chunk int) error {
	code, hdr, body, _, err := c.do(ctx, "POST", "/v2/"+repo+"/blobs/uploads/", nil, nil, -1, true)
	if err != nil {
		return err
	}
	if err := expect(code, 202, "start upload", body); err != nil {
		return err
	}
	loc := c.location(hdr.Get("Location"))
	for off := 0; off < len(b); off += chunk {
		end := min(off+chunk, len(b))
		code, hdr, body, _, err = c.do(ctx, "PATCH", loc, map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", off, end-1),
		}, bytes.NewReader(b[off:end]), int64(end-off), true)
		if err != nil {
			return err
		}
		if err := expect(code, 202, "chunk", body); err != nil {
			return err
		}
		loc = c.location(hdr.Get("Location"))
	}
	code, _, body, _, err = c.do(ctx, "PUT", withParam(loc, "digest="+digest), nil, nil, 0, true)
	if err != nil {
		return err
	}
	return expect(code, 201, "close upload", body)
}

func (c *client) putManifest(ctx context.Context, repo, ref string, m []byte) error {
	code, _, body, _, err := c.do(ctx, "PUT", "/v2/"+repo+"/manifests/"+ref,
		map[string]string{"Content-Type": mediaManifest}, bytes.NewReader(m), int64(len(m)), true)
	if err != nil {
		return err
	}
	return expect(code, 201, "put manifest", body)
}

const (
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// manifest builds an OCI image manifest over a config and layers.
func manifest(config []byte, layers ...[]byte) []byte {
	ls := make([]any, len(layers))
	for i, l := range layers {
		ls[i] = map[string]any{"mediaType": mediaLayer, "digest": sha(l), "size": len(l)}
	}
	b, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": mediaManifest,
		"config": map[string]any{"mediaType": mediaConfig, "digest": sha(config), "size": len(config)},
		"layers": ls,
	})
	return b
}

// list reads a whole paginated listing (tags or catalog) the way clients
// do: pages of 1000 (CNCF Distribution's maximum), following Link headers.
// It returns the bytes read and how many entries the field held in total.
func (c *client) list(ctx context.Context, path, field string) (int64, int, error) {
	var total int64
	count := 0
	for path != "" {
		code, hdr, body, n, err := c.do(ctx, "GET", path, nil, nil, -1, true)
		if err != nil {
			return total, count, err
		}
		total += n
		if code != http.StatusOK {
			return total, count, fmt.Errorf("GET %s: status %d: %s", path, code, bytes.TrimSpace(body))
		}
		var page map[string]json.RawMessage
		var entries []string
		if err := json.Unmarshal(body, &page); err != nil || json.Unmarshal(page[field], &entries) != nil {
			return total, count, fmt.Errorf("GET %s: not a %s listing", path, field)
		}
		count += len(entries)
		path = nextPage(hdr.Get("Link"))
	}
	return total, count, nil
}

// nextPage extracts the target of a `<url>; rel="next"` Link header.
func nextPage(link string) string {
	if !strings.Contains(link, `rel="next"`) {
		return ""
	}
	start, end := strings.Index(link, "<"), strings.Index(link, ">")
	if start < 0 || end < start {
		return ""
	}
	return link[start+1 : end]
}
