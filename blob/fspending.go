package blob

import (
	"container/list"
	"sync"
	"time"
)

// Defaults for FSLimits.
const (
	DefaultMaxEmptyUploads = 10000
	DefaultEmptyUploadTTL  = 15 * time.Minute
)

// FSLimits bounds the filesystem driver's memory for upload sessions that
// hold no bytes yet. Such a session costs no file (see FS), so without a
// bound every anonymous POST that is never followed up would stay in
// memory until the process ends.
type FSLimits struct {
	// MaxEmptyUploads is how many empty sessions may be open at once;
	// StartUpload answers *TooManyUploadsError beyond it. Zero means
	// DefaultMaxEmptyUploads.
	MaxEmptyUploads int
	// EmptyUploadTTL is how long an empty session stays usable: a client
	// appends or PUTs within seconds of its POST, so one that has not
	// after this long has gone away. Its ID is then unknown
	// (ErrUploadUnknown). Zero means DefaultEmptyUploadTTL.
	EmptyUploadTTL time.Duration
}

func (l FSLimits) withDefaults() FSLimits {
	if l.MaxEmptyUploads <= 0 {
		l.MaxEmptyUploads = DefaultMaxEmptyUploads
	}
	if l.EmptyUploadTTL <= 0 {
		l.EmptyUploadTTL = DefaultEmptyUploadTTL
	}
	return l
}

// pendingSessions is the bounded table of empty sessions, oldest first,
// so that expired ones are found at the front without a scan.
type pendingSessions struct {
	limits FSLimits

	mu    sync.Mutex
	byID  map[string]*list.Element // of *pendingSession
	order list.List                // by start, oldest at the front
}

type pendingSession struct {
	id      string
	state   uploadState
	expires time.Time // from time.Now, so with its monotonic reading
}

func newPendingSessions(l FSLimits) *pendingSessions {
	return &pendingSessions{limits: l.withDefaults(), byID: map[string]*list.Element{}}
}

// add records a new session, first dropping expired ones; it refuses one
// past the bound, telling the client when the oldest expires.
func (p *pendingSessions) add(id string, st uploadState, now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expireLocked(now)
	if len(p.byID) >= p.limits.MaxEmptyUploads {
		oldest := p.order.Front().Value.(*pendingSession)
		wait := max(oldest.expires.Sub(now), time.Second)
		return &TooManyUploadsError{Limit: p.limits.MaxEmptyUploads, RetryAfter: wait.Round(time.Second)}
	}
	p.byID[id] = p.order.PushBack(&pendingSession{id: id, state: st, expires: now.Add(p.limits.EmptyUploadTTL)})
	return nil
}

func (p *pendingSessions) expireLocked(now time.Time) {
	for e := p.order.Front(); e != nil; e = p.order.Front() {
		ps := e.Value.(*pendingSession)
		if now.Before(ps.expires) {
			return
		}
		p.order.Remove(e)
		delete(p.byID, ps.id)
	}
}

// get returns a live session's state; an expired one is removed.
func (p *pendingSessions) get(id string, now time.Time) (uploadState, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.byID[id]
	if !ok {
		return uploadState{}, false
	}
	ps := e.Value.(*pendingSession)
	if !now.Before(ps.expires) {
		p.order.Remove(e)
		delete(p.byID, id)
		return uploadState{}, false
	}
	return ps.state, true
}

// remove forgets a session and reports whether it was there.
func (p *pendingSessions) remove(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.byID[id]
	if ok {
		p.order.Remove(e)
		delete(p.byID, id)
	}
	return ok
}

// purge removes the sessions started before olderThan and those expired.
func (p *pendingSessions) purge(olderThan, now time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	before := len(p.byID)
	p.expireLocked(now)
	for e := p.order.Front(); e != nil; {
		next := e.Next()
		if ps := e.Value.(*pendingSession); ps.state.Started.Before(olderThan) {
			p.order.Remove(e)
			delete(p.byID, ps.id)
		}
		e = next
	}
	return before - len(p.byID)
}

// len is the number of open empty sessions, expired ones included until
// the next add or purge drops them.
func (p *pendingSessions) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byID)
}
