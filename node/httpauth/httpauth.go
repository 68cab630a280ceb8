// Package httpauth is the one check of a bearer token for the admin API,
// the cluster admin API, pprof and the internal node-to-node API.
//
// The scheme is matched case-insensitively (RFC 9110: auth schemes are
// case-insensitive), the token in constant time, and an empty expected
// token locks the endpoint. A refused request gets 401 with
// WWW-Authenticate and a JSON {"error": ...} body, before any routing, so
// nothing is revealed about which paths exist.
package httpauth

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/berth-registry/berth/node/httperr"
)

// Guard describes one protected area.
type Guard struct {
	// Token is the expected bearer token; empty locks the area.
	Token string
	// Realm goes into WWW-Authenticate.
	Realm string
	// Hint tells the caller how to get the token right.
	Hint string
}

// Authorized reports whether an Authorization header value carries token.
func Authorized(header, token string) bool {
	scheme, got, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return false
	}
	// Constant time, so the answer's timing says nothing about how much
	// of a guess was right.
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
}

// Wrap lets a request through to next only with the guard's token.
func (g Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Authorized(r.Header.Get("Authorization"), g.Token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+g.Realm+`"`)
			httperr.Write(w, http.StatusUnauthorized, g.Hint)
			return
		}
		next.ServeHTTP(w, r)
	})
}
