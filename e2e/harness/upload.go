package harness

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Upload is one chunked blob upload session, driven the way the spec's
// chunked flow is: POST to open, PATCH with Content-Range per chunk, PUT
// with ?digest= to close. Tests use it to leave sessions half done.
type Upload struct {
	Base string // host:port the session was opened on
	// BaseURL is Base with the scheme it was opened with.
	BaseURL  string
	Location string // the session URL, as the registry last returned it
	Offset   int    // bytes the registry acknowledged so far
}

// StartUpload opens a session in repo (202 and a Location).
func StartUpload(ctx context.Context, base, repo string) (*Upload, error) {
	code, hdr, body, err := HTTPStatus(ctx, "POST", URL(ctx, base, fmt.Sprintf("/v2/%s/blobs/uploads/", repo)), nil, nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusAccepted || hdr.Get("Location") == "" {
		return nil, fmt.Errorf("open upload in %s: %d %s", repo, code, strings.TrimSpace(string(body)))
	}
	return &Upload{Base: base, BaseURL: URL(ctx, base, ""), Location: hdr.Get("Location")}, nil
}

// url resolves the session's Location (absolute or relative) with extra
// query parameters.
func (u *Upload) url(query url.Values) (string, error) {
	base, err := url.Parse(u.BaseURL + "/")
	if err != nil {
		return "", err
	}
	loc, err := base.Parse(u.Location)
	if err != nil {
		return "", fmt.Errorf("upload location %q: %w", u.Location, err)
	}
	q := loc.Query()
	for k, v := range query {
		q[k] = v
	}
	loc.RawQuery = q.Encode()
	return loc.String(), nil
}

// Patch sends the next chunk and records the offset the registry reports.
func (u *Upload) Patch(ctx context.Context, chunk []byte) error {
	target, err := u.url(nil)
	if err != nil {
		return err
	}
	code, hdr, body, err := HTTPStatus(ctx, "PATCH", target, map[string]string{
		"Content-Type":  "application/octet-stream",
		"Content-Range": fmt.Sprintf("%d-%d", u.Offset, u.Offset+len(chunk)-1),
	}, bytes.NewReader(chunk))
	if err != nil {
		return err
	}
	if code != http.StatusAccepted {
		return fmt.Errorf("patch at %d: %d %s", u.Offset, code, strings.TrimSpace(string(body)))
	}
	end, err := rangeEnd(hdr.Get("Range"))
	if err != nil {
		return fmt.Errorf("patch at %d: %w", u.Offset, err)
	}
	if end != u.Offset+len(chunk) {
		return fmt.Errorf("patch at %d of %d bytes: registry reports %d bytes", u.Offset, len(chunk), end)
	}
	u.Offset = end
	if loc := hdr.Get("Location"); loc != "" {
		u.Location = loc
	}
	return nil
}

// Finish closes the session with the blob's digest; 201 means committed.
func (u *Upload) Finish(ctx context.Context, digest string) error {
	target, err := u.url(url.Values{"digest": {digest}})
	if err != nil {
		return err
	}
	code, _, body, err := HTTPStatus(ctx, "PUT", target, map[string]string{"Content-Type": "application/octet-stream"}, nil)
	if err != nil {
		return err
	}
	if code != http.StatusCreated {
		return fmt.Errorf("close upload as %s: %d %s", digest, code, strings.TrimSpace(string(body)))
	}
	return nil
}

// Status asks the registry how far the session got: the status code and,
// on 204, the number of bytes it holds.
func (u *Upload) Status(ctx context.Context) (code, size int, err error) {
	target, err := u.url(nil)
	if err != nil {
		return 0, 0, err
	}
	code, hdr, _, err := HTTPStatus(ctx, "GET", target, nil, nil)
	if err != nil || code != http.StatusNoContent {
		return code, 0, err
	}
	size, err = rangeEnd(hdr.Get("Range"))
	return code, size, err
}

// rangeEnd turns an upload's "0-<last>" Range header into a byte count.
// An empty session reports "0-0" (the spec leaves it open), so 0-0 counts
// as empty; chunks in these tests are never a single byte.
func rangeEnd(h string) (int, error) {
	first, last, ok := strings.Cut(h, "-")
	if !ok || first != "0" {
		return 0, fmt.Errorf("upload Range header %q", h)
	}
	n, err := strconv.Atoi(last)
	if err != nil {
		return 0, fmt.Errorf("upload Range header %q", h)
	}
	if n == 0 {
		return 0, nil
	}
	return n + 1, nil
}

// PushChunked pushes the image like Push, but uploads every blob as
// two PATCH chunks before the closing PUT: the path where a session holds
// bytes on the registry between requests.
func (im Image) PushChunked(ctx context.Context, base string) error {
	for _, b := range [][]byte{im.Config, im.Layer} {
		u, err := StartUpload(ctx, base, im.Repo)
		if err != nil {
			return err
		}
		half := len(b) / 2
		for _, chunk := range [][]byte{b[:half], b[half:]} {
			if err := u.Patch(ctx, chunk); err != nil {
				return err
			}
		}
		if err := u.Finish(ctx, Sha(b)); err != nil {
			return err
		}
	}
	return im.putManifest(ctx, base)
}
