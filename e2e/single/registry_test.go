// Package single drives one registryd, the single-node default, with real
// clients: crane, regctl, the Docker CLI and engine, and clusterctl; and
// kills it with SIGKILL in the middle of pushes.
package single

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// registry is one registryd process on a loopback port.
type registry struct {
	addr    string
	dataDir string
	p       *harness.Proc
}

func startRegistry(t *testing.T, dataDir, addr string) *registry {
	t.Helper()
	return startRegistryEnv(t, dataDir, addr, nil)
}

// startRegistryEnv starts registryd with extra BERTH_* settings in env.
func startRegistryEnv(t *testing.T, dataDir, addr string, env []string) *registry {
	t.Helper()
	if addr == "" {
		addr = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	}
	r := &registry{addr: addr, dataDir: dataDir}
	r.p = harness.StartProc(t, "registryd", harness.Tool(t, "registryd"),
		[]string{"serve", "--addr", addr, "--data-dir", dataDir}, env)
	harness.WaitFor(t, "registryd ready", 60*time.Second, func() error {
		if r.p.Exited() {
			t.Fatalf("registryd exited: %v\n%s", r.p.Err, harness.Tail(r.p.Out.String(), 4000))
		}
		return harness.GetOK("http://" + addr + "/readyz")
	})
	return r
}

// clientEnv isolates client configuration (docker, regctl) in a temp HOME.
func clientEnv(t *testing.T) []string {
	home := t.TempDir()
	return []string{"HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, ".docker")}
}

func writeFile(t *testing.T, path string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
