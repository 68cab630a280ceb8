package single

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/e2e/harness"
)

const ciWebhook = `apiVersion: berth.dev/v1
kind: Webhook
metadata: {name: ci}
spec:
  url: https://ci.example.com/hooks/berth
  events: [manifest.pushed, tag.deleted]
  repositories: ["team-a/**"]
  signing: {secretRef: {name: ci-hook, key: hmac}}
`

// A webhook whose signing secret is missing from the default secrets
// directory (<datadir>/secrets) is applied, listed with STATUS
// SecretNotFound, and Ready once the file exists: no restart, no crash.
func TestClusterctlWebhookSecret(t *testing.T) {
	data := t.TempDir()
	reg := startRegistry(t, data, "")
	ctl := harness.Tool(t, "clusterctl")
	env := []string{"BERTH_SERVER=http://" + reg.addr, "BERTH_TOKEN="}
	c := func(args ...string) string {
		return harness.Run(t, env, ctl, append([]string{"--token-file", filepath.Join(data, "admin.token")}, args...)...)
	}
	file := writeFile(t, filepath.Join(t.TempDir(), "hooks.yaml"), []byte(ciWebhook))
	if out := c("apply", "-f", file); !strings.Contains(out, "webhook/ci created (generation 1)") {
		t.Fatalf("apply: %s", out)
	}
	if table := c("get", "webhooks"); !strings.Contains(table, "STATUS") || !strings.Contains(table, " SecretNotFound ") {
		t.Errorf("table without the secret:\n%s", table)
	}
	secret := filepath.Join(data, "secrets", "ci-hook", "hmac")
	if d := c("get", "webhook", "ci"); !strings.Contains(d, "SecretResolved=False (SecretNotFound)") || !strings.Contains(d, secret) {
		t.Errorf("details without the secret:\n%s", d)
	}
	if err := os.MkdirAll(filepath.Dir(secret), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, secret, []byte("e2e-hmac-key\n"))
	if table := c("get", "webhooks"); !strings.Contains(table, " Ready ") {
		t.Errorf("table with the secret:\n%s", table)
	}
	if y := c("get", "webhook", "ci", "-o", "yaml"); strings.Contains(y, "e2e-hmac-key") || !strings.Contains(y, "reason: SecretFound") {
		t.Errorf("yaml:\n%s", y)
	}
	if out := c("delete", "webhook", "ci"); !strings.Contains(out, "webhook/ci deleted") {
		t.Errorf("delete: %s", out)
	}
	if strings.Contains(reg.p.Out.String(), "e2e-hmac-key") {
		t.Error("the secret was logged")
	}
}
