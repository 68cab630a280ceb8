package limit

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// held is a request that is inside the handler until release is closed.
type held struct {
	addr string
}

func TestRequests(t *testing.T) {
	type try struct {
		addr string
		want int // status
	}
	cases := []struct {
		name  string
		cfg   Config
		hold  []held // requests in flight while the tries are made
		tries []try
		retry string // Retry-After on a refusal
	}{
		{
			name: "total bound", cfg: Config{MaxConcurrent: 2},
			hold:  []held{{"10.0.0.1"}, {"10.0.0.2"}},
			tries: []try{{"10.0.0.3", 429}, {"10.0.0.1", 429}},
			retry: "1",
		},
		{
			name: "under the total bound", cfg: Config{MaxConcurrent: 3},
			hold:  []held{{"10.0.0.1"}, {"10.0.0.2"}},
			tries: []try{{"10.0.0.3", 200}},
		},
		{
			name: "per-client bound", cfg: Config{MaxConcurrent: 10, MaxPerClient: 2, RetryAfter: 2500 * time.Millisecond},
			hold:  []held{{"10.0.0.1"}, {"10.0.0.1"}},
			tries: []try{{"10.0.0.1", 429}, {"10.0.0.2", 200}, {"[::1]", 200}},
			retry: "3",
		},
		{
			name: "per-client bound off", cfg: Config{MaxConcurrent: 10},
			hold:  []held{{"10.0.0.1"}, {"10.0.0.1"}, {"10.0.0.1"}},
			tries: []try{{"10.0.0.1", 200}},
		},
		{
			name: "IPv6 clients are told apart by address", cfg: Config{MaxConcurrent: 10, MaxPerClient: 1},
			hold:  []held{{"[::1]"}},
			tries: []try{{"[::1]", 429}, {"[::2]", 200}},
			retry: "1",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			entered := make(chan struct{}, len(tc.hold))
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Hold") != "" {
					entered <- struct{}{}
					<-release
				}
				w.WriteHeader(200)
			})
			l := NewRequests(tc.cfg, next)
			done := make(chan int, len(tc.hold))
			for _, h := range tc.hold {
				go func() {
					req := httptest.NewRequest("GET", "/v2/", nil)
					req.RemoteAddr = h.addr + ":40000"
					req.Header.Set("Hold", "1")
					rec := httptest.NewRecorder()
					l.ServeHTTP(rec, req)
					done <- rec.Code
				}()
			}
			for range tc.hold {
				<-entered
			}
			for _, tr := range tc.tries {
				req := httptest.NewRequest("GET", "/v2/x/manifests/latest", nil)
				req.RemoteAddr = tr.addr + ":50000"
				rec := httptest.NewRecorder()
				l.ServeHTTP(rec, req)
				if rec.Code != tr.want {
					t.Errorf("from %s: status %d, want %d", tr.addr, rec.Code, tr.want)
					continue
				}
				if tr.want != 429 {
					continue
				}
				var body struct {
					Errors []struct{ Code, Message string }
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 || body.Errors[0].Code != "TOOMANYREQUESTS" {
					t.Errorf("refusal body %q: want OCI error JSON with TOOMANYREQUESTS (%v)", rec.Body, err)
				}
				if got := rec.Header().Get("Retry-After"); got != tc.retry {
					t.Errorf("Retry-After = %q, want %q", got, tc.retry)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
			}
			close(release)
			for range tc.hold {
				if code := <-done; code != 200 {
					t.Errorf("held request: status %d", code)
				}
			}
			// Everything is given back: the slots and the per-client map.
			if n := len(l.slots); n != 0 {
				t.Errorf("%d slots still taken", n)
			}
			if n := len(l.clients); n != 0 {
				t.Errorf("per-client map keeps %d addresses with nothing in flight", n)
			}
			req := httptest.NewRequest("GET", "/v2/", nil)
			req.RemoteAddr = "10.0.0.1:1"
			rec := httptest.NewRecorder()
			l.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Errorf("after release: status %d", rec.Code)
			}
		})
	}
}

// TestListenerBoundsOpenConnections: with a bound of 2, a third client's
// connection is not accepted until one of the first two closes.
func TestListenerBoundsOpenConnections(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Listener(inner, 2)
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, second := <-accepted, <-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted while two were open")
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	first.Close() // a second Close must not free a second slot
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the third connection was not accepted after one closed")
	}
	// first and the third are closed, second is open: one more fits, and
	// a double Close of first did not make room for two.
	for range 2 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	fourth := <-accepted
	defer fourth.Close()
	select {
	case <-accepted:
		t.Fatal("a connection was accepted beyond the bound")
	case <-time.After(200 * time.Millisecond):
	}
	// Close wakes an Accept that waits for a slot.
	ln.Close()
	if _, ok := <-accepted; ok {
		t.Error("Accept returned a connection after Close")
	}
	second.Close()
}
