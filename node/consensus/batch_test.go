package consensus

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBatcherCoalescesAndOrders(t *testing.T) {
	var rounds atomic.Int64
	var clock atomic.Int64 // bumps whenever a round starts
	release := make(chan struct{})
	b := newBatcher(func(context.Context) (int64, error) {
		rounds.Add(1)
		v := clock.Add(1)
		<-release
		return v, nil
	})
	// First caller starts round 1 and blocks it.
	first := make(chan int64)
	go func() { v, _ := b.call(context.Background()); first <- v }()
	waitFor(t, func() bool { return rounds.Load() == 1 })

	// Callers arriving while round 1 runs must get round 2, never round 1.
	var wg sync.WaitGroup
	got := make([]int64, 20)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i], _ = b.call(context.Background()) }()
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	if v := <-first; v != 1 {
		t.Fatalf("first caller got round %d", v)
	}
	wg.Wait()
	for i, v := range got {
		if v != 2 {
			t.Errorf("caller %d got round %d, want 2 (a round that started after it arrived)", i, v)
		}
	}
	if n := rounds.Load(); n != 2 {
		t.Errorf("ran %d rounds for 21 callers, want 2", n)
	}
}

func TestBatcherCallerCancel(t *testing.T) {
	block := make(chan struct{})
	b := newBatcher(func(context.Context) (int, error) { <-block; return 1, nil })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := b.call(ctx); err == nil {
		t.Fatal("want context error")
	}
	close(block)
	if v, err := b.call(context.Background()); err != nil || v != 1 {
		t.Fatalf("after cancel: %v %v", v, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(time.Millisecond)
	}
}
