package consensus

import (
	"context"
	"sync"
	"time"
)

// batcher coalesces concurrent calls of an expensive round trip (a leader
// verification, a read-index request to the leader) into one.
//
// A caller always waits for a round that STARTED after it arrived: if a
// round is in flight, it joins the next one. That is what makes a coalesced
// read-index as safe as a private one: the index a caller gets was read
// after its request began.
type batcher[T any] struct {
	do func(context.Context) (T, error)
	// observe, if set, is told each round's batch size, duration and
	// error (Config.OnReadIndexRound).
	observe func(batch int, d time.Duration, err error)

	mu      sync.Mutex
	next    *round[T]
	running bool
}

type round[T any] struct {
	done chan struct{}
	val  T
	err  error
	n    int // callers waiting on it
}

func newBatcher[T any](do func(context.Context) (T, error)) *batcher[T] {
	return &batcher[T]{do: do}
}

func (b *batcher[T]) call(ctx context.Context) (T, error) {
	b.mu.Lock()
	if b.next == nil {
		b.next = &round[T]{done: make(chan struct{})}
	}
	r := b.next
	r.n++
	if !b.running {
		b.running = true
		go b.loop()
	}
	b.mu.Unlock()
	select {
	case <-r.done:
		return r.val, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func (b *batcher[T]) loop() {
	for {
		b.mu.Lock()
		r := b.next
		b.next = nil
		if r == nil {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock() // r.n is final: no caller joins a round once it runs
		// The round runs detached from any one caller's context: callers
		// that give up must not cancel it for the others.
		start := time.Now()
		r.val, r.err = b.do(context.Background())
		close(r.done)
		if b.observe != nil {
			b.observe(r.n, time.Since(start), r.err)
		}
	}
}
