package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// runWorkload drives one workload for d with its concurrency and returns
// the measurement. Only op time counts: ops/s is ops divided by the mean
// busy time per worker, so client-side content generation is excluded.
//
// An op still running grace after the round ended is cancelled and counted
// as unfinished: a whole catalog listing of Distribution on S3 takes many
// minutes, and the round must end anyway. Its time still counts as busy.
func runWorkload(ctx context.Context, c *client, wl workload, target string, d, grace time.Duration, concurrency int) Result {
	if concurrency <= 0 {
		concurrency = wl.concurrency
	}
	var (
		mu       sync.Mutex
		lat      []time.Duration
		errs     int
		unfin    int
		bytes    int64
		busy     time.Duration
		firstErr string
		seq      atomic.Int64
	)
	seq.Store(time.Now().UnixNano())
	deadline := time.Now().Add(d)
	opCtx, cancel := context.WithDeadline(ctx, deadline.Add(grace))
	defer cancel()
	var wg sync.WaitGroup
	for id := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{id: id, seq: &seq}
			var myLat []time.Duration
			var myBusy time.Duration
			var myBytes int64
			myErrs, myUnfin := 0, 0
			myFirst := ""
			for ; time.Now().Before(deadline) && ctx.Err() == nil; w.i++ {
				if wl.prepare != nil {
					wl.prepare(w)
				}
				start := time.Now()
				n, err := wl.op(opCtx, c, w)
				el := time.Since(start)
				myBusy += el
				if err != nil && opCtx.Err() != nil && ctx.Err() == nil {
					myUnfin++
					continue
				}
				if err != nil {
					myErrs++
					if myFirst == "" {
						myFirst = err.Error()
					}
					continue
				}
				myLat = append(myLat, el)
				myBytes += n
			}
			mu.Lock()
			lat = append(lat, myLat...)
			errs += myErrs
			unfin += myUnfin
			bytes += myBytes
			busy += myBusy
			if firstErr == "" {
				firstErr = myFirst
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := summarize(wl.name, target, lat, errs, bytes, busy/time.Duration(concurrency), firstErr)
	r.Unfinished = unfin
	return r
}
