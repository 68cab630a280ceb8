// Package limit bounds what clients can make a node hold at once: requests
// in flight (in total and per client address) and open connections. Over a
// bound, a request is refused at once and cheaply with 429 and the OCI
// TOOMANYREQUESTS code, so a flood costs the registry a small, fixed
// amount of memory and CPU instead of a goroutine and buffers per waiting
// request.
package limit

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Config sets the request bounds.
type Config struct {
	// MaxConcurrent caps requests in flight through the handler; it must
	// be positive.
	MaxConcurrent int
	// MaxPerClient caps requests in flight from one client address
	// (RemoteAddr's host); 0 means no per-client bound. Behind a proxy
	// every client has the proxy's address, so set it to 0 there.
	MaxPerClient int
	// RetryAfter is what the Retry-After header of a refusal says
	// (rounded up to whole seconds, at least 1).
	RetryAfter time.Duration
}

// Requests is an http.Handler middleware that enforces Config.
type Requests struct {
	next       http.Handler
	slots      chan struct{} // a token per request in flight
	perClient  int
	retryAfter string

	mu      sync.Mutex
	clients map[string]int // requests in flight per address; no zero entries
}

// NewRequests wraps next. The per-client map holds only addresses with a
// request in flight, so it never has more than MaxConcurrent entries.
func NewRequests(cfg Config, next http.Handler) *Requests {
	secs := int64((cfg.RetryAfter + time.Second - 1) / time.Second)
	return &Requests{
		next:       next,
		slots:      make(chan struct{}, max(cfg.MaxConcurrent, 1)),
		perClient:  cfg.MaxPerClient,
		retryAfter: strconv.FormatInt(max(secs, 1), 10),
		clients:    map[string]int{},
	}
}

// The whole bodies of refusals, built once: a refusal allocates nothing.
var (
	bodyTotal  = []byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"too many requests in flight on this registry node; retry after the Retry-After delay"}]}` + "\n")
	bodyClient = []byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"too many requests in flight from this client address; retry after the Retry-After delay"}]}` + "\n")
)

func (l *Requests) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.refuse(w, bodyTotal)
		return
	}
	defer func() { <-l.slots }()
	if l.perClient > 0 {
		addr := clientAddr(r)
		if !l.enter(addr) {
			l.refuse(w, bodyClient)
			return
		}
		defer l.leave(addr)
	}
	l.next.ServeHTTP(w, r)
}

func (l *Requests) enter(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.clients[addr] >= l.perClient {
		return false
	}
	l.clients[addr]++
	return true
}

func (l *Requests) leave(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.clients[addr] <= 1 {
		delete(l.clients, addr)
		return
	}
	l.clients[addr]--
}

func (l *Requests) refuse(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Retry-After", l.retryAfter)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusTooManyRequests)
	w.Write(body)
}

// clientAddr is the host part of the peer's address. A forwarded-for
// header is not trusted: any client could set it to dodge its bound.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
