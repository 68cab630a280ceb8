package harness

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
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

// distributionAuth turns htpasswd authentication on (appended to
// distributionConfig).
const distributionAuth = `auth:
  htpasswd:
    realm: upstream
    path: %s
`

// Distribution is a CNCF Distribution registry process (bin/registry).
type Distribution struct {
	Addr string
	P    *Proc
	// Env gives crane the credentials of a Distribution with
	// authentication on (DOCKER_CONFIG); empty without.
	Env []string
	cfg string
}

// StartDistribution starts bin/registry on a free port under dir and waits
// until /v2/ answers.
func StartDistribution(t testing.TB, dir string) *Distribution {
	t.Helper()
	return startDistribution(t, dir, "", "")
}

// StartDistributionWithAuth starts bin/registry with htpasswd
// authentication for one user (bcrypt, as `htpasswd -B` writes it): the
// upstream of a pull-through cache that wants credentials.
func StartDistributionWithAuth(t testing.TB, dir, user, password string) *Distribution {
	t.Helper()
	return startDistribution(t, dir, user, password)
}

func startDistribution(t testing.TB, dir, user, password string) *Distribution {
	t.Helper()
	d := &Distribution{Addr: fmt.Sprintf("127.0.0.1:%d", FreePort(t)), cfg: filepath.Join(dir, "distribution.yml")}
	cfg := fmt.Appendf(nil, distributionConfig, filepath.Join(dir, "distribution-data"), d.Addr)
	if user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		docker := filepath.Join(dir, "docker")
		auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
		if err := errors.Join(os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600), os.MkdirAll(docker, 0o700),
			os.WriteFile(filepath.Join(docker, "config.json"), fmt.Appendf(nil, `{"auths": {%q: {"auth": %q}}}`, d.Addr, auth), 0o600)); err != nil {
			t.Fatal(err)
		}
		cfg = fmt.Appendf(cfg, distributionAuth, htpasswd)
		d.Env = []string{"DOCKER_CONFIG=" + docker}
	}
	if err := os.WriteFile(d.cfg, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	d.Start(t)
	return d
}

// Start starts the process (again, after P.Stop) and waits until /v2/
// answers: 200, or 401 with authentication on.
func (d *Distribution) Start(t testing.TB) {
	t.Helper()
	d.P = StartProc(t, "distribution", Tool(t, "registry"), []string{"serve", d.cfg}, nil)
	want := http.StatusOK
	if d.Env != nil {
		want = http.StatusUnauthorized
	}
	WaitFor(t, "distribution ready", 30*time.Second, func() error {
		if d.P.Exited() {
			t.Fatalf("distribution exited: %v\n%s", d.P.Err, Tail(d.P.Out.String(), 4000))
		}
		ctx, cancel := Ctx(5 * time.Second)
		defer cancel()
		code, _, _, err := HTTPStatus(ctx, http.MethodGet, "http://"+d.Addr+"/v2/", nil, nil)
		if err == nil && code != want {
			err = fmt.Errorf("GET /v2/: %d, want %d", code, want)
		}
		return err
	})
}

// Push pushes a one-file image with content to repoTag at d (with d's
// credentials) and returns its digest.
func (d *Distribution) Push(t testing.TB, dir, repoTag, content string) string {
	t.Helper()
	layer := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(repoTag)+fmt.Sprint(len(content))+".tar")
	if err := os.WriteFile(layer, TarWithFile("f", []byte(content)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := Run(t, d.Env, Tool(t, "crane"), "append", "--insecure", "-f", layer, "-t", d.Addr+"/"+repoTag)
	return strings.TrimSpace(out[strings.LastIndex(out, "@")+1:])
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
