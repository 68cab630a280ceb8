package api_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/node"
)

// startNodeWith is startNode with changes to the default configuration.
// An upload session belongs to the repository it was started in: under
// any other name every request about it is 404 BLOB_UPLOAD_UNKNOWN and
// changes nothing.
func TestUploadSessionsBoundToRepository(t *testing.T) {
	c := client{t, startNode(t)}
	data := randomBytes(3000)
	d := digest.FromBytes(data)
	for _, tc := range []struct {
		name   string
		filled int // bytes the session holds when the other repository tries
	}{
		{"empty session", 0},
		{"session with bytes", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := client{t, c.base}
			loc := c.do("POST", "/v2/team-a/app/blobs/uploads/", nil, nil).hdr.Get("Location")
			if tc.filled > 0 {
				c.expect(c.do("PATCH", loc, map[string]string{"Content-Range": fmt.Sprintf("0-%d", tc.filled-1)}, data[:tc.filled]), 202, "")
			}
			id := loc[strings.LastIndex(loc, "/")+1:]
			for _, other := range []string{"team-b/app", "team-a/web", "team-a", "team-a/app/sub"} {
				at := "/v2/" + other + "/blobs/uploads/" + id
				for _, rq := range []struct {
					method, query string
					body          []byte
				}{
					{"GET", "", nil},
					{"PATCH", "", data[tc.filled:]},
					{"PUT", "?digest=" + digest.FromBytes(data[:tc.filled]).String(), nil},
					{"PUT", "?digest=" + d.String(), data[tc.filled:]},
					{"DELETE", "", nil},
				} {
					r := c.do(rq.method, at+rq.query, nil, rq.body)
					if r.code != 404 || r.errCode() != "BLOB_UPLOAD_UNKNOWN" {
						t.Errorf("%s %s%s: %d %s, want 404 BLOB_UPLOAD_UNKNOWN", rq.method, at, rq.query, r.code, r.body)
					}
				}
				c.expect(c.do("HEAD", "/v2/"+other+"/blobs/"+d.String(), nil, nil), 404, "")
			}
			r := c.do("GET", loc, nil, nil)
			c.expect(r, 204, "")
			if want := fmt.Sprintf("0-%d", max(tc.filled-1, 0)); r.hdr.Get("Range") != want {
				t.Fatalf("Range in its own repository: %q, want %q", r.hdr.Get("Range"), want)
			}
			c.expect(c.do("PUT", loc+"?digest="+d.String(), map[string]string{"Content-Range": fmt.Sprintf("%d-2999", tc.filled)}, data[tc.filled:]), 201, "")
			c.expect(c.do("HEAD", "/v2/team-a/app/blobs/"+d.String(), nil, nil), 200, "")
		})
	}
}

// A mount without `from` links only a blob that a repository of the same
// namespace (first path component) already has; otherwise it is an
// ordinary upload session (202), and the blob stays invisible.
func TestMountWithoutFromStaysInNamespace(t *testing.T) {
	c := client{t, startNode(t)}
	inTeamA := c.pushBlob("team-a/app", randomBytes(400))
	inSolo := c.pushBlob("solo", randomBytes(400))
	// The first link of this digest (in name order) is in another
	// namespace, so finding zzz's own needs more than the first one.
	spread := randomBytes(400)
	c.pushBlob("aaa/first", spread)
	c.pushBlob("zzz/one", spread)
	inZzz := digest.FromBytes(spread)
	for _, tc := range []struct {
		into    string
		blob    digest.Digest
		mounted bool
	}{
		{"team-a/web", inTeamA, true},
		{"team-a", inTeamA, true},
		{"team-a/deep/er", inTeamA, true},
		{"team-b/app", inTeamA, false},
		{"team-ab/app", inTeamA, false},
		{"team", inTeamA, false},
		{"solo/sub", inSolo, true},
		{"solo2", inSolo, false},
		{"zzz/two", inZzz, true},
		{"bbb/x", inZzz, false},
		{"team-a/web", digest.FromString("never pushed"), false},
	} {
		t.Run(tc.into, func(t *testing.T) {
			c := client{t, c.base}
			r := c.do("POST", "/v2/"+tc.into+"/blobs/uploads/?mount="+tc.blob.String(), nil, nil)
			head := c.do("HEAD", "/v2/"+tc.into+"/blobs/"+tc.blob.String(), nil, nil)
			if tc.mounted {
				c.expect(r, 201, "")
				c.expect(head, 200, "")
				return
			}
			c.expect(r, 202, "")
			c.expect(head, 404, "")
			loc := r.hdr.Get("Location")
			if !strings.HasPrefix(loc, "/v2/"+tc.into+"/blobs/uploads/") {
				t.Fatalf("fallback Location %q", loc)
			}
			c.expect(c.do("DELETE", loc, nil, nil), 204, "")
		})
	}
}

