package single

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// TestGCPurgesAbandonedUploads: with gc.uploadmaxage and gc.purgeinterval
// at 1m, a chunked upload abandoned half way is gone (its session answers
// 404, and its temp files, or S3 chunk objects, are deleted) at the first
// purge after it is a minute old, while a session opened later that keeps
// sending chunks through that purge is untouched: it finishes and its
// blob pulls whole.
//
// The purge runs when the node becomes leader and then every minute (at
// leader start + k·1m). The abandoned session opens right after start, so
// the purge at +1m finds it younger than a minute and the one at +2m
// removes it; the live session opens at +75s, so it is 45s old at +2m and
// finishes before +3m. uploadmaxage is age since the session started
// (README, gc.uploadmaxage): a session still running after it is purged.
func TestGCPurgesAbandonedUploads(t *testing.T) {
	for _, driver := range []string{"filesystem", "s3"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			data := t.TempDir()
			env := []string{"BERTH_GC_UPLOADMAXAGE=1m", "BERTH_GC_PURGEINTERVAL=1m"}
			var leftovers func(ctx context.Context, id string) ([]string, error)
			switch driver {
			case "filesystem":
				leftovers = func(_ context.Context, id string) ([]string, error) {
					files, err := harness.FSFiles(filepath.Join(data, "uploads"))
					var out []string
					for _, f := range files {
						if strings.HasPrefix(f, id) {
							out = append(out, f)
						}
					}
					return out, err
				}
			case "s3":
				m := harness.StartMinIO(t, t.TempDir(), "")
				env = append(env, m.Env("berth")...)
				leftovers = func(ctx context.Context, id string) ([]string, error) {
					keys, err := harness.BucketKeys(ctx, m.Addr, "berth", "uploads/"+id+"/")
					var out []string
					for _, k := range keys {
						// A purged session keeps a "cancelled" state object
						// (a tombstone) until its signed ID expires, so the
						// ID is not taken for a new, empty session.
						if path.Base(k) != "state" {
							out = append(out, k)
						}
					}
					return out, err
				}
			}
			reg := startRegistryEnv(t, data, "", env)
			ctx, cancel := harness.Ctx(6 * time.Minute)
			defer cancel()

			blob := func(n int) []byte { b := make([]byte, n); rand.Read(b); return b }
			abandonedBlob := blob(2 << 20)
			abandoned, err := harness.StartUpload(ctx, reg.addr, "gc/uploads")
			if err != nil {
				t.Fatal(err)
			}
			if err := abandoned.Patch(ctx, abandonedBlob[:1<<20]); err != nil {
				t.Fatal(err)
			}
			idA := path.Base(strings.SplitN(abandoned.Location, "?", 2)[0])
			if left, err := leftovers(ctx, idA); err != nil || len(left) == 0 {
				t.Fatalf("the half-done session %s left nothing to purge in the store (%v): the test looks in the wrong place", idA, err)
			}

			time.Sleep(75 * time.Second)
			live, err := harness.StartUpload(ctx, reg.addr, "gc/uploads")
			if err != nil {
				t.Fatal(err)
			}
			var (
				mu      sync.Mutex
				sent    []byte
				sendErr error
			)
			sendCtx, stopSending := context.WithCancel(ctx)
			var wg sync.WaitGroup
			wg.Go(func() {
				for sendCtx.Err() == nil {
					chunk := blob(64 << 10)
					mu.Lock()
					err := live.Patch(ctx, chunk)
					if err == nil {
						sent = append(sent, chunk...)
					}
					sendErr = err
					mu.Unlock()
					if err != nil {
						return
					}
					select {
					case <-sendCtx.Done():
					case <-time.After(2 * time.Second):
					}
				}
			})
			harness.WaitFor(t, "the abandoned upload purged", 90*time.Second, func() error {
				code, _, err := abandoned.Status(ctx)
				if err != nil {
					return err
				}
				if code != http.StatusNotFound {
					return fmt.Errorf("abandoned session answers %d", code)
				}
				return nil
			})
			// One more chunk after the purge, then close the live session.
			time.Sleep(3 * time.Second)
			stopSending()
			wg.Wait()
			if sendErr != nil {
				t.Fatalf("the upload in progress was disturbed by the purge: %v", sendErr)
			}
			if left, err := leftovers(ctx, idA); err != nil || len(left) > 0 {
				t.Errorf("the purged session left %v in the store (%v)", left, err)
			}
			if err := abandoned.Patch(ctx, abandonedBlob[1<<20:]); err == nil {
				t.Error("the purged session accepted another chunk")
			}
			if code, size, err := live.Status(ctx); err != nil || code != http.StatusNoContent || size != len(sent) {
				t.Fatalf("live session after the purge: %d, %d bytes, %v; want 204 with %d bytes", code, size, err, len(sent))
			}
			if err := live.Finish(ctx, harness.Sha(sent)); err != nil {
				t.Fatalf("finish the live upload after the purge: %v", err)
			}
			if err := harness.VerifyBlob(ctx, reg.addr, "gc/uploads", sent); err != nil {
				t.Error(err)
			}
			t.Logf("abandoned %s purged; live session of %d bytes finished", idA, len(sent))
		})
	}
}
