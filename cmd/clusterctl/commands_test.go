package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/node/admin"
)

// fsmNode serves the real admin API over a real FSM; Propose applies each
// event as the next log entry, as a single node does once Raft commits it.
type fsmNode struct {
	mu    sync.Mutex
	f     *fsm.FSM
	index uint64
	// refuse names a resource whose document Apply is made to refuse, as
	// a check only Apply can make (one that depends on state) would.
	refuse string
}

func (n *fsmNode) spoil(r events.ResourceApplied) events.ResourceApplied {
	if r.Name == n.refuse {
		r.Document = []byte(`"not an object"`)
	}
	return r
}

func (n *fsmNode) Propose(ctx context.Context, p events.Payload) (uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch q := p.(type) {
	case events.ResourceApplied:
		p = n.spoil(q)
	case events.ResourcesApplied:
		rs := make([]events.ResourceApplied, len(q.Resources))
		for i, r := range q.Resources {
			rs[i] = n.spoil(r)
		}
		p = events.ResourcesApplied{Resources: rs}
	}
	b, err := events.Encode(events.Event{Time: time.Now().UTC(), Origin: events.OriginFrom(ctx), Payload: p})
	if err != nil {
		return 0, err
	}
	n.index++
	if err, ok := n.f.Apply(&raft.Log{Index: n.index, Type: raft.LogCommand, Data: b}).(error); ok && err != nil {
		return n.index, err
	}
	return n.index, nil
}

func (n *fsmNode) ReadView(context.Context) (*fsm.View, error) { return n.f.View(), nil }

const testToken = "t0ken"

// cli runs clusterctl commands against an in-process admin API.
type cli struct {
	t   *testing.T
	env map[string]string
}

func newCLI(t *testing.T) *cli {
	c, _ := newCLIWithNode(t)
	return c
}

func newCLIWithNode(t *testing.T) (*cli, *fsmNode) {
	n := &fsmNode{f: fsm.New(slog.New(slog.DiscardHandler))}
	srv := httptest.NewServer(admin.New(testToken, n, n, nil))
	t.Cleanup(srv.Close)
	return &cli{t: t, env: map[string]string{"BERTH_SERVER": srv.URL, "BERTH_TOKEN": testToken}}, n
}

