package consensus

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The round observer (Config.OnReadIndexRound) sees every round once, with
// the number of reads it answered: the callers that coalesced into it.
func TestBatcherObservesRounds(t *testing.T) {
	var rounds atomic.Int64
	release := make(chan struct{})
	b := newBatcher(func(context.Context) (int, error) {
		if rounds.Add(1) == 1 {
			<-release
			return 0, errors.New("first round fails")
		}
		return 1, nil
	})
	type seen struct {
		batch int
		err   error
	}
	var mu sync.Mutex
	var got []seen
	b.observe = func(n int, d time.Duration, err error) {
		if d <= 0 {
			t.Errorf("round duration %v", d)
		}
		mu.Lock()
		got = append(got, seen{n, err})
		mu.Unlock()
	}
	first := make(chan struct{})
	go func() { b.call(context.Background()); close(first) }()
	waitFor(t, func() bool { return rounds.Load() == 1 })
	var wg sync.WaitGroup
	for range 7 {
		wg.Add(1)
		go func() { defer wg.Done(); b.call(context.Background()) }()
	}
	// All seven must have joined round 2 before round 1 ends.
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.next != nil && b.next.n == 7 })
	close(release)
	<-first
	wg.Wait()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 })
	if got[0].batch != 1 || got[0].err == nil || got[1].batch != 7 || got[1].err != nil {
		t.Fatalf("observed %+v; want a failed round of 1, then a round of 7", got)
	}
}
