package harness

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// GCGrace is gc.uploadmaxage in the GC tests: the shortest the
// configuration allows. A link, untagged manifest or orphan becomes
// garbage only once older than it.
const GCGrace = time.Minute

// GCChurnScenario is the part of the concurrency test both drivers share: it
// leaves the layer pool as garbage older than the grace period, churns for
// a minute with GC looping against leader, checks every live image, waits
// out the grace period and runs GC once more (--delete-untagged). It
// speaks plain HTTP; GCChurnScenarioCtx takes the Client from a context.
func GCChurnScenario(t testing.TB, bases []string, leader, token, ctl string, ctlEnv, ctlArgs []string) ChurnResult {
	t.Helper()
	ctx, cancel := Ctx(gcScenarioTimeout)
	defer cancel()
	return GCChurnScenarioCtx(ctx, t, bases, leader, token, ctl, ctlEnv, ctlArgs)
}

// gcScenarioTimeout bounds GCChurnScenario: two grace periods, the minute
// of churn and the final run, with room for a loaded machine.
const gcScenarioTimeout = 10 * time.Minute

// GCChurnScenarioCtx is GCChurnScenario reaching bases and leader with the
// Client ctx carries (a TLS cluster's HTTPS client), within ctx's deadline
// (give it gcScenarioTimeout's 10 minutes). ctlEnv and ctlArgs must point
// clusterctl at the same registry the same way (--server with the
// scheme, the CA to trust).
func GCChurnScenarioCtx(ctx context.Context, t testing.TB, bases []string, leader, token, ctl string, ctlEnv, ctlArgs []string) ChurnResult {
	t.Helper()
	pool := LayerPool(24, 4096)
	for i := range 12 {
		im := NewLayeredImage("gc/old", fmt.Sprint("old-", i), fmt.Sprint("old-", i), PickLayers(pool, 3, false), nil, "")
		if _, err := im.Push(ctx, bases[0]); err != nil {
			t.Fatal(err)
		}
		if err := DeleteTag(ctx, bases[0], im.Repo, im.Tag); err != nil {
			t.Fatal(err)
		}
	}
	// Pool layers not in an old image stay unpushed until the churn.
	time.Sleep(GCGrace + 2*time.Second)

	loopCtx, stopLoop := context.WithCancel(ctx)
	var runs, deleted int
	var failures []string
	var wg sync.WaitGroup
	wg.Go(func() { runs, deleted, failures = GCLoop(loopCtx, ctl, ctlEnv, ctlArgs) })
	res, err := Churn(ctx, bases, 8, pool, time.Minute)
	stopLoop()
	wg.Wait()
	if err != nil {
		t.Fatalf("during GC: %v", err)
	}
	t.Logf("churn: %d pushes (%d refused by GC and retried), %d pulls, %d tag deletes; %d GC runs deleted %d blobs",
		res.Pushes, res.Refused, res.Pulls, res.Deletes, runs, deleted)
	for _, f := range failures {
		t.Errorf("gc run failed during the churn: %s", f)
	}
	if runs < 5 || deleted == 0 {
		t.Errorf("%d GC runs deleted %d blobs during the churn: the test did not race GC against pushes", runs, deleted)
	}
	if res.Pushes < 50 || res.Deletes == 0 {
		t.Errorf("only %d pushes and %d deletes: too little churn to mean anything", res.Pushes, res.Deletes)
	}
	for _, im := range res.Live {
		if err := im.Verify(ctx, bases[len(bases)-1]); err != nil {
			t.Errorf("after the churn: %v", err)
		}
	}

	// Everything the churn left (deleted tags, refused pushes' links) is
	// garbage once older than the grace period.
	time.Sleep(GCGrace + 2*time.Second)
	WaitGCIdle(t, ctx, leader, token)
	out := Run(t, ctlEnv, ctl, append(ctlArgs, "gc", "run", "--wait", "--delete-untagged")...)
	t.Logf("final run: %s", out)
	for _, im := range res.Live {
		if err := im.Verify(ctx, bases[0]); err != nil {
			t.Errorf("after the final GC: %v", err)
		}
	}
	for _, im := range res.Gone {
		if code, err := ManifestStatus(ctx, bases[0], im.Repo, im.ManifestDigest); err != nil || code != 404 {
			t.Errorf("untagged %s@%s after GC --delete-untagged: %d %v, want 404", im.Repo, im.ManifestDigest, code, err)
		}
	}
	return res
}

// WaitGCIdle waits until no run is open (a looping run the churn's end
// cut short finishes on its own).
func WaitGCIdle(t testing.TB, ctx context.Context, base, token string) {
	t.Helper()
	WaitFor(t, "no open GC run", 2*time.Minute, func() error {
		st, err := GetGCStatus(ctx, base, token)
		if err != nil {
			return err
		}
		if st.Open != nil {
			return fmt.Errorf("run %s is %s", st.Open.Run, st.Open.Phase)
		}
		return nil
	})
}

// CheckStoreAfterGC fails unless listed (what the store holds) is exactly
// the live images' digests.
func CheckStoreAfterGC(t testing.TB, what string, listed []string, res ChurnResult) {
	t.Helper()
	missing, leftover := CheckStore(listed, Reachable(res.Live))
	if len(missing) > 0 {
		t.Errorf("%s: %d digests of live images are missing, e.g. %s", what, len(missing), missing[0])
	}
	if len(leftover) > 0 {
		t.Errorf("%s: %d digests nothing reaches are left after the final GC, e.g. %s", what, len(leftover), leftover[0])
	}
	t.Logf("%s: %d blobs, %d live images", what, len(listed), len(res.Live))
}
