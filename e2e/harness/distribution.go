package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// distributionConfig runs CNCF Distribution on the filesystem with deletes
// on and the access log (Apache combined format) on its output, which the
// push tests count requests in.
const distributionConfig = `version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: %s
`

// Distribution is a CNCF Distribution registry process (bin/registry).
type Distribution struct {
	Addr string
	P    *Proc
}

// StartDistribution starts bin/registry on a free port under dir and waits
// until /v2/ answers.
func StartDistribution(t testing.TB, dir string) *Distribution {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	cfg := filepath.Join(dir, "distribution.yml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, distributionConfig, filepath.Join(dir, "distribution-data"), addr), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &Distribution{Addr: addr, P: StartProc(t, "distribution", Tool(t, "registry"), []string{"serve", cfg}, nil)}
	WaitFor(t, "distribution ready", 30*time.Second, func() error {
		if d.P.Exited() {
			t.Fatalf("distribution exited: %v\n%s", d.P.Err, Tail(d.P.Out.String(), 4000))
		}
		return GetOK("http://" + addr + "/v2/")
	})
	return d
}

// AccessLine is one line of Distribution's access log.
type AccessLine struct {
	Method, Path string
}

var accessLine = regexp.MustCompile(`"(GET|HEAD|PUT|POST|PATCH|DELETE) (/v2/[^ ]*) HTTP/[0-9.]+" (\d+)`)

// Requests parses the access log from byte offset from to byte offset to
// (-1: its end).
func (d *Distribution) Requests(from, to int) []AccessLine {
	out := d.P.Out.String()
	if to >= 0 && to < len(out) {
		out = out[:to]
	}
	if from > len(out) {
		from = len(out)
	}
	var reqs []AccessLine
	for _, m := range accessLine.FindAllStringSubmatch(out[from:], -1) {
		reqs = append(reqs, AccessLine{Method: m[1], Path: m[2]})
	}
	return reqs
}

// LogLen is the access log's length now, an offset for Requests.
func (d *Distribution) LogLen() int { return len(d.P.Out.String()) }

// Listing is every tag of repos at the registry and the digest it points
// at, read through the OCI API (HEAD with every manifest type accepted).
func Listing(ctx context.Context, base string, repos []string) (map[string]string, error) {
	out := map[string]string{}
	for _, repo := range repos {
		code, _, body, err := HTTPStatus(ctx, http.MethodGet, URL(ctx, base, "/v2/"+repo+"/tags/list?n=10000"), nil, nil)
		if err != nil {
			return nil, err
		}
		if code == http.StatusNotFound {
			continue
		}
		if code != http.StatusOK {
			return nil, fmt.Errorf("tags of %s: %d %s", repo, code, body)
		}
		var tl struct{ Tags []string }
		if err := json.Unmarshal(body, &tl); err != nil {
			return nil, err
		}
		for _, tag := range tl.Tags {
			code, hdr, _, err := HTTPStatus(ctx, http.MethodHead, URL(ctx, base, "/v2/"+repo+"/manifests/"+tag),
				map[string]string{"Accept": strings.Join([]string{MediaManifest, MediaIndex}, ", ")}, nil)
			if err != nil || code != http.StatusOK {
				return nil, fmt.Errorf("HEAD %s:%s: %d %v", repo, tag, code, err)
			}
			out[repo+":"+tag] = hdr.Get("Docker-Content-Digest")
		}
	}
	return out, nil
}