func (c *cli) run(stdin string, args ...string) (string, error) {
	c.t.Helper()
	root := newRoot(env(c.env))
	var out bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func (c *cli) ok(stdin string, args ...string) string {
	c.t.Helper()
	out, err := c.run(stdin, args...)
	if err != nil {
		c.t.Fatalf("clusterctl %v: %v\n%s", args, err, out)
	}
	return out
}

func (c *cli) fails(stdin, want string, args ...string) {
	c.t.Helper()
	out, err := c.run(stdin, args...)
	if err == nil {
		c.t.Fatalf("clusterctl %v succeeded:\n%s", args, out)
	}
	if !strings.Contains(err.Error(), want) {
		c.t.Errorf("clusterctl %v: error %q does not mention %q", args, err, want)
	}
}

const regs = `apiVersion: berth.dev/v1
kind: Registry
metadata:
  name: hub
  description: Docker Hub
spec:
  type: dockerhub
  credentials: {type: basic, secretRef: {name: hub-creds}}
---
apiVersion: berth.dev/v1
kind: Registry
metadata:
  name: zot
spec:
  type: zot
  url: http://zot.internal:5000
  insecure: true
`

// When Apply refuses the second document of a file, clusterctl says that
// nothing was applied, reports no document as applied, and none is.
func TestApplyRefusedDocumentAppliesNothing(t *testing.T) {
	c, n := newCLIWithNode(t)
	n.refuse = "zot"
	out, err := c.run(regs, "apply", "-f", "-")
	if err == nil || !strings.Contains(err.Error(), "nothing was applied") || !strings.Contains(err.Error(), `Registry "zot" was refused`) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(out, "created") {
		t.Errorf("output claims a document was applied:\n%s", out)
	}
	if out, _ := c.run("", "get", "registries"); strings.Contains(out, "hub") {
		t.Errorf("a document of the refused file was applied:\n%s", out)
	}
}

func TestApplyGetDelete(t *testing.T) {
	c := newCLI(t)
	file := filepath.Join(t.TempDir(), "regs.yaml")
	if err := os.WriteFile(file, []byte(regs), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("", "apply", "-f", file); out != "registry/hub created (generation 1)\nregistry/zot created (generation 1)\n" {
		t.Errorf("apply:\n%s", out)
	}
	if out := c.ok("", "apply", "-f", file); out != "registry/hub unchanged (generation 1)\nregistry/zot unchanged (generation 1)\n" {
		t.Errorf("re-apply:\n%s", out)
	}

	table := c.ok("", "get", "registries")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME ") || !strings.HasPrefix(lines[1], "hub ") ||
		!strings.Contains(lines[1], "https://registry-1.docker.io") || !strings.HasPrefix(lines[2], "zot ") {
		t.Errorf("table:\n%s", table)
	}
	if d := c.ok("", "get", "reg", "hub"); !strings.Contains(d, "Registry Details\n") || !strings.Contains(d, "Description: Docker Hub\n") ||
		!strings.Contains(d, "Credentials: basic (secret hub-creds)\n") {
		t.Errorf("details:\n%s", d)
	}

	// What get -o yaml prints applies back unchanged; edited, it
	// configures a new generation.
	y := c.ok("", "get", "registry", "hub", "-o", "yaml")
	if out := c.ok(y, "apply", "-f", "-"); out != "registry/hub unchanged (generation 1)\n" {
		t.Errorf("apply of get -o yaml:\n%s", out)
	}
	if out := c.ok(strings.Replace(y, "Docker Hub", "Docker Hub mirror", 1), "apply", "-f", "-"); out != "registry/hub configured (generation 2)\n" {
		t.Errorf("apply of edited yaml:\n%s", out)
	}
	all := c.ok("", "get", "registries", "-o", "yaml")
	if out := c.ok(all, "apply", "-f", "-"); strings.Count(out, "unchanged") != 2 {
		t.Errorf("apply of get registries -o yaml:\n%s", out)
	}
	if h := c.ok("", "history", "registry", "hub", "-o", "table"); !strings.Contains(h, "GENERATION") || strings.Count(h, "\n") != 3 {
		t.Errorf("history:\n%s", h)
	}

	if out := c.ok("", "delete", "registry", "zot"); out != "registry/zot deleted\n" {
		t.Errorf("delete: %q", out)
	}
	c.fails("", `Registry "zot" not found`, "get", "registry", "zot")
	c.fails("", `Registry "zot" does not exist`, "delete", "registry", "zot")
	c.fails("", `unknown kind "widgets"`, "get", "widgets")
	if table := c.ok("", "get", "registries"); strings.Contains(table, "zot") {
		t.Errorf("deleted registry still listed:\n%s", table)
	}
}

func TestApplyShowsEveryProblem(t *testing.T) {
	c := newCLI(t)
	bad := regs + "---\napiVersion: berth.dev/v1\nkind: Registry\nmetadata: {name: Bad_Name}\nspec: {type: nope, url: 'ftp://x'}\n"
	file := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := c.run("", "apply", "-f", file)
	if err == nil || out != "" {
		t.Fatalf("apply of an invalid file: %v\n%s", err, out)
	}
	for _, want := range []string{file + ": invalid resources, nothing was applied", "document 3 (line 19)", "metadata.name:", "spec.type:", "spec.url:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if table := c.ok("", "get", "registries"); table != "No resources found.\n" {
		t.Errorf("something was applied:\n%s", table)
	}
}

func TestUsageErrors(t *testing.T) {
	c := newCLI(t)
	c.fails("", "apply needs -f FILE", "apply")
	c.fails("", "open resources", "apply", "-f", filepath.Join(t.TempDir(), "missing.yaml"))
	c.fails("", "get needs a kind", "get")
	c.fails("", "delete needs a kind and a name", "delete", "registry")
	c.fails("", `unknown output format "xml": use yaml, json or wide`, "get", "registries", "-o", "xml")

	c.env["BERTH_TOKEN"] = "wrong"
	c.fails("", "admin token missing or wrong", "get", "registries")
	// An explicit --token-file beats BERTH_TOKEN.
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("", "--token-file", tokenFile, "get", "registries")
	c.ok("", "get", "registries", "--token", testToken)

	c.env["BERTH_TOKEN"] = ""
	t.Chdir(t.TempDir())
	c.fails("", "no admin token: pass --token, set BERTH_TOKEN, or run from the directory holding data/admin.token", "get", "registries")

	c.env["BERTH_SERVER"] = "http://127.0.0.1:1"
	c.fails("", "cannot reach http://127.0.0.1:1", "get", "registries", "--token", "x")
}
