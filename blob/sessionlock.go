package blob

import (
	"context"
	"sync"
)

// sessionLocks serializes the requests of one upload session and nothing
// else: a request that holds a session (a PATCH whose client stalls, say)
// delays only that session's own requests, never another's. A lock exists
// only while a request holds or waits for it, so the table has at most one
// entry per request in flight, not one per session ever seen.
type sessionLocks struct {
	mu sync.Mutex
	m  map[string]*sessionLock
}

type sessionLock struct {
	token chan struct{} // capacity 1: holding the token is holding the lock
	refs  int           // holders and waiters; the entry goes at zero
}

// lock waits for the session's lock, or until ctx ends (the client went
// away). It returns the function that releases it.
func (l *sessionLocks) lock(ctx context.Context, id string) (unlock func(), err error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*sessionLock{}
	}
	e := l.m[id]
	if e == nil {
		e = &sessionLock{token: make(chan struct{}, 1)}
		l.m[id] = e
	}
	e.refs++
	l.mu.Unlock()
	select {
	case e.token <- struct{}{}:
		return func() { <-e.token; l.release(id, e) }, nil
	case <-ctx.Done():
		l.release(id, e)
		return nil, ctx.Err()
	}
}

func (l *sessionLocks) release(id string, e *sessionLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(l.m, id)
	}
}

// held is the number of sessions locked or waited for.
func (l *sessionLocks) held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
