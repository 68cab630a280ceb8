package replication

import (
	"context"
	"io"
	"sync"
	"time"
)

// limiter caps the bytes per second one policy copies, across all its
// reads. A nil limiter (bandwidth 0) does not throttle.
type limiter struct {
	rate int64 // bytes per second

	mu   sync.Mutex
	next time.Time // when the bytes read so far are paid for
}

func newLimiter(rate int64) *limiter {
	if rate <= 0 {
		return nil
	}
	return &limiter{rate: rate}
}

// wait blocks until n more bytes fit in the rate.
func (l *limiter) wait(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	l.next = l.next.Add(time.Duration(int64(n) * int64(time.Second) / l.rate))
	until := l.next
	l.mu.Unlock()
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *limiter) reader(ctx context.Context, r io.Reader) io.Reader {
	if l == nil {
		return r
	}
	return &limitedReader{ctx: ctx, l: l, r: r}
}

type limitedReader struct {
	ctx context.Context
	l   *limiter
	r   io.Reader
}

func (lr *limitedReader) Read(p []byte) (int, error) {
	// Small reads keep the throttle smooth at low rates.
	if max := int(lr.l.rate); len(p) > max && max > 0 {
		p = p[:max]
	}
	n, err := lr.r.Read(p)
	if werr := lr.l.wait(lr.ctx, n); werr != nil && err == nil {
		err = werr
	}
	return n, err
}
