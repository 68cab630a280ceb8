package single

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/e2e/harness"
)

// TestRetentionDryRunThenRun: the dry run lists exactly the deletions the
// real run then makes; immutable tags survive both and refuse overwrite;
// the deletions are events with the actor retention:<name>.
func TestRetentionDryRunThenRun(t *testing.T) {
	data := t.TempDir()
	reg := startRegistryEnv(t, data, "", nil)
	crane, env := harness.Tool(t, "crane"), clientEnv(t)
	c := func(args ...string) string {
		return strings.TrimSpace(harness.Run(t, env, crane, append([]string{"--insecure"}, args...)...))
	}
	dir := t.TempDir()
	repo := reg.addr + "/team-a/app"
	// v1..v5 pushed in order, each its own image; latest on v5.
	for i := 1; i <= 5; i++ {
		f := writeFile(t, filepath.Join(dir, fmt.Sprintf("v%d.tar", i)), harness.TarWithFile("f.txt", []byte(fmt.Sprintf("image %d\n", i))))
		c("append", "-f", f, "-t", fmt.Sprintf("%s:v%d", repo, i))
	}
	c("tag", repo+":v5", "latest")
	ctl := harness.Tool(t, "clusterctl")
	cenv := []string{"BERTH_SERVER=http://" + reg.addr, "BERTH_TOKEN="}
	g := func(args ...string) string {
		return harness.Run(t, cenv, ctl, append([]string{"--token-file", filepath.Join(data, "admin.token")}, args...)...)
	}
	policy := writeFile(t, filepath.Join(dir, "policy.yaml"), []byte(`apiVersion: berth.dev/v1
kind: RetentionPolicy
metadata: {name: keep-two}
spec:
  repositories: ["team-a/**"]
  keepLast: 2
---
apiVersion: berth.dev/v1
kind: ImmutabilityRule
metadata: {name: first-release}
spec:
  repositories: ["team-a/**"]
  tags: ["v1"]
`))
	g("apply", "-f", policy)

	// Overwriting or deleting the immutable tag is refused with the rule.
	other := writeFile(t, filepath.Join(dir, "other.tar"), harness.TarWithFile("f.txt", []byte("other\n")))
	out, err := harness.RunErr(env, crane, "--insecure", "append", "-f", other, "-t", repo+":v1")
	if err == nil || !strings.Contains(out, "DENIED") || !strings.Contains(out, "first-release") {
		t.Errorf("overwriting an immutable tag: err=%v\n%s", err, out)
	}

	plan := func(args ...string) []string {
		var ans struct {
			Plan struct {
				Tags []struct {
					Repo string `json:"repository"`
					Tag  string `json:"tag"`
				} `json:"tags"`
			} `json:"plan"`
			DeletedTags int `json:"deletedTags"`
		}
		if err := json.Unmarshal([]byte(g(append([]string{"retention", "run", "keep-two", "-o", "json"}, args...)...)), &ans); err != nil {
			t.Fatal(err)
		}
		var tags []string
		for _, d := range ans.Plan.Tags {
			tags = append(tags, d.Repo+":"+d.Tag)
		}
		return tags
	}
	dry := plan("--dry-run")
	// keepLast 2 keeps latest and v5 (one image, pushed last); v1 is
	// immutable; v2, v3, v4 go.
	if want := []string{"team-a/app:v2", "team-a/app:v3", "team-a/app:v4"}; !slices.Equal(dry, want) {
		t.Fatalf("dry run plans %v, want %v", dry, want)
	}
	if got := c("ls", repo); strings.Count(got, "\n") != 5 {
		t.Fatalf("the dry run changed the tags:\n%s", got)
	}
	real := plan()
	if !slices.Equal(real, dry) {
		t.Errorf("the run deleted %v, the dry run listed %v", real, dry)
	}
	tags := strings.Fields(c("ls", repo))
	if want := []string{"latest", "v1", "v5"}; !slices.Equal(tags, want) {
		t.Errorf("tags after the run = %v, want %v", tags, want)
	}
	if again := plan("--dry-run"); len(again) != 0 {
		t.Errorf("a second dry run still plans %v", again)
	}
	// Every kept image still pulls.
	for _, tag := range []string{"latest", "v1", "v5"} {
		c("pull", repo+":"+tag, filepath.Join(dir, tag+".tar"))
	}
}
