package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"time"
)

// LayerPool makes n random layers of size bytes that images share.
func LayerPool(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = make([]byte, size)
		rand.Read(out[i])
	}
	return out
}

// PickLayers returns k distinct layers of pool, in a random order, plus
// (when fresh) one new random layer no other image has.
func PickLayers(pool [][]byte, k int, fresh bool) [][]byte {
	var out [][]byte
	for _, i := range mrand.Perm(len(pool))[:k] {
		out = append(out, pool[i])
	}
	if fresh {
		out = append(out, LayerPool(1, 512)[0])
	}
	return out
}

// ChurnResult is what the clients of Churn did. Live are the images whose
// push was acknowledged and whose tag no client deleted: each must pull
// whole. Gone are the acknowledged ones whose tag was deleted.
type ChurnResult struct {
	Live, Gone                      []LayeredImage
	Pushes, Refused, Pulls, Deletes int
}

// Churn runs clients concurrent clients for d against bases (client i
// talks to bases[i%len(bases)]): each pushes images of three pool layers
// (and sometimes a layer of its own) under its own tags, in repositories
// two clients share, pulls its acknowledged images back and checks every
// blob, and deletes some of its tags. Any failure other than the refusals
// GC causes (which the pushing client retries, see LayeredImage.Push) is
// returned: an acknowledged, still tagged image that does not pull whole
// is the bug these tests look for.
func Churn(ctx context.Context, bases []string, clients int, pool [][]byte, d time.Duration) (ChurnResult, error) {
	var (
		mu   sync.Mutex
		res  ChurnResult
		errs []error
		wg   sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	for c := range clients {
		wg.Go(func() {
			base := bases[c%len(bases)]
			repo := fmt.Sprintf("gc/churn/r%d", c/2)
			var live, gone []LayeredImage
			var pushes, refused, pulls, deletes int
			fail := func(err error) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("client %d: %w", c, err))
				mu.Unlock()
			}
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				switch op := mrand.IntN(10); {
				case op < 5 || len(live) == 0:
					im := NewLayeredImage(repo, fmt.Sprintf("c%d-%d", c, n), fmt.Sprintf("c%d-%d-%d", c, n, mrand.Int64()), PickLayers(pool, 3, op%2 == 0), nil, "")
					r, err := im.Push(ctx, base)
					refused += r
					if err != nil {
						fail(fmt.Errorf("push %s:%s: %w", im.Repo, im.Tag, err))
						return
					}
					pushes++
					live = append(live, im)
				case op < 8:
					im := live[mrand.IntN(len(live))]
					if err := im.Verify(ctx, base); err != nil {
						fail(fmt.Errorf("pull of acknowledged %s:%s: %w", im.Repo, im.Tag, err))
						return
					}
					pulls++
				default:
					i := mrand.IntN(len(live))
					im := live[i]
					if err := DeleteTag(ctx, base, im.Repo, im.Tag); err != nil {
						fail(err)
						return
					}
					deletes++
					live = append(live[:i], live[i+1:]...)
					gone = append(gone, im)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.Live = append(res.Live, live...)
			res.Gone = append(res.Gone, gone...)
			res.Pushes += pushes
			res.Refused += refused
			res.Pulls += pulls
			res.Deletes += deletes
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return res, fmt.Errorf("%d clients failed, first: %w", len(errs), errs[0])
	}
	return res, nil
}

// Reachable is the set of digests the live images store bytes under.
func Reachable(live []LayeredImage) map[string]bool {
	out := map[string]bool{}
	for _, im := range live {
		for _, d := range im.Digests() {
			out[d] = true
		}
	}
	return out
}

// CheckStore compares the digests a store lists with what must be there:
// every reachable digest present, nothing else left. It returns the
// missing and the leftover digests.
func CheckStore(listed []string, reachable map[string]bool) (missing, leftover []string) {
	have := map[string]bool{}
	for _, d := range listed {
		have[d] = true
		if !reachable[d] {
			leftover = append(leftover, d)
		}
	}
	for d := range reachable {
		if !have[d] {
			missing = append(missing, d)
		}
	}
	return missing, leftover
}

// GCLoop runs `clusterctl gc run --wait` back to back until ctx ends,
// every other run with --delete-untagged, with args (--server,
// --token-file) before the subcommand. It returns how many runs finished,
// the blobs they reported deleted, and the output of any that failed.
// The result is read from stdout alone: clusterctl reports the run's
// progress on stderr.
func GCLoop(ctx context.Context, ctl string, env, args []string) (runs, deleted int, failures []string) {
	for i := 0; ctx.Err() == nil; i++ {
		cmdArgs := append(append([]string{}, args...), "gc", "run", "--wait")
		if i%2 == 1 {
			cmdArgs = append(cmdArgs, "--delete-untagged")
		}
		cmd := exec.CommandContext(ctx, ctl, cmdArgs...)
		cmd.Env = append(os.Environ(), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			failures = append(failures, fmt.Sprintf("%v: %s%s", err, stdout.String(), Tail(stderr.String(), 2000)))
			continue
		}
		var n int
		var run string
		if _, err := fmt.Sscanf(stdout.String(), "gc run %s done: %d blobs deleted", &run, &n); err != nil {
			failures = append(failures, fmt.Sprintf("unexpected output: %s", stdout.String()))
			continue
		}
		runs++
		deleted += n
	}
	return runs, deleted, failures
}