// The filesystem driver keeps at most limits.maxemptyuploads sessions
// without data; past that a POST gets 429 TOOMANYREQUESTS with
// Retry-After, and they expire after limits.emptyuploadttl.
func TestTooManyEmptyUploads(t *testing.T) {
	const ttl = 2 * time.Second
	c := client{t, startNodeWith(t, func(cfg *node.Config) {
		cfg.Limits.MaxEmptyUploads = 3
		cfg.Limits.EmptyUploadTTL = ttl
	})}
	var locs []string
	for range 3 {
		r := c.do("POST", "/v2/app/blobs/uploads/", nil, nil)
		c.expect(r, 202, "")
		locs = append(locs, r.hdr.Get("Location"))
	}
	r := c.do("POST", "/v2/app/blobs/uploads/", nil, nil)
	c.expect(r, 429, "TOOMANYREQUESTS")
	if s, err := strconv.Atoi(r.hdr.Get("Retry-After")); err != nil || s < 1 || s > int(ttl/time.Second) {
		t.Errorf("Retry-After %q, want 1..%d seconds", r.hdr.Get("Retry-After"), int(ttl/time.Second))
	}
	if !strings.Contains(string(r.body), "retry in") {
		t.Errorf("429 body does not say when to retry: %s", r.body)
	}
	// Uploads that need no session still work.
	c.pushBlob("app", randomBytes(100))
	// Finishing a session makes room.
	data := randomBytes(100)
	c.expect(c.do("PUT", locs[0]+"?digest="+digest.FromBytes(data).String(), nil, data), 201, "")
	c.expect(c.do("POST", "/v2/app/blobs/uploads/", nil, nil), 202, "")

	time.Sleep(ttl + 200*time.Millisecond)
	for _, loc := range locs[1:] {
		c.expect(c.do("GET", loc, nil, nil), 404, "BLOB_UPLOAD_UNKNOWN")
		c.expect(c.do("PUT", loc+"?digest="+digest.FromBytes(data).String(), nil, data), 404, "BLOB_UPLOAD_UNKNOWN")
	}
	for range 3 {
		c.expect(c.do("POST", "/v2/app/blobs/uploads/", nil, nil), 202, "")
	}
}

// rawRequest sends a request's head and the first part of its body over a
// plain TCP connection and leaves the connection open.
func rawRequest(t *testing.T, base, method, path string, length int64, part []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: registry\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", method, path, length)
	if _, err := conn.Write(append([]byte(head), part...)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readAnswer reads one response and then insists the server closes the
// connection, within limit.
func readAnswer(t *testing.T, conn net.Conn, limit time.Duration) (*http.Response, []byte) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(limit))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer within %s: %v", limit, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed after the answer: %v", err)
	}
	return resp, body
}

// A request body that stops arriving ends the request after
// limits.bodyreadtimeout, with a 408 and a closed connection; an upload
// keeps none of the partial chunk and continues. A slow body that keeps
// arriving is not cut off.
func TestStalledBodyEndsRequest(t *testing.T) {
	const timeout = time.Second
	base := startNodeWith(t, func(cfg *node.Config) { cfg.Limits.BodyReadTimeout = timeout })
	c := client{t, base}
	loc := c.do("POST", "/v2/app/blobs/uploads/", nil, nil).hdr.Get("Location")

	start := time.Now()
	conn := rawRequest(t, base, "PATCH", loc, 10<<30, make([]byte, 1024))
	resp, body := readAnswer(t, conn, timeout+5*time.Second)
	took := time.Since(start)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "BLOB_UPLOAD_INVALID") {
		t.Fatalf("stalled PATCH: %d %s, want 408 BLOB_UPLOAD_INVALID", resp.StatusCode, body)
	}
	if took < timeout*9/10 {
		t.Fatalf("stalled PATCH ended after %s, before the %s deadline", took, timeout)
	}
	r := c.do("GET", loc, nil, nil)
	c.expect(r, 204, "")
	if r.hdr.Get("Range") != "0-0" {
		t.Fatalf("after the stall the session reports Range %q: the partial chunk counted", r.hdr.Get("Range"))
	}
	data := randomBytes(5000)
	c.expect(c.do("PATCH", loc, nil, data), 202, "")
	c.expect(c.do("PUT", loc+"?digest="+digest.FromBytes(data).String(), nil, nil), 201, "")

	// Manifests too.
	conn = rawRequest(t, base, "PUT", "/v2/app/manifests/v1", 2000, []byte(`{"schemaVersion":`))
	resp, body = readAnswer(t, conn, timeout+5*time.Second)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "MANIFEST_INVALID") {
		t.Fatalf("stalled manifest PUT: %d %s, want 408 MANIFEST_INVALID", resp.StatusCode, body)
	}

	// One byte every 300ms for three times the deadline: slow, never
	// silent for long.
	loc = c.do("POST", "/v2/app/blobs/uploads/", nil, nil).hdr.Get("Location")
	slow := []byte("0123456789")
	conn = rawRequest(t, base, "PATCH", loc, int64(len(slow)), slow[:1])
	for _, b := range slow[1:] {
		time.Sleep(timeout * 3 / 10)
		if _, err := conn.Write([]byte{b}); err != nil {
			t.Fatalf("slow body cut off: %v", err)
		}
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != "0-9" {
		t.Fatalf("slow PATCH: %v %v", resp, err)
	}
}
