package single

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/e2e/harness"
)

const registries = `apiVersion: berth.dev/v1
kind: Registry
metadata:
  name: dockerhub
  labels: {team: platform}
spec:
  type: dockerhub
  url: https://registry-1.docker.io
  description: Docker Hub
  credentials: {type: basic, secretRef: {name: dockerhub-creds}}
---
apiVersion: berth.dev/v1
kind: Registry
metadata:
  name: local-zot
spec:
  type: zot
  url: http://zot.internal:5000
  insecure: true
`

func TestClusterctlResources(t *testing.T) {
	data := t.TempDir()
	reg := startRegistry(t, data, "")
	ctl := harness.Tool(t, "clusterctl")
	env := []string{"BERTH_SERVER=http://" + reg.addr, "BERTH_TOKEN="}
	tokenFile := filepath.Join(data, "admin.token")
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v (mode %v)", err, fi.Mode())
	}
	c := func(args ...string) string {
		return harness.Run(t, env, ctl, append([]string{"--token-file", tokenFile}, args...)...)
	}
	file := writeFile(t, filepath.Join(t.TempDir(), "regs.yaml"), []byte(registries))

	out := c("apply", "-f", file)
	if !strings.Contains(out, "registry/dockerhub created (generation 1)") || !strings.Contains(out, "registry/local-zot created") {
		t.Errorf("first apply: %s", out)
	}
	if out := c("apply", "-f", file); strings.Count(out, "unchanged (generation 1)") != 2 {
		t.Errorf("re-apply must change nothing: %s", out)
	}
	writeFile(t, file, []byte(strings.Replace(registries, "description: Docker Hub", "description: Docker Hub mirror", 1)))
	if out := c("apply", "-f", file); !strings.Contains(out, "registry/dockerhub configured (generation 2)") {
		t.Errorf("changed apply: %s", out)
	}

	table := c("get", "registries")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "dockerhub") || !strings.Contains(lines[1], "https://registry-1.docker.io") {
		t.Errorf("table:\n%s", table)
	}
	if wide := c("get", "registries", "-o", "wide"); !strings.Contains(wide, "DESCRIPTION") || !strings.Contains(wide, "Docker Hub mirror") || !strings.Contains(wide, "team=platform") {
		t.Errorf("wide:\n%s", wide)
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name       string
				Generation int
			}
		}
	}
	if err := json.Unmarshal([]byte(c("get", "registries", "-o", "json")), &list); err != nil || len(list.Items) != 2 || list.Items[0].Metadata.Generation != 2 {
		t.Errorf("json: %v %+v", err, list)
	}
	if y := c("get", "registry", "dockerhub", "-o", "yaml"); !strings.Contains(y, "generation: 2") || !strings.Contains(y, "kind: Registry") {
		t.Errorf("yaml:\n%s", y)
	}
	if d := c("get", "registry", "dockerhub"); !strings.Contains(d, "Name:") || !strings.Contains(d, "dockerhub") {
		t.Errorf("details:\n%s", d)
	}
	if out := c("delete", "registry", "local-zot"); !strings.Contains(out, "registry/local-zot deleted") {
		t.Errorf("delete: %s", out)
	}
	if table := c("get", "registries"); strings.Contains(table, "local-zot") {
		t.Errorf("deleted registry still listed:\n%s", table)
	}

	fail := func(stdin string, extraEnv []string, args ...string) string {
		cmd := exec.Command(ctl, args...)
		cmd.Env = append(append(os.Environ(), env...), extraEnv...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("clusterctl %v succeeded: %s", args, out)
		}
		return string(out)
	}
	bad := "apiVersion: berth.dev/v1\nkind: Registry\nmetadata: {name: Bad_Name}\nspec: {type: nope, url: ftp://x}\n"
	out = fail(bad, nil, "--token-file", tokenFile, "apply", "-f", "-")
	for _, want := range []string{"nothing was applied", "metadata.name", "spec.type", "spec.url"} {
		if !strings.Contains(out, want) {
			t.Errorf("invalid apply error lacks %q:\n%s", want, out)
		}
	}
	out = fail("", nil, "--token-file", tokenFile, "delete", "registry", "nope")
	if !strings.Contains(out, "does not exist") {
		t.Errorf("delete unknown: %s", out)
	}
	out = fail("", []string{"BERTH_TOKEN=wrong"}, "get", "registries")
	if !strings.Contains(out, "admin token missing or wrong") {
		t.Errorf("wrong token (401) not explained: %s", out)
	}
	out = fail("", nil, "--token-file", filepath.Join(t.TempDir(), "none"), "get", "registries")
	if !strings.Contains(out, "no admin token") {
		t.Errorf("missing token: %s", out)
	}
}
