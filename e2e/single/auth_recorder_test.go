package single

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// authRecorder is a reverse proxy in front of a registry that notes how
// each request authenticated. Berth takes Basic credentials on /v2/
// directly, so a client sending them on every request would pass the
// client tests too; the recorder shows the clients used the token flow.
// It keeps the Host header, so the realm of the registry's challenges
// names the proxy and the clients fetch their tokens through it.
type authRecorder struct {
	addr string
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method, path string
	scheme       string // "Basic", "Bearer", "" or, for a POST /token, "form"
}

func startAuthRecorder(t *testing.T, target string) *authRecorder {
	t.Helper()
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatal(err)
	}
	rec := &authRecorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if r.Method == http.MethodPost && r.URL.Path == "/token" {
			scheme = "form"
		}
		rec.mu.Lock()
		rec.seen = append(rec.seen, seenRequest{r.Method, r.URL.Path, scheme})
		rec.mu.Unlock()
		proxy.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return rec
}

// reset forgets what was seen, and returns it.
func (rec *authRecorder) reset() []seenRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	seen := rec.seen
	rec.seen = nil
	return seen
}

// expectTokenFlow checks that a client signed in at the token endpoint
// (Basic on GET /token, or Docker's OAuth2 form on POST) and presented
// only bearer tokens on /v2/.
func expectTokenFlow(t *testing.T, seen []seenRequest) {
	t.Helper()
	var signIns, bearer int
	for _, s := range seen {
		switch {
		case s.path == "/token" && (s.scheme == "Basic" || s.scheme == "form"):
			signIns++
		case strings.HasPrefix(s.path, "/v2/") && s.scheme == "Bearer":
			bearer++
		case strings.HasPrefix(s.path, "/v2/") && s.scheme != "":
			t.Errorf("%s %s with %s credentials: want a bearer token from /token", s.method, s.path, s.scheme)
		}
	}
	if signIns == 0 || bearer == 0 {
		t.Errorf("%d sign-ins at /token and %d /v2/ requests with a token, want both: %v", signIns, bearer, seen)
	}
}
