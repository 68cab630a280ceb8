package single

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// hookRequest is one delivery attempt a receiver saw, with its answer.
type hookRequest struct {
	header http.Header
	body   []byte
	status int
}

// receiver is a webhook endpoint on loopback whose answer the test sets.
type receiver struct {
	url    string
	mu     sync.Mutex
	reqs   []hookRequest
	answer func() int
}

func newReceiver(t *testing.T, answer func() int) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{url: "http://" + ln.Addr().String() + "/hook", answer: answer}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		code := r.answer()
		r.mu.Lock()
		r.reqs = append(r.reqs, hookRequest{header: req.Header.Clone(), body: body, status: code})
		r.mu.Unlock()
		w.WriteHeader(code)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *receiver) requests() []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// deliveredIDs are the Berth-Event-Ids the receiver answered with a 2xx,
// each counted.
func (r *receiver) deliveredIDs() map[string]int {
	ids := map[string]int{}
	for _, q := range r.requests() {
		if q.status >= 200 && q.status < 300 {
			ids[q.header.Get("Berth-Event-Id")]++
		}
	}
	return ids
}

// ctl runs clusterctl against reg with the node's token file.
type ctl struct {
	t   *testing.T
	bin string
	env []string
	tok string
}

func newCtl(t *testing.T, reg *registry) *ctl {
	return &ctl{t: t, bin: harness.Tool(t, "clusterctl"), env: []string{"BERTH_SERVER=http://" + reg.addr, "BERTH_TOKEN="},
		tok: filepath.Join(reg.dataDir, "admin.token")}
}

func (c *ctl) run(args ...string) string {
	c.t.Helper()
	return harness.Run(c.t, c.env, c.bin, append([]string{"--token-file", c.tok}, args...)...)
}

func (c *ctl) apply(doc string) {
	c.t.Helper()
	file := writeFile(c.t, filepath.Join(c.t.TempDir(), "hook.yaml"), []byte(doc))
	c.run("apply", "-f", file)
}

// clusterID is the cluster's ID as the event stream names it (the source
// of a CloudEvent, berth://<id>), read with clusterctl events.
func (c *ctl) clusterID() string {
	c.t.Helper()
	out := c.run("events", "--since", "0", "--limit", "1", "-o", "json")
	var ce struct {
		Source string `json:"source"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &ce); err != nil || !strings.HasPrefix(ce.Source, "berth://") {
		c.t.Fatalf("clusterctl events: no event with a berth:// source: %v\n%s", err, out)
	}
	return strings.TrimPrefix(ce.Source, "berth://")
}

// writeSecret writes the secret file a secretRef {name, key} names in the
// default secrets directory.
func writeSecret(t *testing.T, data, name, key, value string) string {
	t.Helper()
	p := filepath.Join(data, "secrets", name, key)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	return writeFile(t, p, []byte(value))
}

// pushIndexed pushes repo:tag and returns the acknowledged write's index.
func pushIndexed(t *testing.T, addr, repo, tag string) uint64 {
	t.Helper()
	ctx, cancel := harness.Ctx(20 * time.Second)
	defer cancel()
	idx, err := harness.NewImage(repo, tag).PushIndexed(ctx, addr)
	if err != nil {
		t.Fatalf("push %s:%s: %v", repo, tag, err)
	}
	return idx
}

// readmeVerify is the Go recipe of README.md "Verifying a signature",
// copied as it stands there, so that this test checks what users are told.
func readmeVerify(secret, body []byte, header string, now time.Time) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(t, 0)).Abs() > 5*time.Minute {
		return errors.New("missing or stale timestamp")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("bad signature")
	}
	return nil
}

// readmeShellRecipe extracts the verify.sh block from README.md.
func readmeShellRecipe(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "#### Verifying a signature")
	if ok {
		_, rest, ok = strings.Cut(rest, "```sh\n")
	}
	var script string
	if ok {
		script, _, ok = strings.Cut(rest, "```")
	}
	if !ok || !strings.Contains(script, "openssl dgst") {
		t.Fatal("README.md has no ```sh block with openssl dgst under \"Verifying a signature\"")
	}
	return script
}

// waitDelivered waits until the receiver answered a 2xx for every id.
func waitDelivered(t *testing.T, r *receiver, want []string, timeout time.Duration) {
	t.Helper()
	harness.WaitFor(t, "webhook deliveries", timeout, func() error {
		got := r.deliveredIDs()
		var missing []string
		for _, id := range want {
			if got[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d events not delivered yet, e.g. %v", len(missing), len(want), missing[:min(3, len(missing))])
		}
		return nil
	})
}
