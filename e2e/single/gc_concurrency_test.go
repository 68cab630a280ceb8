package single

import (
	"path/filepath"
	"testing"

	"github.com/berth-registry/berth/e2e/harness"
)

// gcGrace is gc.uploadmaxage in the GC tests.
const gcGrace = harness.GCGrace

// TestGCUnderConcurrentPushes: GC runs back to back for a minute (every
// other run with --delete-untagged) while 8 clients push images that share
// layers, pull them back and delete tags. The shared layers start out as
// garbage (their images were deleted more than gc.uploadmaxage ago), so
// runs mark and sweep exactly the layers the clients are pushing again.
// Every acknowledged image that still has its tag must pull whole during
// and after the churn; after one more run, once everything the churn left
// behind is older than the grace period, the blob files on disk must be
// exactly the live images' digests.
func TestGCUnderConcurrentPushes(t *testing.T) {
	data := t.TempDir()
	reg := startRegistryEnv(t, data, "", []string{"BERTH_GC_UPLOADMAXAGE=" + gcGrace.String()})
	token, err := harness.ReadToken(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	ctl := harness.Tool(t, "clusterctl")
	ctlArgs := []string{"--server", "http://" + reg.addr, "--token-file", filepath.Join(data, "admin.token")}
	ctlEnv := []string{"BERTH_TOKEN="}

	res := harness.GCChurnScenario(t, []string{reg.addr}, reg.addr, token, ctl, ctlEnv, ctlArgs)

	listed, err := harness.FSBlobs(data)
	if err != nil {
		t.Fatal(err)
	}
	harness.CheckStoreAfterGC(t, "blob files on disk", listed, res)
}
